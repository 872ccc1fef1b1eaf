"""Outbound HTTP to agencies' receivers: only to hosts that are allowed, within a deadline.

A receiver's URL is checked when a subscription is made and again before every delivery:

- ``http`` or ``https``, a host, no ``user:password@``;
- its host resolved, and refused when any address is loopback, private, link-local
  (``169.254.169.254``, the cloud metadata address, among them), multicast, unspecified or
  reserved — in whatever form it was written (``2130706433``, ``0x7f000001``, ``[::1]``,
  ``[::ffff:127.0.0.1]``) — unless the host is listed in ``TAGSIM_WEBHOOK_ALLOW``
  (comma separated host names or addresses; tests list their loopback receiver);
- the connection goes to the very address that was checked (no second lookup a DNS
  rebinding could answer differently); ``Host`` and TLS SNI carry the name.

:func:`post` sends one request and reads only the answer's status line and headers, all
within one deadline (``DEADLINE_S``: connect + send + answer, however slowly a receiver
trickles its bytes). Redirects are not followed: a 3xx is a failure like any other. The
outcome says ``timeout``, ``refused``, ``unreachable``, ``tls``, ``bad answer``,
``unsafe address`` or ``HTTP <status>`` — never the system's error text, which would make
the delivery log a port scanner.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from geo.errors import GeoError, InvalidParameter, ValidationError

__all__ = ["DEADLINE_S", "Outcome", "Target", "allowed_hosts", "check_url", "post"]

DEADLINE_S = 10.0
ALLOW_ENV = "TAGSIM_WEBHOOK_ALLOW"
_MAX_ANSWER_HEAD = 16 * 1024
# Addresses no receiver of an agency lives at, beyond what ``ipaddress`` flags.
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def allowed_hosts() -> frozenset[str]:
    """The hosts ``TAGSIM_WEBHOOK_ALLOW`` lets through although they are internal."""
    raw = os.environ.get(ALLOW_ENV, "")
    return frozenset(h.strip().lower().strip("[]") for h in raw.split(",") if h.strip())


def _unsafe(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip in _METADATA
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


@dataclass(frozen=True)
class Target:
    """A checked receiver: where to connect (``address``) and what to say (``host``)."""

    scheme: str
    host: str
    port: int
    path: str
    address: str

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


def _refuse(message: str, code: str) -> GeoError:
    """A URL not written as one is malformed (400); one well written that names a host we
    will not call, or cannot find, is refused content (422)."""
    if code == "invalid_parameter":
        return InvalidParameter(message, field="url", code=code)
    return ValidationError(message, field="url", code=code)


def check_url(url: str, allow: frozenset[str] | None = None) -> Target:
    """The target of ``url`` once every rule above holds; otherwise an error naming the field
    ``url``: ``invalid_parameter`` (400), ``unsafe_url`` or ``unresolvable_url`` (422)."""
    allow = allowed_hosts() if allow is None else allow
    try:
        parts = urlsplit(url or "")
        port = parts.port
    except ValueError:  # shaped like one (the document's pattern), but no URL (a bad port)
        raise _refuse("url is not a URL", "invalid_url") from None
    if parts.scheme not in {"http", "https"}:
        raise _refuse("url is an http(s) URL of the receiving server", "invalid_parameter")
    if not parts.hostname:  # shaped like one, but names no host
        raise _refuse("url names no host", "invalid_url")
    if parts.username is not None or parts.password is not None:
        raise _refuse("url must not carry a user name or password", "unsafe_url")
    host = parts.hostname.lower()
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise _refuse(f"the host {host} cannot be resolved", "unresolvable_url") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if host not in allow and any(_unsafe(a) for a in addresses):
        raise _refuse(
            f"{host} is an internal address; receivers must be reachable public hosts"
            f" (an operator may allow a host with {ALLOW_ENV})",
            "unsafe_url",
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, addresses[0])


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _Late(Exception):
    pass


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    deadline_s: float | None = None,
    allow: frozenset[str] | None = None,
) -> Outcome:
    """POST ``body`` to ``url`` (checked again now); the answer's status, within
    ``deadline_s`` (default ``DEADLINE_S``) in all."""
    try:
        target = check_url(url, allow)
    except GeoError as exc:
        return Outcome(None, "unresolvable" if exc.code == "unresolvable_url" else "unsafe address")
    deadline = time.monotonic() + (DEADLINE_S if deadline_s is None else deadline_s)

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Late
        return remaining

    head = [
        f"POST {target.path} HTTP/1.1",
        f"Host: {target.host_header}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    sock: socket.socket | None = None
    try:
        sock = socket.create_connection((target.address, target.port), timeout=left())
        if target.scheme == "https":
            sock.settimeout(left())
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
        sock.settimeout(left())
        sock.sendall(request)
        answer = b""
        while b"\r\n" not in answer:  # the status line is all a delivery needs
            sock.settimeout(left())
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
            if len(answer) > _MAX_ANSWER_HEAD:
                break
        return _status(answer)
    except (_Late, TimeoutError):
        return Outcome(None, "timeout")
    except ConnectionRefusedError:
        return Outcome(None, "refused")
    except ssl.SSLError:
        return Outcome(None, "tls")
    except (ConnectionResetError, BrokenPipeError):
        return Outcome(None, "no answer")
    except OSError:
        return Outcome(None, "unreachable")
    finally:
        if sock is not None:
            sock.close()


def _status(answer: bytes) -> Outcome:
    line = answer.split(b"\r\n", 1)[0].split()
    if len(line) < 2 or not line[0].startswith(b"HTTP/1.") or not line[1].isdigit():
        return Outcome(None, "bad answer")
    status = int(line[1])
    return Outcome(status, None if 200 <= status < 300 else f"HTTP {status}")
