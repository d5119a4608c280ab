#!/usr/bin/env bash
# train-default.sh -- regenerates models/default.json from data anyone can
# regenerate (issue 12): builds `leadscore` if needed, writes the synthetic
# shop with `leadscore gen` (fixed seed, with its ground truth), adds the
# CDNOW sample's purchases (real, purchase-only customers; their dates moved
# so that CDNOW's last day is the shop's, by scripts/cdnow-events.awk), fits
# the default on both with `leadscore train` over models/handset.json (whose
# journey, segments, tiers and half-lives it keeps), fits BG/NBD and
# Gamma-Gamma on the CDNOW sample alone as a check of the customer-base
# maths against the paper, runs the persona tests (tests/test_personas.c)
# against the new model and only then writes it.  Prints both train
# reports, so the model's notes can cite them.  No network is needed once
# the build dependencies (scripts/deps.sh) are installed.
set -euo pipefail
CALLER=$(pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)

usage() {
  cat <<'EOF'
usage: scripts/train-default.sh --version X.Y.Z [options] [-- TRAIN-OPTIONS...]

Regenerates the default model from the synthetic shop (`leadscore gen`) and
the CDNOW sample's purchases (moved in time to end with the shop), and checks
the customer-base fit on the CDNOW sample against the paper.

  --version V      version of the new model (required)
  --out FILE       where to write the model (default: models/default.json)
  --base FILE      model whose journey, segments, tiers and half-lives are kept
                   (default: models/handset.json)
  --customers N    people in the synthetic shop (default: 100000)
  --start DATE     the shop's first day (default: 2025-01-01; the shop must end by
                   today: train drops events after today, so a shop running into
                   the future would make the model depend on the day it is made)
  --days D         days of events (default: 365)
  --seed S         generator seed (default: 1)
  --build DIR      build directory (default: build)
  --keep DIR       keep the events, ground truth, reports and candidate model in DIR
                   (default: a temporary directory, removed at the end)
  --no-personas    do not run the persona tests against the new model
  --force          write the model even when persona tests fail
  -h, --help       this text
  -- ...           further options for the shop's `leadscore train` (e.g. --lambda 2)

The CDNOW sample is cdnow/CDNOW_sample.txt under the first of $LEADSCORE_DATA_DIR,
../shared/data and /work/shared/data that has it (see ../shared/data/README.md).
EOF
}

say() { printf 'train-default: %s\n' "$*" >&2; }
die() { printf 'train-default: %s\n' "$*" >&2; exit 1; }

# A path given on the command line is the caller's; defaults are the repository's.
abs() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$CALLER" "$1" ;; esac; }
VERSION="" OUT="" BASE="" BUILD="" KEEP=""
CUSTOMERS=100000 DAYS=365 SEED=1 PERSONAS=1 FORCE=0 SHOP_START=2025-01-01
TRAIN_EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --version) VERSION=${2:?--version needs a value}; shift 2 ;;
    --out) OUT=${2:?--out needs a file}; shift 2 ;;
    --base) BASE=${2:?--base needs a file}; shift 2 ;;
    --customers) CUSTOMERS=${2:?--customers needs a number}; shift 2 ;;
    --days) DAYS=${2:?--days needs a number}; shift 2 ;;
    --start) SHOP_START=${2:?--start needs a date}; shift 2 ;;
    --seed) SEED=${2:?--seed needs a number}; shift 2 ;;
    --build) BUILD=${2:?--build needs a directory}; shift 2 ;;
    --keep) KEEP=${2:?--keep needs a directory}; shift 2 ;;
    --no-personas) PERSONAS=0; shift ;;
    --force) FORCE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; TRAIN_EXTRA=("$@"); break ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
