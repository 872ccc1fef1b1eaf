"""The Flask door of the OGC core: the URLs it hands the core are werkzeug's own."""

from __future__ import annotations

import pytest
from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from api.ogc_adapter import urls

CASES = [
    ("/collections/parcels/items/5", {}, {}),
    ("/collections/parcels/items", {"base_url": "https://tagsim.example:8443"}, {}),
    ("/collections/parcels/items", {"base_url": "http://127.0.0.1:8000/app/"}, {}),
    ("/villages/hf/۰۱۰۲/plan-coverage", {}, {}),  # Persian digits: not plain, werkzeug's way
    ("/collections/parcels/items/a%20b", {}, {}),  # an escape: werkzeug's way
    (
        "/collections/parcels/items",
        {},
        {"X-Forwarded-Proto": "https", "X-Forwarded-For": "1.2.3.4"},
    ),
    ("/collections/parcels/items", {"base_url": "http://[::1]:8000"}, {}),
]


@pytest.mark.parametrize(("path", "context", "headers"), CASES)
def test_urls_are_werkzeugs(path: str, context: dict[str, str], headers: dict[str, str]) -> None:
    app = Flask(__name__)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]
    seen: list[tuple[tuple[str, str], tuple[str, str]]] = []

    @app.route("/<path:anything>")
    def show(anything: str) -> str:
        seen.append((urls(), (request.url_root, request.base_url)))
        seen.append((urls(), (request.url_root, request.base_url)))  # the root remembered
        return anything

    with app.test_client() as client:
        base = context.get("base_url", "http://localhost")
        assert client.get(path, base_url=base, headers=headers).status_code == 200
    assert seen and all(ours == werkzeugs for ours, werkzeugs in seen)


def test_a_client_chosen_host_is_not_kept_forever() -> None:
    app = Flask(__name__)
    roots: list[str] = []

    @app.route("/x")
    def show() -> str:
        roots.append(urls()[0])
        return ""

    with app.test_client() as client:
        for i in range(200):
            client.get("/x", headers={"Host": f"h{i}.example"})
    assert roots == [f"http://h{i}.example/" for i in range(200)]
    from api import ogc_adapter

    assert len(ogc_adapter._roots) <= ogc_adapter._ROOTS_KEPT


BODIES = [
    b'{"type": "Polygon", "coordinates": [[[51, 35], [51.1, 35], [51.1, 35.1], [51, 35]]]}',
    b'{"a": NaN, "b": Infinity}',  # Python's parser takes these; orjson does not
    b'{"name": "\\ud800"}',  # a lone surrogate
    b'{"n": 123456789012345678901234567890}',  # past 64 bits
    '\ufeff{"bom": 1}'.encode(),
    '{"utf16": 1}'.encode("utf-16"),
    b'{"dup": 1, "dup": 2}',
    b"[" * 2000 + b"]" * 2000,
    b"not json",
    b"",
    '{"نام": "آبادی ي ك"}'.encode(),
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("media", ["application/json", "text/plain"])
def test_a_json_body_reads_as_flasks_parser_reads_it(body: bytes, media: str) -> None:
    import math

    from api.params import _parsed_json

    app = Flask(__name__)
    with app.test_request_context("/", method="POST", data=body, content_type=media):
        try:
            ours: object = _parsed_json()
        except RecursionError:
            ours = "too deep"
    with app.test_request_context("/", method="POST", data=body, content_type=media):
        try:
            flasks: object = request.get_json(silent=True)
        except RecursionError:
            flasks = "too deep"
    if isinstance(ours, dict) and any(
        isinstance(v, float) and math.isnan(v) for v in ours.values()
    ):
        assert repr(ours) == repr(flasks)  # (NaN is not equal to itself)
    else:
        assert ours == flasks
