#!/usr/bin/env bash
# serve.sh -- the README's first command: installs what is missing, builds
# leadscore, starts `leadscore serve` on its defaults (data in
# ./leadscore-data, model models/default.json, tcp://127.0.0.1:5555 and
# :5556), shows it working with two events and one score, and keeps serving
# until Ctrl-C.  Run with --help for the options.
#
# It prints one short line per step; the output of apt-get and CMake goes to
# build/serve.log, whose path (and last lines) it prints when a step fails.
# However it ends -- Ctrl-C, a failed step, a failed demo -- it stops the
# server it started: it never leaves one running behind.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
usage: scripts/serve.sh [--port N | --bind EP] [SERVE-OPTIONS...]

Installs the build dependencies when any is missing, builds build/leadscore
when it is not up to date, starts `leadscore serve`, sends a demo visitor's
two events, prints its score with the explanation, and serves until Ctrl-C.

  --port N     serve requests on tcp://127.0.0.1:N (and fire-and-forget
               events on N+1, unless you give --pull)
  --bind EP    serve requests on the ZeroMQ endpoint EP, e.g.
               tcp://0.0.0.0:5555 (the demo connects over loopback)
  -h, --help   this text

Any other option goes to `leadscore serve` (see `build/leadscore serve --help`),
e.g. --data DIR, --pull none, --metrics 127.0.0.1:9100.

Environment: LEADSCORE_BIN=PATH uses that binary and skips the install and
build steps; LEADSCORE_CONNECT=EP is where the demo connects.
EOF
}

say() { printf 'leadscore: %s\n' "$*"; }
die() { printf 'serve.sh: %s\n' "$*" >&2; exit 1; }

port="" bind="" serve_args=() has_pull=0
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --port) [ $# -ge 2 ] || { usage >&2; exit 2; }; port=$2; shift 2 ;;
    --port=*) port=${1#--port=}; shift ;;
    --bind) [ $# -ge 2 ] || { usage >&2; exit 2; }; bind=$2; shift 2 ;;
    --bind=*) bind=${1#--bind=}; shift ;;
    --pull|--pull=*) has_pull=1; serve_args+=("$1"); shift ;;
    --) shift; serve_args+=("$@"); for a in "$@"; do case $a in --pull|--pull=*) has_pull=1 ;; esac; done; break ;;
    *) serve_args+=("$1"); shift ;;
  esac
done
if [ -n "$port" ]; then
  [ -z "$bind" ] || { echo "serve.sh: give --port or --bind, not both" >&2; exit 2; }
  case $port in ''|*[!0-9]*) echo "serve.sh: --port needs a number from 1 to 65534, not \"$port\"" >&2; exit 2 ;; esac
  [ "$port" -ge 1 ] && [ "$port" -le 65534 ] || { echo "serve.sh: --port needs a number from 1 to 65534" >&2; exit 2; }
  bind=tcp://127.0.0.1:$port
  [ $has_pull = 1 ] || serve_args+=(--pull "tcp://127.0.0.1:$((port + 1))")
fi
bind=${bind:-tcp://127.0.0.1:5555}

# Where the demo connects: a wildcard host is reached over loopback.
connect=$bind
case $bind in
  tcp://\*:*|tcp://0.0.0.0:*) connect=tcp://127.0.0.1:${bind##*:} ;;
esac
case $connect in
  tcp://*:\*) echo "serve.sh: the demo needs a fixed port (--bind $bind picks a random one)" >&2; exit 2 ;;
esac
connect=${LEADSCORE_CONNECT:-$connect}

# ---- dependencies and build (skipped with LEADSCORE_BIN) ----
log=$PWD/build/serve.log
# Runs "$@" with its output in the log; on failure shows where to look.
step() {
  local what=$1; shift
  if ! "$@" >>"$log" 2>&1; then
    echo >&2
    tail -n 15 "$log" | sed 's/^/    /' >&2
    die "$what failed; the full output is in $log"
  fi
}
deps_present() {
  command -v cmake >/dev/null && command -v cc >/dev/null && command -v make >/dev/null &&
    command -v pkg-config >/dev/null &&
    pkg-config --exists libzmq msgpack lmdb jansson zlib libmicrohttpd 2>/dev/null
}
# build/leadscore is up to date when no source, header, model or build file is newer.
build_current() {
  [ -x build/leadscore ] && [ -f build/CMakeCache.txt ] &&
    [ -z "$(find CMakeLists.txt cmake src include models -newer build/leadscore -print -quit 2>/dev/null)" ]
}

if [ -n "${LEADSCORE_BIN:-}" ]; then
  bin=$LEADSCORE_BIN
  [ -x "$bin" ] || die "LEADSCORE_BIN=$bin is not an executable"
else
  bin=build/leadscore
  mkdir -p build
  : >"$log"
  if ! deps_present; then
    say "installing build dependencies… (apt-get; sudo may ask for your password)"
    step "installing the dependencies" scripts/deps.sh
  fi
  if [ ! -f build/CMakeCache.txt ]; then
    say "configuring…"
    step "configuring" cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLEADSCORE_TESTS=OFF
  fi
  if build_current; then
    say "build/leadscore is up to date"
  else
    say "building… (about a minute)"
    step "building" cmake --build build -j"$(nproc)" --target leadscore
    say "built build/leadscore"
  fi
fi

# ---- the server: whatever happens from here on, it is stopped ----
server=""
stop_server() {
  [ -n "$server" ] || return 0
  if kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    # it drains pending batches first; give it 30 s, then no more
    for _ in $(seq 300); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$server" 2>/dev/null && kill -KILL "$server" 2>/dev/null || true
  fi
  wait "$server" 2>/dev/null || true
  server=""
}
trap stop_server EXIT
trap 'echo; say "stopping…"; exit 130' INT
trap 'exit 143' TERM

say "starting leadscore serve on $bind…"
"$bin" serve --bind "$bind" ${serve_args[@]+"${serve_args[@]}"} &
server=$!

answered=0
for _ in $(seq 50); do
  if "$bin" ping --connect "$connect" --timeout 200 >/dev/null 2>&1; then answered=1; break; fi
  if ! kill -0 "$server" 2>/dev/null; then
    status=0; wait "$server" || status=$?; server=""
    die "leadscore serve exited (status $status) before answering: see its message above"
  fi
  sleep 0.1
done
[ $answered = 1 ] || die "leadscore serve did not answer on $connect within 15 s; stopping it"

demo_failed() { die "the demo failed ($1): see the message above; stopping the server"; }
echo
echo "== demo: a visitor browses running shoes and puts a pair in the cart"
"$bin" track --connect "$connect" demo-visitor product_view category=shoes/running session=demo || demo_failed "track"
"$bin" track --connect "$connect" demo-visitor add_to_cart price=89.90 category=shoes/running session=demo ||
  demo_failed "track"
echo "== demo: how ready to buy is demo-visitor?"
"$bin" score --connect "$connect" --explain demo-visitor || demo_failed "score"
echo
say "serving on $connect (Ctrl-C to stop)"
status=0
wait "$server" || status=$?
server=""
[ $status = 0 ] || die "leadscore serve stopped with status $status: see its messages above"
say "leadscore serve stopped"
