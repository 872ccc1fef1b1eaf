"""The HTTP service (Flask) and the command line: thin doors onto `geo` and `crosswalk`."""

from api.app import create_app

__all__ = ["create_app"]
