#!/usr/bin/env bash
# cluster.sh -- what cluster mode costs next to one `serve`, in one go, and
# how its writes ride out the loss of a NATS stream leader.
#
#   bench/cluster.sh [--rounds N] [--quick] [--leadscore PATH] [--dir D] [--keep] [--down SECS]
#
# 1. track: `leadscore bench --workload track --batch 100 --clients 4` (acked
#    events/s and per-request p50/p99) against node1 of a 2-node cluster (3
#    nats-servers, every partition stream R3) and against a single-node
#    `serve` (its own store, --sync on), the same command, ROUNDS rounds in
#    alternating order; after each cluster run, how far the nodes' apply lags
#    behind the streams and how long it takes to catch up (not timed in the
#    events/s).  The two acks are not the same promise: single node = the
#    commit was fsynced; cluster = a quorum of nats-servers stored the message
#    (in their page cache: JetStream fsyncs on its own schedule).
# 2. score: `bench --workload score --customers 1 --baseline` (one customer,
#    cust-1, one REQ client) against a 3-node cluster's node that holds cust-1's
#    partition (direct), the one node that does not (the read is forwarded to
#    the owner), the single node, and `--customers 10000` against node1 (a
#    client that ignores partitions: 1 read in 3 forwarded); each run beside
#    the bare ZeroMQ echo of its own --baseline.
# 3. stall: a Python REQ probe streams acked `track` batches of 10 events
#    (page_views of 100 fresh customers) to node1 of the 2-node cluster; the
#    nats-server leading the most partition streams is killed (-9) mid-stream
#    and restarted 3 s later (--down SECS; `scripts/cluster.sh start`).  Reported: the
#    longest gap between two acks, the slowest request, error replies
#    (expected 0: the gateway retries for 15 s), timeouts (none expected), and
#    whether every acked event is counted: once every partition's lag is 0, the
#    sum of page_view_count (`profile`) over the probe's customers, read on each
#    node, must equal the events acked.
#
# Every process (3 nats-servers, 2 or 3 nodes, the single server, the load
# generator) shares this machine's cores: on a 2-core VM the figures are a
# floor, not a capacity.  Medians of ROUNDS rounds (3; --quick: 1 round of
# shorter runs, a smoke test).  Ratios are medians of per-round ratios, each
# against a baseline measured in the same run.  Every command is printed;
# one table of all figures at the end.  Figures only, nothing asserted, except
# that the exit status is 1 when the stall test saw an error reply, a timeout
# or a count mismatch.  Needs nats-server (scripts/deps.sh) and python3 with
# zmq and msgpack.  Everything started is stopped again on exit (trap); the
# directory (default a temporary one) is removed unless --keep.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CLUSTER_SH=$REPO/scripts/cluster.sh
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; }

rounds="" quick=0 bin="" dir="" keep=0 stall_down=3
while [ $# -gt 0 ]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --quick) quick=1; shift ;;
        --keep) keep=1; shift ;;
        --rounds | --leadscore | --dir | --down)
            [ $# -ge 2 ] || { echo "bench/cluster.sh: $1 needs a value" >&2; exit 2; }
            case $1 in --rounds) rounds=$2 ;; --leadscore) bin=$2 ;; --dir) dir=$2 ;; --down) stall_down=$2 ;; esac
            shift 2 ;;
        --down=*) stall_down=${1#*=}; shift ;;
        --rounds=* ) rounds=${1#*=}; shift ;;
        --leadscore=*) bin=${1#*=}; shift ;;
        --dir=*) dir=${1#*=}; shift ;;
        *) echo "bench/cluster.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case $rounds in '') rounds=$([ $quick = 1 ] && echo 1 || echo 3) ;; *[!0-9]* | 0) echo "bench/cluster.sh: --rounds needs a whole number from 1" >&2; exit 2 ;; esac
bin=${bin:-${LEADSCORE:-$REPO/build/leadscore}}
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
case $stall_down in '' | *[!0-9]*) echo "bench/cluster.sh: --down needs whole seconds" >&2; exit 2 ;; esac
[ -x "$bin" ] || { echo "bench/cluster.sh: no leadscore binary at $bin (--leadscore PATH)" >&2; exit 2; }
"$PY" -c 'import zmq, msgpack' 2>/dev/null || { echo "bench/cluster.sh: $PY lacks zmq or msgpack" >&2; exit 2; }

# sizes: full run ~4 min with 3 rounds; --quick ~1.5 min
if [ $quick = 1 ]; then
    track_secs=3 score_secs=2 stall_pre=2 stall_post=4
else
    track_secs=8 score_secs=3 stall_pre=3 stall_post=6
fi
stall_batch=10 stall_customers=100
partitions=8 customers=10000
track_args=(--workload track --batch 100 --clients 4 --customers "$customers" --duration "${track_secs}s")

