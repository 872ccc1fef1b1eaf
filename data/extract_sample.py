"""Cut the committed real sample out of the full reference data (run by hand, rarely).

    python -m data.extract_sample --shared ../shared/data --provinces 23,25

Writes ``data/sample/sci_geography_1399_<names>.csv`` (the SCI rows of those
provinces, unchanged) and ``data/sample/osm_boundaries_<names>.geojson`` (their
province and county boundaries from OpenStreetMap, simplified to about 50 m).
The MOI list is copied whole. Provenance and licences: ``data/README.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

from shapely.geometry import mapping, shape

from geo.geodata.persian import match_key

SAMPLE = Path(__file__).resolve().parent / "sample"


def _strip_county(name: str) -> str:
    return name.removeprefix("شهرستان").strip()


def extract(shared: Path, provinces: list[str], stem: str) -> None:
    """Write the sample files for the SCI province codes ``provinces``."""
    SAMPLE.mkdir(exist_ok=True)
    shutil.copy(shared / "moi" / "moi_divisions_1401-08-25.csv", SAMPLE)
    names: dict[str, str] = {}
    with (
        (shared / "sci" / "sci_geography_1399.csv").open(encoding="utf-8") as src,
        (SAMPLE / f"sci_geography_1399_{stem}.csv").open("w", encoding="utf-8", newline="") as out,
    ):
        reader = csv.reader(src)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(next(reader))
        for row in reader:
            if row[0] in provinces:
                writer.writerow(row)
                if row[10] == "1":
                    names[row[0]] = row[1]
    keys = {match_key(n): code for code, n in names.items()}
    features = []
    prov = json.loads((shared / "osm" / "iran_provinces_osm.geojson").read_text())
    shapes = {}
    for f in prov["features"]:
        code = keys.get(match_key(f["properties"]["name:fa"]))
        if code:
            geom = shape(f["geometry"]).simplify(0.0005, preserve_topology=True)
            shapes[code] = geom
            features.append(
                {
                    "type": "Feature",
                    "properties": {
                        "level": "province",
                        "sci_province": code,
                        "name": f["properties"]["name:fa"],
                        "name_en": f["properties"]["name:en"],
                    },
                    "geometry": mapping(geom),
                }
            )
    counties = json.loads((shared / "osm" / "iran_counties_osm.geojson").read_text())
    for f in counties["features"]:
        geom = shape(f["geometry"])
        inside = [c for c, p in shapes.items() if p.contains(geom.representative_point())]
        if inside:
            tags = f["properties"]["tags"]
            features.append(
                {
                    "type": "Feature",
                    "properties": {
                        "level": "county",
                        "sci_province": inside[0],
                        "name": _strip_county(tags.get("name", "")),
                        "name_en": tags.get("name:en"),
                        "wikidata": tags.get("wikidata"),
                        "osm_relation": f["properties"].get("id"),
                    },
                    "geometry": mapping(geom.simplify(0.0005, preserve_topology=True)),
                }
            )
    out_path = SAMPLE / f"osm_boundaries_{stem}.geojson"
    out_path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, required=True)
    parser.add_argument("--provinces", default="23,25")
    parser.add_argument("--stem", default="tehran_qom")
    args = parser.parse_args()
    extract(args.shared, args.provinces.split(","), args.stem)


if __name__ == "__main__":
    main()
