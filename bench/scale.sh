#!/usr/bin/env bash
# scale.sh -- what a big store costs, in one go: for a small and a big
# customer base, the preload time, bytes per customer on disk, the serving
# process's memory, and the latency of a lone `score` next to a bare ZeroMQ
# echo measured in the same run.
#
#   bench/scale.sh [LEADSCORE_BIN] [BIG] [SMALL] [DIR] [SECONDS]
#
# defaults: build/leadscore 10M 100k /tmp/leadscore-scale 10
#
# Each store is DIR/<N>, preloaded by `leadscore bench --data` (synthetic
# customers with their event history, 4.3 events each) and kept for the
# next run: delete DIR to start over.  The store file is read once before
# the run so the figures are those of a warm page cache (on a machine with
# less RAM than the store, they are not).  The server runs as a process of
# its own (`leadscore serve`); the run starts once its automation has swept
# the store once after the start (that pass is timed too: it competes with
# requests), driven by `leadscore bench --connect` with one REQ client and
# --baseline.  Figures only: nothing is asserted.
set -euo pipefail
bin=$(readlink -f "${1:-build/leadscore}")
big=${2:-10M}
small=${3:-100k}
dir=${4:-/tmp/leadscore-scale}
secs=${5:-10}
mkdir -p "$dir"

count() { # 10M -> 10000000
    local n=${1%[kKmM]}
    case $1 in
        *[kK]) echo $((n * 1000)) ;;
        *[mM]) echo $((n * 1000000)) ;;
        *) echo "$1" ;;
    esac
}

free_port() {
    /usr/bin/env python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 20000))
}

# swept EP -> 1 once the server's automation has started a pass over the
# store and evaluated at least as many customers as the store holds
swept() {
    "$bin" stats --connect "$1" --json 2>/dev/null |
        /usr/bin/env python3 -c 'import json, sys; d = json.load(sys.stdin)
print(int(d.get("automation_sweeps", 0) >= 1 and d.get("automation_evaluations", 0) >= d.get("customers", 0)))' \
            2>/dev/null || echo 0
}

# wait_swept EP: until swept, at most 15 minutes
wait_swept() {
    for _ in $(seq 1 1800); do
        [ "$(swept "$1")" = 1 ] && return 0
        sleep 0.5
    done
}

# status_kib PID FIELD -> the field of /proc/PID/status in KiB
status_kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

measure() {
    local label=$1 n d store preload port pid out
    n=$(count "$label")
    d="$dir/$label"
    if [ ! -e "$d/data.mdb" ]; then
        printf 'preloading %s customers into %s ...\n' "$label" "$d" >&2
        out=$("$bin" bench --workload score --customers "$n" --data "$d" --duration 1 2>&1 >/dev/null) || true
        preload=$(printf '%s\n' "$out" | sed -n 's/^preloaded [0-9]* customers in \([0-9.]*\) s.*/\1/p' | tail -1)
        echo "${preload:-?}" > "$d/.preload_s"
    fi
    preload=$(cat "$d/.preload_s" 2>/dev/null || echo "?")
    store=$(stat -c %s "$d/data.mdb")
    cat "$d/data.mdb" > /dev/null # warm the page cache
    port=$(free_port)
    "$bin" serve --data "$d" --bind "tcp://127.0.0.1:$port" --pull none --log-level warn > /dev/null &
    pid=$!
    for _ in $(seq 1 100); do
        "$bin" ping --connect "tcp://127.0.0.1:$port" > /dev/null 2>&1 && break
        sleep 0.1
    done
    local t0 sweep
    t0=$(date +%s.%N)
    wait_swept "tcp://127.0.0.1:$port"
    sweep=$(echo "$(date +%s.%N) - $t0" | bc -l)
    out=$("$bin" bench --connect "tcp://127.0.0.1:$port" --workload score --clients 1 --inflight 1 \
        --duration "$secs" --baseline --quiet 2>&1)
    local rss anon
    rss=$(status_kib "$pid" VmRSS)
    anon=$(status_kib "$pid" RssAnon)
    kill "$pid"
    wait "$pid" || true
    local p50 p99
    p50=$(printf '%s\n' "$out" | awk '$1 == "p50" {printf "%s us (echo %s, %s)", $3, $4, $5}')
    p99=$(printf '%s\n' "$out" | awk '$1 == "p99" {printf "%s us (echo %s, %s)", $3, $4, $5}')
    printf '| %s | %s s | %d | %.0f s | %.0f MiB | %.1f MiB | %s | %s |\n' "$label" "$preload" $((store / n)) \
        "$sweep" "$(echo "$rss / 1024" | bc -l)" "$(echo "$anon / 1024" | bc -l)" "$p50" "$p99"
}

echo "| customers | preload | store bytes/customer | first sweep after start | serve RSS | of it outside the map | score p50 (echo, ratio) | score p99 (echo, ratio) |"
echo "|---|---|---|---|---|---|---|---|"
measure "$small"
measure "$big"
