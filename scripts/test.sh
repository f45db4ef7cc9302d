#!/usr/bin/env bash
# Runs the whole test suite: installs test dependencies, checks formatting
# and vet, runs every test with the race detector, then fuzzes each fuzz
# target briefly. With CI=true a missing dependency fails instead of
# skipping.
#
#   FUZZTIME=30s scripts/test.sh     # fuzz longer (default 5s per target)
#   SKIP_INSTALL=1 scripts/test.sh   # do not touch system packages
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SKIP_INSTALL:-}" ]; then
  scripts/install-test-deps.sh
  # The current Django/Channels stack, unpacked privately from Debian's
  # newest packages: compatibility tests run against it as well.
  scripts/install-current-stack.sh
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

echo "== fuzz (${FUZZTIME:-5s} per target)"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "-- $pkg $target"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="${FUZZTIME:-5s}" "$pkg" >/tmp/sidecar-fuzz.log 2>&1 || {
      cat /tmp/sidecar-fuzz.log; echo "fuzz target $target failed"; exit 1; }
  done
done
echo "== all checks passed"
