#!/usr/bin/env bash
# cluster.sh -- runs a whole leadscore cluster on this machine, over loopback
# only: three nats-server processes forming a JetStream cluster, `leadscore
# cluster init`, and N shard nodes (`leadscore serve --nats ...`).  Every
# process runs in the background with its config, command line, log and PID
# in one directory, so the cluster can be inspected, one process stopped and
# restarted (same ports, same config), and everything stopped again -- always
# by recorded PID, never by name.  Run with --help for the commands.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
NATS_COUNT=3          # nats-1..nats-3
STOP_GRACE=10         # seconds between SIGTERM and SIGKILL
PROC_WAIT=30          # seconds for one started process to answer
NATS_CLUSTER=lsc      # the NATS cluster (routes) name; the leadscore cluster name is --cluster

usage() {
  cat <<'EOF'
usage: scripts/cluster.sh up --dir D [--nodes N] [--partitions P] [--cluster NAME]
                             [--leadscore PATH] [--timeout SECS] [--keep] [--nats-only]
                             [-- SERVE-OPTIONS...]
       scripts/cluster.sh start NAME --dir D [--timeout SECS]
       scripts/cluster.sh stop NAME --dir D
       scripts/cluster.sh down --dir D
       scripts/cluster.sh status --dir D [--json]

Runs a leadscore cluster on 127.0.0.1: three nats-server processes (nats-1..nats-3,
one JetStream cluster) and N shard nodes (node1..nodeN), each in the background
with its files in directory D.

  up      starts the three nats-servers on free ports and waits for their JetStream
          meta leader, runs `leadscore cluster init`, starts the nodes (each on two
          free ports kept for its restarts) and waits until `cluster status` says
          ready.  D must not hold an earlier cluster.  On any failure it shows the
          logs and stops what it started (--keep leaves it running to look at).
            --nodes N        shard nodes (default 2)
            --partitions P   partitions (default 8)
            --cluster NAME   leadscore cluster name (default ls)
            --leadscore PATH the binary (default $LEADSCORE, else build/leadscore)
            --timeout SECS   how long to wait for "ready" (default 60)
            --nats-only      start and check the three nats-servers, nothing else
            -- SERVE-OPTIONS given to every node's `leadscore serve` (the nodes run
                             in D, so give file paths absolute)
  start   (re)starts one process, NAME = node1.. or nats-1..nats-3, with the command
          line and ports it had, and waits (--timeout, default 30 s) until it answers;
          a node whose port is still held is started again once a second meanwhile
  stop    stops one process: SIGTERM, then SIGKILL after 10 s
  down    stops every process of D, nodes first, then NATS (safe to run again)
  status  runs `leadscore cluster status` against the cluster (--json: its JSON)
  -h, --help  this text

Files in D: nats.urls, cluster.name, leadscore.path; for each process NAME:
NAME.cmd (its command line), NAME.pid, NAME.log; nats-<i>.conf and nats-<i>/
(JetStream store); node<k>.ep and node<k>.pull (its endpoints) and node<k>/ (--data).
nats-server comes from PATH, /usr/sbin or $NATS_SERVER; scripts/deps.sh installs it.
EOF
}

say() { printf 'cluster.sh: %s\n' "$*"; }
die() { printf 'cluster.sh: %s\n' "$*" >&2; exit 1; }
bad_usage() { printf 'cluster.sh: %s (see scripts/cluster.sh --help)\n' "$*" >&2; exit 2; }

# ---------------------------------------------------------------- arguments

CMD="" NAME="" D="" NODES=2 PARTITIONS=8 CLUSTER=ls LEADSCORE_OPT="" TIMEOUT="" JSON=0 KEEP=0
NATS_ONLY=0 SERVE_EXTRA=()

