/* tagsim's web page: map, upload, crosswalk review, changes. Plain JavaScript, no build.
   The API key lives in sessionStorage (never in a URL) and goes in the Authorization header
   of every request, tiles included. */
"use strict";

const T = {
  fa: {
    title: "تقسیمات", tab_map: "نقشه", tab_upload: "بارگذاری", tab_review: "بازبینی تناظر",
    tab_changes: "تغییرات", tab_downloads: "دریافت‌ها", signout: "خروج", key_label: "کلید دسترسی (API key)", signin: "ورود",
    search_hint: "نام یا کد (هر سازمان)", click_hint: "روی قطعه یا تقسیمات کلیک کنید.",
    coverage: "پوشش پلاک", draw: "رسم محدوده", draw_done: "پایان و محاسبه", clear: "پاک کردن",
    unit: "حوزه", main: "اصلی", sub: "فرعی", ask: "پرسش", paste_hint: "GeoJSON چندضلعی",
    ask_pasted: "محاسبه برای GeoJSON", file: "فایل (shapefile zip، GeoPackage، GeoJSON)",
    village: "روستا (اختیاری)", mapping: "نام فیلدها (اختیاری، JSON؛ نقش‌ها: parcel_no، village، land_use، area)", dry_run: "فقط بررسی (بدون انتشار)", send: "ارسال",
    publish: "انتشار", confirm_removals: "با این حال منتشر شود؟ قطعه‌های حذف‌شده در تاریخچه می‌مانند.", review_keys: "کلیدها: c تأیید، r رد، j بعدی، k قبلی، o نامزدهای دیگر و ۱ تا ۵ برای پیوند",
    confirm: "تأیید (c)", reject: "رد (r)", next: "بعدی (j)", all_kinds: "همه", show: "نمایش",
    others: "نامزدهای دیگر (o)", link: "پیوند",
    when: "زمان", kind: "نوع", entity: "شناسه", operation: "عمل", parcel: "قطعه",
    village_codes: "کدهای روستا در سه سازمان", overlap: "هم‌پوشانی", share_plot: "سهم از پلاک",
    share_parcel: "سهم از قطعه", plot_area: "مساحت پلاک", covered_parcels: "پوشش قطعات",
    covered_plan: "پوشش طرح هادی", divisions: "تقسیمات", uploading: "ارسال فایل",
    processing: "پردازش", status: "وضعیت", errors: "خطا", warnings: "هشدار",
    published: "منتشر شد", inserted: "افزوده", updated: "تغییر یافته", removed: "حذف شده",
    queue: "صف بازبینی", of: "از", confirmed: "تأیید شد", rejected: "رد شد", linked: "پیوند شد", evidence: "شواهد",
    dl_hint: "کد روستا، شهرستان یا استان", dl_explain: "بدون کد: پرونده‌های همهٔ کشور. با کد روستا، شهرستان یا استان (هر سازمان): قطعه‌ها و محدوده‌های همان‌جا.",
    whole_country: "همهٔ کشور", show_on_map: "نمایش روی نقشه", change_files: "پرونده‌های تغییرات", no_snapshot: "هنوز نسخه‌ای گرفته نشده",
    get_file: "دریافت", parcels_of: "قطعه‌ها", zones_of: "محدوده‌های طرح هادی", features: "عارضه", taken: "گرفته‌شده در", latest_file: "آخرین پرونده",
    bad_key: "کلید پذیرفته نشد", none: "موردی نیست", m2: "متر مربع",
    tab_tables: "جدول‌ها", at_hint: "در تاریخ (۱۴۰۰-۰۶-۰۱)", match_title: "تطبیق جدول نام‌ها",
    table_file: "جدول (CSV یا XLSX)", agency: "سازمان", columns_hint: "ستون هر نقش (خالی: از سرستون‌ها شناخته می‌شود)",
    province: "استان", county: "شهرستان", district: "بخش", rural: "دهستان", place: "شهر یا آبادی", code: "کد",
    match_go: "تطبیق", row: "ردیف", asked: "آنچه آمده", choose: "انتخاب", download: "دریافت جدول",
    convert_title: "تبدیل جدول آماری به تقسیمات یا تاریخ دیگر", code_column: "ستون کد",
    counts: "ستون‌های شمارشی (با ویرگول)", categories: "ستون‌های دسته (اختیاری)", at: "کدها در تاریخ",
    to_agency: "به سازمان", to_date: "در تاریخ", equal_shares: "سهم برابر جایی که وزن نامعلوم است",
    convert_go: "تبدیل", queued: "در صف", running: "در حال کار", rows: "ردیف", undecided: "انتخاب نشده",
    converted: "تبدیل شد", refused: "تبدیل نشد", total_in: "جمع ورودی", total_out: "جمع خروجی",
    timeline: "سیر تحول", gone: "منسوخ", successors: "جانشین", not_yet: "هنوز نبوده", in_edition: "در فهرست",
    exact: "دقیق", variant: "گونهٔ املایی", former_name: "نام پیشین", ambiguous: "چندگانه", wrong_parent: "والد نادرست", not_found: "یافت نشد", chosen: "انتخاب‌شده",
    create: "ایجاد", abolish: "حذف", rename: "تغییر نام", recode: "تغییر کد", move: "جابه‌جایی", split: "تجزیه", merge: "ادغام",
  },
  en: {
    title: "tagsim", tab_map: "Map", tab_upload: "Upload", tab_review: "Crosswalk review",
    tab_changes: "Changes", tab_downloads: "Downloads", signout: "Sign out", key_label: "API key", signin: "Sign in",
    search_hint: "Name or code (any agency)", click_hint: "Click a parcel or a division.",
    coverage: "Plot coverage", draw: "Draw a plot", draw_done: "Finish and ask", clear: "Clear",
    unit: "unit", main: "main", sub: "sub", ask: "Ask", paste_hint: "GeoJSON polygon",
    ask_pasted: "Ask for the GeoJSON", file: "File (zipped shapefile, GeoPackage, GeoJSON)",
    village: "Village (optional)", mapping: "Field names (optional, JSON; roles: parcel_no, village, land_use, area)", dry_run: "Validate only (dry run)", send: "Send",
    publish: "Publish", confirm_removals: "Publish all the same? Removed parcels stay in the history.", review_keys: "Keys: c confirm, r reject, j next, k previous, o other candidates then 1–5 to link",
    confirm: "Confirm (c)", reject: "Reject (r)", next: "Next (j)", all_kinds: "All",
    others: "Other candidates (o)", link: "Link",
    show: "Show", when: "When", kind: "Kind", entity: "Entity", operation: "Operation",
    parcel: "Parcel", village_codes: "The village in the three agencies", overlap: "Overlap",
    share_plot: "Share of plot", share_parcel: "Share of parcel", plot_area: "Plot area",
    covered_parcels: "Covered by parcels", covered_plan: "Covered by the plan zone",
    divisions: "Divisions", uploading: "Uploading", processing: "Processing", status: "Status",
    errors: "errors", warnings: "warnings", published: "Published", inserted: "added",
    updated: "modified", removed: "removed", queue: "Review queue", of: "of",
    confirmed: "confirmed", rejected: "rejected", linked: "linked", evidence: "Evidence",
    dl_hint: "Code of a village, county or province", dl_explain: "Without a code: the whole country's files. With a village, county or province code (any agency): its parcels and zones.",
    whole_country: "The whole country", show_on_map: "Show on the map", change_files: "Change files", no_snapshot: "No snapshot yet",
    get_file: "Download", parcels_of: "Parcels", zones_of: "Guide-plan zones", features: "features", taken: "taken", latest_file: "latest file",
    bad_key: "The key was refused", none: "Nothing", m2: "m²",
    tab_tables: "Tables", at_hint: "at a date (1400-06-01)", match_title: "Match a table of names",
    table_file: "Table (CSV or XLSX)", agency: "Agency", columns_hint: "Each role's column (empty: recognised from the headers)",
    province: "Province", county: "County", district: "District", rural: "Rural district", place: "City or village", code: "Code",
    match_go: "Match", row: "Row", asked: "As given", choose: "Choose", download: "Download the table",
    convert_title: "Convert a statistics table to other divisions or another date", code_column: "Code column",
    counts: "Count columns (comma-separated)", categories: "Category columns (optional)", at: "Codes as of",
    to_agency: "To agency", to_date: "As of", equal_shares: "Equal shares where a weight is unknown",
    convert_go: "Convert", queued: "queued", running: "running", rows: "rows", undecided: "not chosen",
    converted: "converted", refused: "not converted", total_in: "total in", total_out: "total out",
    timeline: "Lineage", gone: "gone", successors: "successors", not_yet: "not yet in force", in_edition: "in list",
    exact: "exact", variant: "variant", former_name: "former name", ambiguous: "ambiguous", wrong_parent: "wrong parent", not_found: "not found", chosen: "chosen",
    create: "created", abolish: "abolished", rename: "renamed", recode: "recoded", move: "moved", split: "split", merge: "merged",
  },
};

