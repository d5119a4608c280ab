#!/usr/bin/env bash
# flood.sh -- what a fire-and-forget flood does to a storefront's
# acknowledged writes, in one go: the latency of an acked `track` (one REQ
# client, one event a request) alone, then the same while a tracker floods
# the PULL socket as fast as the server takes it, with the ratio, and the
# flood's own rate.
#
#   bench/flood.sh [LEADSCORE_BIN] [SECONDS] [CUSTOMERS] [SERVE_OPTION...]
#
# defaults: build/leadscore 8 100000; e.g. `bench/flood.sh build/leadscore
# 8 100000 --pull-max-events 1000` tries another trade between ack latency
# and PULL throughput (README, "How it works").
#
# One `leadscore serve` process of its own on a fresh temporary store,
# loopback ports picked free; `leadscore bench --connect` drives it.  The
# flood starts 3 s before the acked run and ends 3 s after it.  The
# flood's "events missing" is negative by the acked events (they land on
# the same server): only its landed/s is used.  Figures only: nothing is
# asserted (test_e2e checks the ordering itself).
set -euo pipefail
bin=$(readlink -f "${1:-build/leadscore}")
secs=${2:-8}
customers=${3:-100000}
shift $(($# < 3 ? $# : 3))
dir=$(mktemp -d /tmp/leadscore-flood-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
    /usr/bin/env python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 20000))
}

port=$(free_port)
pull=$(free_port)
ep="tcp://127.0.0.1:$port"
"$bin" serve --data "$dir/data" --bind "$ep" --pull "tcp://127.0.0.1:$pull" --log-level warn "$@" > /dev/null &
pid=$!
for _ in $(seq 1 100); do
    "$bin" ping --connect "$ep" > /dev/null 2>&1 && break
    sleep 0.1
done

# acked EP SEED -> "p50 p99 req/s" of one REQ client tracking one event a request
acked() {
    "$bin" bench --connect "$1" --workload track --clients 1 --batch 1 --duration "$secs" \
        --customers "$customers" --seed "$2" --quiet 2>&1 |
        awk '$1 == "p50" {p50 = $3} $1 == "p99" {p99 = $3} $1 == "req/s" {r = $2} END {print p50, p99, r}'
}

read -r a50 a99 arate <<< "$(acked "$ep" 1)"
"$bin" bench --connect "$ep" --pull "tcp://127.0.0.1:$pull" --workload pull --batch 100 \
    --duration $((secs + 6)) --customers "$customers" --quiet > "$dir/pull.txt" 2>&1 &
flood=$!
sleep 3
read -r f50 f99 frate <<< "$(acked "$ep" 2)"
wait "$flood" || true
landed=$(awk '$1 == "events" && $2 == "landed/s" {print $3}' "$dir/pull.txt")

echo "| acked track, 1 REQ client × 1 event | alone | during a PULL flood | ratio |"
echo "|---|---|---|---|"
printf '| p50 (us) | %s | %s | %.1f |\n' "$a50" "$f50" "$(echo "$f50 / $a50" | bc -l)"
printf '| p99 (us) | %s | %s | %.1f |\n' "$a99" "$f99" "$(echo "$f99 / $a99" | bc -l)"
printf '| requests/s | %s | %s | |\n' "$arate" "$frate"
printf '| the flood: PULL events landed/s, batches of 100 | | %s | |\n' "${landed:-?}"
