"""Errors of parcel ingestion; each has a stable code and changes nothing stored."""

from __future__ import annotations

from geo.errors import ValidationError

__all__ = ["UploadRejected"]


class UploadRejected(ValidationError):
    """The file cannot be used at all (corrupt, unsafe, unknown layout, unknown village)."""

    code = "upload_rejected"
