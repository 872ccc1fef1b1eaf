"""Find PostgreSQL's programs and make sure PostGIS is installed (Debian packages)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from geo.errors import PostGISMissing

__all__ = ["PACKAGE", "ensure_postgis_installed", "postgis_available", "postgres_bindir"]

PG_MAJOR = "15"
PACKAGE = f"postgresql-{PG_MAJOR}-postgis-3"
_HINT = f"install it with: sudo apt-get install {PACKAGE}"


def postgres_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl, preferring Debian's versioned layout."""
    override = os.environ.get("TAGSIM_PG_BINDIR")
    if override:
        return Path(override)
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted(
            (p for p in debian.iterdir() if (p / "bin" / "initdb").exists()),
            key=lambda p: int(p.name) if p.name.isdigit() else 0,
            reverse=True,
        )
        preferred = [p for p in versions if p.name == PG_MAJOR] or versions
        if preferred:
            return preferred[0] / "bin"
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _sharedir(bindir: Path) -> Path | None:
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        out = subprocess.run([pg_config, "--sharedir"], capture_output=True, text=True)
        if out.returncode == 0:
            return Path(out.stdout.strip())
    if bindir.parent.parent.name == "postgresql":  # Debian: /usr/lib/postgresql/15/bin
        return Path("/usr/share/postgresql") / bindir.parent.name
    return None


def postgis_available(bindir: Path | None = None) -> bool:
    """True when PostgreSQL's programs and the PostGIS extension files are present."""
    bindir = bindir or postgres_bindir()
    if bindir is None or not (bindir / "initdb").exists():
        return False
    share = _sharedir(bindir)
    return share is not None and (share / "extension" / "postgis.control").exists()


def ensure_postgis_installed(*, allow_install: bool = True) -> Path:
    """Return PostgreSQL's bin folder, installing Debian's PostGIS package if we may.

    Raises:
        PostGISMissing: not installed, and we are not root on a Debian-like machine
            (or the install failed); the message says what to install.
    """
    if postgis_available():
        return postgres_bindir()  # type: ignore[return-value]
    can_install = allow_install and os.geteuid() == 0 and shutil.which("apt-get")
    if not can_install:
        raise PostGISMissing(f"PostgreSQL {PG_MAJOR} with PostGIS 3 is not installed; {_HINT}")
    print(f"tagsim: installing {PACKAGE} with apt-get ...", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", PACKAGE]
    if subprocess.run(cmd, env=env, stdout=sys.stderr).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=sys.stderr)
        if subprocess.run(cmd, env=env, stdout=sys.stderr).returncode != 0:
            raise PostGISMissing(f"apt-get could not install {PACKAGE}; {_HINT}")
    if not postgis_available():
        raise PostGISMissing(f"{PACKAGE} was installed but PostGIS is still not found; {_HINT}")
    return postgres_bindir()  # type: ignore[return-value]
