"""What the OGC core needs of a request, and what it answers: no web framework in either."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import Connection

from geo.platform.database import Database

__all__ = ["OgcRequest", "OgcResponse", "dumps", "json_default", "link"]


@dataclass(frozen=True)
class OgcRequest:
    """A request as the core reads it.

    ``root`` is the service's base URL with its trailing slash (links are built on it),
    ``url`` the request's URL without its query, ``args`` its query parameters. ``conn``
    gives the request's connection (opened on first use, perhaps on a replica); ``db`` is
    the primary, for work that needs a transaction of its own (a download's cursor).
    """

    root: str
    url: str
    args: Mapping[str, str]
    conn: Callable[[], Connection]
    db: Database
    if_none_match: Callable[[str], bool] = field(default=lambda _etag: False)

    def href(self, path: str, **query: Any) -> str:
        """An absolute link to ``path`` (relative to the root) with ``query``."""
        tail = f"?{urlencode({k: str(v) for k, v in query.items()})}" if query else ""
        return f"{self.root}{path.lstrip('/')}{tail}"

    @cached_property
    def _encoded_args(self) -> dict[str, str]:
        """Each query parameter as ``name=value``, encoded once (a page writes its URL with
        one parameter changed for each of its links: ~10 µs each to encode the whole)."""
        return {k: urlencode({k: v}) for k, v in self.args.items()}

    def this_page(self, **changes: Any) -> str:
        """This request's URL with some query parameters changed."""
        parts = dict(self._encoded_args)
        parts.update({k: urlencode({k: str(v)}) for k, v in changes.items()})
        return f"{self.url}?{'&'.join(parts.values())}"


@dataclass
class OgcResponse:
    """An answer: status, media type, headers and a body (text, bytes or chunks);
    ``audit_rows`` is how many features it names, for the audit."""

    body: str | bytes | Iterator[bytes]
    media_type: str = "application/json"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    audit_rows: int | None = None
    etag: str | None = None


def json_default(o: Any) -> Any:
    """ISO dates and Decimal numbers for JSON (the app's JSON provider uses it too)."""
    if isinstance(o, datetime | date):
        return o.isoformat()
    if isinstance(o, Decimal):
        return float(o)
    raise TypeError(f"{type(o).__name__} is not JSON")


def dumps(body: Any) -> str:
    """JSON as clients expect it: ISO dates, Persian text as is, numbers from Decimal
    (compact, written by orjson as the app's answers are: `api.jsonio`)."""
    return orjson.dumps(body, default=json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def link(href: str, rel: str, media_type: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media_type, "title": title}
