"""Secrets sealed at rest: what the database keeps cannot be used by whoever reads it.

A sealed value is ``sealed:v1:`` + a Fernet token (AES-128-CBC + HMAC-SHA256, from
``cryptography``). The key never enters the database:

- ``TAGSIM_SECRET_KEY`` (a Fernet key, for deployments that share one key between
  machines; ``TAGSIM_SECRET_KEY_PREVIOUS`` still opens what the one before sealed), or else
- ``<home>/secret.key``, made on first use with mode 0600.

Rotation (``tagsim secrets rotate``): a new key is written to ``secret.key.new``; while it
exists, values are sealed with it and opened with either key; every stored value is sealed
again; then the new key replaces the old one. A rotation cut short is finished by running
the command again (nothing sealed with either key is lost meanwhile).

A value without the prefix is one stored before sealing existed; it is read as it is and
sealed by the next rotation.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from geo.errors import GeoError
from geo.platform.config import settings

__all__ = ["SealError", "rotate", "seal", "unseal"]

PREFIX = "sealed:v1:"
KEY_ENV = "TAGSIM_SECRET_KEY"
PREVIOUS_ENV = "TAGSIM_SECRET_KEY_PREVIOUS"


class SealError(GeoError):
    """A sealed value cannot be opened with the keys at hand."""

    code = "secret_unreadable"


def _key_file() -> Path:
    return settings().home / "secret.key"


def _pending_file() -> Path:
    return _key_file().with_suffix(".key.new")


def _write_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(Fernet.generate_key())


def _keys() -> MultiFernet:
    """The keys: the first seals, any opens."""
    if os.environ.get(KEY_ENV):
        keys = [os.environ[KEY_ENV], os.environ.get(PREVIOUS_ENV, "")]
        return MultiFernet([Fernet(k.encode()) for k in keys if k])
    current = _key_file()
    if not current.exists():
        with contextlib.suppress(FileExistsError):  # another process made it first
            _write_key(current)
    found = [p for p in (_pending_file(), current) if p.exists()]
    return MultiFernet([Fernet(p.read_bytes().strip()) for p in found])


def seal(plain: str) -> str:
    return PREFIX + _keys().encrypt(plain.encode()).decode()


def unseal(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # stored before sealing: read as it is, sealed at the next rotation
    try:
        return _keys().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise SealError(
            "a stored secret cannot be opened with this key: was the key file replaced?"
        ) from None


def rotate(reseal_all: Callable[[Callable[[str], str]], int]) -> int:
    """Seal everything again under a new key; ``reseal_all(reseal)`` re-seals every stored
    value (in its own transaction) and returns how many. The number re-sealed."""
    from_env = bool(os.environ.get(KEY_ENV))
    if from_env and not os.environ.get(PREVIOUS_ENV):
        raise GeoError(
            f"the key comes from {KEY_ENV}: put the new key there and the old one in"
            f" {PREVIOUS_ENV}, then run the rotation to re-seal",
            code="key_from_environment",
        )
    if not from_env:
        _keys()  # (the current key exists before a new one is made)
        if not _pending_file().exists():
            _write_key(_pending_file())
    done = reseal_all(lambda stored: seal(unseal(stored)))
    if not from_env:
        _pending_file().replace(_key_file())
    return done