const state = { lang: localStorage.getItem("tagsim-lang") || "fa", map: null, review: [], index: 0 };
const $ = (sel) => document.querySelector(sel);
const t = (k) => (T[state.lang] || T.fa)[k] || k;
const key = () => sessionStorage.getItem("tagsim-key");
const fmt = (n, d = 1) => (n === null || n === undefined ? "—" : Number(n).toLocaleString(state.lang === "fa" ? "fa-IR" : "en-US", { maximumFractionDigits: d }));
const pct = (x) => (x === null || x === undefined ? "—" : fmt(x * 100, 1) + "٪".replace("٪", state.lang === "fa" ? "٪" : "%"));
const when = (iso) => new Intl.DateTimeFormat(state.lang === "fa" ? "fa-IR-u-ca-persian" : "en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: "Asia/Tehran" }).format(new Date(iso));
function esc(s) { return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c])); }

async function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: `Bearer ${key()}` }, opts.headers || {});
  if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 401) { signOut(); throw new Error(t("bad_key")); }
  const body = r.headers.get("Content-Type")?.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error(body.detail || body.title || r.statusText);
  return body;
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.documentElement.dir = state.lang === "fa" ? "rtl" : "ltr";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  $("#lang").textContent = state.lang === "fa" ? "English" : "فارسی";
}

// -- sign-in -------------------------------------------------------------------------------
async function signIn(candidate) {
  sessionStorage.setItem("tagsim-key", candidate);
  try {
    const me = await api("/me");
    const can = (service, role) => (me.services[service]?.can || []).includes(role);
    const allowed = { map: true, upload: can("uploads", "uploader"), review: can("crosswalk", "reviewer"), changes: can("changes", "reader"), tables: can("divisions", "reader"), downloads: true };
    document.querySelectorAll("#tabs button").forEach((b) => { b.hidden = !allowed[b.dataset.tab]; });
    $("#signin").hidden = true; $("#app").hidden = false; $("#signout").hidden = false;
    $("#who").textContent = `${me.agency} · ${me.role}`;
    startMap();
  } catch (e) {
    sessionStorage.removeItem("tagsim-key");
    $("#signin-error").textContent = e.message;
  }
}
function signOut() {
  sessionStorage.removeItem("tagsim-key");
  $("#app").hidden = true; $("#signin").hidden = false; $("#signout").hidden = true;
}