# ---------------------------------------------------------------- directories and teardown

made_dir=0
if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/lsbench-cluster.XXXXXX"); made_dir=1
else
    if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
        echo "bench/cluster.sh: $dir is not empty (give a new or empty --dir)" >&2; exit 2
    fi
    [ -e "$dir" ] || made_dir=1
    mkdir -p "$dir"
fi
dir=$(cd "$dir" && pwd -P)
C2=$dir/c2 C3=$dir/c3 S=$dir/single W=$dir/work
mkdir -p "$W"
RES=$W/results.tsv
: >"$RES"
single_pid="" probe_pid=""

# shellcheck disable=SC2317 # run by the EXIT trap
teardown() {
    local rc=$?
    trap - EXIT INT TERM
    [ -z "$probe_pid" ] || { kill "$probe_pid" 2>/dev/null || true; wait "$probe_pid" 2>/dev/null || true; }
    if [ -n "$single_pid" ]; then
        kill "$single_pid" 2>/dev/null || true
        wait "$single_pid" 2>/dev/null || true
    fi
    local c
    for c in "$C2" "$C3"; do
        if [ -d "$c" ]; then "$CLUSTER_SH" down --dir "$c" >>"$W/teardown.log" 2>&1 || true; fi
    done
    if [ "$keep" = 1 ]; then
        echo "bench/cluster.sh: --keep: files stay in $dir" >&2
    elif [ "$made_dir" = 1 ]; then
        rm -rf "$dir"
    else
        rm -rf "$C2" "$C3" "$S" "$W"
    fi
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- python helpers

cat >"$W/helper.py" <<'PYEOF'
"""Helpers of bench/cluster.sh: partition function, status parsing, the
stall probe, the count check and the final table."""
import json, os, random, statistics, sys, time

MASK = (1 << 64) - 1
GIVE_UP_S = 60       # the stall probe stops when one batch stays unacked this long


def partition_of(ident, nparts):
    h = 14695981039346656037
    for b in ident.encode():
        h ^= b
        h = (h * 1099511628211) & MASK
    k = h
    k ^= k >> 33
    k = (k * 0xff51afd7ed558ccd) & MASK
    k ^= k >> 33
    k = (k * 0xc4ceb9fe1a85ec53) & MASK
    k ^= k >> 33
    return k % nparts


def load_status(path):
    with open(path) as f:
        return json.load(f)


def cmd_pick(status_path, ident):
    """p owner standby not-holder (a node holding neither, or '-')"""
    s = load_status(status_path)
    p = partition_of(ident, s["partitions"])
    part = next(x for x in s["parts"] if x["p"] == p)
    others = sorted(n for n in s["nodes"] if n not in (part["owner"], part.get("standby")))
    print(p, part["owner"], part.get("standby") or "-", others[0] if others else "-")


def cmd_settled(status_path):
    """1 when ready and every lag is 0; then the largest lag"""
    try:
        s = load_status(status_path)
    except (OSError, ValueError):
        print(0, -1)
        return
    lags = [int(p.get("lag", 0)) for p in s.get("parts", [])]
    ok = s.get("ready") and all(x == 0 for x in lags)
    print(1 if ok else 0, max(lags) if lags else -1)


def cmd_leaders(status_path):
    """the nats-server leading the most partitions, how many, and the spread"""
    s = load_status(status_path)
    count = {}
    for p in s["parts"]:
        count[p.get("leader") or "none"] = count.get(p.get("leader") or "none", 0) + 1
    top = max(sorted(count), key=lambda n: count[n])
    spread = ",".join("%s:%d" % (n, count[n]) for n in sorted(count))
    print(top, count[top], len(s["parts"]), spread)


def cmd_benchjson(path):
    """key=value lines of a bench --json report"""
    d = json.load(open(path))
    ls = d["leadscore"]
    out = {"items_per_s": ls.get("items_per_s", ls["requests_per_s"]), "req_per_s": ls["requests_per_s"],
           "p50_us": ls["p50_us"], "p99_us": ls["p99_us"], "errors": ls["errors"]}
    if d.get("echo"):
        out["echo_p50_us"] = d["echo"]["p50_us"]
        out["echo_p99_us"] = d["echo"]["p99_us"]
        out["ratio_p50"] = d["ratio"]["p50_us"]
        out["ratio_p99"] = d["ratio"]["p99_us"]
    for k, v in out.items():
        print("%s\t%s" % (k, v))


def cmd_stall(ep, prefix, out_path, stop_path, batch, ncust, timeout_ms):
    """Streams acked track batches until stop_path exists; one REQ at a time.
    A timed-out request is resent (same event_ids) on a new socket, an error
    reply is counted and the batch resent, so every batch is acked in the end
    -- unless it stays unacked for GIVE_UP_S: then the probe stops, and that
    batch's events may or may not be stored."""
    import msgpack, zmq
    batch, ncust, timeout_ms = int(batch), int(ncust), int(timeout_ms)
    ctx = zmq.Context()

    def socket():
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVTIMEO, timeout_ms)
        s.setsockopt(zmq.SNDTIMEO, timeout_ms)
        s.connect(ep)
        return s

    sock = socket()
    expected = {}
    acks = []            # (first send, ack) wall times
    lat = []             # last attempt's latency per batch
    error_replies = 0
    error_batches = 0
    errors_seen = {}
    timeouts = 0
    accepted = duplicates = 0
    seq = 0
    maybe = {}           # events of an abandoned batch: counted or not
    abandoned = 0
    t_start = time.time()
    rnd = random.Random(prefix)
    while not os.path.exists(stop_path) and not abandoned:
        evs = []
        now = int(time.time() * 1000)
        for _ in range(batch):
            seq += 1
            evs.append({"customer": "%s-%d" % (prefix, rnd.randrange(ncust)), "type": "page_view",
                        "event_id": "%s-e%d" % (prefix, seq), "ts": now})
        body = msgpack.packb({"op": "track", "id": seq, "events": evs})
        first = time.time()
        had_error = False
        while True:
            t = time.time()
            if t - first > GIVE_UP_S:
                abandoned = 1
                break
            try:
                sock.send(body)
                rep = msgpack.unpackb(sock.recv(), raw=False)
            except zmq.Again:
                timeouts += 1
                sock.close()
                sock = socket()
                continue
            if rep.get("ok"):
                break
            error_replies += 1
            had_error = True
            msg = json.dumps(rep.get("error"))
            errors_seen[msg] = errors_seen.get(msg, 0) + 1
            time.sleep(0.05)
        done = time.time()
        error_batches += had_error
        if abandoned:
            for e in evs:
                maybe[e["customer"]] = maybe.get(e["customer"], 0) + 1
            break
        acks.append((first, done))
        lat.append(done - t)
        accepted += int(rep.get("accepted", 0))
        duplicates += int(rep.get("duplicates", 0))
        for e in evs:
            expected[e["customer"]] = expected.get(e["customer"], 0) + 1
    sock.close()
    json.dump({"t_start": t_start, "t_end": time.time(), "acks": acks, "lat": lat,
               "error_replies": error_replies, "error_batches": error_batches, "errors_seen": errors_seen,
               "timeouts": timeouts, "accepted": accepted, "duplicates": duplicates,
               "events": sum(expected.values()), "expected": expected, "maybe": maybe,
               "abandoned": abandoned, "give_up_s": GIVE_UP_S}, open(out_path, "w"))


