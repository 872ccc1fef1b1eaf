"""Open an upload: a zipped shapefile, a GeoPackage or GeoJSON, safely, as streamable layers.

Nothing is read whole into memory: a layer is described first (fields, count, CRS, bounds,
from the file's header) and its features are then read in Arrow batches
(:meth:`LayerSource.batches`). Zips are checked before anything is extracted: no absolute
paths or ``..``, no more than ``MAX_ENTRIES`` entries, no more than ``MAX_EXPANDED`` bytes
once expanded, and each shapefile complete (.shp, .shx, .dbf); members are extracted in
chunks, counting real bytes. Past ``RATIO_FLOOR`` bytes, a zip may expand at most
``MAX_RATIO`` times its own size (``zip_bomb``): judged first on the sizes it declares,
then on the bytes actually extracted (declared sizes can lie). Real shapefiles compress 3
to 20 times. DBF text follows the ``.cpg`` when present; otherwise it is UTF-8 when it decodes
as such, else Windows-1256.
"""

from __future__ import annotations

import codecs
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import geopandas as gpd
import pyarrow as pa
import pyogrio

from geo.geodata.parcels.errors import UploadRejected

__all__ = [
    "BATCH_SIZE",
    "MAX_ENTRIES",
    "MAX_EXPANDED",
    "MAX_RATIO",
    "LayerSource",
    "Layers",
    "bundle_shapefile",
    "detect_format",
    "open_upload",
]

MAX_EXPANDED = 2 * 1024**3
MAX_RATIO = 100
RATIO_FLOOR = 64 * 1024**2
MAX_ENTRIES = 500
# Features read per batch. 10,000 (was 50,000) keeps an ingest of 1 M tiled parcels at
# 0.54-0.57 GB peak RSS instead of 0.63-0.71, at the same speed (session 13, measured on
# the bench's tiling shapefile and GeoPackage).
BATCH_SIZE = 10_000
CPG = {
    "utf-8": "UTF-8",
    "utf8": "UTF-8",
    "65001": "UTF-8",
    "1256": "CP1256",
    "cp1256": "CP1256",
    "windows-1256": "CP1256",
    "arabic": "CP1256",
}
_CHUNK = 1 << 20


def _unreadable(what: str, exc: Exception) -> UploadRejected:
    return UploadRejected(f"{what} cannot be read: {type(exc).__name__}", code="unreadable_file")


@dataclass
class LayerSource:
    """One layer of the file: what its header says, and its features on demand."""

    path: Path
    layer: str | None
    encoding: str | None
    crs: Any
    columns: list[str]
    count: int
    bounds: tuple[float, float, float, float]
    what: str = "the file"

    def batches(self, size: int = BATCH_SIZE) -> Iterator[pa.RecordBatch]:
        """The features in Arrow batches; the geometry is the WKB column ``geometry``."""
        try:
            with pyogrio.open_arrow(
                self.path,
                layer=self.layer,
                encoding=self.encoding,
                batch_size=size,
                use_pyarrow=True,
            ) as (meta, reader):
                name = meta["geometry_name"] or "wkb_geometry"
                for batch in reader:
                    yield batch.rename_columns(
                        ["geometry" if n == name else n for n in batch.schema.names]
                    )
        except UploadRejected:
            raise
        except Exception as exc:
            raise _unreadable(self.what, exc) from None

    def frame(self) -> gpd.GeoDataFrame:
        """The whole layer as a data frame (for small layers: the plan zone)."""
        try:
            return pyogrio.read_dataframe(self.path, layer=self.layer, encoding=self.encoding)
        except Exception as exc:
            raise _unreadable(self.what, exc) from None


@dataclass
class Layers:
    """What the file holds: parcels, the plan zone if given, and how it was read."""

    format: str
    parcels: LayerSource
    zone: LayerSource | None
    prj: bool
    encoding: str | None
    notes: list[str] = field(default_factory=list)


SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
_REQUIRED_PARTS = (".shx", ".dbf")  # beside the .shp: without them it cannot be read
_SHP_MAGIC = b"\x00\x00\x27\x0a"  # a .shp's file code, 9994 big-endian


