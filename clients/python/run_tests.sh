#!/bin/sh
# Installs the leadscore package offline into a throwaway venv and runs its
# tests (clients/python/tests) with that venv against a real `leadscore serve`.
#
# Binary: $LEADSCORE_BIN, default build-dev/leadscore in this repository.
# Needs Debian's python3-zmq python3-msgpack python3-setuptools python3-wheel
# python3-venv (scripts/deps.sh installs them).  No network is used:
#   python3 -m venv --system-site-packages DIR
#   DIR/bin/pip install --no-build-isolation --no-index ./clients/python
# LEADSCORE_PY_SOURCE=1 skips the install and tests the source tree instead.
set -eu
cd "$(dirname "$0")/../.."
REPO=$(pwd)
TESTS="$REPO/clients/python/tests"
PY=${LEADSCORE_PYTHON:-/usr/bin/python3}

if [ "${LEADSCORE_PY_SOURCE:-0}" = 1 ]; then
  cd "$TESTS"
  exec "$PY" -m unittest discover -v -s "$TESTS" -t "$TESTS"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/leadscore-py.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# Build from a copy: setuptools writes build/ and *.egg-info next to the
# sources, and concurrent runs must not share (or leave) them.
cp -R "$REPO/clients/python" "$TMP/src"
rm -rf "$TMP/src/build" "$TMP/src"/*.egg-info

"$PY" -m venv --system-site-packages "$TMP/venv"
PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
  "$TMP/venv/bin/pip" install -q --no-build-isolation --no-index "$TMP/src"

# From a directory without the sources, so `import leadscore` finds the venv's.
cd "$TMP"
LEADSCORE_EXPECT_INSTALLED=1 \
  "$TMP/venv/bin/python" -m unittest discover -v -s "$TESTS" -t "$TESTS"