// -- map -----------------------------------------------------------------------------------
function tileSource(id, minzoom) {
  return { type: "vector", tiles: [`${location.origin}/tiles/${id}/{z}/{x}/{y}.mvt`], minzoom, maxzoom: 22 };
}
function newMap(container, center = [51.4, 35.7], zoom = 7) {
  maplibregl.setWorkerUrl("/assets/vendor/maplibre-gl-worker.js");
  return new maplibregl.Map({
    container, center, zoom, attributionControl: false,
    transformRequest: (url) => (url.startsWith(location.origin) ? { url, headers: { Authorization: `Bearer ${key()}` } } : { url }),
    style: {
      version: 8,
      sources: {
        divisions: tileSource("divisions", 0), guide_plans: tileSource("guide_plans", 8),
        parcels: tileSource("parcels", 12),
        plot: { type: "geojson", data: { type: "FeatureCollection", features: [] } },
        marks: { type: "geojson", data: { type: "FeatureCollection", features: [] } },
        findings: { type: "geojson", data: { type: "FeatureCollection", features: [] } },
        changed: { type: "geojson", data: { type: "FeatureCollection", features: [] } },
      },
      layers: [
        { id: "bg", type: "background", paint: { "background-color": "#eef1f4" } },
        { id: "divisions-fill", type: "fill", source: "divisions", "source-layer": "divisions", filter: ["==", ["geometry-type"], "Polygon"], paint: { "fill-color": "#d9e4ef", "fill-opacity": 0.4 } },
        { id: "divisions-line", type: "line", source: "divisions", "source-layer": "divisions", paint: { "line-color": "#5577aa", "line-width": 1 } },
        { id: "divisions-point", type: "circle", source: "divisions", "source-layer": "divisions", filter: ["==", ["geometry-type"], "Point"], minzoom: 8, paint: { "circle-radius": 3, "circle-color": "#12355b" } },
        { id: "plans", type: "line", source: "guide_plans", "source-layer": "guide_plans", paint: { "line-color": "#c77800", "line-width": 2, "line-dasharray": [2, 1] } },
        { id: "parcels-fill", type: "fill", source: "parcels", "source-layer": "parcels", paint: { "fill-color": ["match", ["get", "land_use"], "مسکونی", "#f4c27a", "زراعی", "#b7d99a", "باغ", "#7fbf6a", "تجاری", "#e58f8f", "#c9cdd3"], "fill-opacity": 0.75 } },
        { id: "parcels-line", type: "line", source: "parcels", "source-layer": "parcels", paint: { "line-color": "#6b5a3a", "line-width": 0.6 } },
        { id: "parcels-hit", type: "line", source: "parcels", "source-layer": "parcels", filter: ["in", ["id"], ["literal", []]], paint: { "line-color": "#d0021b", "line-width": 3 } },
        { id: "plot-fill", type: "fill", source: "plot", paint: { "fill-color": "#1e88e5", "fill-opacity": 0.25 } },
        { id: "plot-line", type: "line", source: "plot", paint: { "line-color": "#1e88e5", "line-width": 2 } },
        { id: "findings", type: "fill", source: "findings", paint: { "fill-color": ["match", ["get", "level"], "error", "#d0021b", "#f5a623"], "fill-opacity": 0.6 } },
        { id: "changed", type: "fill", source: "changed", paint: { "fill-color": ["match", ["get", "operation"], "insert", "#2e7d32", "update", "#1e88e5", "#757575"], "fill-opacity": 0.7 } },
        { id: "changed-line", type: "line", source: "changed", paint: { "line-color": "#000", "line-width": 1, "line-dasharray": ["match", ["get", "operation"], "delete", ["literal", [2, 2]], ["literal", [1, 0]]] } },
        { id: "marks", type: "circle", source: "marks", paint: { "circle-radius": 6, "circle-color": ["match", ["get", "level"], "error", "#d0021b", "#f5a623"], "circle-stroke-color": "#fff", "circle-stroke-width": 1 } },
      ],
    },
  });
}

function startMap() {
  if (state.map) return;
  const map = (state.map = newMap("map"));
  window.tagsimMap = map; // for the end-to-end tests
  map.addControl(new maplibregl.NavigationControl(), "top-left");
  map.on("click", (e) => (state.drawing ? addVertex(e.lngLat) : showFeature(e)));
  for (const layer of ["parcels-fill", "divisions-fill", "divisions-point"]) {
    map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
  }
}

