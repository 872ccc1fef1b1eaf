#!/usr/bin/env bash
# Make .venv hold tagsim and its dependencies; safe to run again (does nothing if current).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "tagsim: python3 (3.11 or newer) is needed: apt-get install python3 python3-venv" >&2
  exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "tagsim: Python 3.11 or newer is needed; $PY is $("$PY" -V 2>&1)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "tagsim: installing python3-venv with apt-get ..." >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2; }
      "$PY" -m venv .venv
    else
      echo "tagsim: cannot create a virtualenv: apt-get install python3-venv" >&2
      exit 1
    fi
  fi
fi
# Dependencies at the versions of requirements.lock (the set the suite last passed with;
# `make lock` rewrites it), tagsim itself editable.
stamp=.venv/.tagsim-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
  echo "tagsim: installing Python dependencies into .venv ..." >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -c requirements.lock -e '.[dev]' >&2
  touch "$stamp"
fi

# The web page's front-end libraries (MapLibre GL JS, the Vazirmatn font) come from npm at
# set-up time, never from a CDN at run time.
web=api/web
if [ ! -f "$web/node_modules/.package-lock.json" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "tagsim: installing nodejs and npm with apt-get ..." >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >&2; }
    else
      echo "tagsim: npm is needed for the web page's libraries: apt-get install nodejs npm" >&2
      exit 1
    fi
  fi
  echo "tagsim: installing the web page's libraries with npm ..." >&2
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

# The front (api/front.py): Debian's nginx before gunicorn, so slow clients never hold the
# application's threads. Without it `tagsim serve` runs gunicorn alone and says so.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "tagsim: installing nginx-light with apt-get (the front of tagsim serve) ..." >&2
    # only the program: the package must not start a system nginx on port 80
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >&2; } \
      || echo "tagsim: nginx could not be installed; tagsim serve will run without its front" >&2
    if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  else
    echo "tagsim: nginx is missing (apt-get install nginx-light): tagsim serve runs without its front" >&2
  fi
fi
