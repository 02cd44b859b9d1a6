#!/usr/bin/env bash
# System packages the test suite needs: a PostgreSQL server (the store is tested against a real
# one, started by the tests in a temporary directory), Debian's Chromium (the web UI is driven by
# Playwright in it; no browser download), and nginx with openssl (the server is tested behind a
# real TLS-terminating reverse proxy with a self-signed certificate). Installs with apt-get what is
# missing; a no-op when all are present. Pango is WeasyPrint's (PDF reports) system library. Run
# as root (CI and the dev containers are); otherwise it prints what to install.
set -euo pipefail
need=()
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null && ! command -v initdb > /dev/null; then
  need+=(postgresql)
fi
if [ ! -x /usr/bin/chromium ]; then
  need+=(chromium fonts-dejavu-core)
fi
if ! command -v nginx > /dev/null && [ ! -x /usr/sbin/nginx ]; then
  need+=(nginx-light)
fi
if ! command -v openssl > /dev/null; then
  need+=(openssl)
fi
if ! ldconfig -p | grep -q libpangoft2; then
  need+=(libpango-1.0-0 libpangoft2-1.0-0)  # WeasyPrint (PDF reports)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ]; then
  echo "missing system packages: sudo apt-get install -y ${need[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