function table(rows) {
  return `<table class="kv">${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v}</td></tr>`).join("")}</table>`;
}

async function showFeature(e) {
  const hit = state.map.queryRenderedFeatures(e.point, { layers: ["parcels-fill", "divisions-point", "divisions-fill"] })[0];
  if (!hit) return;
  const out = $("#details");
  if (hit.layer.id === "parcels-fill") {
    const f = await api(`/collections/parcels/items/${hit.id}`);
    const p = f.properties;
    let codes = `<p class="hint">—</p>`;
    try {
      const unit = await api(`/divisions/${p.village_agency}/${p.village_code}`);
      codes = table([[p.village_agency, `<span class="ltr">${esc(unit.code)}</span> ${esc(unit.name)}`], ...unit.partners.map((x) => [x.agency, `<span class="ltr">${esc(x.code)}</span> (${esc(x.status)})`])]);
    } catch (err) { codes = `<p class="hint">${esc(err.message)}</p>`; }
    out.innerHTML = `<h3>${t("parcel")} ${esc(p.parcel_no)}</h3>` + table(Object.entries(p).map(([k, v]) => [k, k.startsWith("valid_") && v ? esc(when(v)) : `<span class="ltr">${esc(v)}</span>`])) + `<h4>${t("village_codes")}</h4>` + codes;
    out.dataset.parcel = p.parcel_no;
  } else {
    const p = hit.properties;
    await showUnit(p.agency, p.code);
  }
}

// A division: its codes in the other agencies, then its lineage as a timeline (the editions
// that hold it, the events between them, and where it went if it is gone).
async function showUnit(agency, code) {
  const out = $("#details");
  const unit = await api(`/divisions/${agency}/${code}`);
  out.innerHTML = `<h3>${esc(unit.name)}</h3>` + table([["agency", esc(agency)], ["code", `<span class="ltr">${esc(unit.code)}</span>`], ["level", esc(unit.level)], ...unit.partners.map((x) => [x.agency, `<span class="ltr">${esc(x.code)}</span>`])]) + `<h4>${t("timeline")}</h4><ol class="timeline" id="timeline"></ol>`;
  await showTimeline(agency, code);
}
async function showTimeline(agency, code) {
  const h = await api(`/divisions/${agency}/${code}/history`);
  const items = [];
  for (const e of h.editions) {
    items.push({ key: `${e.published_on || ""}b`, html: `<li class="edition"><b class="ltr">${esc(e.label)}</b> ${t("in_edition")}: ${esc(e.name)} <span class="hint">${esc(e.level)}</span></li>` });
  }
  for (const ev of h.events) {
    const to = h.editions.find((e) => e.edition_id === ev.to_edition_id);
    const arrow = `<span class="ltr">${esc(ev.codes_before.join(" + "))} → ${esc(ev.codes_after.join(" + "))}</span>`;
    items.push({ key: `${(to && to.published_on) || ""}a`, html: `<li class="event"><b class="ltr">${esc(ev.to_label)}</b> ${esc(t(ev.kind))} ${arrow}</li>` });
  }
  items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  $("#timeline").innerHTML = items.map((i) => i.html).join("") || `<li>${t("none")}</li>`;
}

let searchTimer = null;
const CODE = /^(?:(moi|sci|hf)\s*[:：]\s*)?([0-9۰-۹٠-٩][0-9۰-۹٠-٩\s-]*)$/i;
function search(q) {
  clearTimeout(searchTimer);
  if (!q.trim()) { $("#search-results").innerHTML = ""; return; }
  const at = $("#search-at").value.trim();
  const code = CODE.exec(q.trim());
  if (at && code) { searchTimer = setTimeout(() => resolveAt(code[1] ? [code[1].toLowerCase()] : ["moi", "sci", "hf"], code[2].trim(), at), 250); return; }
  searchTimer = setTimeout(async () => {
    const r = await api(`/divisions/search?limit=8&q=${encodeURIComponent(q)}`);
    $("#search-results").innerHTML = r.results.map((u, i) => `<li data-i="${i}">${esc(u.name)} <span class="hint">${esc(u.agency)} ${esc(u.level)} <span class="ltr">${esc(u.code)}</span></span></li>`).join("");
    $("#search-results").onclick = (ev) => { const li = ev.target.closest("li"); if (li) flyTo(r.results[li.dataset.i]); };
  }, 250);
}
// A code typed with a date: the unit as it was then in each agency, a code gone by then with
// its successors (410), one not yet in force said so.
async function resolveAt(agencies, code, at) {
  const lines = [];
  for (const agency of agencies) {
    const r = await fetch(`/divisions/${agency}/${encodeURIComponent(code)}?at=${encodeURIComponent(at)}`, { headers: { Authorization: `Bearer ${key()}` } });
    const b = await r.json();
    if (r.ok) lines.push({ html: `${esc(b.name)} <span class="hint">${esc(agency)} ${esc(b.level)} <span class="ltr">${esc(b.code)}</span> — ${esc(b.edition.label)}</span>`, unit: { agency, code: b.code } });
    else if (r.status === 410) lines.push({ cls: "gone", html: `<span class="ltr">${esc(agency)}:${esc(code)}</span> ${t("gone")} — ${t("successors")}: ${(b.successors || []).map((s) => `${esc(s.name)} <span class="ltr">${esc(s.code)}</span>`).join("، ") || "—"}`, unit: b.successors && b.successors[0] ? { agency, code: b.successors[0].code } : null });
    else if (b.code === "not_yet_in_force") lines.push({ cls: "gone", html: `<span class="ltr">${esc(agency)}:${esc(code)}</span> ${t("not_yet")}` });
  }
  $("#search-results").innerHTML = lines.map((l, i) => `<li data-i="${i}" class="${l.cls || ""}">${l.html}</li>`).join("") || `<li>${t("none")}</li>`;
  $("#search-results").onclick = (ev) => { const li = ev.target.closest("li"); const l = li && lines[li.dataset.i]; if (l && l.unit) flyTo(l.unit); };
}
async function flyTo(u) {
  $("#search-results").innerHTML = "";
  showUnit(u.agency, u.code).catch(() => {});
  const found = await api(`/collections/divisions/items?agency=${u.agency}&code=${u.code}&limit=1`);
  const g = found.features[0]?.geometry;
  if (g && g.type === "Point") state.map.flyTo({ center: g.coordinates, zoom: 14 });
  else if (g) state.map.fitBounds(bounds(g), { padding: 30 });
  else if (u.lon) state.map.flyTo({ center: [u.lon, u.lat], zoom: 14 });
}
function bounds(g) {
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => (typeof c[0] === "number" ? (b[0] = Math.min(b[0], c[0]), b[1] = Math.min(b[1], c[1]), b[2] = Math.max(b[2], c[0]), b[3] = Math.max(b[3], c[1])) : c.forEach(walk));
  walk(g.coordinates);
  return [[b[0], b[1]], [b[2], b[3]]];
}

// -- coverage ------------------------------------------------------------------------------
function setPlot(ring) {
  const features = ring.length >= 3 ? [{ type: "Feature", geometry: { type: "Polygon", coordinates: [[...ring, ring[0]]] } }] : ring.map((c) => ({ type: "Feature", geometry: { type: "Point", coordinates: c } }));
  state.map.getSource("plot").setData({ type: "FeatureCollection", features });
}
function addVertex(ll) { state.ring.push([ll.lng, ll.lat]); setPlot(state.ring); $("#draw-done").disabled = state.ring.length < 3; }
function showCoverage(c) {
  const ids = c.parcels.map((p) => p.id);
  state.map.setFilter("parcels-hit", ["in", ["id"], ["literal", ids]]);
  if (c.plot?.geometry) state.map.getSource("plot").setData(c.plot.geometry);
  const rows = c.parcels.map((p) => `<tr><td>${esc(p.parcel_no)}</td><td>${esc(p.land_use)}</td><td>${fmt(p.overlap_m2)}</td><td>${pct(p.share_of_plot)}</td><td>${pct(p.share_of_parcel)}</td></tr>`).join("");
  $("#coverage-result").innerHTML =
    table([[t("plot_area"), `${fmt(c.plot.area_m2)} ${t("m2")}`], [t("covered_parcels"), pct(c.totals.share_by_parcels)], [t("covered_plan"), pct(c.totals.share_by_guide_plans)], [t("divisions"), c.divisions.map((d) => `${esc(d.agency)}: ${esc(d.name)}`).join("، ")]]) +
    `<table id="coverage-table"><thead><tr><th>${t("parcel")}</th><th>land use</th><th>${t("overlap")}</th><th>${t("share_plot")}</th><th>${t("share_parcel")}</th></tr></thead><tbody>${rows}</tbody></table>`;
}
async function askCoverage(body) {
  try { showCoverage(await api("/coverage", { method: "POST", json: body })); }
  catch (e) { $("#coverage-result").innerHTML = `<p class="error">${esc(e.message)}</p>`; }
}
async function askPlate() {
  const [u, m, s] = ["#plate-unit", "#plate-main", "#plate-sub"].map((x) => encodeURIComponent($(x).value.trim()));
  try {
    const c = await api(`/plates/${u}/${m}/${s}/coverage`);
    showCoverage(c);
    state.map.fitBounds(bounds(c.plot.geometry), { padding: 80, maxZoom: 18 });
  } catch (e) { $("#coverage-result").innerHTML = `<p class="error">${esc(e.message)}</p>`; }
}

// -- upload --------------------------------------------------------------------------------
function sendUpload(ev) {
  ev.preventDefault();
  const file = $("#upload-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  if ($("#upload-village").value.trim()) form.append("village", $("#upload-village").value.trim());
  if ($("#upload-mapping").value.trim()) form.append("mapping", $("#upload-mapping").value.trim());
  form.append("dry_run", $("#upload-dry").checked ? "true" : "false");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/uploads");
  xhr.setRequestHeader("Authorization", `Bearer ${key()}`);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) progress(0.3 * e.loaded / e.total, `${t("uploading")} ${fmt(100 * e.loaded / e.total, 0)}%`); };
  xhr.onload = () => {
    const body = JSON.parse(xhr.responseText);
    if (xhr.status !== 202) { $("#upload-status").textContent = body.detail || body.title; return; }
    follow(body.upload_id);
  };
  xhr.send(form);
}
function progress(fraction, text) { $("#upload-bar").style.width = `${Math.round(fraction * 100)}%`; $("#upload-status").textContent = text; }
async function follow(id, until = ["validated", "invalid", "published", "failed"]) {
  state.upload = id;
  for (;;) {
    const u = await api(`/uploads/${id}`);
    progress(0.3 + 0.7 * (u.progress || 0), `${t("processing")} #${id}: ${u.status} ${fmt(100 * (u.progress || 0), 0)}%`);
    if (until.includes(u.status)) { showReport(u); return u; }
    await new Promise((r) => setTimeout(r, 500));
  }
}
function showReport(u) {
  const r = u.report || {};
  const findings = r.findings || [];
  const s = r.summary || {};
  const published = r.published;
  $("#upload-status").textContent = `#${u.id}: ${u.status} — ${fmt(s.features, 0)} features, ${fmt(s.errors || 0, 0)} ${t("errors")}, ${fmt(s.warnings || 0, 0)} ${t("warnings")}` +
    (published ? ` — ${t("published")}: ${published.insert} ${t("inserted")}, ${published.update} ${t("updated")}, ${published.delete} ${t("removed")}` : "");
  $("#upload-status").dataset.status = u.status;
  if (published) $("#upload-status").dataset.changed = published.insert + published.update + published.delete;
  $("#upload-report").innerHTML = findings.map((f) => `<li class="${f.level}"><code>${esc(f.code)}</code> ${f.parcel_no ? `${t("parcel")} ${esc(f.parcel_no)}: ` : ""}${esc(f.message)}</li>`).join("") || `<li>${t("none")}</li>`;
  $("#upload-publish").hidden = u.status !== "validated";
  const marks = findings.filter((f) => f.location).map((f) => { const m = /POINT\s*\(([-\d.]+)\s+([-\d.]+)\)/.exec(f.location); return m && { type: "Feature", properties: { level: f.level }, geometry: { type: "Point", coordinates: [+m[1], +m[2]] } }; }).filter(Boolean);
  if (!state.uploadMap) { state.uploadMap = newMap("upload-map"); window.tagsimUploadMap = state.uploadMap; }
  const show = async () => {
    state.uploadMap.getSource("marks").setData({ type: "FeatureCollection", features: marks });
    if (["validated", "invalid"].includes(u.status)) {
      const staged = await api(`/uploads/${u.id}/features`);
      state.uploadMap.getSource("findings").setData(staged);
      window.tagsimFindings = staged.features.length;
    }
    if (u.status === "published") {
      const ch = await api(`/changes?kinds=parcel&upload=${u.id}&limit=10000`);
      const changed = ch.changes.map((c) => ({ type: "Feature", properties: { operation: c.operation, parcel_no: (c.after || c.before).parcel_no }, geometry: (c.after || c.before).geometry }));
      state.uploadMap.getSource("findings").setData({ type: "FeatureCollection", features: [] });
      state.uploadMap.getSource("changed").setData({ type: "FeatureCollection", features: changed });
      window.tagsimChanged = changed.length;
      $("#upload-report").innerHTML = changed.map((f) => `<li>${t(f.properties.operation === "insert" ? "inserted" : f.properties.operation === "update" ? "updated" : "removed")}: ${t("parcel")} ${esc(f.properties.parcel_no)}</li>`).join("") || `<li>${t("none")}</li>`;
    }
    const v = u.village_code ? `${u.village_agency}:${u.village_code}` : null;
    if (v) api(`/collections/guide_plans/items?village=${v}&limit=1`).then((z) => { if (z.features[0]) state.uploadMap.fitBounds(bounds(z.features[0].geometry), { padding: 20, animate: false }); }).catch(() => {});
    else if (marks[0]) state.uploadMap.jumpTo({ center: marks[0].geometry.coordinates, zoom: 15 });
  };
  state.uploadMap.loaded() ? show() : state.uploadMap.once("load", show);
}
async function publishUpload(confirmed = false) {
  $("#upload-publish").hidden = true;
  await api(`/uploads/${state.upload}/publish`, { method: "POST", json: confirmed ? { confirm_removals: true } : {} });
  const u = await follow(state.upload, ["published", "failed", "validated"]);
  const refused = (u.report || {}).publish_refused;
  // a publish that would remove over 20% of a village's parcels is asked again, not assumed
  if (!confirmed && u.status === "validated" && refused && refused.code === "mass_removal") {
    if (window.confirm(`${refused.message}\n\n${t("confirm_removals")}`)) await publishUpload(true);
  }
}

