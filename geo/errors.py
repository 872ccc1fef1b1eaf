"""Typed errors of the geo layer, each with a stable machine code.

`api/errors.py` maps them to HTTP statuses and problem responses in one place (the
domain knows nothing of HTTP); the command line prints ``code: message``. Codes never
change once released: clients match on them, and each code means one status.
"""

from __future__ import annotations

__all__ = [
    "ClusterError",
    "ConfigError",
    "DatabaseUnreachable",
    "GeoError",
    "Gone",
    "InvalidParameter",
    "NotFound",
    "PortInUse",
    "PostGISMissing",
    "PrimaryUnavailable",
    "ValidationError",
]


class GeoError(Exception):
    """Base of every error raised by `geo`."""

    code = "geo_error"

    def __init__(self, message: str, *, code: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class ConfigError(GeoError):
    """The configuration (environment, files) cannot be used."""

    code = "config_error"


class ClusterError(GeoError):
    """The project's own PostgreSQL cluster could not be created, started or stopped."""

    code = "cluster_error"


class PortInUse(ClusterError):
    """The cluster's loopback port is taken by another program."""

    code = "port_in_use"


class PostGISMissing(ClusterError):
    """PostgreSQL or PostGIS is not installed and cannot be installed from here."""

    code = "postgis_missing"


class DatabaseUnreachable(GeoError):
    """The database URL does not answer, or answers without PostGIS."""

    code = "database_unreachable"


class PrimaryUnavailable(DatabaseUnreachable):
    """The primary does not answer: writes wait; reads go on from the replicas."""

    code = "primary_unavailable"


class NotFound(GeoError):
    """A thing asked for by code or id does not exist."""

    code = "not_found"


class Gone(GeoError):
    """A thing asked for existed and does no longer (HTTP 410): the answer says what
    replaced it, when that is known."""

    code = "gone"


class Conflict(GeoError):
    """Well-formed, but the state of things forbids it now (it exists already, it is not
    ready yet, it was done before)."""

    code = "conflict"


class InvalidParameter(GeoError):
    """A request's parameter is malformed (``field`` names it)."""

    code = "invalid_parameter"


class ValidationError(GeoError):
    """Input was rejected; nothing was stored."""

    code = "invalid_input"
