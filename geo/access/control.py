"""Who may read what: API keys (hashed), roles, the working group's policies, the audit.

A key reads ``tgs_<prefix>_<secret>``; only the SHA-256 of the whole key is stored (keys are
32 random bytes, so a slow hash adds nothing). Roles rank reader < uploader < reviewer <
admin. A service's policy is ``all`` (every agency with a key), ``all_except`` (every
agency but those named) or ``allow_list`` (only those named); ``public`` opens its reads to
anyone, key or not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from geo.errors import GeoError, InvalidParameter, NotFound
from geo.geodata.registry.agencies import require_agency
from geo.geodata.registry.references import clean_agency
from geo.models.access import POLICY_MODES, ROLES

__all__ = [
    "Forbidden",
    "Principal",
    "Unauthenticated",
    "audit_entry",
    "authenticate",
    "check_policy",
    "create_key",
    "list_keys",
    "revoke_key",
    "set_policy",
]

RANK = {role: i for i, role in enumerate(ROLES)}
CACHE_SECONDS = 5.0  # a key or policy change made by another process applies within this


class _Recent:
    """What was read from the database less than ``CACHE_SECONDS`` ago, per database: a
    busy service does not look up the same key and policy on every request. Changes made
    through this module clear it at once; other processes' changes age out."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _database(conn: Connection) -> str:
        """The connection's database URL as text, rendered once per engine (rendering, or
        hashing the URL object, costs ~10 µs: three times a request)."""
        engine = conn.engine
        found: str | None = getattr(engine, "_tagsim_url", None)
        if found is None:
            found = str(engine.url)
            engine._tagsim_url = found  # type: ignore[attr-defined]
        return found

    def get(self, conn: Connection, name: str) -> Any | None:
        found = self._items.get((self._database(conn), name))
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, conn: Connection, name: str, value: Any) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[(self._database(conn), name)] = (time.monotonic() + CACHE_SECONDS, value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_recent = _Recent()


class Unauthenticated(GeoError):
    """No key, or a key that is wrong, revoked or expired."""

    code = "unauthenticated"


class Forbidden(GeoError):
    """The key is good, but its role or its agency may not do this."""

    code = "forbidden"


@dataclass(frozen=True)
class Principal:
    id: int
    key_id: int
    agency: str
    name: str
    role: str

    def can(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    conn: Connection, agency: str, role: str, name: str, expires_days: int | None = None
) -> dict[str, Any]:
    """A new principal's key; the key itself is returned once and never stored."""
    if role not in ROLES:
        raise InvalidParameter(f"role is one of {', '.join(ROLES)}", field="role")
    require_agency(conn, agency)
    principal_id = conn.execute(
        text("INSERT INTO principal (agency, name, role) VALUES (:a, :n, :r) RETURNING id"),
        {"a": agency, "n": name, "r": role},
    ).scalar_one()
    prefix = secrets.token_hex(4)
    key = f"tgs_{prefix}_{secrets.token_urlsafe(32)}"
    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    key_id = conn.execute(
        text(
            "INSERT INTO api_key (principal_id, prefix, key_hash, expires_at)"
            " VALUES (:p, :x, :h, :e) RETURNING id"
        ),
        {"p": principal_id, "x": prefix, "h": _hash(key), "e": expires},
    ).scalar_one()
    return {
        "key": key,
        "key_id": key_id,
        "principal_id": principal_id,
        "agency": agency,
        "role": role,
        "name": name,
        "expires_at": expires,
    }


def list_keys(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT k.id AS key_id, k.prefix, p.agency, p.name, p.role, k.created_at, k.expires_at,"
            " k.revoked_at, k.last_used_at FROM api_key k JOIN principal p ON p.id = k.principal_id"
            " ORDER BY k.id"
        )
    ).mappings()
    return [dict(r) for r in rows]


def revoke_key(conn: Connection, key_id: int) -> None:
    done = conn.execute(
        text("UPDATE api_key SET revoked_at = now() WHERE id = :k AND revoked_at IS NULL"),
        {"k": key_id},
    ).rowcount
    _recent.clear()
    if not done:
        raise NotFound(f"no active key {key_id}", code="unknown_key")


