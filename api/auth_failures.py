"""Failed authentications: limited per client address, audited as counts.

Anyone without a key can send wrong keys; each used to cost a key lookup and an audit row,
so the audit table grew at the sender's pace (2,000 rows in 5 s). Now an address that failed
``AUTH_FAILURE_LIMIT`` times (``TAGSIM_AUTH_FAILURE_LIMIT``, default 60 per minute) is
answered 429 ``too_many_failures`` before any lookup until its window ends, and failures are
audited as one row per address and minute (``service`` ``auth``, endpoint
``authentication_failures``, ``row_count`` = the failures, ``params`` the address and the
minute), written when the minute is over. Counted per worker process, like the rate limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, current_app, request

from api.ratelimit import FixedWindow, parse_limit, too_many
from geo.access.control import audit_entry

__all__ = ["FailureCounts", "init_app"]

DEFAULT_LIMIT = "60 per minute"


class FailureCounts:
    """Failures per (address, minute), handed to ``write`` once their minute is over."""

    def __init__(
        self, write: Callable[[dict[str, Any]], None], clock: Callable[[], float] = time.time
    ) -> None:
        self._write, self._clock = write, clock
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def add(self, address: str) -> None:
        minute = int(self._clock() // 60)
        with self._lock:
            self._counts[(address, minute)] = self._counts.get((address, minute), 0) + 1
        self.flush(before=minute)

    def flush(self, before: int | None = None) -> int:
        """Write the counts of minutes before ``before`` (all: ``None``); how many rows."""
        with self._lock:
            done = [k for k in self._counts if before is None or k[1] < before]
            rows = [(k, self._counts.pop(k)) for k in done]
        for (address, minute), count in rows:
            self._write(
                audit_entry(
                    None,
                    "auth",
                    "authentication_failures",
                    "-",
                    {
                        "address": address,
                        "minute": datetime.fromtimestamp(minute * 60, UTC).isoformat(),
                    },
                    count,
                    401,
                    0.0,
                )
            )
        return len(rows)


def _address() -> str:
    return request.remote_addr or "unknown"


def refuse_if_failing() -> Response | None:
    """Before authentication: 429 for an address over its failure limit."""
    window: FixedWindow = current_app.extensions["tagsim_auth_failures_window"]
    used, reset = window.peek(_address())
    if used < window.limit:
        return None
    return too_many(
        "too_many_failures",
        f"{used} failed authentications from this address; wait {math.ceil(reset)} s",
        reset,
    )


def note_failure() -> None:
    """After a 401: count it against the address, and for the audit."""
    current_app.extensions["tagsim_auth_failures_window"].hit(_address())
    current_app.extensions["tagsim_auth_failures"].add(_address())


def init_app(app: Flask, write: Callable[[dict[str, Any]], None]) -> None:
    limit, seconds = parse_limit(app.config.get("AUTH_FAILURE_LIMIT") or DEFAULT_LIMIT)
    clock = app.config["CLOCK"]
    app.extensions["tagsim_auth_failures_window"] = FixedWindow(limit, seconds, clock)
    app.extensions["tagsim_auth_failures"] = FailureCounts(write, clock)
