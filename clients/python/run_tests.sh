#!/bin/sh
# Runs the Python client's tests against a real `leadscore serve`.
# Binary: $LEADSCORE_BIN, default build-dev/leadscore in this repository.
# Needs Debian's python3-zmq and python3-msgpack (apt-get install python3-zmq python3-msgpack).
set -eu
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 -m unittest -v clients/python/test_client.py
