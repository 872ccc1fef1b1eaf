"""A real HTTP server on 127.0.0.1 (a free port) running the app, for clients that are not
Python test clients: GDAL, OWSLib, browsers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server

from api import create_app


@contextmanager
def live_server(url: str, seen: list[str] | None = None, **config: Any) -> Iterator[str]:
    """Serve the app on ``url``'s database; yields the base URL. Each request's path and
    query string is appended to ``seen`` when given (what a client really asked)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app: Any = create_app({"DATABASE_URL": url, **config})
    if seen is not None:
        wsgi = app.wsgi_app

        def recording(environ: dict[str, Any], start_response: Any) -> Any:
            query = environ.get("QUERY_STRING", "")
            seen.append(environ.get("PATH_INFO", "") + ("?" + query if query else ""))
            return wsgi(environ, start_response)

        app.wsgi_app = recording
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