# Sets the globals above from the command line.
parse_args() {
  [ $# -gt 0 ] || { usage >&2; exit 2; }
  case $1 in
    -h|--help|help) usage; exit 0 ;;
    up|start|stop|down|status) CMD=$1; shift ;;
    *) bad_usage "unknown command \"$1\"" ;;
  esac
  local opt val
  while [ $# -gt 0 ]; do
    opt=$1
    case $opt in
      -h|--help) usage; exit 0 ;;
      --json) JSON=1; shift; continue ;;
      --keep) KEEP=1; shift; continue ;;
      --nats-only) NATS_ONLY=1; shift; continue ;;
      --) shift; SERVE_EXTRA=("$@"); break ;;
      --*=*) val=${opt#*=}; opt=${opt%%=*}; shift ;;
      --*) [ $# -ge 2 ] || bad_usage "$opt needs a value"; val=$2; shift 2 ;;
      *) [ -z "$NAME" ] || bad_usage "unexpected argument \"$opt\""; NAME=$opt; shift; continue ;;
    esac
    case $opt in
      --dir) D=$val ;;
      --nodes) NODES=$val ;;
      --partitions) PARTITIONS=$val ;;
      --cluster) CLUSTER=$val ;;
      --leadscore) LEADSCORE_OPT=$val ;;
      --timeout) TIMEOUT=$val ;;
      *) bad_usage "unknown option $opt" ;;
    esac
  done
  check_args
}

is_count() { case $1 in ''|*[!0-9]*|0*) return 1 ;; esac; }

# Checks that the options fit the command.
check_args() {
  [ -n "$D" ] || bad_usage "$CMD needs --dir D"
  case $CMD in
    start|stop) [ -n "$NAME" ] || bad_usage "$CMD needs a process name (node1.., nats-1..nats-$NATS_COUNT)" ;;
    *) [ -z "$NAME" ] || bad_usage "$CMD takes no name (got \"$NAME\")" ;;
  esac
  if [ "$CMD" != up ]; then
    [ ${#SERVE_EXTRA[@]} -eq 0 ] || bad_usage "only up takes -- SERVE-OPTIONS"
    [ $KEEP = 0 ] || bad_usage "--keep is an option of up"
    [ $NATS_ONLY = 0 ] || bad_usage "--nats-only is an option of up"
  fi
  [ $JSON = 0 ] || [ "$CMD" = status ] || bad_usage "--json is an option of status"
  is_count "$NODES" || bad_usage "--nodes needs a whole number from 1, not \"$NODES\""
  is_count "$PARTITIONS" || bad_usage "--partitions needs a whole number from 1, not \"$PARTITIONS\""
  [ -z "$TIMEOUT" ] || is_count "$TIMEOUT" || bad_usage "--timeout needs a number of seconds, not \"$TIMEOUT\""
  case $CLUSTER in ''|*[!A-Za-z0-9_-]*) bad_usage "--cluster takes letters, digits, _ and -, not \"$CLUSTER\"" ;; esac
}

# ---------------------------------------------------------------- small tools

have() { command -v "$1" >/dev/null 2>&1; }

# Absolute form of a path (it need not exist).
abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$PWD" "${1#./}" ;; esac; }

# Prints the nats-server to run, or fails saying how to install it.
find_nats_server() {
  local c
  for c in "${NATS_SERVER:-}" "$(command -v nats-server 2>/dev/null || true)" /usr/sbin/nats-server /usr/local/sbin/nats-server /usr/local/bin/nats-server; do
    [ -n "$c" ] && [ -x "$c" ] && { printf '%s\n' "$c"; return 0; }
  done
  die "nats-server is not installed: scripts/deps.sh installs it (Debian package nats-server), or set NATS_SERVER=PATH"
}

# Prints the leadscore binary for up: --leadscore, else $LEADSCORE, else the repo's build/leadscore.
choose_leadscore() {
  local bin
  if [ -n "$LEADSCORE_OPT" ]; then bin=$LEADSCORE_OPT
  elif [ -n "${LEADSCORE:-}" ]; then bin=$LEADSCORE
  else bin=$REPO/build/leadscore
  fi
  bin=$(abspath "$bin")
  [ -x "$bin" ] || die "no leadscore binary at $bin (build it with cmake, or give --leadscore PATH)"
  printf '%s\n' "$bin"
}

# Fails unless the binary has the cluster commands and was built with NATS.
check_leadscore_cluster() {
  local out
  out=$(timeout 10 "$1" cluster --help 2>&1) || true
  case $out in
    *"unknown command"*) die "$1 has no \`cluster\` command: rebuild it from a source tree with cluster mode" ;;
    *"without NATS"*) die "$1 was built without NATS: install libnats-dev (scripts/deps.sh does) and rebuild" ;;
  esac
}

