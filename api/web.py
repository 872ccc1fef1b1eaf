"""The web page (`/` for browsers): plain HTML, CSS and JavaScript in ``api/web/static``, and
the front-end libraries npm installed into ``api/web/node_modules`` at set-up time (MapLibre
GL JS, the PMTiles reader, the Vazirmatn font), served from here: nothing comes from a CDN
at run time.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, request, send_from_directory

from api.endpoints import declare

HERE = Path(__file__).resolve().parent / "web"
MODULES = HERE / "node_modules"
VENDOR = {
    "maplibre-gl.js": "maplibre-gl/dist/maplibre-gl-csp.js",
    "maplibre-gl-worker.js": "maplibre-gl/dist/maplibre-gl-csp-worker.js",
    "maplibre-gl.css": "maplibre-gl/dist/maplibre-gl.css",
    "pmtiles.js": "pmtiles/dist/pmtiles.js",
    "Vazirmatn-Regular.woff2": "vazirmatn/fonts/webfonts/Vazirmatn-Regular.woff2",
    "Vazirmatn-Bold.woff2": "vazirmatn/fonts/webfonts/Vazirmatn-Bold.woff2",
}
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; worker-src 'self' blob:;"
    " connect-src 'self'; style-src 'self'; font-src 'self'; frame-ancestors 'none'"
)

bp = Blueprint("web", __name__, static_folder=str(HERE / "static"), static_url_path="/assets")


def wants_page() -> bool:
    """A browser asking for a page (HTML before JSON), not a client asking for the landing
    document (``f=json`` or JSON first)."""
    if request.args.get("f") in {"json", "application/json"}:
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes["text/html"] > 0


def web_page() -> Response:
    response = send_from_directory(HERE / "static", "index.html", max_age=0)
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/assets/vendor/<name>")
@declare(public=True)
def vendor(name: str) -> Response:
    """A front-end library file installed by npm (``make run`` installs them)."""
    path = VENDOR.get(name)
    if path is None:
        abort(404)
    if not (MODULES / path).exists():
        abort(404, description="front-end libraries missing: run `make run` (npm ci in api/web)")
    return send_from_directory(MODULES, path, max_age=3600)
