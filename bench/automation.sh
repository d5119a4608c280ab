#!/usr/bin/env bash
# automation.sh -- the marketing-automation figures of issue 14, in one go:
# what live audiences and the trigger outbox cost the durable write path,
# and how long a trigger takes from its event to a consumer.
#
#   bench/automation.sh [LEADSCORE_BIN] [SECONDS] [ROUNDS]
#
# 1. `bench --workload track --audiences 20`: 4 clients x batches of 100
#    against three spawned servers (triggers off / on / on with 20
#    audiences), ROUNDS rounds of SECONDS each, medians and ratios b/a, c/a.
# 2. `bench --workload triggers`: every event a new customer's first, its
#    enter trigger timed at a long-polling consumer, beside the acknowledged
#    track latency of the same run -- one client one event at a time, an
#    open loop of 1,000 events/s, and 4 clients x 100 (with and without the
#    20 audiences).
# Each command is printed before its report.  Figures only: nothing is
# asserted; on a shared machine compare the ratios.
set -euo pipefail
bin=${1:-build/leadscore}
secs=${2:-20}
rounds=${3:-3}

run() {
    printf '\n$ leadscore bench %s\n' "$*"
    "$bin" bench --quiet "$@" 2>&1 | grep -v -e '^preloaded' -e '^waiting for' -e '^defining'
}

run --workload track --clients 4 --batch 100 --audiences 20 --rounds "$rounds" --duration "$secs"
run --workload triggers --duration "$secs"
run --workload triggers --clients 4 --rate 1000 --duration "$secs"
run --workload triggers --clients 4 --batch 100 --duration "$secs"
run --workload triggers --clients 4 --batch 100 --duration "$secs" --audiences 20
