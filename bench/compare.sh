#!/usr/bin/env bash
# compare.sh -- the same workloads on two leadscore binaries, alternately,
# on the same machine in the same run: medians and the ratio new/old.
#
#   bench/compare.sh OLD_BIN NEW_BIN [ROUNDS] [CUSTOMERS]
#
# OLD_BIN is typically a build of an earlier commit:
#   git worktree add /tmp/old <commit> && cmake -S /tmp/old -B /tmp/old/build \
#     -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build /tmp/old/build --target leadscore
# Workloads: import (a generated shop of CUSTOMERS, synced, rows/s), rescore
# (that store, warm, customers/s), track (4 clients x batches of 100, durable
# acks, events/s), pull (fire-and-forget batches of 100, events landed/s).  Each round runs old then new (then new then old on odd rounds), so
# drift on a shared machine hits both.  Figures only: nothing is asserted.
set -euo pipefail
old=${1:?usage: bench/compare.sh OLD_BIN NEW_BIN [ROUNDS] [CUSTOMERS]}
new=${2:?usage: bench/compare.sh OLD_BIN NEW_BIN [ROUNDS] [CUSTOMERS]}
rounds=${3:-3}
customers=${4:-100000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# one figure from a bench --json file: per_second of an offline workload,
# events_landed_per_s of pull, items_per_s of another served one
figure() {
    python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
s=d.get("leadscore")
print(d["per_second"] if s is None else s["events_landed_per_s"] if "events_landed_per_s" in s else s["items_per_s"])' "$1"
}

run() { # BIN WORKLOAD OUT -- extra args
    local bin=$1 wl=$2 out=$3
    shift 3
    "$bin" bench --workload "$wl" --quiet --json "$out" "$@" >/dev/null 2>&1
}

declare -A vals
for ((r = 0; r < rounds; r++)); do
    order=(old new)
    ((r % 2)) && order=(new old)
    for who in "${order[@]}"; do
        bin=$old
        [[ $who == new ]] && bin=$new
        printf '\rround %d/%d: %s   ' $((r + 1)) "$rounds" "$who" >&2
        run "$bin" import "$work/i.json" --customers "$customers"
        vals[$who,import]+="$(figure "$work/i.json") "
        run "$bin" rescore "$work/r.json" --customers "$customers"
        vals[$who,rescore]+="$(figure "$work/r.json") "
        run "$bin" track "$work/t.json" --customers "$customers" --clients 4 --batch 100 --duration 5
        vals[$who,track]+="$(figure "$work/t.json") "
        run "$bin" pull "$work/p.json" --customers "$customers" --duration 8
        vals[$who,pull]+="$(figure "$work/p.json") "
    done
done
printf '\r\033[K' >&2

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf '%-10s %16s %16s %8s   (median of %d rounds, %d customers)\n' workload old new new/old "$rounds" "$customers"
for wl in import rescore track pull; do
    o=$(echo "${vals[old,$wl]}" | median)
    n=$(echo "${vals[new,$wl]}" | median)
    printf '%-10s %16.0f %16.0f %8.2f\n' "$wl" "$o" "$n" "$(awk -v a="$n" -v b="$o" 'BEGIN {print (b > 0 ? a / b : 0)}')"
done
