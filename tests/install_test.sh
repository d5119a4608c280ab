#!/usr/bin/env bash
# install_test.sh CMAKE BUILD_DIR SOURCE_DIR [SANITIZE] -- installs the build into a
# temporary prefix and checks what a shop's ops team and a C storefront rely
# on: the files are where they belong, the sample config is the generated
# one, and a program built against the installed library with pkg-config
# talks to the installed server.
set -euo pipefail
cmake=$1 build=$2 src=$3 sanitize=${4:-OFF}
# a library built with the sanitizers needs a program built with them too
cflags=""; [ "$sanitize" = ON ] && cflags="-fsanitize=address,undefined"
prefix=$(mktemp -d "${TMPDIR:-/tmp}/leadscore-install-XXXXXX")
server=""
cleanup() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$prefix"; }
trap cleanup EXIT
"$cmake" --install "$build" --prefix "$prefix" >/dev/null

for f in bin/leadscore include/leadscore/client.h include/leadscore/error.h share/leadscore/models/default.json \
         etc/leadscore/leadscore.conf lib/systemd/system/leadscore.service; do
  [ -e "$prefix/$f" ] || { echo "missing $f"; exit 1; }
done
lib=$(find "$prefix" -name 'libleadscore.so*' | head -1); [ -n "$lib" ] || { echo "missing libleadscore.so"; exit 1; }
pc=$(find "$prefix" -name leadscore.pc | head -1); [ -n "$pc" ] || { echo "missing leadscore.pc"; exit 1; }
# the unit names the configure-time prefix (CMAKE_INSTALL_PREFIX), wherever it was copied
grep -q '^ExecStart=.*/bin/leadscore serve --config .*/leadscore/leadscore.conf' "$prefix/lib/systemd/system/leadscore.service"
grep -q '^Restart=on-failure' "$prefix/lib/systemd/system/leadscore.service"
"$prefix/bin/leadscore" serve --sample-config | cmp - "$src/dist/leadscore.conf" \
  || { echo "dist/leadscore.conf is not what serve --sample-config prints: regenerate it"; exit 1; }
"$prefix/bin/leadscore" --version | grep -q "^leadscore "

cat > "$prefix/storefront.c" <<'C'
#include <leadscore/client.h>
#include <stdio.h>
int main(int argc, char **argv)
{
    ls_client *c;
    ls_score s;
    ls_client_event ev = {.customer = "inst", .type = "add_to_cart", .price = 9.5, .has = LS_HAS_PRICE};
    if (argc < 2 || ls_client_connect(&c, argv[1], 5000) || ls_client_track(c, &ev, 1, NULL) ||
        ls_client_score(c, "inst", &s) || !s.known)
        return 1;
    printf("%s %.4f %s\n", s.customer, s.score, s.tier);
    ls_client_close(&c);
    return 0;
}
C
export PKG_CONFIG_PATH="$(dirname "$pc")"
cc $cflags -o "$prefix/storefront" "$prefix/storefront.c" $(pkg-config --cflags --libs leadscore)
"$prefix/bin/leadscore" serve --data "$prefix/data" --bind 'tcp://127.0.0.1:*' --pull none > "$prefix/serve.out" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q 'requests  ' "$prefix/serve.out" && break; sleep 0.1; done
ep=$(awk '/requests  /{print $2}' "$prefix/serve.out")
LD_LIBRARY_PATH="$(dirname "$lib")" "$prefix/storefront" "$ep" | grep -q '^inst '
kill -TERM "$server"; wait "$server"; server=""
echo "install_layout: 1 passed, 0 failed"
