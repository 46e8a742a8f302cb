#!/bin/sh
# Installs the peer servers that `npm run loadtest` compares interpool with, from Debian
# packages: gunicorn, uWSGI with its Python 3 plugin, Apache with mod_wsgi. Needs root
# (or sudo). The services are not enabled or started: the load test starts each peer
# itself, on a free port on 127.0.0.1, and stops it afterwards.
set -eu
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  gunicorn uwsgi uwsgi-plugin-python3 apache2 libapache2-mod-wsgi-py3
# Debian starts apache2 after installing it where an init system runs; the load test
# runs its own instance with its own config, so stop the system one if it is up.
if command -v apache2ctl >/dev/null 2>&1; then $SUDO apache2ctl stop >/dev/null 2>&1 || true; fi
echo "peers installed:"
for bin in gunicorn uwsgi apache2; do
  printf '  %-9s %s\n' "$bin" "$(command -v "$bin" || command -v "/usr/sbin/$bin" || echo absent)"
done
