"""``python -m bench [--quick] [--only CASE]``: run the suite, print ratios, write results.

Uses its own throwaway database on the project's PostGIS (started if needed), or on
``TAGSIM_DATABASE_URL``'s server. Results: ``bench/results/<mode>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
import uuid

from bench import harness
from bench.cases import crosswalk, feed, filters, parcels, registry, replica, serving, snapshots
from crosswalk.partners import CROSSWALK
from geo.geodata.registry.partners import install_partners
from geo.platform import migrate
from geo.platform.database import create_database, database_url, drop_database

CASES = {
    "registry": registry.run,
    "crosswalk": crosswalk.run,
    "parcels": parcels.run,
    "serving": serving.run,
    "filters": filters.run,
    "feed": feed.run,
    "replica": replica.run,
    "snapshots": snapshots.run,
}


def main() -> None:
    install_partners(CROSSWALK)  # as the app and the command line do
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, a few rounds (CI)")
    parser.add_argument("--only", choices=sorted(CASES), action="append")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    outcomes = []
    for name in args.only or sorted(CASES):
        url = create_database(database_url(start=True), f"tagsim_bench_{uuid.uuid4().hex[:8]}")
        try:
            migrate.upgrade(url)
            print(f"== {name} ({mode})", flush=True)
            outcomes += CASES[name](url, args.quick)
        finally:
            drop_database(url)
    md = harness.write(outcomes, mode)
    print(f"results: {md} and {md.with_suffix('.json')}", file=sys.stderr)


if __name__ == "__main__":
    main()
