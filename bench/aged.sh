#!/usr/bin/env bash
# aged.sh -- fire-and-forget ingestion on a fresh bench store beside the
# same customers after a long stream of events: histories of dozens of
# events a customer and millions of event ids, as a shop in production
# has them.  A fresh store flatters the writer (small values, an empty
# id table), so this is the figure to trust before production.
#
#   bench/aged.sh BIN [AGE_SECONDS] [ROUNDS] [CUSTOMERS] [EVENT_IDS]
#
# Ages one store by a PULL run of AGE_SECONDS (default 40), then, ROUNDS
# times (default 3), runs a 15 s PULL on a fresh store and on a copy of the
# aged one (each round starts from the same state), alternating which goes
# first.  EVENT_IDS is random (default: a UUID per event) or sequential.
# Prints events landed/s and the writer's CPU per event of each run, the
# medians and the ratios aged/fresh.  Figures only: nothing is asserted.
set -euo pipefail
usage="usage: bench/aged.sh BIN [AGE_SECONDS] [ROUNDS] [CUSTOMERS] [EVENT_IDS]"
bin=${1:?$usage}
age=${2:-40}
rounds=${3:-3}
customers=${4:-100000}
ids=${5:-random}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# events landed/s and writer CPU per event (us) of a bench --json file
figures() {
    python3 -c 'import json,sys
s=json.load(open(sys.argv[1]))["leadscore"]
print(s["events_landed_per_s"], s.get("writer_cpu_us_per_event", 0))' "$1"
}

pull() { # DATA_DIR SECONDS OUT
    "$bin" bench --workload pull --quiet --json "$3" --customers "$customers" --event-ids "$ids" \
        --duration "$2" --data "$1" >/dev/null 2>&1
}

printf 'ageing a store of %d customers: PULL for %d s, %s event ids ...\n' "$customers" "$age" "$ids" >&2
pull "$work/aged" "$age" "$work/age.json"
read -r rate _ < <(figures "$work/age.json")
printf 'aged by %.0f events (%.0f events/s); store %s\n' "$(awk -v r="$rate" -v s="$age" 'BEGIN {print r * s}')" \
    "$rate" "$(du -sh "$work/aged" | cut -f1)" >&2

declare -A vals
printf '%-6s %-6s %16s %18s\n' round store 'events landed/s' 'writer CPU/ev (us)'
for ((r = 0; r < rounds; r++)); do
    order=(fresh aged)
    ((r % 2)) && order=(aged fresh)
    for which in "${order[@]}"; do
        rm -rf "$work/run"
        [[ $which == aged ]] && cp -r "$work/aged" "$work/run"
        pull "$work/run" 15 "$work/run.json"
        read -r rate cpu < <(figures "$work/run.json")
        vals[$which,rate]+="$rate "
        vals[$which,cpu]+="$cpu "
        printf '%-6d %-6s %16.0f %18.1f\n' $((r + 1)) "$which" "$rate" "$cpu"
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
fr=$(echo "${vals[fresh,rate]}" | median)
ar=$(echo "${vals[aged,rate]}" | median)
fc=$(echo "${vals[fresh,cpu]}" | median)
ac=$(echo "${vals[aged,cpu]}" | median)
printf '%-13s %16.0f %18.1f\n' 'median fresh' "$fr" "$fc"
printf '%-13s %16.0f %18.1f\n' 'median aged' "$ar" "$ac"
printf '%-13s %16.2f %18.2f\n' 'aged / fresh' "$(awk -v a="$ar" -v b="$fr" 'BEGIN {print (b > 0 ? a / b : 0)}')" \
    "$(awk -v a="$ac" -v b="$fc" 'BEGIN {print (b > 0 ? a / b : 0)}')"
