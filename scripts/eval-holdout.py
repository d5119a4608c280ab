#!/usr/bin/env python3
"""eval-holdout.py -- how well a model's scores predicted the next orders.

Scores every customer of a store as of a cutoff (`leadscore rescore --now`)
and compares the scores with the orders of the horizon after it, read from
the events file the store was imported from: customers seen by the cutoff,
mean score against the observed buy rate, AUC, log-loss and the expected
calibration error over 10 equal-count bins.  The figures of README's
"Customers known from orders alone" come from it.

usage: scripts/eval-holdout.py --events FILE.jsonl --data DIR [--model FILE]
                               [--back DAYS] [--horizon DAYS] [--bin PATH] [--bins]
                               [--groups]
The events file is JSON Lines with customer, type and ts (milliseconds);
DIR is a store holding them (`leadscore import --data DIR FILE.jsonl`).
The cutoff is the last event's time less --back and --horizon days.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

DAY_MS = 86400000
VISITS = {"page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "checkout"}
GROUPS = ("buyers without a visit", "buyers whose first order came before their first visit",
          "buyers whose first visit came first", "customers without an order")


def read_events(path):
    with open(path, encoding="utf-8", newline="") as f:
        for line in f:
            line = line.strip()
            if line:
                yield json.loads(line)


def auc(pairs, positives):
    """Rank AUC with ties shared; pairs sorted by score."""
    n, rank_sum, i = len(pairs), 0.0, 0
    while i < n:
        j = i
        while j < n and pairs[j][0] == pairs[i][0]:
            j += 1
        rank_sum += (i + 1 + j) / 2 * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * (n - positives))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", required=True, help="the events (JSON Lines) the store holds")
    ap.add_argument("--data", required=True, help="the store")
    ap.add_argument("--model", help="model file (default: the built-in default)")
    ap.add_argument("--back", type=int, default=0, help="end the horizon this many days before the last event")
    ap.add_argument("--horizon", type=int, default=30, help="days after the cutoff (default 30)")
    ap.add_argument("--bin", default="leadscore", help="the leadscore binary (default: leadscore on PATH)")
    ap.add_argument("--bins", action="store_true", help="also print the 10 calibration bins")
    ap.add_argument("--groups", action="store_true",
                    help="also the mean, observed rate and log-loss of four groups: buyers without a storefront "
                         "visit, buyers whose first order came before their first visit, other buyers, and "
                         "customers without an order (as of the cutoff)")
    a = ap.parse_args()

    seen, buyers, last = {}, set(), 0
    events = list(read_events(a.events))
    for e in events:
        last = max(last, int(e["ts"]))
    end = last - a.back * DAY_MS
    cut = end - a.horizon * DAY_MS
    first_order, first_visit = {}, {}
    for e in events:
        ts, c = int(e["ts"]), e["customer"]
        if ts <= cut:
            seen[c] = True
            first = first_order if e["type"] == "purchase" else first_visit if e["type"] in VISITS else None
            if first is not None and (c not in first or ts < first[c]):
                first[c] = ts
        elif ts <= end and e["type"] == "purchase":
            buyers.add(c)
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        cmd = [a.bin, "rescore", "--data", a.data, "--now", str(cut), "--format", "jsonl", "--out", out.name]
        if a.model:
            cmd += ["--model", a.model]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit("eval-holdout: %s failed:\n%s" % (" ".join(cmd), done.stderr))
        scores = {}
        for line in open(out.name, encoding="utf-8"):
            r = json.loads(line)
            if r["known"]:
                scores[r["customer"]] = r["score"]
    pairs = sorted((scores[c], c in buyers) for c in seen if c in scores)
    n = len(pairs)
    pos = sum(1 for _, y in pairs if y)
    if n == 0 or pos in (0, n):
        sys.exit("eval-holdout: the hold-out needs both buyers and non-buyers")
    mean = sum(s for s, _ in pairs) / n
    logloss = -sum(math.log(max(1e-12, s)) if y else math.log(max(1e-12, 1 - s)) for s, y in pairs) / n
    ece, rows = 0.0, []
    for b in range(10):
        part = pairs[b * n // 10:(b + 1) * n // 10]
        if part:
            pm = sum(s for s, _ in part) / len(part)
            om = sum(1 for _, y in part if y) / len(part)
            ece += len(part) / n * abs(pm - om)
            rows.append((len(part), pm, om))
    print("%s cutoff %d: %d customers, mean score %.4f vs observed %.4f (ratio %.2f), AUC %.3f, log-loss %.4f, "
          "ECE %.4f" % (os.path.basename(a.events), cut, n, mean, pos / n, mean / (pos / n), auc(pairs, pos),
                        logloss, ece))
    if a.bins:
        for k, (cnt, pm, om) in enumerate(rows):
            print("  bin %2d  %6d  predicted %.4f  observed %.4f" % (k + 1, cnt, pm, om))
    if a.groups:
        print_groups(scores, seen, buyers, first_order, first_visit)


def group_of(c, first_order, first_visit):
    if c not in first_order:
        return GROUPS[3]
    if c not in first_visit:
        return GROUPS[0]
    return GROUPS[1] if first_order[c] < first_visit[c] else GROUPS[2]


def print_groups(scores, seen, buyers, first_order, first_visit):
    sums = {g: [0, 0.0, 0, 0.0] for g in GROUPS}
    for c in seen:
        if c not in scores:
            continue
        s, y = scores[c], c in buyers
        g = sums[group_of(c, first_order, first_visit)]
        g[0] += 1
        g[1] += s
        g[2] += y
        g[3] -= math.log(max(1e-12, s)) if y else math.log(max(1e-12, 1 - s))
    for name in GROUPS:
        n, ssum, pos, ll = sums[name]
        if n:
            print("  %-56s %7d  mean %.4f  observed %.4f  log-loss %.4f" % (name, n, ssum / n, pos / n, ll / n))


if __name__ == "__main__":
    main()
