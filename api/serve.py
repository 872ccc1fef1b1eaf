"""Serve the app with gunicorn (a production WSGI server), configured from code."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from api.app import create_app

        return create_app()


def _run(bind: str, workers: int, threads: int, timeout: int) -> None:
    _Gunicorn(
        {
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": timeout,
            "accesslog": "-",
            "errorlog": "-",
            "proc_name": "tagsim",
        }
    ).run()


def serve(host: str, port: int, workers: int, threads: int = 4, timeout: int = 120) -> None:
    """Run gunicorn in the foreground until stopped; each worker builds its own app."""
    _run(f"{host}:{port}", workers, threads, timeout)


def serve_unix(socket: str, workers: int, threads: int = 4, timeout: int = 120) -> None:
    """gunicorn on a Unix socket, behind the front (:mod:`api.front`)."""
    _run(f"unix:{socket}", workers, threads, timeout)