def authenticate(conn: Connection, key: str | None, *, touch: bool = True) -> Principal:
    """The principal of ``key``, or ``Unauthenticated``. ``touch`` records the key's use
    (``last_used_at``); not on a read replica, which cannot write."""
    if not key:
        raise Unauthenticated("send an API key: Authorization: Bearer tgs_…")
    parts = key.strip().split("_")
    if len(parts) < 3 or parts[0] != "tgs":
        raise Unauthenticated("this is not a tagsim API key")
    digest = _hash(key.strip())
    cached = _recent.get(conn, "key:" + digest)
    if cached is not None:
        principal, expires_at = cached
        if expires_at is None or expires_at >= datetime.now(UTC):
            return principal
    row = (
        conn.execute(
            text(
                "SELECT k.id, k.key_hash, k.expires_at, k.revoked_at, p.id AS pid, p.agency,"
                " p.name, p.role, p.disabled FROM api_key k"
                " JOIN principal p ON p.id = k.principal_id WHERE k.prefix = :x"
            ),
            {"x": parts[1]},
        )
        .mappings()
        .first()
    )
    if row is None or not hmac.compare_digest(row["key_hash"], digest):
        raise Unauthenticated("unknown API key")
    if row["revoked_at"] is not None or row["disabled"]:
        raise Unauthenticated("this API key was revoked")
    if row["expires_at"] is not None and row["expires_at"] < datetime.now(UTC):
        raise Unauthenticated("this API key has expired")
    if touch:  # at most once a minute: a busy key does not write on every request
        conn.execute(
            text(
                "UPDATE api_key SET last_used_at = now() WHERE id = :k"
                " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
            ),
            {"k": row["id"]},
        )
    principal = Principal(row["pid"], row["id"], row["agency"], row["name"], row["role"])
    _recent.put(conn, "key:" + digest, (principal, row["expires_at"]))
    return principal


def policy(conn: Connection, service: str) -> dict[str, Any]:
    """The service's policy (``all`` for every agency when none was set)."""
    cached = _recent.get(conn, "policy:" + service)
    if cached is not None:
        return dict(cached)
    row = (
        conn.execute(
            text("SELECT service, mode, agencies, public FROM policy WHERE service = :s"),
            {"s": service},
        )
        .mappings()
        .first()
    )
    found = (
        dict(row) if row else {"service": service, "mode": "all", "agencies": [], "public": False}
    )
    _recent.put(conn, "policy:" + service, found)
    return dict(found)


def check_policy(conn: Connection, service: str, principal: Principal) -> None:
    """``Forbidden`` when the service's policy shuts the principal's agency out."""
    if principal.role == "admin":
        return
    p = policy(conn, service)
    agency = principal.agency
    if p["mode"] == "all_except" and agency in p["agencies"]:
        raise Forbidden(f"the {service} service is closed to {agency}", code="agency_excluded")
    if p["mode"] == "allow_list" and agency not in p["agencies"]:
        raise Forbidden(
            f"the {service} service is open only to {', '.join(p['agencies'])}",
            code="agency_not_allowed",
        )


def may_receive(conn: Connection, principal_id: int | None, service: str) -> str | None:
    """Why the principal may no longer be sent the service's data (pushes), or ``None``:
    ``key_revoked`` when none of its keys is valid (revoked, expired, or the principal
    disabled), ``agency_excluded`` when the service's policy now shuts its agency out.
    The same rules a request meets, asked of a subscription before each delivery."""
    if principal_id is None:
        return None  # made at the console by an operator
    row = conn.execute(
        text(
            "SELECT p.id, p.agency, p.name, p.role, p.disabled, EXISTS (SELECT 1 FROM api_key k"
            " WHERE k.principal_id = p.id AND k.revoked_at IS NULL"
            " AND (k.expires_at IS NULL OR k.expires_at > now())) AS has_key"
            " FROM principal p WHERE p.id = :p"
        ),
        {"p": principal_id},
    ).first()
    if row is None or row.disabled or not row.has_key:
        return "key_revoked"
    try:
        check_policy(conn, service, Principal(row.id, 0, row.agency, row.name, row.role))
    except Forbidden:
        return "agency_excluded"
    return None


def set_policy(
    conn: Connection,
    service: str,
    mode: str,
    agencies: list[str],
    public: bool,
    by: str | None = None,
) -> dict[str, Any]:
    """Set a service's policy; each agency named is one the table has (``unknown_agency``)."""
    if mode not in POLICY_MODES:
        raise InvalidParameter(f"mode is one of {', '.join(POLICY_MODES)}", field="mode")
    agencies = [require_agency(conn, clean_agency(a, "agencies"), "agencies") for a in agencies]
    conn.execute(
        text(
            "INSERT INTO policy (service, mode, agencies, public, updated_by) VALUES"
            " (:s, :m, :a, :p, :by) ON CONFLICT (service) DO UPDATE SET mode = :m, agencies = :a,"
            " public = :p, updated_by = :by, updated_at = now()"
        ),
        {"s": service, "m": mode, "a": agencies, "p": public, "by": by},
    )
    _recent.clear()
    return policy(conn, service)


def audit_entry(
    principal: Principal | None,
    service: str,
    endpoint: str,
    method: str,
    params: dict[str, Any],
    rows: int | None,
    status: int,
    duration_ms: float,
) -> dict[str, Any]:
    """One access, as `geo.access.journal` keeps it and moves it into ``audit``."""
    return {
        "principal_id": principal.id if principal else None,
        "agency": principal.agency if principal else None,
        "service": service,
        "endpoint": endpoint,
        "method": method,
        "params": params,
        "row_count": rows,
        "status": status,
        "duration_ms": duration_ms,
    }