[ -n "$VERSION" ] || { usage >&2; die "give --version X.Y.Z"; }
OUT=$([ -n "$OUT" ] && abs "$OUT" || echo "$ROOT/models/default.json")
BASE=$([ -n "$BASE" ] && abs "$BASE" || echo "$ROOT/models/handset.json")
BUILD=$([ -n "$BUILD" ] && abs "$BUILD" || echo "$ROOT/build")
[ -n "$KEEP" ] && KEEP=$(abs "$KEEP")
cd "$ROOT"
[ -f "$BASE" ] || die "no base model $BASE"
# The same inputs must give the same model on any day: the shop ends by today.
SHOP_END_S=$(( $(date -u -d "$SHOP_START" +%s 2>/dev/null || echo 0) + DAYS * 86400 ))
[ "$SHOP_END_S" -gt "$DAYS" ] || die "--start $SHOP_START is not a date (YYYY-MM-DD)"
[ "$SHOP_END_S" -le "$(date -u +%s)" ] ||
  die "the shop ($SHOP_START + $DAYS days) would end after today: train drops events after today, so the model would depend on the day it is made (give an earlier --start)"

# The CDNOW sample, where the tests look for it (tests/testutil.c tu_data_dir).
CDNOW=""
for d in "${LEADSCORE_DATA_DIR:-}" "$ROOT/../shared/data" /work/shared/data; do
  if [ -n "$d" ] && [ -f "$d/cdnow/CDNOW_sample.txt" ]; then CDNOW="$d/cdnow/CDNOW_sample.txt"; break; fi
done
[ -n "$CDNOW" ] || die "CDNOW_sample.txt not found under \$LEADSCORE_DATA_DIR (${LEADSCORE_DATA_DIR:-unset}), $ROOT/../shared/data or /work/shared/data: see ../shared/data/README.md"

if [ -n "$KEEP" ]; then
  mkdir -p "$KEEP"
  WORK=$(cd "$KEEP" && pwd)
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/train-default.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
fi

# --- build ---------------------------------------------------------------
START=$SECONDS
TARGETS=(leadscore)
[ "$PERSONAS" -eq 1 ] && TARGETS+=(test_personas)
say "building ${TARGETS[*]} in $BUILD/"
scripts/deps.sh
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" >/dev/null
# scripts/serve.sh configures build/ without the tests: the persona tests need them
if [ "$PERSONAS" -eq 1 ] && grep -q '^LEADSCORE_TESTS:BOOL=OFF' "$BUILD/CMakeCache.txt"; then
  say "turning the test suite on in $BUILD/ (for the persona tests)"
  cmake -S . -B "$BUILD" -DLEADSCORE_TESTS=ON >/dev/null
fi
for t in "${TARGETS[@]}"; do
  cmake --build "$BUILD" -j"$(nproc)" --target "$t" >"$WORK/build.log" 2>&1 ||
    { tail -n 30 "$WORK/build.log" >&2; die "build of $t failed (log: $WORK/build.log)"; }
done
BIN="$BUILD/leadscore"

# --- the synthetic shop --------------------------------------------------
EVENTS="$WORK/shop.jsonl"
say "generating the synthetic shop: $CUSTOMERS customers, $DAYS days, seed $SEED"
"$BIN" gen --customers "$CUSTOMERS" --start "$SHOP_START" --days "$DAYS" --seed "$SEED" --format jsonl \
  --out "$EVENTS" --truth "$WORK/shop-truth.csv" 2>"$WORK/gen.log" || { cat "$WORK/gen.log" >&2; die "gen failed"; }
say "$(tail -n 1 "$WORK/gen.log")"

# CDNOW's purchases as events, ending on the shop's last day, so that the
# default also learns from real purchase-only customers (shops that send
# no browsing events)
SHOP_LAST_MS=$(tail -n 1 "$EVENTS" | sed -n 's/.*"ts":\([0-9]*\).*/\1/p')
[ -n "$SHOP_LAST_MS" ] || die "cannot read the shop's last event time from $EVENTS"
CDNOW_LAST_DAY=$(awk -v shift=0 -v prefix= -f scripts/cdnow-events.awk "$CDNOW" |
  sed -n 's/.*"ts":\([0-9]*\)000,.*/\1/p' | sort -n | tail -n 1)