def bundle_shapefile(shp: Path, out: Path) -> Path:
    """A bare ``.shp`` and its siblings beside it (same stem, any case) as one zip at
    ``out`` (stored, not compressed: a copy), which is what an upload of a shapefile is;
    ``incomplete_shapefile`` when the ``.shx`` or ``.dbf`` is missing."""
    siblings = {p.suffix.lower(): p for p in shp.parent.glob("*") if p.stem == shp.stem}
    missing = [ext for ext in _REQUIRED_PARTS if ext not in siblings]
    if missing:
        raise UploadRejected(
            f"{shp.name} needs {' and '.join(shp.stem + ext for ext in missing)} beside it",
            code="incomplete_shapefile",
        )
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for ext in SHAPEFILE_PARTS:
            if ext in siblings:
                zf.write(siblings[ext], shp.stem + ext)
    return out


def detect_format(head: bytes, name: str = "") -> str:
    """The format from the first bytes of the file."""
    if not head:
        raise UploadRejected("the file is empty", code="empty_file")
    if head[:4] == _SHP_MAGIC:
        raise UploadRejected(
            f"{name or 'the file'} is a bare .shp: its attributes and index are in the .dbf"
            " and .shx beside it; send them zipped together (the command line does this"
            " itself when they are beside the .shp)",
            code="bare_shapefile",
        )
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip (the second: an empty one)
        return "zip"
    if head[:16] == b"SQLite format 3\x00":
        return "gpkg"
    start = head[:2048].lstrip().lower()
    if start.startswith(b"{") and b"type" in start:
        return "geojson"
    raise UploadRejected(
        f"unknown format{f' of {name}' if name else ''}: send a zipped shapefile, a "
        "GeoPackage or GeoJSON",
        code="unknown_format",
    )


def _describe(path: Path, layer: str | None, encoding: str | None, what: str) -> LayerSource:
    try:
        info = pyogrio.read_info(path, layer=layer, encoding=encoding, force_total_bounds=True)
    except Exception as exc:
        raise _unreadable(what, exc) from None
    bounds = info.get("total_bounds")
    return LayerSource(
        path,
        layer,
        encoding,
        info.get("crs"),
        [str(f) for f in info["fields"]],
        int(info["features"]),
        _box(bounds),
        what,
    )


def _expansion_budget(zip_size: int) -> int:
    """Bytes a zip of ``zip_size`` bytes may expand to."""
    return min(MAX_EXPANDED, max(RATIO_FLOOR, MAX_RATIO * zip_size))


def _too_large(budget: int) -> UploadRejected:
    if budget < MAX_EXPANDED:
        return UploadRejected(
            f"the zip expands more than {MAX_RATIO} times its size: refused as a zip bomb",
            code="zip_bomb",
        )
    return UploadRejected("the zip expands past the size limit", code="zip_too_large")


def _safe_members(zf: zipfile.ZipFile, budget: int = MAX_EXPANDED) -> list[zipfile.ZipInfo]:
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > MAX_ENTRIES:
        raise UploadRejected(
            f"the zip has {len(infos)} entries; at most {MAX_ENTRIES}", code="zip_too_many_entries"
        )
    total = 0
    for info in infos:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or info.filename.startswith(("/", "\\")):
            raise UploadRejected(
                f"unsafe path in the zip: {info.filename!r}", code="zip_unsafe_path"
            )
        total += info.file_size
        if total > budget:
            raise _too_large(budget)
    return infos


