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