def cmd_stall_report(out_path, kill_at, restart_at, restarted_at):
    """key=value lines about one stall run"""
    d = json.load(open(out_path))
    kill_at, restart_at, restarted_at = float(kill_at), float(restart_at), float(restarted_at)
    acks = [a for _, a in d["acks"]]
    times = [d["t_start"]] + acks
    gaps = [(times[i + 1] - times[i], times[i]) for i in range(len(times) - 1)]
    gap, gap_from = max(gaps) if gaps else (0.0, d["t_start"])
    before = [a for a in acks if a < kill_at]
    rate = len(before) / (kill_at - d["t_start"]) if kill_at > d["t_start"] else 0.0
    after = [a for a in acks if a >= kill_at]
    # the first ack of a batch sent after the kill
    first_after = next((a for s, a in d["acks"] if s >= kill_at), None)
    out = {
        "batches": len(acks), "events": d["events"], "accepted": d["accepted"], "duplicates": d["duplicates"],
        "acks_per_s_before": round(rate, 1),
        "max_gap_s": round(gap, 3), "gap_start_after_kill_s": round(gap_from - kill_at, 3),
        "gap_end_after_restart_s": round(gap_from + gap - restart_at, 3),
        # every gap over 0.5 s (normal: a few ms) from the kill on, and their sum
        "gaps_after_kill": ", ".join("%+.1f: %.2f" % (max(f - kill_at, 0.0), g) for g, f in gaps
                                    if g > 0.5 and f + g > kill_at) or "-",
        "stalled_s": round(sum(g for g, f in gaps if g > 0.5 and f + g > kill_at), 3),
        "resumed_after_kill_s": round(max([f + g for g, f in gaps if g > 0.5 and f + g > kill_at] or [kill_at]) - kill_at, 3),
        "max_request_s": round(max(d["lat"]) if d["lat"] else 0.0, 3),
        "first_ack_after_kill_s": round(after[0] - kill_at, 3) if after else -1,
        "first_new_batch_acked_after_kill_s": round(first_after - kill_at, 3) if first_after else -1,
        "restart_answered_s": round(restarted_at - restart_at, 3),
        "error_replies": d["error_replies"], "error_batches": d["error_batches"], "timeouts": d["timeouts"],
        "errors_seen": ";".join("%s x%d" % (k, v) for k, v in d["errors_seen"].items()) or "-",
        "abandoned": d.get("abandoned", 0),
    }
    for k, v in out.items():
        print("%s\t%s" % (k, v))


