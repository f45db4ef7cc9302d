#!/usr/bin/env bash
# Unpacks the "current" Python stack (Django 5.2, channels 4.3,
# channels_redis 4.3, daphne 4.2, redis-py 6, simplejwt 5.5) from Debian
# unstable's packages into a private folder, without installing anything, so
# that the compatibility tests can run against it with Debian 12's
# /usr/bin/python3 through PYTHONPATH. See "Two Python stacks for
# compatibility tests" in the design notes.
#
#   scripts/install-current-stack.sh            # unpack once, then reuse
#   scripts/install-current-stack.sh --refresh  # fetch the newest again
#   SIDECAR_PYSTACK_DIR=/some/dir scripts/install-current-stack.sh
#
# apt runs with its own sources list, state, cache and an empty dpkg status
# under the target folder, so the system's package lists, cache and
# installed packages are left as they are. Only pure-Python packages are
# taken from unstable: its compiled modules are built for a newer Python, so
# the compiled dependencies (msgpack, cryptography, twisted, autobahn,
# zope.interface) stay those of Debian 12, installed by
# scripts/install-test-deps.sh. The last line printed is the PYTHONPATH.
set -euo pipefail

target="${SIDECAR_PYSTACK_DIR:-$HOME/.cache/channels-sidecar/pystack-current}"
suites="${SIDECAR_PYSTACK_SUITES:-sid}"
refresh=""
case "${1:-}" in
  "") ;;
  --refresh) refresh=1 ;;
  *) echo "usage: $0 [--refresh]" >&2; exit 2 ;;
esac

# Each package with the upstream series the tests expect; an empty series
# takes whatever unstable has. A series is matched against the upstream
# version (epoch and Debian revision stripped) as "series" or "series.*".
packages=(
  "python3-django 5.2"
  "python3-django-channels 4.3"
  "python3-channels-redis 4.3"
  "python3-daphne 4.2"
  "python3-redis 6"
  "python3-djangorestframework-simplejwt 5.5"
  "python3-djangorestframework "
  "python3-asgiref "
  "python3-sqlparse "
  "python3-jwt "
  "python3-async-timeout "
)

# The folder's usr/ is replaced wholesale, so it must never be the root.
case "$target" in
  /*) target=$(realpath -m -- "$target") ;;
  *) echo "target folder must be an absolute path: '$target'" >&2; exit 2 ;;
esac
if [ "$target" = / ]; then
  echo "refusing target folder /" >&2
  exit 2
fi

py=/usr/bin/python3
dist="$target/usr/lib/python3/dist-packages"
marker="$target/STACK"
aptdir="$target/apt"

log() { echo "current stack: $*" >&2; }

# verify imports the stack the way the tests do and prints its versions.
verify() {
  PYTHONPATH="$dist" PYTHONDONTWRITEBYTECODE=1 "$py" - "$dist" <<'EOF'
import os, sys
private = os.path.realpath(sys.argv[1])
import django, channels, channels_redis, daphne, redis, rest_framework, rest_framework_simplejwt, jwt, asgiref, msgpack
from importlib.metadata import version
mods = {
    "django": django, "channels": channels, "channels_redis": channels_redis,
    "daphne": daphne, "redis": redis, "rest_framework": rest_framework,
    "rest_framework_simplejwt": rest_framework_simplejwt, "jwt": jwt, "asgiref": asgiref,
}
for name, mod in mods.items():
    where = os.path.realpath(mod.__file__)
    if not where.startswith(private + os.sep):
        sys.exit(f"{name} was imported from {where}, not from {private}")
dists = {
    "django": "django", "channels": "channels", "channels_redis": "channels_redis",
    "daphne": "daphne", "redis": "redis", "rest_framework": "djangorestframework",
    "rest_framework_simplejwt": "djangorestframework_simplejwt", "jwt": "PyJWT", "asgiref": "asgiref",
}
for name, d in dists.items():
    v = getattr(mods[name], "__version__", None) or version(d)
    print(f"{name} {v}")
print(f"msgpack {'.'.join(map(str, msgpack.version))} (system)")
EOF
}

if [ -z "$refresh" ] && [ -f "$marker" ] && versions=$(verify 2>/dev/null); then
  log "already unpacked in $target"
  echo "$versions" >&2
  echo "PYTHONPATH=$dist"
  exit 0
fi

command -v apt-get >/dev/null || { echo "apt-get is needed" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "dpkg-deb is needed" >&2; exit 1; }
[ -x "$py" ] || { echo "$py is needed" >&2; exit 1; }
# The compiled dependencies come from Debian 12.
if ! "$py" -c 'import msgpack, cryptography, twisted, autobahn, zope.interface' 2>/dev/null; then
  echo "Debian 12's python3-msgpack, python3-cryptography and python3-daphne are needed: run scripts/install-test-deps.sh" >&2
  exit 1
fi

start=$(date +%s)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# Use the mirror the machine already uses for Debian itself.
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  mirror=$(awk '
    /^[[:space:]]*$/ { uri=""; deb=0; main=0; next }
    /^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) uri=$i }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /-security$/) main=1 }
    uri != "" && main { print uri; exit }
  ' "$f")
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\/debian\/\?\)[[:space:]].*/\2/p' | head -n 1)
fi
[ -n "$mirror" ] || { echo "no Debian mirror found in /etc/apt/sources.list{,.d}" >&2; exit 1; }
mirror="${mirror%/}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || { echo "$keyring is needed (package debian-archive-keyring)" >&2; exit 1; }

