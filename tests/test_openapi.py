"""schemathesis against `/api` with a valid admin key: no 5xx, answers match the schema.

(schemathesis's pytest plugin does not run under pytest 9 yet, so the operations are driven
here with hypothesis directly.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    missing_required_header,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from schemathesis.config import SchemathesisConfig

from api import create_app
from api.auth import journal
from geo.access.control import create_key
from geo.platform.database import Database

# No 5xx; status codes, content types, headers and bodies as documented; methods not offered
# answer 405 with Allow; a missing required header is refused. (positive_data_acceptance and
# negative_data_rejection — with schemathesis.toml's rule that 422 is well-formed content
# that is wrong — still fail on a few operations: issue 22's note lists them.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    unsupported_method,
    allow_header_conformance,
    missing_required_header,
]


@pytest.fixture(scope="module")
def schema_and_key(module_db_url: str):  # type: ignore[no-untyped-def]
    with Database(module_db_url).begin() as conn:
        key = create_key(conn, "moi", "admin", "schemathesis")["key"]
    app = create_app({"DATABASE_URL": module_db_url, "RATE_LIMIT": "1000000 per minute"})
    config = SchemathesisConfig.from_path(Path(__file__).parents[1] / "schemathesis.toml")
    return schemathesis.openapi.from_wsgi("/api", app, config=config), key


def test_every_operation_holds_under_generated_requests(schema_and_key) -> None:  # type: ignore[no-untyped-def]
    schema, key = schema_and_key
    failures = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 25
    for op in operations:
        if op.method.upper() == "DELETE":  # revoking keys at random would end the run
            continue

        @settings(
            max_examples=10,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy())
        def run(case):  # type: ignore[no-untyped-def]
            case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)

        try:
            run()
        except BaseException as exc:
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:600]}")
    assert failures == []
    with schema.app.app_context():
        journal().flush()  # audit rows move in batches: move them now
    with Database(schema.app.config["DATABASE_URL"]).connect() as conn:
        from sqlalchemy import text

        calls = conn.execute(text("SELECT count(*) FROM audit WHERE principal_id IS NOT NULL"))
        assert calls.scalar_one() >= 5 * len(operations)  # the requests really ran