# The leadscore binary `up` recorded in D.
recorded_leadscore() {
  [ -f "$D/leadscore.path" ] || die "$D/leadscore.path is missing: was this cluster started with --nats-only?"
  local bin; bin=$(<"$D/leadscore.path")
  [ -x "$bin" ] || die "the recorded leadscore binary $bin is gone"
  printf '%s\n' "$bin"
}

# Prints COUNT distinct free TCP ports on 127.0.0.1, space-separated.  They are
# taken below the kernel's ephemeral range, so an outgoing connection cannot
# take one of them between a process's stop and its restart.
free_ports() {
  if have python3; then
    python3 - "$1" <<'EOF'
import random, socket, sys
want = int(sys.argv[1])
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    low = 32768
candidates = list(range(10000, low)) if low > 12000 else []
random.shuffle(candidates)
held = []
def take(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return
    held.append(s)
for port in candidates:
    if len(held) == want:
        break
    take(port)
while len(held) < want:
    take(0)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
  else
    # No python3: probe random ports; nothing answering there means free.
    local ports=() p tries=0
    while [ ${#ports[@]} -lt "$1" ]; do
      tries=$((tries + 1)); [ $tries -lt 5000 ] || die "found no free ports on 127.0.0.1"
      p=$((10000 + RANDOM % 20000))
      case " ${ports[*]-} " in *" $p "*) continue ;; esac
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then ports+=("$p"); fi
    done
    echo "${ports[*]}"
  fi
}

# http_get PORT PATH: prints the body of http://127.0.0.1:PORT/PATH; fails unless
# the answer is 200 within 2 s.  Bypasses any proxy settings.
http_get() {
  if have python3; then
    python3 - "http://127.0.0.1:$1$2" <<'EOF' 2>/dev/null
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    sys.stdout.write(opener.open(sys.argv[1], timeout=2).read().decode())
except Exception:
    sys.exit(1)
EOF
  else
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c '
      exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
      printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$1" >&3
      IFS= read -r status <&3 || exit 1
      case $status in "HTTP/1."?" 200"*) ;; *) exit 1 ;; esac
      while IFS= read -r line <&3 && [ "${line%$'\''\r'\''}" != "" ]; do :; done
      cat <&3' "$1" "$2" 2>/dev/null
  fi
}

# ---------------------------------------------------------------- processes

