"""Matching quality on real names: the SCI 1399 geography file with its codes stripped,
matched back against SCI itself by names and hierarchy, as typed and with the noise people
add (Arabic ي/ك, lost ZWNJ, «آباد» joined or apart, a wrong county).

    .venv/bin/python -m bench.matching_quality [../shared/data/sci/sci_geography_1399.csv]

Prints, per status, how many rows got it and the share whose chosen unit is right (for
``ambiguous``: the share whose right unit is among the candidates). Uses a throwaway
database on the project's PostGIS.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import text

from geo.geodata.registry import import_edition
from geo.geodata.registry.matching import Match, Matcher
from geo.platform import migrate
from geo.platform.database import Database, create_database, database_url, drop_database

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "sci" / "sci_geography_1399.csv"
MOI = DEFAULT.parents[1] / "moi" / "moi_divisions_1401-08-25.csv"
_ROLE_OF_LEVEL = {"county": "county", "district": "district", "rural": "rural", "city": "place"}


def _typed(name: str, rng: random.Random) -> str:
    out = name.replace("ی", "ي").replace("ک", "ك") if rng.random() < 0.5 else name
    out = out.replace("\u200c", "" if rng.random() < 0.5 else " ")
    if "آباد" in out and rng.random() < 0.5:
        out = out.replace(" آباد", "آباد") if " آباد" in out else out.replace("آباد", " آباد")
    return out


def _report(label: str, rows: list[dict[str, str]], matches: list[Match], seconds: float) -> None:
    print(f"\n{label}: {len(rows):,} rows in {seconds:.1f} s")
    print("| status | rows | share | right |")
    print("|---|---|---|---|")
    by: dict[str, list[bool]] = {}
    for r, m in zip(rows, matches, strict=True):
        if m.status == "ambiguous":
            right = r["truth"] in [c["code"] for c in m.candidates]
        else:
            right = m.code == r["truth"]
        by.setdefault(m.status, []).append(right)
    for status, rights in sorted(by.items(), key=lambda kv: -len(kv[1])):
        share = len(rights) / len(rows)
        print(f"| {status} | {len(rights):,} | {share:.2%} | {sum(rights) / len(rights):.2%} |")


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not source.exists():
        sys.exit(f"{source} not found (the real SCI file lives in ../shared/data)")
    url = create_database(database_url(start=True), f"tagsim_quality_{uuid.uuid4().hex[:8]}")
    try:
        migrate.upgrade(url)
        db = Database(url)
        import_edition(db, "sci", "1399", source.read_bytes(), valid_only=True)
        with db.connect() as c:
            found = c.execute(
                text(
                    "SELECT d.code, d.name, (SELECT json_object_agg(a.level, a.name)"
                    " FROM division a WHERE a.edition_id = d.edition_id"
                    " AND a.code = ANY(d.ancestors)) FROM division d"
                    " WHERE d.level IN ('village', 'city')"
                )
            ).all()
            rows = [{"truth": code, "place": name, **(above or {})} for code, name, above in found]
            started = time.perf_counter()
            matcher = Matcher(c, "sci")
            took = time.perf_counter() - started
            print(f"edition read in {took:.1f} s ({len(matcher.units):,} units)")
            rng = random.Random(1399)
            cases = {
                "as typed in the file": rows,
                "typed the way people type": [
                    {k: v if k == "truth" else _typed(v, rng) for k, v in r.items()} for r in rows
                ],
            }
            counties = sorted({r["county"] for r in rows if r.get("county")})
            cases["a wrong county in one row of twenty"] = [
                {**r, "county": rng.choice(counties)} if rng.random() < 0.05 else r for r in rows
            ]
            for label, asked in cases.items():
                started = time.perf_counter()
                matches = matcher.match_all(asked)
                _report(label, asked, matches, time.perf_counter() - started)
            print("\nstatuses overall:", dict(Counter(m.status for m in matches)))
        if MOI.exists():
            against_moi(db)
    finally:
        drop_database(url)


def against_moi(db: Database) -> None:
    """SCI 1399's counties, districts, rural districts and cities (codes stripped) matched
    against MOI 1401 by names and parents' names; judged against the crosswalk run's
    accepted links (MOI's list has no villages; a unit without an accepted link is not
    judged)."""
    from crosswalk import build, start_run
    from crosswalk.partners import ACCEPTED_SQL
    from geo.geodata.dates import parse_date

    import_edition(
        db, "moi", "1401-08-25", MOI.read_bytes(), published_on=parse_date("1401-08-25"),
        valid_only=True,
    )  # fmt: skip
    run_id = start_run(db, hf=None)
    started = time.perf_counter()
    build(db, run_id)
    print(f"\ncrosswalk run MOI 1401 ↔ SCI 1399 built in {time.perf_counter() - started:.1f} s")
    with db.connect() as c:
        linked: dict[str, set[str]] = {}
        for sci, moi in c.execute(
            text(
                "SELECT sci_code, moi_code FROM crosswalk_link WHERE run_id = :r"
                f" AND status IN {ACCEPTED_SQL} AND sci_code IS NOT NULL AND moi_code IS NOT NULL"
            ),
            {"r": run_id},
        ):
            linked.setdefault(sci, set()).add(moi)
        found = c.execute(
            text(
                "SELECT d.code, d.level, d.name, (SELECT json_object_agg(a.level, a.name)"
                " FROM division a WHERE a.edition_id = d.edition_id"
                " AND a.code = ANY(d.ancestors)) FROM division d JOIN edition e"
                " ON e.id = d.edition_id WHERE e.agency = 'sci'"
                " AND d.level IN ('county', 'district', 'rural', 'city')"
            )
        ).all()
        matcher = Matcher(c, "moi")
        wrong: list[str] = []
        print("| level | status | rows | share | right (of judged) | not judged |")
        print("|---|---|---|---|---|---|")
        for level in ("county", "district", "rural", "city"):
            rows = [
                {**(above or {}), _ROLE_OF_LEVEL[level]: name, "truth": code}
                for code, lv, name, above in found
                if lv == level
            ]
            rows = [
                {k: v for k, v in r.items() if k in (*_ROLE_OF_LEVEL.values(), "province", "truth")}
                for r in rows
            ]
            by: dict[str, list[bool | None]] = {}
            for r, m in zip(rows, matcher.match_all(rows), strict=True):
                truth = linked.get(r["truth"])
                if truth is None:
                    right = None
                elif m.status == "ambiguous":
                    right = bool(truth & {c["code"] for c in m.candidates})
                else:
                    right = m.code in truth
                by.setdefault(m.status, []).append(right)
                if right is False and m.status != "not_found":
                    asked = " / ".join(
                        r.get(k, "") for k in ("province", "county", "district", "rural", "place")
                    )
                    wrong.append(
                        f"{level} {m.status}: {asked} → {m.code} {m.name};"
                        f" linked {sorted(truth or [])} ({m.evidence})"
                    )
            for status, rights in sorted(by.items(), key=lambda kv: -len(kv[1])):
                judged = [x for x in rights if x is not None]
                share = f"{sum(judged) / len(judged):.2%}" if judged else "–"
                print(
                    f"| {level} | {status} | {len(rights):,} | {len(rights) / len(rows):.2%}"
                    f" | {share} | {len(rights) - len(judged):,} |"
                )
        print("\nchosen or offered, and not the unit the crosswalk links:")
        for line in wrong:
            print("  " + line)


if __name__ == "__main__":
    main()
