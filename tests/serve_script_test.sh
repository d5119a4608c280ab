#!/usr/bin/env bash
# serve_script_test.sh LEADSCORE_BIN -- scripts/serve.sh as a newcomer runs it,
# with the already-built binary (LEADSCORE_BIN: no apt, no build):
#   1. --help answers; a bad --port is a usage error (2);
#   2. on a free port it shows the demo (tracked events, the score), then
#      Ctrl-C (SIGINT) stops it and the server it started: no process left;
#   3. when a step fails (the demo cannot reach the server) it exits non-zero
#      with a clear message and stops the server too.
set -euo pipefail
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
serve=$src/scripts/serve.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/leadscore-serve-script-XXXXXX")
runner=""
# Processes whose command line names this test's data directories: the only
# servers this test can have started.
ours() { pgrep -f -- "$tmp/data" || true; }
cleanup() {
  [ -n "$runner" ] && kill -KILL "$runner" 2>/dev/null || true
  for p in $(ours); do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "serve_script: $*" >&2; for f in "$tmp"/*.out; do [ -e "$f" ] && { echo "--- $f"; cat "$f"; }; done >&2; exit 1; }
passed=0

# a port P with P+1 free too (serve.sh --port P puts the PULL socket on P+1)
free_port() {
  python3 - <<'PY'
import socket
for _ in range(200):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
PY
}
# waits up to $2 seconds for process $1 to end; its status in $rc
wait_for_exit() {
  for _ in $(seq $(($2 * 10))); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && return 1
  rc=0; wait "$1" || rc=$?
}

# 1. --help and usage errors
LEADSCORE_BIN=$bin "$serve" --help | grep -q -- '--port N' || fail "--help does not describe --port"
rc=0; LEADSCORE_BIN=$bin "$serve" --port nope >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "--port nope exited $rc, not 2"
passed=$((passed + 1))

# 2. the demo, then Ctrl-C.  Job control on, so the background job does not
# start with SIGINT ignored (as a non-interactive shell's jobs would).
set -m
port=$(free_port)
[ -n "$port" ] || fail "no free port pair"
LEADSCORE_BIN=$bin "$serve" --port "$port" --data "$tmp/data1" >"$tmp/run1.out" 2>&1 &
runner=$!
set +m
for _ in $(seq 300); do
  grep -q 'Ctrl-C to stop' "$tmp/run1.out" && break
  kill -0 "$runner" 2>/dev/null || fail "serve.sh ended before serving"
  sleep 0.1
done
grep -q 'Ctrl-C to stop' "$tmp/run1.out" || fail "no demo output within 30 s"
grep -q "serving on tcp://127.0.0.1:$port" "$tmp/run1.out" || fail "not serving on port $port"
grep -q 'accepted' "$tmp/run1.out" || fail "the demo's events were not tracked"
grep -q 'demo-visitor' "$tmp/run1.out" || fail "the demo printed no score"
"$bin" ping --connect "tcp://127.0.0.1:$port" --timeout 1000 >/dev/null || fail "the server does not answer"
[ -n "$(ours)" ] || fail "no server process found while serving"
# SIGINT to serve.sh alone (not its process group), so it is serve.sh's
# trap that has to stop the server
kill -INT "$runner"
wait_for_exit "$runner" 30 || fail "serve.sh still running 30 s after SIGINT"
runner=""
[ $rc = 130 ] || fail "serve.sh exited $rc after SIGINT, not 130"
for _ in $(seq 50); do [ -z "$(ours)" ] && break; sleep 0.1; done
[ -z "$(ours)" ] || fail "a server is left running after Ctrl-C: $(ours)"
! "$bin" ping --connect "tcp://127.0.0.1:$port" --timeout 300 >/dev/null 2>&1 || fail "something still answers on $port"
passed=$((passed + 1))

# 3. a failing step: the demo connects where nothing listens
port=$(free_port)
rc=0
LEADSCORE_BIN=$bin LEADSCORE_CONNECT=tcp://127.0.0.1:1 timeout 60 "$serve" --port "$port" --data "$tmp/data2" \
  >"$tmp/run2.out" 2>&1 || rc=$?
[ $rc != 0 ] && [ $rc != 124 ] || fail "serve.sh exited $rc when the demo could not reach the server"
grep -q 'serve.sh: leadscore serve did not answer' "$tmp/run2.out" || fail "no clear message for the failed step"
[ -z "$(ours)" ] || fail "a server is left running after a failed step: $(ours)"
passed=$((passed + 1))

echo "serve_script: $passed passed, 0 failed"
