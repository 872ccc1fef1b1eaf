"""schemathesis against `/api` with a valid admin key: every check, in both generation modes.

Positive mode sends requests the document allows: none may be refused as malformed (400),
none may fail (5xx), and every answer must match the document (status, content type,
headers, body). Negative mode sends requests the document forbids: each must be refused.
Methods not offered answer 405 with ``Allow``; a missing required header is refused.
``schemathesis.toml`` carries the rule that a schema-valid request whose content is wrong is
422 (issue 22, finding 15).

A deeper run than the suite's (more requests, another draw):

    TAGSIM_SCHEMA_EXAMPLES=150 TAGSIM_SCHEMA_SEED=3 make test PYTEST_ARGS=tests/test_openapi.py

(schemathesis's pytest plugin does not run under pytest 9 yet, so the operations are driven
here with hypothesis directly.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from sqlalchemy import text

from api import create_app
from api.auth import journal
from geo.access.control import create_key
from geo.platform.database import Database

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    positive_data_acceptance,
    negative_data_rejection,
    unsupported_method,
    allow_header_conformance,
    missing_required_header,
]
EXAMPLES = int(os.environ.get("TAGSIM_SCHEMA_EXAMPLES", "10"))  # per operation and mode
DRAW = os.environ.get("TAGSIM_SCHEMA_SEED")  # unset: the same requests on every run


@pytest.fixture(scope="module")
def schema_and_key(module_db_url: str):  # type: ignore[no-untyped-def]
    with Database(module_db_url).begin() as conn:
        key = create_key(conn, "moi", "admin", "schemathesis")["key"]
    app = create_app(
        {
            "DATABASE_URL": module_db_url,
            "RATE_LIMIT": "1000000 per minute",
            "AUTH_FAILURE_LIMIT": "1000000 per minute",  # negative headers fail auth on purpose
        }
    )
    config = SchemathesisConfig.from_path(Path(__file__).parents[1] / "schemathesis.toml")
    return schemathesis.openapi.from_wsgi("/api", app, config=config), key


def _headers(case, key: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The admin key, unless the case's mutation is its headers (then it stays unmended)."""
    meta = case.meta
    if meta is not None and not meta.generation.mode.is_positive:
        header = meta.components.get(ParameterLocation.HEADER)
        if header is not None and not header.mode.is_positive:
            return {}
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_holds_under_generated_requests(schema_and_key, mode) -> None:  # type: ignore[no-untyped-def]
    schema, key = schema_and_key
    failures, nothing_to_mutate = [], []
    audited_before = _audited(schema)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 25
    for op in operations:
        if op.method.upper() == "DELETE":  # revoking keys at random would end the run
            continue

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=DRAW is None,
            suppress_health_check=list(HealthCheck),
        )
        @seed(int(DRAW or 0))
        @given(case=op.as_strategy(generation_mode=mode))
        def run(case):  # type: ignore[no-untyped-def]
            case.call_and_validate(headers=_headers(case, key), checks=CHECKS)

        try:
            run()
        except Unsatisfiable:  # negative mode, and no parameter or body to break
            nothing_to_mutate.append(f"{op.method.upper()} {op.path}")
        except BaseException as exc:
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:1500]}")
    assert failures == [], "\n\n".join(failures)
    if mode == GenerationMode.POSITIVE:
        assert nothing_to_mutate == []
    else:  # the operations without parameters: the landing page, metadata, TileJSON, assets
        assert len(nothing_to_mutate) < len(operations) / 2, nothing_to_mutate
    # the requests really ran (negative ones are mostly refused before they reach a service)
    ran = _audited(schema) - audited_before
    assert ran >= (5 if mode == GenerationMode.POSITIVE else 1) * len(operations), ran


def _audited(schema) -> int:  # type: ignore[no-untyped-def]
    """Audited requests made with a key, so far."""
    with schema.app.app_context():
        journal().flush()  # audit rows move in batches: move them now
    with Database(schema.app.config["DATABASE_URL"]).connect() as conn:
        calls = conn.execute(text("SELECT count(*) FROM audit WHERE principal_id IS NOT NULL"))
        return int(calls.scalar_one())