mkdir -p "$aptdir/etc/sources.list.d" "$aptdir/etc/preferences.d" \
  "$aptdir/state/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/debs"
: > "$aptdir/state/status"
{
  for s in $suites; do
    echo "deb [signed-by=$keyring] $mirror $s main"
  done
} > "$aptdir/etc/sources.list"
# The system's hooks (appstream refresh, docker cache cleaning) act on
# system state; clear them for this private apt.
cat > "$aptdir/etc/apt.conf" <<EOF
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
#clear DPkg::Pre-Invoke;
#clear DPkg::Post-Invoke;
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
EOF
apt_opts=(
  -c "$aptdir/etc/apt.conf"
  -o "Dir::Etc::SourceList=$aptdir/etc/sources.list"
  -o "Dir::Etc::SourceParts=$aptdir/etc/sources.list.d"
  -o "Dir::Etc::Preferences=$aptdir/etc/preferences"
  -o "Dir::Etc::PreferencesParts=$aptdir/etc/preferences.d"
  -o "Dir::State=$aptdir/state"
  -o "Dir::State::status=$aptdir/state/status"
  -o "Dir::Cache=$aptdir/cache"
  -o "Dir::Cache::pkgcache=$aptdir/cache/pkgcache.bin"
  -o "Dir::Cache::srcpkgcache=$aptdir/cache/srcpkgcache.bin"
  -o "Acquire::Languages=none"
  -o "APT::Get::List-Cleanup=true"
)
if [ "$(id -u)" -eq 0 ]; then
  # The _apt user may not be able to write into a folder under $HOME.
  apt_opts+=(-o "APT::Sandbox::User=root")
fi

log "apt-get update ($mirror, suites: $suites)"
apt-get "${apt_opts[@]}" -qq update

# pick prints the newest version of a package whose upstream version is in
# the wanted series.
pick() {
  local pkg=$1 series=$2
  apt-cache "${apt_opts[@]}" madison "$pkg" | awk -F'|' -v s="$series" '
    { v=$2; gsub(/[[:space:]]/, "", v); up=v; sub(/^[0-9]+:/, "", up); sub(/-[^-]*$/, "", up)
      if (s == "" || up == s || index(up, s ".") == 1) print v }' |
    sort -V -r | head -n 1
}

want=()
for entry in "${packages[@]}"; do
  read -r pkg series <<<"$entry"
  v=$(pick "$pkg" "${series:-}")
  if [ -z "$v" ]; then
    echo "no $pkg ${series:+in series $series }in suites $suites of $mirror" >&2
    apt-cache "${apt_opts[@]}" madison "$pkg" >&2 || true
    exit 1
  fi
  want+=("$pkg=$v")
done

rm -f "$marker"
rm -f "$aptdir"/debs/*.deb
log "apt-get download ${want[*]}"
(cd "$aptdir/debs" && apt-get "${apt_opts[@]}" -qq download "${want[@]}")
# The package lists take over 100 MB and --refresh fetches them again.
rm -rf "$aptdir/state/lists" "$aptdir/cache"

# Unpack into a fresh tree so that nothing from an older unpack lingers.
rm -rf "${target:?}/usr" "${target:?}/usr.new"
mkdir -p "$target/usr.new"
for deb in "$aptdir"/debs/*.deb; do
  arch=$(dpkg-deb -f "$deb" Architecture)
  if [ "$arch" != all ]; then
    echo "$(basename "$deb") is built for $arch; only pure-Python packages may come from unstable" >&2
    exit 1
  fi
  dpkg-deb -x "$deb" "$target/usr.new.x"
  cp -a "$target/usr.new.x/usr/." "$target/usr.new/"
  rm -rf "$target/usr.new.x"
done
so=$(find "$target/usr.new" -name '*.so' -o -name '*.so.*' | head -n 5)
if [ -n "$so" ]; then
  echo "compiled modules found in the unpacked packages (built for another Python):" >&2
  echo "$so" >&2
  exit 1
fi
mv "$target/usr.new" "$target/usr"

# Compile once so that tests do not each write __pycache__; a file that
# Python 3.11 cannot compile is reported, since it would fail on import.
if ! "$py" -m compileall -q -j 0 "$dist" >"$aptdir/compileall.log" 2>&1; then
  log "some files do not compile with $("$py" -V 2>&1):"
  grep -E 'File|Error' "$aptdir/compileall.log" | head -n 20 >&2 || true
fi

versions=$(verify)
{
  echo "# Unpacked by scripts/install-current-stack.sh on $started from $mirror ($suites)."
  echo "# Debian packages:"
  for w in "${want[@]}"; do echo "deb ${w%%=*} ${w#*=}"; done
  echo "# Python modules as imported by $py:"
  while IFS= read -r line; do echo "module $line"; done <<<"$versions"
} > "$marker.tmp"
mv "$marker.tmp" "$marker"

log "unpacked in $(( $(date +%s) - start ))s into $target"
echo "$versions" >&2
echo "PYTHONPATH=$dist"
