#!/usr/bin/env bash
# serve.sh -- the README's first command: installs what is missing, builds
# leadscore, starts `leadscore serve` on its defaults (data in
# ./leadscore-data, model models/default.json, tcp://127.0.0.1:5555 and
# :5556), shows it working with one event and one score, and keeps serving
# until Ctrl-C.  Extra arguments go to `leadscore serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLEADSCORE_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target leadscore >/dev/null
echo "leadscore: built build/leadscore"

build/leadscore serve "$@" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server' INT TERM

connect=${LEADSCORE_CONNECT:-tcp://127.0.0.1:5555}
for _ in $(seq 50); do
  build/leadscore ping --connect "$connect" --timeout 200 >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { wait $server; exit 1; }
done

echo
echo "== demo: a visitor browses running shoes and puts a pair in the cart"
build/leadscore track --connect "$connect" demo-visitor product_view category=shoes/running session=demo
build/leadscore track --connect "$connect" demo-visitor add_to_cart price=89.90 category=shoes/running session=demo
echo "== demo: how ready to buy is demo-visitor?"
build/leadscore score --connect "$connect" --explain demo-visitor
echo
echo "leadscore is serving (Ctrl-C to stop)."
wait $server