// -- crosswalk review ----------------------------------------------------------------------
async function loadReview() {
  const q = await api("/crosswalk/review?limit=50");
  state.review = q.links; state.index = 0; state.reviewTotal = q.total; state.decided = 0;
  renderReview();
}
function renderReview() {
  const items = state.review;
  $("#review-progress").textContent = `${t("queue")}: ${state.decided} / ${state.reviewTotal}`;
  $("#review-queue").innerHTML = items.map((l, i) => `<li class="${i === state.index ? "current" : ""} ${l.done ? "done" : ""}">${esc(l.moi_name)} ↔ ${esc(l.sci_name || l.hf_name)} (${fmt(l.confidence * 100, 0)}%) ${l.done ? "— " + t(l.done) : ""}</li>`).join("");
  const l = items[state.index];
  if (!l) { $("#review-item").innerHTML = `<p>${t("none")}</p>`; return; }
  const other = l.sci_code ? "sci" : "hf";
  $("#review-item").innerHTML = `<h3>${esc(l.level)}: ${esc(l.moi_name)} ↔ ${esc(l[other + "_name"])}</h3>` +
    table([["MOI", `<span class="ltr">${esc(l.moi_code)}</span> — ${esc(l.moi_parents)}`], [other.toUpperCase(), `<span class="ltr">${esc(l[other + "_code"])}</span> — ${esc(l[other + "_parents"])}`], [t("evidence"), esc(l.evidence?.text)], ["confidence", fmt(l.confidence, 2)]]);
  reviewMap(l, other);
}
async function reviewMap(l, other) {
  if (!state.reviewMap) { state.reviewMap = newMap("review-map"); }
  const points = [];
  for (const [agency, code] of [["moi", l.moi_code], [other, l[other + "_code"]]]) {
    try { const u = await api(`/divisions/${agency}/${code}`); if (u.lon) points.push({ type: "Feature", properties: { level: agency === "moi" ? "error" : "warning" }, geometry: { type: "Point", coordinates: [u.lon, u.lat] } }); } catch (e) { /* no location */ }
  }
  const show = () => { state.reviewMap.getSource("marks").setData({ type: "FeatureCollection", features: points }); if (points[0]) state.reviewMap.jumpTo({ center: points[0].geometry.coordinates, zoom: 11 }); };
  state.reviewMap.loaded() ? show() : state.reviewMap.once("load", show);
}
async function otherCandidates() {
  const l = state.review[state.index];
  if (!l) return;
  const other = l.sci_code ? "sci" : "hf";
  const found = await api(`/divisions/search?limit=5&agency=${other}&level=${l.level}&q=${encodeURIComponent(l.moi_name)}`);
  state.candidates = found.results;
  $("#review-candidates").innerHTML = found.results.map((u, i) => `<li>${i + 1}. ${esc(u.name)} <span class="ltr">${esc(u.code)}</span> <button data-i="${i}">${t("link")}</button></li>`).join("") || `<li>${t("none")}</li>`;
  $("#review-candidates").onclick = (e) => { const b = e.target.closest("button"); if (b) decide("link", state.candidates[b.dataset.i].code); };
}
async function decide(decision, otherCode) {
  const l = state.review[state.index];
  if (!l || l.done) return;
  const other = l.sci_code ? "sci" : "hf";
  await api("/crosswalk/decisions", { method: "POST", json: { level: l.level, moi_code: l.moi_code, [`${other}_code`]: otherCode || l[other + "_code"], decision } });
  state.candidates = null; $("#review-candidates").innerHTML = "";
  l.done = decision === "reject" ? "rejected" : decision === "link" ? "linked" : "confirmed";
  state.decided += 1;
  state.index = Math.min(state.index + 1, state.review.length - 1);
  renderReview();
}

