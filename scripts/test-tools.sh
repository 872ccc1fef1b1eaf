#!/usr/bin/env bash
# Programs the tests drive: GDAL's command line tools (ogrinfo and ogr2ogr, real clients
# of our OGC API), QGIS's Python (python3-qgis: QGIS headless opens our layers), wrk (the
# quick benchmark's load generator) and chromium (the browser Playwright drives through the
# web page; Debian's, no browser download). Installed with apt when
# missing and we are root; otherwise the tests that need them are skipped, saying why.
set -euo pipefail
missing=()
command -v ogr2ogr >/dev/null 2>&1 || missing+=(gdal-bin)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
/usr/bin/python3 -c 'import qgis.core' >/dev/null 2>&1 || missing+=(python3-qgis)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "tagsim: installing ${missing[*]} for the client tests ..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; }
else
  echo "tagsim: ${missing[*]} missing (apt-get install ${missing[*]}); their tests will be skipped" >&2
fi
