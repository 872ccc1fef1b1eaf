"""Registry: importing an SCI-size list; resolving 100,000 codes in one request."""

from __future__ import annotations

import json

import psycopg
from sqlalchemy import text

from bench.datasets import SAMPLE, sci_file
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


def run(url: str, quick: bool) -> list[Outcome]:
    return [
        import_case(url, 20_000 if quick else 105_000, 3 if quick else 5),
        resolve_case(url, 10_000 if quick else 100_000, 3 if quick else 7),
    ]