def profile_counts(ep, customers, timeout_ms=5000):
    import msgpack, zmq
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(ep)
    for i, c in enumerate(customers):
        s.send_multipart([b"", msgpack.packb({"op": "profile", "id": i, "customer": c})])
    got, errors = {}, []
    poller = zmq.Poller()
    poller.register(s, zmq.POLLIN)
    deadline = time.time() + timeout_ms / 1000
    while len(got) + len(errors) < len(customers) and time.time() < deadline:
        if not poller.poll(100):
            continue
        rep = msgpack.unpackb(s.recv_multipart()[-1], raw=False)
        if rep.get("ok"):
            got[customers[rep["id"]]] = int(rep["features"].get("page_view_count", 0))
        else:
            errors.append(rep.get("error"))
    s.close()
    return got, errors


def cmd_count(out_path, wait_s, *eps):
    """Reads page_view_count of the probe's customers on each node until they
    match the acked events (at most wait_s); key=value lines."""
    d = json.load(open(out_path))
    expected = d["expected"]
    maybe = d.get("maybe", {})
    customers = sorted(set(expected) | set(maybe))
    want = sum(expected.values())
    t0 = time.time()
    for ep in eps:
        while True:
            got, errors = profile_counts(ep, customers)
            total = sum(got.values())
            wrong = sum(1 for c in customers
                        if not expected.get(c, 0) <= got.get(c, -1) <= expected.get(c, 0) + maybe.get(c, 0))
            if (wrong == 0 and not errors) or time.time() - t0 > float(wait_s):
                break
            time.sleep(0.5)
        print("counted\t%s\t%d\t%d\t%d\t%.1f\t%s" % (ep, want, total, wrong, time.time() - t0,
                                                    json.dumps(errors[:2]) if errors else "-"))


def median(xs):
    return statistics.median(xs) if xs else None


