#!/usr/bin/env bash
# Installs what the test suite needs from Debian's packages: redis-server and
# the Python stack the compatibility tests drive (Django, Channels,
# channels_redis, Daphne, simplejwt). Safe to run again: it installs only
# what is missing.
set -euo pipefail

packages=(
  redis-server
  python3-django
  python3-django-channels
  python3-channels-redis
  python3-daphne
  python3-djangorestframework-simplejwt
  python3-django-redis
  python3-msgpack
  python3-cryptography
  postgresql python3-psycopg2  # db session tests: a private server (testenv.StartPostgres) and Django's driver
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "test dependencies: all installed"
  exit 0
fi

echo "test dependencies: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged redis-server on 6379; the tests start their own
# on free ports and do not need it.
echo "test dependencies: installed"
