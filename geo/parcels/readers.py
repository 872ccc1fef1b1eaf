"""Read an upload: a zipped shapefile, a GeoPackage or GeoJSON, safely, into data frames.

Zips are checked before anything is extracted: no absolute paths or ``..``, no more than
``MAX_ENTRIES`` entries, no more than ``MAX_EXPANDED`` bytes once expanded, and each
shapefile complete (.shp, .shx, .dbf). DBF text follows the ``.cpg`` when present;
otherwise it is UTF-8 when it decodes as such, else Windows-1256.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import geopandas as gpd
import pyogrio

from geo.parcels.errors import UploadRejected

__all__ = ["MAX_ENTRIES", "MAX_EXPANDED", "Layers", "detect_format", "read_upload"]

MAX_EXPANDED = 2 * 1024**3
MAX_ENTRIES = 500
CPG = {
    "utf-8": "UTF-8",
    "utf8": "UTF-8",
    "65001": "UTF-8",
    "1256": "CP1256",
    "cp1256": "CP1256",
    "windows-1256": "CP1256",
    "arabic": "CP1256",
}


@dataclass
class Layers:
    """What the file holds: parcels, the plan zone if given, and how it was read."""

    format: str
    parcels: gpd.GeoDataFrame
    zone: gpd.GeoDataFrame | None
    prj: bool
    encoding: str | None
    notes: list[str] = field(default_factory=list)


def detect_format(raw: bytes, name: str = "") -> str:
    if not raw:
        raise UploadRejected("the file is empty", code="empty_file")
    if raw[:4] in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip (the second: an empty one)
        return "zip"
    if raw[:16] == b"SQLite format 3\x00":
        return "gpkg"
    head = raw[:2048].lstrip().lower()
    if head.startswith(b"{") and b"type" in head:
        return "geojson"
    raise UploadRejected(
        f"unknown format{f' of {name}' if name else ''}: send a zipped shapefile, a "
        "GeoPackage or GeoJSON",
        code="unknown_format",
    )


def _safe_members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
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
        if total > MAX_EXPANDED:
            raise UploadRejected("the zip expands past the size limit", code="zip_too_large")
    return infos


def _dbf_encoding(dbf: bytes, cpg: bytes | None) -> str:
    if cpg:
        word = cpg.decode("ascii", errors="ignore").strip().lower()
        if word in CPG:
            return CPG[word]
    header_len = int.from_bytes(dbf[8:10], "little") if len(dbf) > 10 else 0
    body = dbf[header_len:]
    try:
        body.decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError:
        return "CP1256"


def _read_zip(raw: bytes, workdir: Path) -> Layers:
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        infos = _safe_members(zf)
        files = {PurePosixPath(i.filename).name.lower(): zf.read(i) for i in infos}
    except zipfile.BadZipFile:
        raise UploadRejected("the zip is corrupt", code="corrupt_zip") from None
    stems = sorted({name[:-4] for name in files if name.endswith(".shp")})
    if not stems:
        raise UploadRejected("the zip holds no shapefile (.shp)", code="no_shapefile")
    for stem in stems:
        missing = [ext for ext in (".shx", ".dbf") if stem + ext not in files]
        if missing:
            raise UploadRejected(
                f"shapefile {stem}.shp lacks {' and '.join(missing)}", code="incomplete_shapefile"
            )
    frames: dict[str, gpd.GeoDataFrame] = {}
    encodings, prj = set(), True
    for stem in stems:
        for ext in (".shp", ".shx", ".dbf", ".prj"):
            if stem + ext in files:
                (workdir / (stem + ext)).write_bytes(files[stem + ext])
        encoding = _dbf_encoding(files[stem + ".dbf"], files.get(stem + ".cpg"))
        encodings.add(encoding)
        prj = prj and stem + ".prj" in files
        try:
            frames[stem] = pyogrio.read_dataframe(workdir / (stem + ".shp"), encoding=encoding)
        except Exception as exc:
            raise UploadRejected(
                f"shapefile {stem} cannot be read: {type(exc).__name__}", code="unreadable_file"
            ) from None
    parcels, zone = _pick(frames)
    return Layers("shapefile", parcels, zone, prj, "/".join(sorted(encodings)))


def _pick(frames: dict[str, gpd.GeoDataFrame]) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    """The parcels layer (the largest, or named like parcels) and the zone (named like it)."""
    zone_names = ("zone", "arse", "arseh", "mahdoode", "mahdoodeh", "boundary", "پهنه", "عرصه")
    zone = next((f for n, f in frames.items() if any(z in n.lower() for z in zone_names)), None)
    rest = {n: f for n, f in frames.items() if f is not zone}
    if not rest:
        raise UploadRejected("no parcel layer found", code="no_parcels")
    parcels = max(rest.values(), key=len)
    return parcels, zone


def _read_gpkg(raw: bytes, workdir: Path) -> Layers:
    path = workdir / "upload.gpkg"
    path.write_bytes(raw)
    try:
        names = [name for name, _ in pyogrio.list_layers(path)]
        frames = {n: pyogrio.read_dataframe(path, layer=n) for n in names}
    except Exception as exc:
        raise UploadRejected(
            f"the GeoPackage cannot be read: {type(exc).__name__}", code="unreadable_file"
        ) from None
    parcels, zone = _pick(frames)
    return Layers("gpkg", parcels, zone, parcels.crs is not None, "UTF-8")


def _read_geojson(raw: bytes, workdir: Path) -> Layers:
    path = workdir / "upload.geojson"
    path.write_bytes(raw)
    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as exc:
        raise UploadRejected(
            f"the GeoJSON cannot be read: {type(exc).__name__}", code="unreadable_file"
        ) from None
    return Layers("geojson", frame, None, True, "UTF-8")


def read_upload(raw: bytes, name: str = "") -> Layers:
    """The layers of an uploaded file, or ``UploadRejected`` with a stable code."""
    fmt = detect_format(raw, name)
    with tempfile.TemporaryDirectory(prefix="tagsim-upload-") as tmp:
        layers = {"zip": _read_zip, "gpkg": _read_gpkg, "geojson": _read_geojson}[fmt](
            raw, Path(tmp)
        )
    if layers.parcels.empty:
        raise UploadRejected("the parcel layer has no features", code="no_parcels")
    return layers