def _extract(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Path, budget: list[int], limit: int
) -> None:
    """Copy one member out in chunks, counting real bytes against the size limit (the
    sizes a zip declares can lie)."""
    with zf.open(info) as src, out.open("wb") as dst:
        while chunk := src.read(_CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise _too_large(limit)
            dst.write(chunk)


def _dbf_encoding(dbf: Path, cpg: Path | None, notes: list[str] | None = None) -> str:
    """The DBF's text encoding: the ``.cpg``'s, unless it says UTF-8 of text that is not
    (then Windows-1256, and a note ``encoding_mismatch``); without one, UTF-8 when the text
    decodes as such, else Windows-1256."""
    if cpg is not None:
        word = cpg.read_bytes()[:64].decode("ascii", errors="ignore").strip().lower()
        said = CPG.get(word)
        if said is not None and said != "UTF-8":
            return said
        if said == "UTF-8":
            if _utf8_text(dbf):
                return said
            if notes is not None:
                notes.append(
                    f"encoding_mismatch: {dbf.with_suffix('.cpg').name} says UTF-8 but the text"
                    " is not; read as Windows-1256"
                )
            return "CP1256"
    return "UTF-8" if _utf8_text(dbf) else "CP1256"


def _utf8_text(dbf: Path) -> bool:
    """Whether the DBF's records decode as UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with dbf.open("rb") as f:
        head = f.read(32)
        header_len = int.from_bytes(head[8:10], "little") if len(head) > 10 else 0
        f.seek(header_len)
        try:
            while chunk := f.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _open_zip(path: Path, workdir: Path) -> Layers:
    try:
        zf = zipfile.ZipFile(path)
        limit = _expansion_budget(path.stat().st_size)
        infos = _safe_members(zf, limit)
        by_name = {PurePosixPath(i.filename.replace("\\", "/")).name.lower(): i for i in infos}
        stems = sorted({name[:-4] for name in by_name if name.endswith(".shp")})
        if not stems:
            raise UploadRejected("the zip holds no shapefile (.shp)", code="no_shapefile")
        for stem in stems:
            missing = [ext for ext in _REQUIRED_PARTS if stem + ext not in by_name]
            if missing:
                raise UploadRejected(
                    f"shapefile {stem}.shp lacks {' and '.join(missing)}",
                    code="incomplete_shapefile",
                )
        budget = [limit]
        for stem in stems:
            for ext in SHAPEFILE_PARTS:
                if stem + ext in by_name:
                    _extract(zf, by_name[stem + ext], workdir / (stem + ext), budget, limit)
    except (zipfile.BadZipFile, EOFError, ValueError):
        raise UploadRejected("the zip is corrupt", code="corrupt_zip") from None
    sources: dict[str, LayerSource] = {}
    encodings, prj = set(), True
    notes: list[str] = []
    for stem in stems:
        cpg = workdir / (stem + ".cpg")
        encoding = _dbf_encoding(workdir / (stem + ".dbf"), cpg if cpg.exists() else None, notes)
        encodings.add(encoding)
        prj = prj and (workdir / (stem + ".prj")).exists()
        sources[stem] = _describe(workdir / (stem + ".shp"), None, encoding, f"shapefile {stem}")
    parcels, zone = _pick(sources)
    return Layers("shapefile", parcels, zone, prj, "/".join(sorted(encodings)), notes)


def _pick(sources: dict[str, LayerSource]) -> tuple[LayerSource, LayerSource | None]:
    """The parcels layer (the largest) and the zone (named like it)."""
    zone_names = ("zone", "arse", "arseh", "mahdoode", "mahdoodeh", "boundary", "پهنه", "عرصه")
    zone = next((s for n, s in sources.items() if any(z in n.lower() for z in zone_names)), None)
    rest = {n: s for n, s in sources.items() if s is not zone}
    if not rest:
        raise UploadRejected("no parcel layer found", code="no_parcels")
    return max(rest.values(), key=lambda s: s.count), zone


def _open_gpkg(path: Path, workdir: Path) -> Layers:
    try:
        names = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:
        raise _unreadable("the GeoPackage", exc) from None
    parcels, zone = _pick({n: _describe(path, n, None, "the GeoPackage") for n in names})
    return Layers("gpkg", parcels, zone, parcels.crs is not None, "UTF-8")


def _open_geojson(path: Path, workdir: Path) -> Layers:
    return Layers("geojson", _describe(path, None, None, "the GeoJSON"), None, True, "UTF-8")


def open_upload(path: Path, workdir: Path, name: str = "") -> Layers:
    """The layers of the uploaded file at ``path`` (``workdir`` receives what a zip holds
    and must outlive the reading), or ``UploadRejected`` with a stable code."""
    with path.open("rb") as f:
        head = f.read(2048)
    fmt = detect_format(head, name)
    suffix = {"gpkg": ".gpkg", "geojson": ".geojson", "zip": ".zip"}[fmt]
    if path.suffix.lower() != suffix:  # GDAL picks its driver by the name
        named = workdir / f"upload{suffix}"
        try:
            named.hardlink_to(path)
        except OSError:
            shutil.copyfile(path, named)
        path = named
    opener = {"zip": _open_zip, "gpkg": _open_gpkg, "geojson": _open_geojson}[fmt]
    layers = opener(path, workdir)
    if layers.parcels.count == 0:
        raise UploadRejected("the parcel layer has no features", code="no_parcels")
    return layers


def _box(bounds: Any) -> tuple[float, float, float, float]:
    """A layer's extent as four floats (zeros when the file does not say)."""
    if bounds is None:
        return 0.0, 0.0, 0.0, 0.0
    x0, y0, x1, y1 = (float(b) for b in bounds)
    return x0, y0, x1, y1
