"""The HTTP service (Flask) and the command line: thin doors onto `geo` and `crosswalk`.

``create_app`` is imported on first use, so that the command line (``api.cli``) does not
load the whole web application to print its help."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from api.app import create_app

        return create_app
    raise AttributeError(f"module 'api' has no attribute {name!r}")