def cmd_table(res_path):
    rows = {}
    for line in open(res_path):
        k, v = line.rstrip("\n").split("\t", 1)
        rows.setdefault(k, []).append(v)

    def num(k):
        return [float(v) for v in rows.get(k, [])]

    def med(k):
        return median(num(k))

    def text(k):
        return rows.get(k, ["?"])[-1]

    def fmt(x, unit="", nd=0):
        if x is None:
            return "?"
        if nd == 0:
            return "{:,.0f}{}".format(x, unit)
        return "{:,.{}f}{}".format(x, nd, unit)

    def spread(k, unit="", nd=0, scale=1.0):
        xs = [x * scale for x in num(k)]
        if len(xs) < 2:
            return ""
        return " (" + " / ".join(fmt(x, "", nd) for x in xs) + ")"

    out = []
    add = out.append
    n = len(rows.get("track_c2_items_per_s", []))
    add("| part | figure | value | beside it (same run) | ratio |")
    add("|---|---|---|---|---|")
    # 1 track
    c, s = med("track_c2_items_per_s"), med("track_single_items_per_s")
    r = median([a / b for a, b in zip(num("track_c2_items_per_s"), num("track_single_items_per_s")) if b])
    add("| 1 track | acked events/s, 2-node cluster R3 vs single node%s | %s%s | single %s%s | %s |" % (
        " (median of %d)" % n if n > 1 else "", fmt(c), spread("track_c2_items_per_s"),
        fmt(s), spread("track_single_items_per_s"), fmt(r, "", 2)))
    for q in ("p50", "p99"):
        c, s = med("track_c2_%s_us" % q), med("track_single_%s_us" % q)
        r = median([a / b for a, b in zip(num("track_c2_%s_us" % q), num("track_single_%s_us" % q)) if b])
        add("| 1 track | %s per 100-event request | %s ms%s | single %s ms%s | %s |" % (
            q, fmt(c / 1000 if c is not None else None, "", 1), spread("track_c2_%s_us" % q, "", 1, 0.001),
            fmt(s / 1000 if s is not None else None, "", 1), spread("track_single_%s_us" % q, "", 1, 0.001),
            fmt(r, "", 2)))
    add("| 1 track | errors (cluster / single), all rounds | %d / %d | | |" % (
        sum(num("track_c2_errors")), sum(num("track_single_errors"))))
    add("| 1 track | apply lag when the run ended (largest partition, stream messages) | %s%s | | |" % (
        fmt(med("track_c2_lag_end")), spread("track_c2_lag_end")))
    add("| 1 track | then until every lag is 0 | %s s%s | | |" % (
        fmt(med("track_c2_catchup_s"), "", 1), spread("track_c2_catchup_s", "", 1)))
    # 2 score
    for key, what in (("direct", "direct: node holding cust-1 (%s)" % text("score_direct_node")),
                      ("fwd", "forwarded: node not holding it (%s -> owner)" % text("score_fwd_node")),
                      ("single", "single node"),
                      ("mixed", "node1, 10,000 customers (1 in 3 forwarded)")):
        for q in ("p50", "p99"):
            k = "score_%s_%s_us" % (key, q)
            ratio = median(num("score_%s_ratio_%s" % (key, q)))
            add("| 2 score | %s %s | %s us%s | echo %s us%s | %s |" % (
                what, q, fmt(med(k), "", 1), spread(k, "", 1), fmt(med("score_%s_echo_%s_us" % (key, q)), "", 1),
                spread("score_%s_echo_%s_us" % (key, q), "", 1), fmt(ratio, "", 2)))
    for q in ("p50", "p99"):
        r = median([a / b for a, b in zip(num("score_fwd_%s_us" % q), num("score_direct_%s_us" % q)) if b])
        add("| 2 score | forwarded / direct, %s | %s | | |" % (q, fmt(r, "", 2)))
    add("| 2 score | errors, all runs | %d | | |" % sum(
        sum(num("score_%s_errors" % k)) for k in ("direct", "fwd", "single", "mixed")))
    # 3 stall
    ns = len(rows.get("stall_max_gap_s", []))
    add("| 3 stall | killed (leader of most partitions), per round | %s | | |" % " / ".join(rows.get("stall_killed", ["?"])))
    add("| 3 stall | acked batches/s before the kill (10 events each) | %s%s | | |" % (
        fmt(med("stall_acks_per_s_before"), "", 1), spread("stall_acks_per_s_before", "", 1)))
    over = sum(1 for g in num("stall_max_gap_s") if g > 15)
    add("| 3 stall | longest gap between two acks%s | %s s%s | starts at kill %s s, ends at restart %s s%s | |" % (
        " (median of %d; max %s s)" % (ns, fmt(max(num("stall_max_gap_s")), "", 2)) if ns > 1 else "",
        fmt(med("stall_max_gap_s"), "", 2), spread("stall_max_gap_s", "", 2),
        " / ".join("%+.2f" % x for x in num("stall_gap_start_after_kill_s")),
        " / ".join("%+.2f" % x for x in num("stall_gap_end_after_restart_s")),
        "; LONGER than the gateway's 15 s retry budget in %d round(s)" % over if over else ""))
    add("| 3 stall | every gap over 0.5 s after the kill (start, from the kill: length), s | %s | | |" % " / ".join(rows.get("stall_gaps_after_kill", ["?"])))
    add("| 3 stall | time without acks after the kill (sum of those gaps) | %s s%s | acks back to normal at kill %s s | |" % (
        fmt(med("stall_stalled_s"), "", 2), spread("stall_stalled_s", "", 2),
        " / ".join("%+.2f" % x for x in num("stall_resumed_after_kill_s"))))
    add("| 3 stall | slowest request | %s s%s | | |" % (fmt(med("stall_max_request_s"), "", 2),
                                                      spread("stall_max_request_s", "", 2)))
    add("| 3 stall | restarted nats-server healthy after (cluster.sh start) | %s s%s | | |" % (
        fmt(med("stall_restart_answered_s"), "", 1), spread("stall_restart_answered_s", "", 1)))
    add("| 3 stall | batches with an error reply / error replies / timeouts (all rounds) | %d / %d / %d | expected 0 / 0 / 0 | |" % (
        sum(num("stall_error_batches")), sum(num("stall_error_replies")), sum(num("stall_timeouts"))))
    if sum(num("stall_abandoned")):
        add("| 3 stall | rounds whose probe gave up (a batch unacked for 60 s) | %d | its events may or may not count | PROBLEM |" % sum(num("stall_abandoned")))
    for line in rows.get("stall_node_exited", []):
        add("| 3 stall | NODE EXITED during the round (restarted to go on) | %s | | PROBLEM |" % line.replace("|", "/"))
    errs = [e for e in rows.get("stall_errors_seen", []) if e != "-"]
    if errs:
        add("| 3 stall | error replies seen | %s | | |" % " ; ".join(errs).replace("|", "/"))
    add("| 3 stall | events acked (all rounds) / accepted in replies / duplicates in replies | %d / %d / %d | | |" % (
        sum(num("stall_events")), sum(num("stall_accepted")), sum(num("stall_duplicates"))))
    for line in rows.get("stall_counted", []):
        ep_name, want, total, wrong, secs, errors = line.split("\t")
        add("| 3 stall | counted on %s: page_view_count sum / acked | %s / %s | %s customers differ%s; matched %s s after settle | %s |" % (
            ep_name, total, want, wrong, "" if errors == "-" else ", profile errors " + errors.replace("|", "/"),
            secs, "ok" if total == want and wrong == "0" and errors == "-" else "MISMATCH"))
    add("| 3 stall | settle: until ready and every lag 0 after the probe stopped | %s s%s | | |" % (
        fmt(med("stall_settle_s"), "", 1), spread("stall_settle_s", "", 1)))
    print("\n".join(out))
    bad = sum(num("stall_error_batches")) + sum(num("stall_timeouts")) + sum(num("stall_abandoned"))
    bad += len(rows.get("stall_node_exited", []))
    bad += sum(1 for line in rows.get("stall_counted", []) if line.split("\t")[3] != "0"
               or line.split("\t")[1] != line.split("\t")[2] or line.split("\t")[5] != "-")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    cmd = sys.argv[1]
    globals()["cmd_" + cmd.replace("-", "_")](*sys.argv[2:])
