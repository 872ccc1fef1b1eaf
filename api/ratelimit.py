"""Rate limits per API key (or per address without one): a fixed window counted in the
worker process, e.g. ``1200 per minute`` (``TAGSIM_RATE_LIMIT``; ``DEFAULT_LIMIT`` when
unset: more than one busy client gets from a 2-core machine — 300–400 requests a second
in `bench/` — so the limit stops a runaway loop, not a client's ordinary peak).

Flask-Limiter's in-memory storage started a timer thread on almost every request (about a
millisecond each under load); this counter does the same job with a dict and a lock.
Limits are per process: with N gunicorn workers a key gets up to N times the limit.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable

from flask import Flask, Response, current_app, g, request

from api.errors import problem

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_SPEC = re.compile(r"^\s*(\d+)\s*(?:per|/)\s*(second|minute|hour|day)s?\s*$")


DEFAULT_LIMIT = "60000 per minute"


def parse_limit(spec: str) -> tuple[int, int]:
    """``"1200 per minute"`` → (1200, 60)."""
    m = _SPEC.match(spec or "")
    if not m:
        raise ValueError(f"rate limit {spec!r} is not like '1200 per minute'")
    return int(m.group(1)), _UNITS[m.group(2)]


class FixedWindow:
    """Requests counted per caller in fixed windows of ``seconds`` (``clock``: the time
    now, in seconds; tests give a fixed one)."""

    def __init__(self, limit: int, seconds: int, clock: Callable[[], float] = time.time) -> None:
        self.limit, self.seconds, self._clock = limit, seconds, clock
        self._windows: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def peek(self, who: str) -> tuple[int, float]:
        """(used in the current window, seconds until it resets), counting nothing."""
        now = self._clock()
        window = int(now // self.seconds)
        with self._lock:
            start, used = self._windows.get(who, (window, 0))
        return (used if start == window else 0), (window + 1) * self.seconds - now

    def hit(self, who: str) -> tuple[bool, int, float]:
        """(allowed, remaining, seconds until the window resets)."""
        now = self._clock()
        window = int(now // self.seconds)
        with self._lock:
            if len(self._windows) > 100_000:
                self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
            start, used = self._windows.get(who, (window, 0))
            if start != window:
                used = 0
            used += 1
            self._windows[who] = (window, used)
        reset = (window + 1) * self.seconds - now
        return used <= self.limit, max(0, self.limit - used), reset


def _who() -> str:
    principal = g.get("principal")
    return f"key:{principal.key_id}" if principal else f"ip:{request.remote_addr}"


def too_many(code: str, detail: str, reset: float) -> Response:
    """A 429 problem with ``Retry-After`` (the seconds until the window resets)."""
    response = problem(429, code, "Too Many Requests", detail)
    response.headers["Retry-After"] = str(math.ceil(reset))
    return response


def _check() -> Response | None:
    limiter: FixedWindow = current_app.extensions["tagsim_ratelimit"]
    allowed, remaining, reset = limiter.hit(_who())
    g.rate = (limiter.limit, remaining, reset)
    if allowed:
        return None
    return too_many(
        "too_many_requests",
        f"at most {limiter.limit} requests per {limiter.seconds} s for this key",
        reset,
    )


def _headers(response: Response) -> Response:
    rate = g.get("rate")
    if rate:
        limit, remaining, reset = rate
        response.headers["X-RateLimit-Limit"] = str(limit)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-Reset"] = str(math.ceil(reset))
    return response


def init_app(app: Flask) -> None:
    """Register after authentication, so that the limit is per key."""
    limit, seconds = parse_limit(app.config.get("RATE_LIMIT") or DEFAULT_LIMIT)
    app.extensions["tagsim_ratelimit"] = FixedWindow(limit, seconds, app.config["CLOCK"])
    app.before_request(_check)
    app.after_request(_headers)