// -- changes -------------------------------------------------------------------------------
async function loadChanges() {
  const today = new Intl.DateTimeFormat("en-US-u-ca-persian-nu-latn", { year: "numeric", month: "2-digit", day: "2-digit", timeZone: "Asia/Tehran" }).formatToParts(new Date());
  const part = (ty) => today.find((p) => p.type === ty).value;
  const kind = $("#changes-kind").value;
  const within = $("#changes-within").value.trim();
  let rows;
  if (within) {
    const r = await api(`/changes?limit=200${kind ? `&kinds=${kind}` : ""}&within=${encodeURIComponent(within)}`);
    rows = r.changes.reverse();
  } else {
    const r = await api(`/changes/daily/${part("year").replace(/\D/g, "")}-${part("month")}-${part("day")}?limit=200`);
    rows = r.changes.filter((c) => !kind || c.entity_kind === kind).reverse();
  }
  $("#changes-table tbody").innerHTML = rows.map((c) => `<tr><td>${when(c.occurred_at)}</td><td>${esc(c.entity_kind)}</td><td class="ltr">${esc(c.entity_id)}</td><td>${esc(c.operation)}</td></tr>`).join("") || `<tr><td colspan="4">${t("none")}</td></tr>`;
}

// -- tables: match and convert ------------------------------------------------------------
function parseCsv(text) {
  const rows = []; let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) { if (c === '"') { if (text[i + 1] === '"') { cell += '"'; i++; } else quoted = false; } else cell += c; }
    else if (c === '"') quoted = true;
    else if (c === ",") { row.push(cell); cell = ""; }
    else if (c === "\n" || c === "\r") { if (c === "\r" && text[i + 1] === "\n") i++; row.push(cell); rows.push(row); row = []; cell = ""; }
    else cell += c;
  }
  if (cell || row.length) { row.push(cell); rows.push(row); }
  return rows;
}
function toCsv(rows) {
  return "\ufeff" + rows.map((r) => r.map((v) => (/[",\r\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : v)).join(",")).join("\r\n") + "\r\n";
}
function saveFile(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = name;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
function fileName(r, fallback) {
  const m = /filename\*=UTF-8''([^;]+)/.exec(r.headers.get("Content-Disposition") || "");
  return m ? decodeURIComponent(m[1]) : fallback;
}
// Send a table; a big one becomes a job, followed on the bar until its answer is ready.
async function sendTable(path, form, bar, status, summaryHeader) {
  bar.style.width = "5%";
  const r = await fetch(path, { method: "POST", headers: { Authorization: `Bearer ${key()}` }, body: form });
  if (r.status === 202) {
    const job = await r.json();
    for (;;) {
      const s = await api(job.links[0].href);
      bar.style.width = `${Math.round(100 * (s.fraction || 0))}%`;
      status.textContent = `${t(s.status)} ${s.done != null ? `${fmt(s.done, 0)} / ${fmt(s.total, 0)} ${t("rows")}` : ""}`;
      if (s.status === "failed") throw new Error(s.error.detail);
      if (s.status === "done") {
        const a = await fetch(s.links[0].href, { headers: { Authorization: `Bearer ${key()}` } });
        bar.style.width = "100%";
        return { text: await a.text(), name: fileName(a, "table.csv"), summary: s.summary };
      }
      await new Promise((res) => setTimeout(res, 500));
    }
  }
  if (!r.ok) { const b = await r.json(); bar.style.width = "0"; throw new Error(b.detail || b.title); }
  bar.style.width = "100%";
  return { text: await r.text(), name: fileName(r, "table.csv"), summary: JSON.parse(r.headers.get(summaryHeader) || "{}") };
}
async function readHeaders(file) {
  if (!file || !/\.csv$/i.test(file.name)) { $("#match-headers").innerHTML = ""; return; }
  const first = parseCsv((await file.slice(0, 65536).text()).replace(/^\ufeff/, ""))[0] || [];
  $("#match-headers").innerHTML = first.map((h) => `<option value="${esc(h)}">`).join("");
}
async function sendMatch(ev) {
  ev.preventDefault();
  const file = $("#match-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file); form.append("agency", $("#match-agency").value); form.append("format", "csv");
  document.querySelectorAll("#match-columns input").forEach((i) => { if (i.value.trim()) form.append(i.dataset.role, i.value.trim()); });
  $("#match-download").hidden = true; $("#match-ambiguous").hidden = true; $("#match-summary").innerHTML = "";
  try {
    const got = await sendTable("/match", form, $("#match-bar"), $("#match-status"), "X-Tagsim-Match");
    showMatched(parseCsv(got.text.replace(/^\ufeff/, "")), got.summary, got.name);
  } catch (e) { $("#match-status").textContent = e.message; }
}
function showMatched(rows, summary, name) {
  const header = rows[0], body = rows.slice(1).filter((r) => r.length > 1);
  const col = (n) => header.indexOf(n);
  const [st, cd, nm, cands] = ["match_status", "match_code", "match_name", "match_candidates"].map(col);
  state.matched = { header, body, name, choices: {} };
  $("#match-status").textContent = `${fmt(body.length, 0)} ${t("rows")}`;
  $("#match-summary").innerHTML = Object.entries(summary).map(([k, v]) => `<li data-status="${esc(k)}">${t(k)}: ${fmt(v, 0)}</li>`).join("");
  const asked = st;  // the user's own columns come before the result columns
  const ambiguous = body.map((r, i) => [r, i]).filter(([r]) => r[st] === "ambiguous");
  $("#match-ambiguous tbody").innerHTML = ambiguous.map(([r, i]) => {
    const options = r[cands].split(" | ").filter(Boolean).map((c) => { const sp = c.indexOf(" "); const name = c.slice(sp + 1).replace(/ \(.*\)$/, ""); return `<option value="${esc(c.slice(0, sp))}" data-name="${esc(name)}">${esc(c)}</option>`; }).join("");
    return `<tr data-i="${i}"><td>${i + 2}</td><td>${esc(r.slice(0, asked).join("، "))}</td><td><select><option value="">${t("undecided")}</option>${options}</select></td></tr>`;
  }).join("");
  $("#match-ambiguous").hidden = ambiguous.length === 0;
  $("#match-ambiguous tbody").onchange = (e) => {
    const tr = e.target.closest("tr"); const o = e.target.selectedOptions[0];
    state.matched.choices[tr.dataset.i] = o.value ? { code: o.value, name: o.dataset.name } : null;
  };
  $("#match-download").hidden = false;
  $("#match-download").onclick = () => {
    const out = state.matched.body.map((r, i) => {
      const c = state.matched.choices[i];
      if (!c) return r;
      const copy = r.slice(); copy[st] = "chosen"; copy[cd] = c.code; copy[nm] = c.name; return copy;
    });
    saveFile(new Blob([toCsv([header, ...out])], { type: "text/csv" }), state.matched.name);
  };
}
async function sendConvert(ev) {
  ev.preventDefault();
  const file = $("#convert-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file); form.append("format", "csv");
  const fields = { agency: "#convert-agency", code: "#convert-code", counts: "#convert-counts", categories: "#convert-categories", at: "#convert-at", to_agency: "#convert-to-agency", to_date: "#convert-to-date" };
  for (const [k, sel] of Object.entries(fields)) if ($(sel).value.trim()) form.append(k, $(sel).value.trim());
  if ($("#convert-equal").checked) form.append("equal_shares", "true");
  $("#convert-download").hidden = true;
  try {
    const got = await sendTable("/convert", form, $("#convert-bar"), $("#convert-status"), "X-Tagsim-Convert");
    const rows = parseCsv(got.text.replace(/^\ufeff/, "")).filter((r) => r.length > 1);
    const s = got.summary;
    const totals = Object.entries(s.totals || {}).map(([k, v]) => `${esc(k)}: ${t("total_in")} ${fmt(v.in, 2)}، ${t("total_out")} ${fmt(v.out, 2)}`).join(" — ");
    const refused = Object.entries(s.refused || {}).map(([k, v]) => `${esc(k)} ${fmt(v, 0)}`).join("، ");
    $("#convert-status").textContent = `${fmt(s.rows_converted, 0)} ${t("converted")} → ${fmt(s.rows_out, 0)} ${t("rows")}; ${fmt(s.rows_refused, 0)} ${t("refused")}${refused ? ` (${refused})` : ""}. ${totals}`;
    $("#convert-status").dataset.rowsOut = s.rows_out;
    $("#convert-table").innerHTML = `<thead><tr>${rows[0].map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows.slice(1, 51).map((r) => `<tr>${r.map((v) => `<td>${esc(v)}</td>`).join("")}</tr>`).join("")}</tbody>`;
    $("#convert-download").hidden = false;
    $("#convert-download").onclick = () => saveFile(new Blob([got.text], { type: "text/csv" }), got.name);
  } catch (e) { $("#convert-status").textContent = e.message; }
}

// -- downloads: the country's snapshots, or a place's parcels and zones --------------------
const FILE_FORMATS = [["gpkg", "GeoPackage"], ["fgb", "FlatGeobuf"], ["csv", "CSV"], ["json", "GeoJSON"]];
const size = (n) => (n >= 1e6 ? `${fmt(n / 1e6)} MB` : `${fmt(n / 1e3)} KB`);
async function loadDownloads() {
  const out = $("#dl-list");
  const place = $("#dl-place").value.trim();
  out.innerHTML = "";
  try {
    out.innerHTML = place ? await placeDownloads(place) : await countryDownloads();
  } catch (e) { out.innerHTML = `<p class="error">${esc(e.message)}</p>`; }
  out.querySelectorAll("button[data-href]").forEach((b) => { b.onclick = () => download(b.dataset.href, b.dataset.name); });
  out.querySelectorAll("button[data-archive]").forEach((b) => { b.onclick = () => showArchive(b.dataset.dataset, b.dataset.archive); });
}
async function countryDownloads() {
  const index = await api("/downloads");
  const parts = [`<h3>${t("whole_country")}</h3>`];
  for (const d of index.datasets) {
    const s = d.snapshots[0];
    if (!s) { parts.push(`<h4>${esc(state.lang === "fa" ? d.title_fa : d.title)}</h4><p class="hint">${t("no_snapshot")}</p>`); continue; }
    const files = s.files.map((f) => `<li data-format="${esc(f.format)}"><span class="ltr">${esc(f.name)}</span> ${size(f.size)} <code title="SHA-256">${esc(f.sha256.slice(0, 12))}…</code>`
      + ` <button data-href="${esc(f.href)}" data-name="${esc(f.name)}">${t("get_file")}</button>`
      + (f.format === "pmtiles" ? ` <button data-archive="${esc(f.href)}" data-dataset="${esc(d.id)}">${t("show_on_map")}</button>` : "") + "</li>").join("");
    parts.push(`<h4 data-dataset="${esc(d.id)}">${esc(state.lang === "fa" ? d.title_fa : d.title)}</h4><p class="hint">${t("taken")} ${when(s.taken_at)} · ${fmt(s.features, 0)} ${t("features")}</p><ul class="files">${files}</ul>`);
  }
  for (const [granularity, c] of Object.entries(index.changes)) {
    const last = c.files[0];
    if (last) parts.push(`<h4>${t("change_files")} (${esc(granularity)})</h4><p class="hint">${t("latest_file")}: ${fmt(last.sequence, 0)} · ${when(last.made_at)} · ${fmt(last.changes, 0)}</p>`);
  }
  return parts.join("");
}
async function placeDownloads(place) {
  const m = CODE.exec(place);
  if (!m || !m[1]) throw new Error(t("dl_hint"));
  const agency = m[1].toLowerCase(), code = m[2].replace(/[\s-]/g, "");
  const unit = await api(`/divisions/${agency}/${encodeURIComponent(code)}`);
  const filter = `${unit.level === "village" ? "village" : "within"}=${agency}:${encodeURIComponent(unit.code)}`;
  const parts = [`<h3>${esc(unit.name)} <span class="hint">${esc(unit.level)} · <span class="ltr">${esc(agency)}:${esc(unit.code)}</span></span></h3>`];
  for (const [collection, label] of [["parcels", "parcels_of"], ["guide_plans", "zones_of"]]) {
    const page = await api(`/collections/${collection}/items?${filter}&limit=1`);
    const n = page.numberMatched ?? page.numberReturned;
    const buttons = FILE_FORMATS.map(([f, name]) => `<button data-href="/collections/${collection}/items?${filter}&f=${f}" data-name="${collection}-${esc(unit.code)}.${f === "json" ? "geojson" : f}">${name}</button>`).join(" ");
    parts.push(`<h4 data-collection="${collection}">${t(label)} <span class="hint" data-count="${n}">${fmt(n, 0)} ${t("features")}</span></h4><p>${n ? buttons : t("none")}</p>`);
  }
  return parts.join("");
}
async function download(href, name) {
  const r = await fetch(href, { headers: { Authorization: `Bearer ${key()}` } });
  if (!r.ok) throw new Error(r.statusText);
  saveFile(await r.blob(), fileName(r, name));
}
// A snapshot's PMTiles on the map: read by range requests, no tile server.
async function showArchive(dataset, href) {
  if (!state.pmtiles) { state.pmtiles = new pmtiles.Protocol(); maplibregl.addProtocol("pmtiles", state.pmtiles.tile); }
  const archive = new pmtiles.PMTiles(new pmtiles.FetchSource(href, new Headers({ Authorization: `Bearer ${key()}` })));
  state.pmtiles.add(archive);
  const header = await archive.getHeader();
  showTab("map");
  const map = state.map, id = `archive-${dataset}`;
  for (const layer of [`${id}-fill`, `${id}-line`]) if (map.getLayer(layer)) map.removeLayer(layer);
  if (map.getSource(id)) map.removeSource(id);
  map.addSource(id, { type: "vector", url: `pmtiles://${href}` });
  map.addLayer({ id: `${id}-fill`, type: "fill", source: id, "source-layer": dataset, paint: { "fill-color": "#7e57c2", "fill-opacity": 0.35 } });
  map.addLayer({ id: `${id}-line`, type: "line", source: id, "source-layer": dataset, paint: { "line-color": "#4527a0", "line-width": 1 } });
  window.tagsimArchive = id; // for the end-to-end tests
  map.jumpTo({ center: [header.centerLon, header.centerLat], zoom: header.centerZoom }); // (a feature of it)
}

// -- wiring --------------------------------------------------------------------------------
function showTab(name) {
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((s) => { s.hidden = s.id !== `tab-${name}`; });
  state.tab = name;
  if (name === "review") loadReview();
  if (name === "changes") loadChanges();
  if (name === "downloads") loadDownloads();
  if (name === "map" && state.map) state.map.resize();
}

document.addEventListener("DOMContentLoaded", () => {
  applyLanguage();
  $("#lang").onclick = () => { state.lang = state.lang === "fa" ? "en" : "fa"; localStorage.setItem("tagsim-lang", state.lang); applyLanguage(); };
  $("#signin-form").onsubmit = (e) => { e.preventDefault(); signIn($("#key").value.trim()); };
  $("#signout").onclick = signOut;
  document.querySelectorAll("#tabs button").forEach((b) => { b.onclick = () => showTab(b.dataset.tab); });
  $("#search").oninput = (e) => search(e.target.value);
  $("#draw").onclick = () => { state.drawing = true; state.ring = []; setPlot([]); };
  $("#draw-done").onclick = () => { state.drawing = false; askCoverage({ type: "Polygon", coordinates: [[...state.ring, state.ring[0]]] }); };
  $("#draw-clear").onclick = () => { state.drawing = false; state.ring = []; setPlot([]); state.map.setFilter("parcels-hit", ["in", ["id"], ["literal", []]]); $("#coverage-result").innerHTML = ""; };
  $("#plate-go").onclick = askPlate;
  $("#plot-go").onclick = () => { try { askCoverage(JSON.parse($("#plot-geojson").value)); } catch (e) { $("#coverage-result").innerHTML = `<p class="error">${esc(e.message)}</p>`; } };
  $("#upload-form").onsubmit = sendUpload;
  $("#upload-publish").onclick = () => publishUpload();
  $("#review-confirm").onclick = () => decide("confirm");
  $("#review-reject").onclick = () => decide("reject");
  $("#review-next").onclick = () => { state.index = Math.min(state.index + 1, state.review.length - 1); renderReview(); };
  $("#review-others").onclick = otherCandidates;
  $("#changes-go").onclick = loadChanges;
  $("#dl-go").onclick = loadDownloads;
  $("#match-file").onchange = (e) => readHeaders(e.target.files[0]);
  $("#match-form").onsubmit = sendMatch;
  $("#convert-form").onsubmit = sendConvert;
  $("#search-at").oninput = () => search($("#search").value);
  document.addEventListener("keydown", (e) => {
    if (state.tab !== "review" || e.target.matches("input, textarea, select")) return;
    if (e.key === "c") decide("confirm");
    else if (e.key === "r") decide("reject");
    else if (e.key === "j") { state.index = Math.min(state.index + 1, state.review.length - 1); renderReview(); }
    else if (e.key === "k") { state.index = Math.max(state.index - 1, 0); renderReview(); }
    else if (e.key === "o") otherCandidates();
    else if (/^[1-5]$/.test(e.key) && state.candidates?.[+e.key - 1]) decide("link", state.candidates[+e.key - 1].code);
  });
  state.tab = "map";
  if (key()) signIn(key()); else $("#signin").hidden = false;
});
