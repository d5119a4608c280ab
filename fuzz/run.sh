#!/usr/bin/env bash
# run.sh -- builds the libFuzzer harnesses of fuzz/ with clang into
# build-fuzz/ and runs each one for a while on a copy of its seed corpus.
#
#   fuzz/run.sh [SECONDS]        every harness for SECONDS (default 30), one after another
#   FUZZ_TARGETS="csv" fuzz/run.sh 600      only some of: request event csv reload_path audience_rule record
#
# The repository is never written to: the corpora are copied to
# build-fuzz/run/<harness>/corpus (new inputs libFuzzer finds go there) and
# a crashing input is saved as build-fuzz/run/<harness>/crashes/crash-<sha1>
# (or leak-, timeout-, oom-).  Prints the executions per harness (libFuzzer's
# stat::number_of_executed_units) and exits 1 if any harness failed.
#
# Longer runs
#   fuzz/run.sh 3600             an hour per harness
#   In parallel, on all cores, for ten hours, after one fuzz/run.sh has built:
#     build-fuzz/fuzz_request -fork=$(nproc) -max_total_time=36000 \
#         -rss_limit_mb=2048 -max_len=65536 -dict=fuzz/msgpack.dict \
#         -artifact_prefix=build-fuzz/ build-fuzz/run/request/corpus
#   (or -jobs=N -workers=M: N runs, M at a time, logs in ./fuzz-<n>.log).
#   The CSV harness takes -dict=fuzz/csv.dict, the rule harness fuzz/audience_rule.dict.
# Reproduce and minimise a crash
#     build-fuzz/fuzz_request build-fuzz/run/request/crashes/crash-…
#     build-fuzz/fuzz_request -minimize_crash=1 -runs=100000 crash-…
#   then commit the minimised input as fuzz/corpus/<harness>/crash-<what-it-is>
#   (ctest --test-dir build-fuzz replays every committed seed).
# Keep what a long run found (only inputs that add coverage):
#     build-fuzz/fuzz_request -merge=1 fuzz/corpus/request build-fuzz/run/request/corpus
set -euo pipefail

secs=${1:-30}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
  echo "usage: fuzz/run.sh [SECONDS]   (seconds per harness, default 30)" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=$root/build-fuzz
targets=${FUZZ_TARGETS:-request event csv reload_path audience_rule record}

# ---- tools: the project's packages, plus clang and its libFuzzer runtime
if [ -x "$root/scripts/deps.sh" ]; then "$root/scripts/deps.sh"; fi
cc=${FUZZ_CC:-clang}
if ! command -v "$cc" >/dev/null ||
   [ -z "$(find /usr/lib/llvm-*/lib/clang -name 'libclang_rt.fuzzer-x86_64.a' 2>/dev/null | head -1)" ]; then
  echo "fuzz: installing clang and libclang-rt-14-dev"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev
fi

# ---- build
cmake -S "$here" -B "$build" -DCMAKE_C_COMPILER="$cc" >/dev/null
cmake --build "$build" -j"$(nproc)"

# ---- run
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
summary=()
for h in $targets; do
  bin=$build/fuzz_$h
  [ -x "$bin" ] || { echo "fuzz: no harness $h" >&2; exit 2; }
  work=$build/run/$h
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/crashes"
  cp -a "$here/corpus/$h/." "$work/corpus/"
  seeds=$(find "$work/corpus" -type f | wc -l)
  dict=$here/msgpack.dict
  [ "$h" = csv ] && dict=$here/csv.dict
  [ "$h" = reload_path ] && dict=$here/reload_path.dict
  [ "$h" = audience_rule ] && dict=$here/audience_rule.dict
  log=$work/fuzz.log

  echo "== fuzz_$h: ${secs}s from $seeds seeds (log: ${log#"$root"/})"
  rc=0
  start=$(date +%s)
  "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=30 \
         -print_final_stats=1 -dict="$dict" -artifact_prefix="$work/crashes/" \
         "$work/corpus" >"$log" 2>&1 || rc=$?
  took=$(( $(date +%s) - start ))

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  units=$(find "$work/corpus" -type f | wc -l)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  line=$(printf '%-14s %10s execs in %ss, coverage %s, corpus %s -> %s' \
         "fuzz_$h" "${execs:-?}" "$took" "${cov:-?}" "$seeds" "$units")
  found=$(find "$work/crashes" -type f | head -1)
  if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
    line="$line  FAILED (exit $rc)"
    failed+=("$h")
    echo "---- fuzz_$h failed; the end of its log:"
    grep -v '^#\|^INFO\|^stat::\|^Done ' "$log" | tail -40
    [ -n "$found" ] && echo "---- input: ${found#"$root"/}  (reproduce: ${bin#"$root"/} ${found#"$root"/})"
  fi
  echo "$line"
  summary+=("$line")
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in ${build#"$root"/}/run/<harness>/crashes/)" >&2
  exit 1
fi
