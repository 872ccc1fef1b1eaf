"""Command line of the generator: ``python -m data.generator --help``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from data.generator import SIZES, generate
from geo.errors import GeoError


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m data.generator",
        description="Generate realistic agency lists, parcel maps and plates with ground truth.",
    )
    parser.add_argument("--size", choices=list(SIZES), default="sample")
    parser.add_argument("--seed", type=int, default=1401)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--source", type=Path, help="folder like ../shared/data (full SCI file)")
    parser.add_argument("--lists-only", action="store_true", help="no parcel maps or plates")
    parser.add_argument(
        "--national-file-only",
        action="store_true",
        help="parcel maps only in truth/parcels.gpkg, no per-village files",
    )
    args = parser.parse_args()
    try:
        manifest = generate(
            args.out,
            args.size,
            args.seed,
            args.source,
            echo=lambda m: print(m, file=sys.stderr),
            maps=not args.lists_only,
            map_files=not args.national_file_only,
        )
    except GeoError as exc:
        sys.exit(f"generator: error [{exc.code}]: {exc.message}")
    print(json.dumps(manifest["counts"], ensure_ascii=False))


if __name__ == "__main__":
    main()
