#!/usr/bin/env bash
# test.sh -- the README's second command (and what CI runs): installs what
# is missing, builds a debug build with AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs the whole Check test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLEADSCORE_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
cd build-asan
ctest --output-on-failure -j"$(nproc)" "$@"
