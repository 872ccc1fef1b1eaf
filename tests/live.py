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
def live_server(url: str, **config: Any) -> Iterator[str]:
    """Serve the app on ``url``'s database; yields the base URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, create_app({"DATABASE_URL": url, **config}), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
