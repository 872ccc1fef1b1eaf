"""Registry: importing an SCI-size list; resolving 100,000 codes in one request."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import psycopg
from sqlalchemy import text

from bench.datasets import SAMPLE, sci_file, world
from bench.harness import Outcome, pair
from geo.geodata.registry import import_edition
from geo.platform.database import Database


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def import_case(url: str, rows: int, rounds: int) -> Outcome:
    raw = sci_file(rows)
    n_rows = raw.count(b"\n") - 1

    def reset() -> None:
        with Database(url).begin() as c:
            c.execute(text("DELETE FROM edition WHERE agency = 'sci'"))
            c.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS bench_raw (c1 text, c2 text, c3 text,"
                    " c4 text, c5 text, c6 text, c7 text, c8 text, c9 text, c10 text,"
                    " c11 text, c12 text)"
                )
            )
            c.execute(text("TRUNCATE bench_raw"))

    def ours() -> None:
        import_edition(Database(url), "sci", "bench", raw)

    def raw_copy() -> None:
        with (
            psycopg.connect(_libpq(url)) as conn,
            conn.cursor().copy("COPY bench_raw FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
        ):
            copy.write(raw)

    return pair(
        "registry import (SCI layout)",
        ("import_edition", ours),
        ("raw COPY", raw_copy),
        rounds,
        size={"rows": n_rows},
        setup=reset,
        note="ours parses, validates, folds names, builds ancestors, stores, "
        "ANALYZEs and diffs against the previous edition; the baseline only "
        "COPYs the bytes into an untyped table",
    )


def resolve_case(url: str, n_codes: int, rounds: int) -> Outcome:
    from api import create_app

    moi = (SAMPLE / "moi_divisions_1401-08-25.csv").read_bytes()
    import_edition(Database(url), "moi", "bench", moi)
    with Database(url).connect() as c:
        codes = list(
            c.execute(
                text(
                    "SELECT code FROM division d JOIN edition e ON e.id = d.edition_id"
                    " WHERE e.agency = 'moi'"
                )
            ).scalars()
        )
        edition_id = c.execute(text("SELECT id FROM edition WHERE agency = 'moi'")).scalar_one()
    asked = (codes * (n_codes // len(codes) + 1))[:n_codes]
    from geo.access.control import create_key

    with Database(url).begin() as c:
        key = create_key(c, "moi", "reader", "bench")["key"]
    client = create_app({"DATABASE_URL": url, "RATE_LIMIT": "1000000 per minute"}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    body = {"agency": "moi", "codes": asked}

    def ours() -> None:
        r = client.post("/resolve", json=body)
        # (checked without decoding the answer: the thin side's answer is not decoded either)
        head = r.data[:2000].replace(b" ", b"")
        assert r.status_code == 200 and f'"found":{n_codes},'.encode() in head

    def thin() -> None:
        with psycopg.connect(_libpq(url)) as conn:
            rows = conn.execute(
                "SELECT q.code, d.code, d.level, d.name, d.parent_code, d.national_id"
                " FROM unnest(%s::text[]) WITH ORDINALITY AS q(code, i)"
                " LEFT JOIN division d ON d.edition_id = %s AND d.code = q.code ORDER BY q.i",
                (asked, edition_id),
            ).fetchall()
            json.dumps(rows, ensure_ascii=False)

    return pair(
        "batch resolve (HTTP, JSON)",
        ("POST /resolve", ours),
        ("thin SQL+json", thin),
        rounds,
        size={"codes": n_codes},
        note="ours: HTTP request parsing, code normalisation, national-id fallback, "
        "crosswalk partners and JSON; thin: one join and json.dumps",
    )


def lineage_cases(url: str, quick: bool, n: int, rounds: int) -> list[Outcome]:
    """In a database of its own holding the generator's lists and a crosswalk run:

    - ``POST /resolve`` with ``to_agency``: every MOI 1400 code of the world (national:
      ~68,000 distinct, repeated to ``n``) projected to SCI through MOI's events to 1401 and
      the run built there;
    - ``POST /match`` of ``n`` rows of SCI place names with their four parents' names (a
      CSV file), against a naive exact-name lookup."""
    from api import create_app
    from crosswalk import build, start_run
    from crosswalk.partners import ACCEPTED_SQL
    from data.lists import import_lists
    from geo.access.control import create_key
    from geo.platform import migrate
    from geo.platform.database import create_database, drop_database

    own = create_database(url, f"tagsim_bench_projected_{uuid.uuid4().hex[:6]}")
    try:
        migrate.upgrade(own)
        import_lists(Database(own), world(quick, maps=True))  # (the lists the serving bench caches)
        run_id = start_run(Database(own), hf=None)
        build(Database(own), run_id)
        with Database(own).begin() as c:
            codes = list(
                c.execute(
                    text(
                        "SELECT d.code FROM division d JOIN edition e ON e.id = d.edition_id"
                        " WHERE e.agency = 'moi' AND e.label = '1400-06-01' ORDER BY d.code"
                    )
                ).scalars()
            )
            key = create_key(c, "sci", "reader", "bench")["key"]
        asked = (codes * (n // len(codes) + 1))[:n]
        # (audit rows moved at once: nothing left to move once this database is dropped)
        app = create_app(
            {"DATABASE_URL": own, "RATE_LIMIT": "1000000 per minute", "AUDIT_FLUSH_S": 0}
        )
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        body = {"agency": "moi", "codes": asked, "as_of": "1400-06-01", "to_agency": "sci"}

        def ours() -> None:
            r = client.post("/resolve", json=body)
            assert r.status_code == 200 and b'"projected"' in r.data[:100_000], r.data[:300]

        def thin() -> None:  # the run's links of the codes as asked: no events, no weights
            with psycopg.connect(_libpq(own)) as conn:
                rows = conn.execute(
                    "SELECT q.code, l.sci_code, l.relation"
                    " FROM unnest(%s::text[]) WITH ORDINALITY AS q(code, i)"
                    " LEFT JOIN crosswalk_link l ON l.run_id = %s AND l.moi_code = q.code"
                    f" AND l.status IN {ACCEPTED_SQL} AND l.sci_code IS NOT NULL ORDER BY q.i",
                    (asked, run_id),
                ).fetchall()
                json.dumps(rows, ensure_ascii=False)

        projected = pair(
            "projected resolve (HTTP, JSON)",
            ("POST /resolve to_agency", ours),
            ("thin links join", thin),
            rounds,
            size={"codes": n, "distinct": len(set(asked))},
            note="ours: resolve, MOI's events 1400→1401 walked for all codes at once, the "
            "run's links through MOI, names and weights of the SCI units; thin: the run's "
            "links of the codes as asked, one join and json.dumps",
        )
        return [projected, _match_case(own, client, n, rounds)]
    finally:
        drop_database(own)


def _match_case(own: str, client: Any, n: int, rounds: int) -> Outcome:
    import geo.geodata.registry.table_jobs  # noqa: F401  (registers the job)
    from geo.platform.jobs import run_worker

    roles = ("province", "county", "district", "rural", "place")
    with Database(own).connect() as c:
        found = c.execute(
            text(
                "SELECT d.code, d.name, (SELECT json_object_agg(a.level, a.name) FROM division a"
                " WHERE a.edition_id = d.edition_id AND a.code = ANY(d.ancestors))"
                " FROM division d JOIN edition e ON e.id = d.edition_id"
                " WHERE e.agency = 'sci' AND d.level IN ('village', 'city') ORDER BY d.code"
            )
        ).all()
    rows = [[(above or {}).get(r, "") for r in roles[:-1]] + [name] for _, name, above in found]
    rows = (rows * (n // len(rows) + 1))[:n]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([list(roles), *rows])
    raw = out.getvalue().encode("utf-8")

    def ours() -> None:  # a table this big is a job: sent, run by a worker, fetched
        r = client.post("/match", data={"agency": "sci", "file": (io.BytesIO(raw), "names.csv")})
        if r.status_code == 202:
            run_worker(Database(own), wait=False)
            state = client.get(r.headers["Location"]).json
            assert state["status"] == "done", state
            r = client.get(state["links"][0]["href"])
        assert r.status_code == 200, r.data[:300]

    def naive() -> None:  # the exact names of the place and its parents, or nothing
        exact = {
            (*((above or {}).get(r, "") for r in roles[:-1]), name): code
            for code, name, above in found
        }
        table = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
        answer = io.StringIO()
        csv.writer(answer).writerows([*r, exact.get(tuple(r), "")] for r in table[1:])

    return pair(
        "match a table of names (HTTP, CSV)",
        ("POST /match", ours),
        ("naive exact-name lookup", naive),
        rounds,
        size={"rows": n, "name_columns": len(roles)},
        note="ours (over 20,000 rows: a job, run by a worker in this process, the answer "
        "fetched): headers recognised, each row's place and parents folded and scored "
        "(exact, variant, former name, ambiguous, wrong parent, not found), evidence, "
        "candidates, codes in every agency, CSV with a BOM; naive: the exact tuple of names",
    )


def run(url: str, quick: bool) -> list[Outcome]:
    return [
        import_case(url, 20_000 if quick else 105_000, 3 if quick else 5),
        resolve_case(url, 10_000 if quick else 100_000, 3 if quick else 7),
        *lineage_cases(url, quick, 10_000 if quick else 100_000, 3 if quick else 5),
    ]