PYEOF
helper() { "$PY" "$W/helper.py" "$@"; }

# record KEY VALUE: one figure (one line per round) for the final table
record() { printf '%s\t%s\n' "$1" "$2" >>"$RES"; }

# record_bench PREFIX JSON: the bench report's figures as PREFIX_<name>
record_bench() {
    local k v
    while IFS=$'\t' read -r k v; do record "$1_$k" "$v"; done < <(helper benchjson "$2")
}

# ---------------------------------------------------------------- processes

CMDS=()   # the command lines shown at the end

# status DIR: writes the cluster's status JSON to $W/status.json
status() {
    timeout 15 "$bin" cluster status --nats "$(<"$1/nats.urls")" --cluster "$(<"$1/cluster.name")" --json \
        >"$W/status.json" 2>/dev/null || echo '{}' >"$W/status.json"
}

# settle DIR MAXSECS: waits until ready and every lag is 0; prints the
# seconds it took (or "timeout")
settle() {
    local t0 ok
    t0=$(date +%s.%N)
    while :; do
        status "$1"
        read -r ok _ < <(helper settled "$W/status.json")
        [ "$ok" = 1 ] && { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f\n", b - a}'; return 0; }
        awk -v a="$t0" -v b="$(date +%s.%N)" -v m="$2" 'BEGIN {exit !(b - a > m)}' && { echo timeout; return 0; }
        sleep 0.2
    done
}

# lag_now DIR: the largest partition lag right now
lag_now() { status "$1"; helper settled "$W/status.json" | awk '{print $2}'; }

# check_nodes DIR ROUND DMESG-LINES: a node of DIR that is no longer running is
# recorded (with its log's last lines and the kernel's word on it, when
# dmesg is readable) and started again
check_nodes() {
    local f name pid why
    for f in "$1"/node*.pid; do
        name=$(basename "$f" .pid)
        pid=$(<"$f")
        kill -0 "$pid" 2>/dev/null && continue
        why=$(dmesg 2>/dev/null | tail -n +"$(($3 + 1))" | grep -E 'segfault|general protection|traps:|Killed process' | tail -n 2 | tr '\n' ' ' || true)
        say "    $name (pid $pid) is GONE; last lines of its log:"
        tail -n 5 "$1/$name.log" | sed 's/^/        /' >&2
        [ -z "$why" ] || say "    kernel: $why"
        record stall_node_exited "$name (pid $pid) in round $2; log ends: $(tail -n 1 "$1/$name.log" | cut -c1-160)${why:+; kernel: $why}"
        "$CLUSTER_SH" start "$name" --dir "$1" >>"$W/stall-restart.log" 2>&1 || say "    could not start $name again"
    done
}

cluster_up() { # DIR NODES
    local cmd=("$CLUSTER_SH" up --dir "$1" --nodes "$2" --partitions "$partitions" --cluster bench --leadscore "$bin")
    say "\$ scripts/cluster.sh up --dir $1 --nodes $2 --partitions $partitions --cluster bench --leadscore $bin"
    "${cmd[@]}" >"$W/up-$(basename "$1").log" 2>&1 || { cat "$W/up-$(basename "$1").log" >&2; exit 1; }
}

single_up() {
    local port
    port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    single_ep=tcp://127.0.0.1:$port
    say "\$ leadscore serve --data $S --bind $single_ep --pull none --log-level warn   # --sync on (default)"
    "$bin" serve --data "$S" --bind "$single_ep" --pull none --log-level warn >"$W/single.log" 2>&1 &
    single_pid=$!
    for _ in $(seq 1 100); do
        "$bin" ping --connect "$single_ep" --timeout 500 >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench/cluster.sh: the single-node serve did not answer; log:" >&2
    cat "$W/single.log" >&2
    exit 1
}

# bench_run OUTPREFIX EP ARGS...: runs `leadscore bench --connect EP ARGS`, shows its report
bench_run() {
    local prefix=$1 ep=$2; shift 2
    say "\$ leadscore bench --connect $ep $*"
    rm -f "$W/$prefix.json"
    "$bin" bench --connect "$ep" "$@" --quiet --json "$W/$prefix.json" 2>&1 | sed 's/^/    /' >&2 || true
    [ -s "$W/$prefix.json" ] || { echo "bench/cluster.sh: bench wrote no report" >&2; exit 1; }
    record_bench "$prefix" "$W/$prefix.json"
}

nproc_now=$(nproc 2>/dev/null || echo "?")

# busy_pct SECS: how busy the machine's CPUs were over SECS (% of all cores),
# from /proc/stat: what else runs here skews every figure
busy_pct() {
    local a b
    a=$(awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat)
    sleep "$1"
    b=$(awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN {split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; idle = y[2] - x[2];
        printf "%.0f\n", ((busy + idle) > 0 ? 100 * busy / (busy + idle) : 0)}'
}
busy_before=$(busy_pct 2)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "bench/cluster.sh: $rounds round(s)$([ $quick = 1 ] && echo ', --quick'), $nproc_now cores shared by every process (a floor), files in $dir"
say "leadscore: $bin"
say "before the run, with nothing of it started: CPUs ${busy_before}% busy (other processes), load $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- 1. track

say ""
say "== 1. acked track: 2-node cluster (3 nats-servers, R3) vs single node =="
cluster_up "$C2" 2
single_up
ep2=$(<"$C2/node1.ep")
for r in $(seq 1 "$rounds"); do
    if [ $((r % 2)) = 1 ]; then order="c2 single"; else order="single c2"; fi
    for t in $order; do
        say "-- round $r: $t"
        if [ "$t" = c2 ]; then
            bench_run track_c2 "$ep2" "${track_args[@]}"
            cp "$W/track_c2.json" "$W/track_c2.r$r.json"
            record track_c2_lag_end "$(lag_now "$C2")"
            c=$(settle "$C2" 120)
            say "    apply caught up in $c s"
            record track_c2_catchup_s "$([ "$c" = timeout ] && echo 120 || echo "$c")"
        else
            bench_run track_single "$single_ep" "${track_args[@]}"
        fi
    done
done
CMDS+=("leadscore bench --connect <node1 of the 2-node cluster | the single serve> ${track_args[*]}")

# ---------------------------------------------------------------- 3. stall (on the same 2-node cluster)

say ""
say "== 3. write stall when the nats-server leading the most streams is killed -9 (2-node cluster) =="
nonce=$(date +%s)-$$
nodes_eps=("$(<"$C2/node1.ep")" "$(<"$C2/node2.ep")")
for r in $(seq 1 "$rounds"); do
    c=$(settle "$C2" 60)
    status "$C2"
    read -r victim led total spread < <(helper leaders "$W/status.json")
    vpid=$(<"$C2/$victim.pid")
    say "-- round $r: leaders $spread; killing $victim (pid $vpid, leads $led of $total) after ${stall_pre} s"
    record stall_killed "$victim ($led of $total)"
    out=$W/stall.r$r.json stop=$W/stall.r$r.stop round_t0=$(dmesg 2>/dev/null | wc -l || echo 0)
    rm -f "$stop"
    "$PY" "$W/helper.py" stall "$ep2" "st$r-$nonce" "$out" "$stop" "$stall_batch" "$stall_customers" 30000 &
    probe_pid=$!
    sleep "$stall_pre"
    kill_at=$(date +%s.%N)
    kill -9 "$vpid"
    sleep "$stall_down"
    restart_at=$(date +%s.%N)
    "$CLUSTER_SH" start "$victim" --dir "$C2" >>"$W/stall-restart.log" 2>&1 ||
        say "    scripts/cluster.sh start $victim failed: see $W/stall-restart.log"
    restarted_at=$(date +%s.%N)
    sleep "$stall_post"
    touch "$stop"
    wait "$probe_pid" || say "    the probe failed"
    probe_pid=""
    while IFS=$'\t' read -r k v; do
        record "stall_$k" "$v"
        case $k in max_gap_s | gaps_after_kill | stalled_s | error_replies | timeouts | events | max_request_s) say "    $k $v" ;; esac
    done < <(helper stall-report "$out" "$kill_at" "$restart_at" "$restarted_at")
    check_nodes "$C2" "$r" "$round_t0"
    c=$(settle "$C2" 90)
    say "    settled (ready, every lag 0) in $c s"
    record stall_settle_s "$([ "$c" = timeout ] && echo 90 || echo "$c")"
    i=0
    while IFS=$'\t' read -r _ _ want total wrong secs errors; do
        i=$((i + 1))
        record stall_counted "$(printf 'node%s r%s\t%s\t%s\t%s\t%s\t%s' "$i" "$r" "$want" "$total" "$wrong" "$secs" "$errors")"
        say "    node$i: counted $total of $want acked events ($wrong customers differ)"
    done < <(helper count "$out" 20 "${nodes_eps[@]}")
done
CMDS+=("stall probe: REQ track of $stall_batch page_views (100 customers) per request to node1, one at a time, 30 s timeout then resend (same event_ids; gives up after 60 s on one batch); kill -9 <nats-i> after ${stall_pre} s, sleep ${stall_down}; scripts/cluster.sh start nats-i --dir D; ${stall_post} s more; count with profile on node1 and node2")
"$CLUSTER_SH" down --dir "$C2" >>"$W/teardown.log" 2>&1 || true

# ---------------------------------------------------------------- 2. score

say ""
say "== 2. score of one customer: 3-node cluster direct / forwarded vs single node, beside a ZeroMQ echo =="
cluster_up "$C3" 3
ep3_1=$(<"$C3/node1.ep")
# the same kind of customers as on the single node: cust-1..cust-10000 with events
pop_args=(--workload track --batch 100 --clients 4 --customers "$customers" --duration 3s --warmup 0)
say "\$ leadscore bench --connect $ep3_1 ${pop_args[*]}   # populate"
"$bin" bench --connect "$ep3_1" "${pop_args[@]}" --quiet >/dev/null 2>&1 || true
settle "$C3" 60 >/dev/null
status "$C3"
read -r part owner standby other < <(helper pick "$W/status.json" cust-1)
say "cust-1: partition $part, owner $owner, standby $standby; $other does not hold it"
record score_direct_node "$owner"
record score_fwd_node "$other"
direct_ep=$(<"$C3/$owner.ep") fwd_ep=$(<"$C3/$other.ep")
one_args=(--workload score --customers 1 --clients 1 --duration "${score_secs}s" --baseline)
mix_args=(--workload score --customers "$customers" --clients 1 --duration "${score_secs}s" --baseline)
targets=(direct fwd single mixed)
for r in $(seq 1 "$rounds"); do
    for j in 0 1 2 3; do
        t=${targets[$(((j + r - 1) % 4))]}
        say "-- round $r: $t"
        case $t in
            direct) bench_run score_direct "$direct_ep" "${one_args[@]}" ;;
            fwd) bench_run score_fwd "$fwd_ep" "${one_args[@]}" ;;
            single) bench_run score_single "$single_ep" "${one_args[@]}" ;;
            mixed) bench_run score_mixed "$ep3_1" "${mix_args[@]}" ;;
        esac
    done
