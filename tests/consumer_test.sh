#!/usr/bin/env bash
# consumer_test.sh CMAKE BUILD_DIR SOURCE_DIR [SANITIZE] -- the C library as a
# CMake user meets it: `cmake --install` into a temporary prefix, then
# examples/consumer (find_package(leadscore CONFIG), leadscore::leadscore) is
# configured and built with CMAKE_PREFIX_PATH, run against a server on a free
# loopback port, and the installed libleadscore.so exports exactly the
# functions the public headers declare (ls_*), nothing else.
set -euo pipefail
cmake=$1 build=$2 src=$3 sanitize=${4:-OFF}
# a library built with the sanitizers needs a program built with them too
cflags=""; [ "$sanitize" = ON ] && cflags="-fsanitize=address,undefined"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/leadscore-consumer-XXXXXX")
prefix=$tmp/prefix server=""
cleanup() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "consumer_example: $*" >&2; exit 1; }

"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "cmake --install failed"; }
cfg=$(find "$prefix" -name leadscore-config.cmake | head -1)
[ -n "$cfg" ] || fail "no leadscore-config.cmake installed"
[ -e "$(dirname "$cfg")/leadscore-config-version.cmake" ] || fail "no leadscore-config-version.cmake installed"
[ -n "$(find "$prefix" -name leadscore.pc)" ] || fail "no leadscore.pc installed"
! grep -rq 'ls_fail' "$prefix/include" || fail "the installed headers declare internal helpers (ls_fail)"

# configure and build the example exactly as a storefront would
"$cmake" -S "$src/examples/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$cflags" >"$tmp/configure.log" 2>&1 \
  || { cat "$tmp/configure.log"; fail "examples/consumer does not configure against the install"; }
"$cmake" --build "$tmp/consumer" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "examples/consumer does not build"; }
# an incompatible version is refused by the version file
mkdir -p "$tmp/v9"
cat > "$tmp/v9/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(v9 LANGUAGES C)
find_package(leadscore 9.0 CONFIG QUIET)
if(leadscore_FOUND)
  message(FATAL_ERROR "leadscore 9.0 found")
endif()
CM
"$cmake" -S "$tmp/v9" -B "$tmp/v9/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null 2>&1 \
  || fail "find_package(leadscore 9.0) accepted the installed $(grep -o 'PACKAGE_VERSION "[^"]*"' "$(dirname "$cfg")/leadscore-config-version.cmake")"

# a server on a free loopback port; the example runs without LD_LIBRARY_PATH (the build's RPATH)
"$prefix/bin/leadscore" serve --data "$tmp/data" --bind 'tcp://127.0.0.1:*' --pull none >"$tmp/serve.out" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q 'requests  ' "$tmp/serve.out" && break; sleep 0.1; done
ep=$(awk '/requests  /{print $2}' "$tmp/serve.out")
[ -n "$ep" ] || { cat "$tmp/serve.out"; fail "the server did not start"; }
"$tmp/consumer/storefront" "$ep" consumer-1 >"$tmp/run.out" 2>&1 || { cat "$tmp/run.out"; fail "the example failed"; }
grep -q '^customer consumer-1 known=1 ' "$tmp/run.out" || { cat "$tmp/run.out"; fail "unexpected output"; }
grep -q '^customer_type=prospect phase=prospect ' "$tmp/run.out" || { cat "$tmp/run.out"; fail "no journey fields"; }
grep -q '^segment ' "$tmp/run.out" || { cat "$tmp/run.out"; fail "no segments"; }
kill -TERM "$server"; wait "$server"; server=""

# the .so exports the public API and nothing else
lib=$(find "$prefix" -name 'libleadscore.so.*' -type f | head -1)
[ -n "$lib" ] || fail "no libleadscore.so installed"
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' | sort -u)
declared=$(cat "$prefix"/include/leadscore/*.h | tr '\n' ' ' | grep -oE 'LS_API [^(;]*[ *]ls_[A-Za-z0-9_]+\(' \
           | grep -oE 'ls_[A-Za-z0-9_]+' | sort -u)
[ -n "$declared" ] || fail "no LS_API declarations found in the installed headers"
extra=$(comm -23 <(echo "$exported") <(echo "$declared"))
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
[ -z "$extra" ] || fail "libleadscore.so exports symbols outside the public API: $(echo $extra)"
[ -z "$missing" ] || fail "libleadscore.so does not export: $(echo $missing)"
echo "consumer_example: 1 passed, 0 failed ($(echo "$declared" | wc -l) public functions exported)"
