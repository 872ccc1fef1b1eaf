"""Push: each subscription's changes POSTed to its URL in feed order, signed, retried.

A batch is the feed after the subscription's cursor (its kinds, bbox and ``within``
filters), as JSON ``{"subscription", "delivery", "changes", "next"}``. Headers:

- ``X-Tagsim-Timestamp``: Unix seconds when the batch was signed;
- ``X-Tagsim-Signature``: ``sha256=`` + hex HMAC-SHA256 of ``"{timestamp}.{body}"`` with
  the subscription's secret (a receiver recomputes it, compares in constant time, and
  refuses stale timestamps);
- ``X-Tagsim-Delivery``: the attempt's id (the same batch may come again: at least once).

A 2xx answer moves the cursor to the batch's ``next``; anything else (or no whole answer
within ``outbound.DEADLINE_S`` seconds, however slowly the receiver trickles) leaves it and
retries after ``BACKOFF_BASE * 2**failures`` seconds (at most ``BACKOFF_MAX``); after
``MAX_FAILURES`` failures in a row the subscription is parked until someone resumes it.
A lease per subscription keeps its deliveries one at a time, hence in order; other
subscriptions go on meanwhile, the longest waiting first. Every attempt is logged in
``delivery``.

One party's fault stays its own: a subscription is validated whole when made (its URL
resolved and checked by :mod:`geo.changes.outbound`, its cursor decoded); one whose
batch cannot be read backs off like a failing receiver instead of stopping the loop; before
each delivery its principal must still hold a valid key and the ``changes`` policy must
still admit its agency, else it is parked (``parked_reason``). Secrets are stored sealed
(:mod:`geo.platform.sealing`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.access.control import may_receive
from geo.changes import outbound
from geo.changes.feed import decode_cursor, read_changes
from geo.errors import GeoError, InvalidParameter, NotFound
from geo.geodata.bbox import check_bbox
from geo.geodata.registry.agencies import require_agency
from geo.geodata.registry.references import parse_unit_ref
from geo.models.changes import ENTITY_KINDS
from geo.platform.database import Database
from geo.platform.sealing import rotate, seal, unseal

__all__ = [
    "create_subscription",
    "delete_subscription",
    "deliver_due",
    "deliveries",
    "delivery_loop",
    "get_subscription",
    "list_subscriptions",
    "reseal_secrets",
    "resume_subscription",
    "sign",
]

BACKOFF_BASE = 2.0
BACKOFF_MAX = 3600.0
MAX_FAILURES = 8
# A claimed subscription is skipped by other workers this long (beyond any delivery's
# duration); a worker that died mid-delivery gives it back when the lease ends.
LEASE_S = 120.0
_PUBLIC = (
    "id, agency, url, kinds, bbox, within, status, parked_reason, cursor, batch_size, failures,"
    " next_attempt_at, last_delivery_at, created_at"
)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Tagsim-Signature`` value of a body."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def create_subscription(
    conn: Connection,
    *,
    agency: str,
    principal_id: int | None,
    url: str,
    kinds: list[str] | None = None,
    bbox: list[float] | None = None,
    within: str | None = None,
    secret: str | None = None,
    since: str | None = None,
    batch_size: int = 500,
) -> dict[str, Any]:
    """A new active subscription; the answer shows the secret this once."""
    if kinds:
        unknown = sorted(set(kinds) - set(ENTITY_KINDS))
        if unknown:
            raise InvalidParameter(f"unknown kinds {', '.join(unknown)}", field="kinds")
    if bbox is not None:
        bbox = list(check_bbox(bbox, "bbox"))
    if within:
        unit = parse_unit_ref(within, "within")
        require_agency(conn, unit.agency, "within")
        within = str(unit)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise InvalidParameter("batch_size is a whole number, 1 to 5000", field="batch_size")
    if not 1 <= batch_size <= 5000:
        raise InvalidParameter("batch_size is 1 to 5000", field="batch_size")
    if since is not None:
        if not isinstance(since, str):
            raise InvalidParameter("since is a cursor this service gave", field="since")
        decode_cursor(since)  # a cursor the feed gave, or InvalidParameter naming since
    outbound.check_url(url)
    secret = secret or secrets.token_urlsafe(32)
    if len(secret) < 16:
        raise InvalidParameter("a secret has at least 16 characters", field="secret")
    if since is None:  # from now on: the end of the feed as it stands
        since = _feed_end(conn)
    row = (
        conn.execute(
            text(
                "INSERT INTO subscription (principal_id, agency, url, kinds, bbox, within, secret,"
                " cursor, batch_size) VALUES (:p, :a, :u, :k, :b, :w, :s, :c, :n)"
                f" RETURNING {_PUBLIC}"
            ),
            {
                "p": principal_id,
                "a": agency,
                "u": url,
                "k": kinds or None,
                "b": bbox,
                "w": within,
                "s": seal(secret),
                "c": since,
                "n": batch_size,
            },
        )
        .mappings()
        .one()
    )
    return {**dict(row), "secret": secret}


def _feed_end(conn: Connection) -> str:
    """A cursor after every finished change: a new subscription starts from now."""
    from geo.changes.feed import encode_cursor

    row = conn.execute(
        text(
            "SELECT txid::text::bigint, id FROM change"
            " WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY txid DESC, id DESC"
            " LIMIT 1"
        )
    ).first()
    return encode_cursor(row[0], row[1]) if row else ""


def get_subscription(conn: Connection, subscription_id: int, agency: str | None) -> dict[str, Any]:
    row = (
        conn.execute(
            text(
                f"SELECT {_PUBLIC} FROM subscription WHERE id = :i AND status <> 'deleted'"
                " AND (CAST(:a AS text) IS NULL OR agency = :a)"
            ),
            {"i": subscription_id, "a": agency},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no subscription {subscription_id}", code="unknown_subscription")
    return dict(row)


def list_subscriptions(conn: Connection, agency: str | None) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            f"SELECT {_PUBLIC} FROM subscription WHERE status <> 'deleted'"
            " AND (CAST(:a AS text) IS NULL OR agency = :a) ORDER BY id"
        ),
        {"a": agency},
    ).mappings()
    return [dict(r) for r in rows]


def resume_subscription(
    conn: Connection, subscription_id: int, agency: str | None
) -> dict[str, Any]:
    """A parked subscription becomes active again and is tried at once."""
    get_subscription(conn, subscription_id, agency)
    conn.execute(
        text(
            "UPDATE subscription SET status = 'active', failures = 0, parked_reason = NULL,"
            " next_attempt_at = now() WHERE id = :i"
        ),
        {"i": subscription_id},
    )
    return get_subscription(conn, subscription_id, agency)


def delete_subscription(conn: Connection, subscription_id: int, agency: str | None) -> None:
    get_subscription(conn, subscription_id, agency)
    conn.execute(
        text("UPDATE subscription SET status = 'deleted' WHERE id = :i"), {"i": subscription_id}
    )


def deliveries(
    conn: Connection, subscription_id: int, agency: str | None, limit: int = 100
) -> list[dict[str, Any]]:
    get_subscription(conn, subscription_id, agency)
    rows = conn.execute(
        text(
            "SELECT id, attempted_at, cursor_from, cursor_to, changes, status_code, ok, error,"
            " duration_ms FROM delivery WHERE subscription_id = :i ORDER BY id DESC LIMIT :l"
        ),
        {"i": subscription_id, "l": limit},
    ).mappings()
    return [dict(r) for r in rows]


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    """POST to an allowed receiver within the delivery deadline (:mod:`outbound`)."""
    outcome = outbound.post(url, body, headers)
    return outcome.status, outcome.error


@dataclass(frozen=True)
class Claimed:
    """A batch claimed for one subscription, ready to send with no transaction open."""

    subscription_id: int
    url: str
    secret: str
    cursor: str | None
    next_cursor: str
    failures: int
    delivery_id: int
    body: bytes


def _claim(conn: Connection, sub: dict[str, Any]) -> Claimed | None:
    """Read the subscription's next batch and record the attempt, in the caller's short
    transaction; ``None`` when there is nothing new (the cursor moves past the gap). The
    subscription is leased (``next_attempt_at`` pushed past the delivery's deadline) so no
    other worker takes it while it is being sent."""
    bbox = tuple(sub["bbox"]) if sub["bbox"] else None
    within = parse_unit_ref(sub["within"], "within") if sub["within"] else None
    batch = read_changes(
        conn,
        sub["cursor"] or None,
        kinds=sub["kinds"],
        limit=sub["batch_size"],
        bbox=bbox,  # type: ignore[arg-type]
        within=within,
    )
    if not batch["changes"]:
        conn.execute(
            text(
                "UPDATE subscription SET cursor = :c, next_attempt_at ="
                " greatest(next_attempt_at, now() + interval '1 second') WHERE id = :i"
            ),
            {"c": batch["next"], "i": sub["id"]},
        )
        return None
    delivery_id = conn.execute(
        text(
            "INSERT INTO delivery (subscription_id, cursor_from, cursor_to, changes, ok)"
            " VALUES (:s, :f, :t, :n, false) RETURNING id"
        ),
        {"s": sub["id"], "f": sub["cursor"], "t": batch["next"], "n": batch["count"]},
    ).scalar_one()
    conn.execute(
        text(
            "UPDATE subscription SET next_attempt_at = now() + make_interval(secs => :lease)"
            " WHERE id = :i"
        ),
        {"lease": LEASE_S, "i": sub["id"]},
    )
    body = json.dumps(
        {
            "subscription": sub["id"],
            "delivery": delivery_id,
            "changes": batch["changes"],
            "next": batch["next"],
        },
        ensure_ascii=False,
        default=_json_default,
    ).encode("utf-8")
    return Claimed(
        sub["id"],
        sub["url"],
        unseal(sub["secret"]),
        sub["cursor"],
        batch["next"],
        sub["failures"],
        delivery_id,
        body,
    )


def _send(claimed: Claimed) -> tuple[int | None, str | None, float]:
    """POST the batch (no connection or transaction of ours is open meanwhile)."""
    stamp = int(time.time())
    started = time.perf_counter()
    status, error = _post(
        claimed.url,
        claimed.body,
        {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "tagsim-webhooks",
            "X-Tagsim-Timestamp": str(stamp),
            "X-Tagsim-Signature": sign(claimed.secret, stamp, claimed.body),
            "X-Tagsim-Delivery": str(claimed.delivery_id),
        },
    )
    return status, error, round((time.perf_counter() - started) * 1000, 2)


def _record(
    conn: Connection, claimed: Claimed, status: int | None, error: str | None, ms: float
) -> str:
    """Record the answer: the cursor moves on a success; a failure backs off or parks.
    Only the claim's own state is changed (a subscription resumed, moved or deleted
    meanwhile is left as its owner set it)."""
    ok = status is not None and 200 <= status < 300
    conn.execute(
        text(
            "UPDATE delivery SET status_code = :sc, ok = :ok, error = :e, duration_ms = :d"
            " WHERE id = :i"
        ),
        {"sc": status, "ok": ok, "e": error, "d": ms, "i": claimed.delivery_id},
    )
    mine = "id = :i AND cursor IS NOT DISTINCT FROM :claimed AND status = 'active'"
    if ok:
        conn.execute(
            text(
                "UPDATE subscription SET cursor = :c, failures = 0, next_attempt_at = now(),"
                f" last_delivery_at = now() WHERE {mine}"
            ),
            {"c": claimed.next_cursor, "i": claimed.subscription_id, "claimed": claimed.cursor},
        )
        return "sent"
    failures = claimed.failures + 1
    wait = _backoff(failures)
    conn.execute(
        text(
            "UPDATE subscription SET failures = :f, status = :st, parked_reason = :why,"
            f" next_attempt_at = now() + make_interval(secs => :w) WHERE {mine}"
        ),
        {
            "f": failures,
            "st": "parked" if failures >= MAX_FAILURES else "active",
            "why": "failures" if failures >= MAX_FAILURES else None,
            "w": wait,
            "i": claimed.subscription_id,
            "claimed": claimed.cursor,
        },
    )
    return "failed"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def deliver_due(db: Database, *, max_batches: int = 100) -> int:
    """Deliver to every subscription that is due, batch after batch while they accept;
    returns the number of batches sent. Safe to run in several processes at once.

    Each batch is three steps: claim it (a short transaction), POST it with no transaction,
    lock or snapshot of ours open, then record the answer (another short transaction). A
    worker killed mid-POST leaves the lease to expire: the batch is sent again (at least
    once; receivers deduplicate by cursor)."""
    sent = 0
    while sent < max_batches:
        with db.begin() as conn:
            sub = (
                conn.execute(
                    text(
                        "SELECT id, principal_id, url, kinds, bbox, within, secret, cursor,"
                        " batch_size, failures FROM subscription"
                        " WHERE status = 'active' AND next_attempt_at <= now()"
                        " ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
                    )
                )
                .mappings()
                .first()
            )
            if sub is None:
                return sent
            why = may_receive(conn, sub["principal_id"], "changes")
            if why is not None:
                _park(conn, sub["id"], why)
                continue
            try:
                with conn.begin_nested():
                    claimed = _claim(conn, dict(sub))
            except (GeoError, ValueError, TypeError) as exc:
                _unreadable(conn, dict(sub), exc)
                continue
        if claimed is None:  # nothing new for it: look again in a second
            continue
        status, error, ms = _send(claimed)
        with db.begin() as conn:
            if _record(conn, claimed, status, error, ms) == "sent":
                sent += 1
    return sent


def _backoff(failures: int) -> float:
    """Seconds before the next attempt after ``failures`` failures in a row."""
    return min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (failures - 1))


def _park(conn: Connection, subscription_id: int, why: str) -> None:
    conn.execute(
        text("UPDATE subscription SET status = 'parked', parked_reason = :w WHERE id = :i"),
        {"w": why, "i": subscription_id},
    )


def _unreadable(conn: Connection, sub: dict[str, Any], exc: Exception) -> None:
    """The subscription's batch could not be read (a filter or cursor stored before they
    were validated): it backs off like a failing receiver, and parks, so the others go on."""
    failures = sub["failures"] + 1
    conn.execute(
        text(
            "INSERT INTO delivery (subscription_id, cursor_from, cursor_to, changes, ok, error)"
            " VALUES (:s, :f, :f, 0, false, :e)"
        ),
        {"s": sub["id"], "f": sub["cursor"], "e": f"its changes cannot be read: {exc}"[:300]},
    )
    conn.execute(
        text(
            "UPDATE subscription SET failures = :f, status = :st, parked_reason = :why,"
            " next_attempt_at = now() + make_interval(secs => :w) WHERE id = :i"
        ),
        {
            "f": failures,
            "st": "parked" if failures >= MAX_FAILURES else "active",
            "why": "unreadable" if failures >= MAX_FAILURES else None,
            "w": _backoff(failures),
            "i": sub["id"],
        },
    )


def reseal_secrets(db: Database) -> int:
    """Seal every subscription's secret again (``tagsim secrets rotate``), in one
    transaction; the number of secrets."""

    def reseal_all(reseal: Callable[[str], str]) -> int:
        with db.begin() as conn:
            rows = conn.execute(text("SELECT id, secret FROM subscription FOR UPDATE")).all()
            for row in rows:
                conn.execute(
                    text("UPDATE subscription SET secret = :s WHERE id = :i"),
                    {"s": reseal(row.secret), "i": row.id},
                )
        return len(rows)

    return rotate(reseal_all)


def delivery_loop(db: Database, stop: threading.Event, interval: float = 1.0) -> None:
    """Deliver until ``stop`` is set (the worker runs this in a thread)."""
    while not stop.is_set():
        try:
            deliver_due(db)
        except Exception:  # a bad moment of the database must not end the loop
            import logging

            logging.getLogger(__name__).exception("webhook delivery failed")
        stop.wait(interval)
