"""Every schemathesis check, both generation modes, against GET /api on a throwaway database:
how many operation×mode pairs fail, by kind, and an example of each (issue 22, finding 15).

    .venv/bin/python scripts/schema_probe.py [examples.json]

Slower and stricter than tests/test_openapi.py; once it reports no real failure its checks
and the negative mode move into that test. A negative run of an operation with nothing to
mutate reports "Unable to satisfy assumptions": not a failure of ours.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

import schemathesis
import schemathesis.checks as checks
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from api import create_app
from crosswalk.partners import CROSSWALK
from geo.access.control import create_key
from geo.geodata.registry.partners import install_partners
from geo.platform import migrate
from geo.platform.database import Database, create_database, database_url, drop_database

ROOT = Path(__file__).resolve().parents[1]
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    checks.positive_data_acceptance,
    checks.missing_required_header,
    checks.unsupported_method,
    checks.allow_header_conformance,
]


def main(out: str = "schema_examples.json") -> None:
    # the throwaway database's audit rows: moved at once, kept nowhere after it is dropped
    os.environ.setdefault("TAGSIM_AUDIT_DIR", tempfile.mkdtemp(prefix="tagsim-probe-audit-"))
    os.environ.setdefault("TAGSIM_AUDIT_FLUSH_S", "0")
    install_partners(CROSSWALK)
    server = database_url(start=True)
    url = create_database(server, f"tagsim_schema_probe_{uuid.uuid4().hex[:8]}")
    try:
        migrate.upgrade(url)
        with Database(url).begin() as conn:
            key = create_key(conn, "moi", "admin", "schema probe")["key"]
        app = create_app(
            {
                "DATABASE_URL": url,
                "RATE_LIMIT": "1000000 per minute",
                "AUTH_FAILURE_LIMIT": "1000000 per minute",
            }
        )
        config = SchemathesisConfig.from_path(ROOT / "schemathesis.toml")  # the 422 rule
        schema = schemathesis.openapi.from_wsgi("/api", app, config=config)
        kinds: collections.Counter[str] = collections.Counter()
        examples: dict[str, str] = {}
        operations = [r.ok() for r in schema.get_all_operations()]
        for op in operations:
            if op.method.upper() == "DELETE":  # revoking keys at random would end the run
                continue
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @settings(
                    max_examples=10,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=op.as_strategy(generation_mode=mode))
                def run(case):  # type: ignore[no-untyped-def]
                    headers = {"Authorization": f"Bearer {key}"}
                    meta = case.meta
                    if meta is not None and not meta.generation.mode.is_positive:
                        header = meta.components.get(ParameterLocation.HEADER)
                        if header is not None and not header.mode.is_positive:
                            headers = {}  # the mutation is the headers: do not mend it
                    case.call_and_validate(headers=headers, checks=CHECKS)

                try:
                    run()
                except BaseException as exc:  # a failure report: count it, keep one
                    text = str(exc)
                    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("- ")]
                    for kind in set(lines or [text.splitlines()[0][:120]]):
                        kinds[kind[:100]] += 1
                    examples.setdefault(f"{op.method.upper()} {op.path} {mode.value}", text[:2000])
        print(f"{len(examples)} operation×mode pairs failing of {2 * len(operations)}")
        for kind, n in kinds.most_common():
            print(n, kind)
        with open(out, "w", encoding="utf-8") as f:
            json.dump(examples, f, ensure_ascii=False, indent=1)
    finally:
        drop_database(url)


if __name__ == "__main__":
    main(*sys.argv[1:])