done
# the bench keys are score_<t>_p50_us, score_<t>_echo_p50_us, score_<t>_ratio_p50
CMDS+=("leadscore bench --connect <$owner: holds cust-1 | $other: forwards | the single serve> ${one_args[*]}")
CMDS+=("leadscore bench --connect <node1 of the 3-node cluster> ${mix_args[*]}")

# ---------------------------------------------------------------- the table

say ""
echo "## bench/cluster.sh -- cluster mode vs single node, $(date -u '+%F %H:%M UTC'), $(uname -n)"
echo
echo "$nproc_now cores shared by every process: 3 nats-servers, 2-3 leadscore nodes, the single-node serve and the"
echo "load generator. Before the run, other processes kept the CPUs ${busy_before}% busy (load average then: ${load_before});"
echo "at the end the load average was $(cut -d' ' -f1-3 /proc/loadavg).  These figures are a floor, not a capacity. $rounds round(s)$([ $quick = 1 ] && echo ', --quick (smoke run, short)'); values are medians, per-round values in ()."
echo
rc=0
helper table "$RES" || rc=$?
echo
echo "Commands:"
echo "    scripts/cluster.sh up --dir D --nodes 2|3 --partitions $partitions --cluster bench --leadscore $bin"
echo "    leadscore serve --data DIR --bind tcp://127.0.0.1:PORT --pull none   (single node, --sync on by default)"
for c in "${CMDS[@]}"; do echo "    $c"; done
cat <<EOF

What the figures mean:
  * track acks differ in durability: the single node answers after its LMDB commit was fsynced
    (survives power loss); a cluster node answers once a quorum (2 of 3) of nats-servers stored the
    partition message, in their page cache (JetStream fsyncs on its own interval: a power loss of
    two machines at once can lose acked events).  The nodes apply the streams to their stores
    after the ack: the lag and catch-up rows show that work, which the events/s does not include.
  * track p50/p99 are per request of 100 events (4 clients, one request at a time each).
  * score: one REQ client, one customer (cust-1); "direct" asks a node that holds its partition,
    "forwarded" one that does not (it asks the owner over ZeroMQ: one more hop).  The echo beside
    each is a bare ZeroMQ echo measured by the same bench run (--baseline); ratio = leadscore/echo.
  * stall: the gateway retries a publish for 15 s, so a leader election should show as one long
    gap between acks, with no error reply and no timeout; the count rows check that no acked event
    was lost or counted twice on either node (2 nodes: each holds every partition).
EOF
exit $rc