SHIFT_DAYS=$(( SHOP_LAST_MS / 86400000 - CDNOW_LAST_DAY / 86400 ))
CDNOW_EVENTS="$WORK/cdnow.jsonl"
awk -v shift="$SHIFT_DAYS" -v prefix=cdnow- -f scripts/cdnow-events.awk "$CDNOW" >"$CDNOW_EVENTS"
say "CDNOW's $(wc -l <"$CDNOW_EVENTS") purchases moved by $SHIFT_DAYS days to end with the shop"

CANDIDATE="$WORK/default.json"
say "training the default on the shop and CDNOW (leadscore train)"
"$BIN" train --quiet --base "$BASE" --name default --version "$VERSION" --out "$CANDIDATE" \
  ${TRAIN_EXTRA[@]+"${TRAIN_EXTRA[@]}"} "$EVENTS" "$CDNOW_EVENTS" >"$WORK/shop-report.txt" 2>"$WORK/shop-train.log" ||
  { cat "$WORK/shop-report.txt" "$WORK/shop-train.log" >&2; die "train on the shop failed"; }

# --- CDNOW: the customer-base maths on real purchases -----------------------
# 39-week calibration from 1997-01-01, same-day purchases are one
# transaction: the published fit is r 0.243, alpha 4.414, a 0.793, b 2.426
# (Fader, Hardie & Lee 2005) and p 6.25, q 3.74, gamma 15.44 (2005b).
say "fitting BG/NBD and Gamma-Gamma on the CDNOW sample ($CDNOW)"
"$BIN" train --quiet --clv-only --out "$WORK/cdnow.json" --no-header --whitespace --allow-old \
  --map "customer=2,ts=3,quantity=4,value=5,type=:purchase" --cutoff 1997-09-30 --horizon 273 \
  "$CDNOW" >"$WORK/cdnow-report.txt" 2>"$WORK/cdnow-train.log" ||
  { cat "$WORK/cdnow-report.txt" "$WORK/cdnow-train.log" >&2; die "train on CDNOW failed"; }

# --- persona tests against the candidate ---------------------------------
PERSONA_STATUS="not run (--no-personas)"
if [ "$PERSONAS" -eq 1 ]; then
  say "persona tests against the new model"
  if LEADSCORE_PERSONA_MODEL="$CANDIDATE" "$BUILD/test_personas" >"$WORK/personas.txt" 2>&1; then
    PERSONA_STATUS="all pass"
  else
    PERSONA_STATUS="FAILED"
  fi
fi

# --- report ----------------------------------------------------------------
echo "== synthetic shop (leadscore gen --customers $CUSTOMERS --start $SHOP_START --days $DAYS --seed $SEED) + CDNOW purchases =="

cat "$WORK/shop-report.txt"
echo
echo "== CDNOW sample (2357 customers, calibration 1997-01-01 .. 1997-09-30): train --clv-only =="
cat "$WORK/cdnow-report.txt"
echo
echo "== persona tests (tests/test_personas.c): $PERSONA_STATUS =="
[ -f "$WORK/personas.txt" ] && grep -E '^[0-9]+%|:F:|:E:' "$WORK/personas.txt" || true
echo

if [ "$PERSONA_STATUS" = "FAILED" ] && [ "$FORCE" -ne 1 ]; then
  [ -n "$KEEP" ] && say "the candidate model is in $CANDIDATE"
  die "persona tests fail: $OUT left unchanged (--force writes it anyway)"
fi
mkdir -p "$(dirname "$OUT")"
cp "$CANDIDATE" "$OUT.tmp.$$" && mv "$OUT.tmp.$$" "$OUT"
echo "wrote $OUT (default $VERSION) in $((SECONDS - START)) s"
[ -n "$KEEP" ] && echo "events, ground truth (shop-truth.csv), reports and the CDNOW fit are in $WORK"
[ "$OUT" = "$ROOT/models/default.json" ] && echo "rebuild to embed it in the binary (models/default.json is compiled in)"
exit 0