# Names of D's processes that have a recorded command line: nodes (in number
# order), then nats-servers.
node_names() {
  local f n names=()
  for f in "$D"/node*.cmd; do
    [ -e "$f" ] || continue
    n=${f##*/}; n=${n%.cmd}
    is_node_name "$n" && names+=("$n")
  done
  [ ${#names[@]} -eq 0 ] || printf '%s\n' "${names[@]}" | sort -V
}
is_node_name() { case ${1#node} in "$1"|''|0*|*[!0-9]*) return 1 ;; esac; }
nats_names() { local i; for i in $(seq "$NATS_COUNT"); do [ -e "$D/nats-$i.cmd" ] && echo "nats-$i"; done; return 0; }

# check_name NAME: fails unless NAME is one of D's processes.
check_name() {
  case $1 in
    nats-[1-$NATS_COUNT]) ;;
    *) is_node_name "$1" || bad_usage "\"$1\" is not a process name (node1.., nats-1..nats-$NATS_COUNT)" ;;
  esac
  [ -f "$D/$1.cmd" ] || die "$D has no process $1 (no $D/$1.cmd)"
}

# quote ARG: ARG as one shell word (single-quoted unless plainly safe).
quote() {
  case $1 in
    '' | *[!A-Za-z0-9_@%+=:,./-]*) printf "'%s'" "${1//\'/\'\\\'\'}" ;;
    *) printf '%s' "$1" ;;
  esac
}

# write_cmd NAME ARGV...: records a process's command line, shell-quoted, in D/NAME.cmd.
write_cmd() {
  local name=$1 arg line=""; shift
  for arg in "$@"; do line+="${line:+ }$(quote "$arg")"; done
  printf '%s\n' "$line" >"$D/$name.cmd"
}

# read_cmd NAME: sets the array ARGV from D/NAME.cmd.
read_cmd() {
  local line; line=$(<"$D/$1.cmd")
  eval "ARGV=($line)"
}

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/stat" ] || return 0
  local stat; stat=$(<"/proc/$1/stat") || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# pid_of NAME: prints the PID of D's process NAME when it runs.  A PID is only
# trusted when that process's arguments name this process's own file in D
# (its --data dir or its .conf), so a reused PID is never taken for ours.
pid_of() {
  local f=$D/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(<"$f")
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  pid_alive "$pid" || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -e "$D/$1" -e "$D/$1.conf" || return 1
  fi
  printf '%s\n' "$pid"
}

# launch NAME: starts D/NAME.cmd in the background, in its own session (a Ctrl-C
# or a closed terminal does not reach it), in directory D, output appended to
# D/NAME.log, PID in D/NAME.pid.
launch() {
  local name=$1 pidf=$D/$1.pid log=$D/$1.log detach=()
  read_cmd "$name"
  have "${ARGV[0]}" || die "cannot start $name: ${ARGV[0]} (from $D/$name.cmd) is not an executable"
  rm -f "$pidf"
  if have setsid; then detach=(setsid); else detach=(nohup); fi
  printf '=== %s cluster.sh: starting %s\n' "$(date '+%F %T')" "$name" >>"$log"
  # The child writes its own PID (then execs), which stays right even if setsid forks.
  # shellcheck disable=SC2016 # expanded by the inner bash
  (cd "$D" && exec "${detach[@]}" bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' \
      "$pidf" "${ARGV[@]}") </dev/null >>"$log" 2>&1 &
  local i
  for i in $(seq 50); do [ -s "$pidf" ] && break; sleep 0.1; done
  [ -s "$pidf" ] || die "$name did not start within 5 s: see $log"
}

# stop_all NAME...: SIGTERM to every running one, SIGKILL to those still running
# STOP_GRACE seconds later.  Removes their PID files.
stop_all() {
  local name pid names=() pids=() left i
  for name in "$@"; do
    if pid=$(pid_of "$name"); then
      kill -TERM "$pid" 2>/dev/null || true
      names+=("$name"); pids+=("$pid")
      say "stopping $name (pid $pid)"
    else
      say "$name is not running"
      rm -f "$D/$name.pid"
    fi
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for _ in $(seq $((STOP_GRACE * 10))); do
    left=0
    for pid in "${pids[@]}"; do pid_alive "$pid" && left=1; done
    [ $left = 1 ] || break
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    if pid_alive "${pids[$i]}"; then
      say "${names[$i]} (pid ${pids[$i]}) still runs after ${STOP_GRACE} s: SIGKILL"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
  done
  for i in "${!pids[@]}"; do
    for _ in $(seq 50); do pid_alive "${pids[$i]}" || break; sleep 0.1; done
    pid_alive "${pids[$i]}" && die "${names[$i]} (pid ${pids[$i]}) survived SIGKILL"
    rm -f "$D/${names[$i]}.pid"
  done
}

# running_list: "name (pid N)" for every running process of D, one per line.
running_list() {
  local name pid
  for name in $(node_names) $(nats_names); do
    if pid=$(pid_of "$name"); then echo "$name (pid $pid)"; fi
  done
}

# log_tail NAME...: the last lines of each one's log, indented (fewer of a
# nats-server's, which are mostly route chatter).
log_tail() {
  local name lines
  for name in "$@"; do
    [ -f "$D/$name.log" ] || continue
    case $name in nats-*) lines=6 ;; *) lines=20 ;; esac
    printf -- '--- last lines of %s\n' "$D/$name.log" >&2
    tail -n "$lines" "$D/$name.log" | sed 's/^/    /' >&2
  done
}

# log_tail_all: log_tail of every process of D.
log_tail_all() {
  local names
  mapfile -t names < <(node_names; nats_names)
  [ ${#names[@]} -eq 0 ] || log_tail "${names[@]}"
}

# ---------------------------------------------------------------- NATS

# nats_http_port I: the monitoring port in D/nats-I.conf.
nats_http_port() { sed -n 's/^http: *127\.0\.0\.1:\([0-9]*\).*/\1/p' "$D/nats-$1.conf"; }

# write_nats_conf I CLIENT ROUTE HTTP ROUTE-PORT...: D/nats-I.conf.
write_nats_conf() {
  local i=$1 client=$2 route=$3 http=$4; shift 4
  local routes=() p
  for p in "$@"; do routes+=("nats-route://127.0.0.1:$p"); done
  mkdir -p "$D/nats-$i"
  cat >"$D/nats-$i.conf" <<EOF
# written by scripts/cluster.sh: nats-$i of a loopback JetStream cluster
server_name: nats-$i
listen: 127.0.0.1:$client
http: 127.0.0.1:$http
jetstream {
  store_dir: "$D/nats-$i"
  max_memory_store: 256MB
  max_file_store: 4GB
}
cluster {
  name: $NATS_CLUSTER
  listen: 127.0.0.1:$route
  routes: [
$(printf '    %s\n' "${routes[@]}")
  ]
}
EOF
}

# wait_nats I DEADLINE PATH: until http://127.0.0.1:<its monitoring port>PATH
# answers 200; fails when the process exits or at DEADLINE (seconds since the
# epoch).  /healthz only answers 200 once JetStream is in touch with a meta
# leader, i.e. once a majority of the nats-servers runs; /varz at once.
wait_nats() {
  local name=nats-$1 port; port=$(nats_http_port "$1")
  [ -n "$port" ] || die "no http port in $D/$name.conf"
  until http_get "$port" "$3" >/dev/null; do
    pid_of "$name" >/dev/null || { log_tail "$name"; die "$name exited while starting: see $D/$name.log"; }
    [ "$(date +%s)" -lt "$2" ] || { log_tail "$name"; die "$name (still running) did not answer 200 on http://127.0.0.1:$port$3 in time"; }
    sleep 0.2
  done
}

# nats_running: how many of nats-1..nats-3 run.
nats_running() {
  local i n=0
  for i in $(seq "$NATS_COUNT"); do pid_of "nats-$i" >/dev/null && n=$((n + 1)); done
  echo "$n"
}

# meta_leader: prints the JetStream meta leader's name seen by the first
# running nats-server that knows one; fails if none does.
meta_leader() {
  local i port body leader
  for i in $(seq "$NATS_COUNT"); do
    pid_of "nats-$i" >/dev/null || continue
    port=$(nats_http_port "$i")
    body=$(http_get "$port" /jsz) || continue
    leader=$(printf '%s\n' "$body" | sed -n 's/.*"leader": *"\([^"]*\)".*/\1/p' | head -n 1)
    [ -n "$leader" ] && { printf '%s\n' "$leader"; return 0; }
  done
  return 1
}

# start_nats: writes the configs of nats-1..3 on free ports, starts them, waits
# for /healthz and a meta leader, writes D/nats.urls.
start_nats() {
  local nats_bin ports clients=() routes=() https=() i urls=() leader deadline
  nats_bin=$(find_nats_server)
  ports=$(free_ports $((NATS_COUNT * 3)))
  read -ra ports <<<"$ports"
  for i in $(seq 0 $((NATS_COUNT - 1))); do
    clients+=("${ports[$((i * 3))]}"); routes+=("${ports[$((i * 3 + 1))]}"); https+=("${ports[$((i * 3 + 2))]}")
  done
  for i in $(seq "$NATS_COUNT"); do
    write_nats_conf "$i" "${clients[$((i - 1))]}" "${routes[$((i - 1))]}" "${https[$((i - 1))]}" "${routes[@]}"
    write_cmd "nats-$i" "$nats_bin" -c "$D/nats-$i.conf"
    urls+=("nats://127.0.0.1:${clients[$((i - 1))]}")
  done
  for i in $(seq "$NATS_COUNT"); do
    launch "nats-$i"
    STARTED+=("nats-$i")
  done
  say "started nats-1..nats-$NATS_COUNT (client ports ${clients[*]}); waiting for them…"
  deadline=$(( $(date +%s) + PROC_WAIT ))
  for i in $(seq "$NATS_COUNT"); do wait_nats "$i" "$deadline" /healthz; done
  until leader=$(meta_leader); do
    [ "$(date +%s)" -lt "$deadline" ] || { log_tail_all; die "the nats-servers elected no JetStream meta leader within ${PROC_WAIT} s"; }
    sleep 0.2
  done
  (IFS=,; echo "${urls[*]}") >"$D/nats.urls"
  say "NATS ready: JetStream meta leader $leader; URLs in $D/nats.urls"
}

# ---------------------------------------------------------------- nodes

# node_ep NAME: the node's request endpoint.
node_ep() { cat "$D/$1.ep"; }

# write_node NAME BIN REQ-PORT PULL-PORT: the node's data dir, endpoint files and command line.
write_node() {
  local name=$1 bin=$2 urls; urls=$(<"$D/nats.urls")
  mkdir -p "$D/$name"
  echo "tcp://127.0.0.1:$3" >"$D/$name.ep"
  echo "tcp://127.0.0.1:$4" >"$D/$name.pull"
  write_cmd "$name" "$bin" serve --nats "$urls" --node "$name" --cluster "$CLUSTER" \
    --data "$D/$name" --bind "tcp://127.0.0.1:$3" --pull "tcp://127.0.0.1:$4" \
    ${SERVE_EXTRA[@]+"${SERVE_EXTRA[@]}"}
}

# node_answers NAME DEADLINE: 0 once the node answers a ping, 1 when it exits
# first; fails at DEADLINE.
node_answers() {
  local name=$1 bin ep; bin=$(recorded_leadscore); ep=$(node_ep "$name")
  until timeout 5 "$bin" ping --connect "$ep" --timeout 500 >/dev/null 2>&1; do
    pid_of "$name" >/dev/null || return 1
    [ "$(date +%s)" -lt "$2" ] || { log_tail "$name"; die "$name (still running) did not answer on $ep in time"; }
    sleep 0.2
  done
}

# wait_node NAME DEADLINE: until the node answers a ping; fails when it exits or at DEADLINE.
wait_node() {
  node_answers "$1" "$2" || { log_tail "$1"; die "$1 exited while starting: see $D/$1.log"; }
}

# restart_node NAME DEADLINE: launches the node and waits until it answers.
# A node restarted on its ports may find one of them still held for a moment
# (the sockets of a killed process close only once the kernel has torn it
# down): while it exits with "Address already in use" it is started again,
# once a second, until DEADLINE; what holds the port is logged each time.
restart_node() {
  local name=$1 deadline=$2
  launch "$name"
  say "started $name (pid $(<"$D/$name.pid")); waiting for it to answer…"
  until node_answers "$name" "$deadline"; do
    if ! tail -n 1 "$D/$name.log" | grep -q "Address already in use" || [ "$(date +%s)" -ge "$deadline" ]; then
      log_tail "$name"
      die "$name exited while starting: see $D/$name.log"
    fi
    { printf '=== %s cluster.sh: a port of %s is still held:\n' "$(date '+%F %T')" "$name"
      if have ss; then ss -tanp 2>/dev/null | grep -F -e ":$(port_of "$D/$name.ep") " -e ":$(port_of "$D/$name.pull") " || true; fi
    } >>"$D/$name.log"
    sleep 1
    launch "$name"
  done
}

# port_of FILE: the port of the endpoint tcp://HOST:PORT in FILE.
port_of() { sed 's/.*://' "$1"; }

# cluster_status [--json]: `leadscore cluster status` for D's cluster.
cluster_status() {
  local bin; bin=$(recorded_leadscore)
  if [ ! -f "$D/nats.urls" ] || [ ! -f "$D/cluster.name" ]; then
    die "$D holds no cluster (no nats.urls or cluster.name)"
  fi
  [ "$(nats_running)" -gt 0 ] ||
    die "no nats-server of $D runs: scripts/cluster.sh start nats-1 --dir $D (and nats-2, nats-3) starts them again"
  local rc=0
  timeout 15 "$bin" cluster status --nats "$(<"$D/nats.urls")" --cluster "$(<"$D/cluster.name")" "$@" || rc=$?
  [ $rc != 124 ] || die "leadscore cluster status did not answer within 15 s (is a majority of nats-1..nats-3 running?)"
  return $rc
}

# ready_summary: reads status JSON on stdin, prints "K/P partitions caught up, live: ...".
ready_summary() {
  have python3 || { echo "not ready yet"; return 0; }
  python3 -c '
import json, sys
try:
    s = json.load(sys.stdin)
except ValueError:
    print("no status yet"); sys.exit(0)
nodes = s.get("nodes") or {}
live = sorted(n for n, v in nodes.items() if v.get("live"))
parts = s.get("parts") or []
ok = sum(1 for p in parts if p.get("owner") in live
         and (p.get("applied") or {}).get(p.get("owner")) == p.get("last_seq"))
print("%d/%d partitions caught up, live nodes: %s" % (ok, len(parts), " ".join(live) or "none"))
' 2>/dev/null || echo "status unreadable"
}

# wait_ready SECS: until `cluster status --json` says "ready": true, with a
# progress line every 5 s; on timeout shows the last status and the logs.
wait_ready() {
  local secs=$1 start now out="" next
  start=$(date +%s); next=$((start + 5))
  while :; do
    out=$(cluster_status --json 2>&1) || true
    printf '%s' "$out" | grep -Eq '"ready"[[:space:]]*:[[:space:]]*true' && return 0
    now=$(date +%s)
    if [ "$now" -ge $((start + secs)) ]; then
      printf 'cluster.sh: the cluster was not ready after %s s; last status:\n%s\n' "$secs" "$out" >&2
      log_tail_all
      die "not ready within $secs s (--timeout SECS waits longer)"
    fi
    if [ "$now" -ge "$next" ]; then
      say "waiting for ready ($((now - start)) s): $(printf '%s' "$out" | ready_summary)"
      next=$((now + 5))
    fi
    sleep 1
  done
}

# ---------------------------------------------------------------- commands

STARTED=()      # processes `up` started, stopped again if it fails
UP_DONE=0

# On a failed or interrupted up: stop what it started, unless --keep.
up_cleanup() {
  [ $UP_DONE = 0 ] && [ ${#STARTED[@]} -gt 0 ] || return 0
  if [ $KEEP = 1 ]; then
    say "--keep: leaving ${STARTED[*]} running; scripts/cluster.sh down --dir $D stops them" >&2
    return 0
  fi
  say "up did not finish: stopping what it started (logs stay in $D)" >&2
  local nodes=() nats=() n
  for n in "${STARTED[@]}"; do case $n in node*) nodes+=("$n") ;; *) nats+=("$n") ;; esac; done
  [ ${#nodes[@]} -eq 0 ] || stop_all "${nodes[@]}" >&2 || true
  [ ${#nats[@]} -eq 0 ] || stop_all "${nats[@]}" >&2 || true
}

# Fails if D has running processes or the files of an earlier cluster.
check_dir_free() {
  local running; running=$(running_list)
  [ -z "$running" ] || die "$D has running processes: $(echo "$running" | paste -sd, - | sed 's/,/, /g'); scripts/cluster.sh down --dir $D stops them"
  if [ -e "$D/nats.urls" ] || [ -e "$D/nats-1.cmd" ] || [ -n "$(node_names)" ]; then
    die "$D holds the files of an earlier cluster (its JetStream stores would clash with a new one): remove it or choose another --dir (scripts/cluster.sh start NAME restarts its processes)"
  fi
}

cmd_up() {
  local bin="" i k ports deadline secs=${TIMEOUT:-60}
  if [ -d "$D" ]; then D=$(cd "$D" && pwd -P); else D=$(abspath "$D"); fi
  case $D in *[\"\\$'\n']*) die "--dir: a path with a double quote, backslash or newline cannot go into a nats-server config" ;; esac
  check_dir_free
  if [ $NATS_ONLY = 0 ]; then
    bin=$(choose_leadscore)
    check_leadscore_cluster "$bin"
  fi
  find_nats_server >/dev/null
  mkdir -p "$D"
  D=$(cd "$D" && pwd -P)
  trap up_cleanup EXIT
  trap 'echo >&2; exit 130' INT
  trap 'exit 143' TERM
  echo "$CLUSTER" >"$D/cluster.name"
  [ -z "$bin" ] || echo "$bin" >"$D/leadscore.path"

  start_nats
  if [ $NATS_ONLY = 1 ]; then UP_DONE=1; say "--nats-only: done"; return 0; fi

  say "leadscore cluster init: $PARTITIONS partitions over $NODES nodes, cluster $CLUSTER…"
  timeout 90 "$bin" cluster init --nats "$(<"$D/nats.urls")" --partitions "$PARTITIONS" \
      --nodes "$(for k in $(seq "$NODES"); do printf 'node%s\n' "$k"; done | paste -sd, -)" \
      --cluster "$CLUSTER" ||
    die "leadscore cluster init failed (see its message above; the nats-server logs are $D/nats-*.log)"

  ports=$(free_ports $((NODES * 2)))
  read -ra ports <<<"$ports"
  for k in $(seq "$NODES"); do
    write_node "node$k" "$bin" "${ports[$(((k - 1) * 2))]}" "${ports[$(((k - 1) * 2 + 1))]}"
    launch "node$k"
    STARTED+=("node$k")
  done
  say "started node1..node$NODES; waiting for them to answer…"
  deadline=$(( $(date +%s) + PROC_WAIT ))
  for k in $(seq "$NODES"); do wait_node "node$k" "$deadline"; done
  say "waiting (at most $secs s) until every partition is ready…"
  wait_ready "$secs"
  UP_DONE=1
  say "cluster $CLUSTER is ready:"
  for k in $(seq "$NODES"); do say "  node$k  $(node_ep "node$k")  (pull $(<"$D/node$k.pull"), pid $(<"$D/node$k.pid"))"; done
  say "NATS: $(<"$D/nats.urls")"
  say "scripts/cluster.sh status --dir $D shows the partitions; scripts/cluster.sh down --dir $D stops it all"
}

cmd_start() {
  local pid secs=${TIMEOUT:-$PROC_WAIT}
  check_name "$NAME"
  if pid=$(pid_of "$NAME"); then say "$NAME is already running (pid $pid)"; return 0; fi
  case $NAME in
    nats-*)
      launch "$NAME"
      say "started $NAME (pid $(<"$D/$NAME.pid")); waiting for it to answer…"
      if [ "$(nats_running)" -gt $((NATS_COUNT / 2)) ]; then
        wait_nats "${NAME#nats-}" $(( $(date +%s) + secs )) /healthz
      else
        wait_nats "${NAME#nats-}" $(( $(date +%s) + secs )) /varz
        say "note: $(nats_running) of $NATS_COUNT nats-servers run; JetStream works again once a majority does"
      fi ;;
    *) restart_node "$NAME" $(( $(date +%s) + secs )) ;;
  esac
  say "$NAME answers"
}

cmd_stop() {
  check_name "$NAME"
  stop_all "$NAME"
}

cmd_down() {
  local nodes nats
  nodes=$(node_names); nats=$(nats_names)
  [ -n "$nodes$nats" ] || { say "$D holds no cluster processes: nothing to stop"; return 0; }
  # shellcheck disable=SC2086 # names have no spaces
  [ -z "$nodes" ] || stop_all $nodes
  # shellcheck disable=SC2086
  [ -z "$nats" ] || stop_all $nats
  say "all stopped (files stay in $D)"
}

cmd_status() {
  if [ $JSON = 1 ]; then cluster_status --json; else cluster_status; fi
}

main() {
  parse_args "$@"
  if [ "$CMD" != up ]; then
    [ -d "$D" ] || { [ "$CMD" = down ] && { say "$D does not exist: nothing to stop"; exit 0; }; die "no directory $D"; }
    D=$(cd "$D" && pwd -P)
  fi
  "cmd_$CMD"
}

main "$@"
