#!/usr/bin/env bash
# install_test.sh CMAKE BUILD_DIR SOURCE_DIR [SANITIZE] -- installs the build into a
# temporary prefix and checks what a shop's ops team and a C storefront rely
# on: the files are where they belong, the sample config is the generated
# one, a program built against the installed library with pkg-config
# talks to the installed server, the man pages render without warnings (and
# with the double quotes their examples show) and name every option each command's --help names, the bash and zsh
# completions know the commands and options, the systemd unit is
# Type=notify, follows the install prefix and passes systemd-analyze verify,
# and `serve` sends READY=1 once it answers and STOPPING=1 on SIGTERM.
set -euo pipefail
cmake=$1 build=$2 src=$3 sanitize=${4:-OFF}
# a library built with the sanitizers needs a program built with them too
cflags=""; [ "$sanitize" = ON ] && cflags="-fsanitize=address,undefined"
prefix=$(mktemp -d "${TMPDIR:-/tmp}/leadscore-install-XXXXXX")
server=""
cleanup() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$prefix"; }
trap cleanup EXIT
fail() { echo "install_layout: $*" >&2; exit 1; }
skip() { echo "install_layout: SKIPPED: $*"; }
"$cmake" --install "$build" --prefix "$prefix" >/dev/null

for f in bin/leadscore include/leadscore/client.h include/leadscore/error.h share/leadscore/models/default.json \
         etc/leadscore/leadscore.conf lib/systemd/system/leadscore.service \
         share/man/man1/leadscore.1 share/man/man1/leadscore-serve.1 \
         share/bash-completion/completions/leadscore share/zsh/site-functions/_leadscore; do
  [ -e "$prefix/$f" ] || { echo "missing $f"; exit 1; }
done
# the documentation the man page and --help point to, README's relative links resolving where it is installed
doc=$prefix/share/doc/leadscore
for f in README.md CHANGELOG.md LICENSE docs/PROTOCOL.md prometheus.yml grafana-dashboard.json; do
  [ -s "$doc/$f" ] || fail "missing share/doc/leadscore/$f"
done
cmp -s "$doc/docs/PROTOCOL.md" "$src/docs/PROTOCOL.md" || fail "the installed PROTOCOL.md is not docs/PROTOCOL.md"
links=$(grep -o '](\([^)#:]*\)[)#]' "$doc/README.md" | sed 's/^](//; s/[)#]$//' | sort -u)
[ -n "$links" ] || fail "the installed README has no relative links (the check is stale)"
for l in $links; do [ -e "$doc/$l" ] || fail "the installed README links to $l, which is not installed"; done
lib=$(find "$prefix" -name 'libleadscore.so*' | head -1); [ -n "$lib" ] || { echo "missing libleadscore.so"; exit 1; }
pc=$(find "$prefix" -name leadscore.pc | head -1); [ -n "$pc" ] || { echo "missing leadscore.pc"; exit 1; }
# the unit names the configure-time prefix (CMAKE_INSTALL_PREFIX), wherever it was copied
"$prefix/bin/leadscore" serve --sample-config | cmp - "$src/dist/leadscore.conf" \
  || { echo "dist/leadscore.conf is not what serve --sample-config prints: regenerate it"; exit 1; }
"$prefix/bin/leadscore" --version | grep "^leadscore " >/dev/null

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
    ls_score_free(&s);
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

# ---- man pages -------------------------------------------------------------
ls=$prefix/bin/leadscore
man1=$prefix/share/man/man1
version=$("$ls" --version | awk 'NR==1{print $2}')
for page in "$man1"/leadscore.1 "$man1"/leadscore-serve.1; do
  if command -v groff >/dev/null; then
    w=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "groff fails on $(basename "$page")"
    [ -z "$w" ] || fail "groff warns on $(basename "$page"): $w"
  else
    skip "groff is missing (Debian groff-base): man pages not checked for warnings"
  fi
  if command -v mandoc >/dev/null; then
    w=$(mandoc -T lint -W warning "$page" 2>&1) || fail "mandoc -T lint: $w"
  fi
  grep -q "^\.TH .* \"leadscore $version\"" "$page" || fail "$(basename "$page"): .TH does not say leadscore $version"
  # a double quote inside a macro's argument is a delimiter to groff, not a
  # character (.B 'tier == "hot"' rendered 'tier == hot '): write \(dq
  q=$(grep -n '^\.[A-Z][A-Z]\? .*[^ "]"[^ "]' "$page" || true)
  [ -z "$q" ] || fail "$(basename "$page"): a double quote inside a macro argument (use \\(dq): $q"
done
if command -v groff >/dev/null && command -v col >/dev/null; then
  groff -man -Tascii "$man1/leadscore.1" 2>/dev/null | col -b | grep -F "leadscore audience add hot 'tier == \"hot\"'" \
    >/dev/null || fail "leadscore.1 does not render the audience example with its quotes"
fi
if command -v man >/dev/null; then
  # `man leadscore` finds the installed pages and renders them
  [ "$(MANPATH="$prefix/share/man" man -w leadscore-serve)" = "$man1/leadscore-serve.1" ] || fail "man -w leadscore-serve"
  MANWIDTH=80 MANPATH="$prefix/share/man" man -P cat leadscore 2>/dev/null | grep "^SYNOPSIS" >/dev/null || fail "man leadscore renders no SYNOPSIS"
  w=$(MANWIDTH=80 man --warnings -l "$man1/leadscore.1" 2>&1 >/dev/null) && [ -z "$w" ] || fail "man --warnings -l: $w"
else
  skip "man (Debian man-db) is missing: man -w not checked"
fi

# ---- every option of every command: in --help, the man page, both completions
commands=$("$ls" --help | awk '/^commands:/{f=1; next} f && /^  [a-z]/{print $1}')
[ "$(echo "$commands" | wc -l)" -ge 19 ] || fail "leadscore --help lists too few commands"
help_options() { # the options a command's --help defines (usage and option lines only)
  "$ls" "$1" --help | awk '/^usage:/ || /^ {10,}\[/ {print; next}
    /^ +(-[a-z], )?--/ {sub(/^ +/, ""); i = index($0, "  "); if (i) $0 = substr($0, 1, i - 1); print}' |
    grep -o -- '--[a-z][a-z-]*' | sort -u
}
bash_complete() { # bash_complete WORD... : what the bash completion offers for the last word
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
           _leadscore; printf "%s\n" "${COMPREPLY[@]}"' _ "$prefix/share/bash-completion/completions/leadscore" "$@"
}
zsh_file=$prefix/share/zsh/site-functions/_leadscore
checked=0
for c in $commands; do
  page=$man1/leadscore.1; [ "$c" = serve ] && page=$man1/leadscore-serve.1
  grep -q "^\.B $c\$" "$man1/leadscore.1" || fail "leadscore.1 does not list the command $c"
  bash_complete leadscore "${c:0:2}" | grep -x "$c" >/dev/null || fail "bash completion: no command $c"
  grep -q "^    '$c:" "$zsh_file" || fail "zsh completion: no command $c"
  offered=$(bash_complete leadscore "$c" --)
  for o in $(help_options "$c"); do
    grep -q -- "$(echo "$o" | sed 's/-/\\\\-/g')\([^a-z-]\|\$\)" "$page" || fail "$(basename "$page") lacks $c $o"
    echo "$offered" | grep -x -- "$o" >/dev/null || fail "bash completion of leadscore $c lacks $o"
    grep -q -- "$o\\([=[]\\|}'\\)" "$zsh_file" || fail "zsh completion lacks $o (leadscore $c)"
    checked=$((checked + 1))
  done
done
[ "$checked" -gt 150 ] || fail "only $checked options checked"
# values: a directory for --data, words for --format, files for import
mkdir -p "$prefix/cdir/sub"; : > "$prefix/cdir/events.csv"
[ "$(bash_complete leadscore serve --data "$prefix/cdir/s")" = "$prefix/cdir/sub" ] || fail "bash: serve --data DIR"
[ "$(bash_complete leadscore serve --data = "$prefix/cdir/s")" = "$prefix/cdir/sub" ] || fail "bash: serve --data=DIR"
[ "$(bash_complete leadscore rescore --format j)" = jsonl ] || fail "bash: rescore --format"
[ "$(bash_complete leadscore import "$prefix/cdir/ev")" = "$prefix/cdir/events.csv" ] || fail "bash: import FILE"
[ "$(bash_complete leadscore serve --drain)" = --drain-timeout ] || fail "bash: serve --drain"
if command -v zsh >/dev/null; then
  zsh -n "$zsh_file" || fail "zsh -n $zsh_file"
  # compinit picks the function up from site-functions by its #compdef line
  [ "$(zsh -f -c 'fpath=("$1" $fpath); autoload -Uz compinit; compinit -u -D; print -r -- $_comps[leadscore]' _ \
       "$(dirname "$zsh_file")")" = _leadscore ] || fail "zsh compinit does not bind _leadscore to leadscore"
else
  skip "zsh is not installed: the zsh completion was not syntax-checked"
fi

# ---- systemd unit ----------------------------------------------------------
unit=$prefix/lib/systemd/system/leadscore.service
conf_prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:[A-Z]*=//p' "$build/CMakeCache.txt")
grep -qx 'Type=notify' "$unit" || fail "unit is not Type=notify"
grep -qx 'NotifyAccess=main' "$unit" || fail "unit lacks NotifyAccess=main"
# only the config file: data and model come from it, not from the unit
grep -qx "ExecStart=$conf_prefix/bin/leadscore serve --config [^ ]*/leadscore/leadscore.conf" "$unit" \
  || fail "ExecStart is not '$conf_prefix/bin/leadscore serve --config .../leadscore/leadscore.conf': $(grep ^ExecStart "$unit")"
for l in Restart=on-failure ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
         StateDirectory=leadscore WorkingDirectory=/var/lib/leadscore 'ReadWritePaths=-/var/lib/leadscore' \
         LimitNOFILE=65536 'CapabilityBoundingSet='; do
  grep -qx -- "$l" "$unit" || fail "unit lacks $l"
done
# the unit's paths follow the prefix it is configured with
for p in /srv/ls:/srv/ls/etc /usr:/etc /opt/leadscore:/etc/opt/leadscore; do  # GNUInstallDirs: /usr, /opt/X
  cfgdir=$(mktemp -d "$prefix/cfg-XXXXXX")
  "$cmake" -S "$src" -B "$cfgdir" -DCMAKE_INSTALL_PREFIX="${p%%:*}" -DLEADSCORE_TESTS=OFF -DLEADSCORE_BENCH=OFF >/dev/null
  grep -qx "ExecStart=${p%%:*}/bin/leadscore serve --config ${p#*:}/leadscore/leadscore.conf" "$cfgdir/leadscore.service" \
    || fail "prefix ${p%%:*}: $(grep ^ExecStart "$cfgdir/leadscore.service")"
  rm -rf "$cfgdir"
done
if ! command -v systemd-analyze >/dev/null; then
  skip "systemd-analyze is missing (Debian systemd): the unit was not verified"
else
  # verify the installed unit, its paths moved from the configured prefix to the
  # temporary one so that ExecStart exists; man: links resolve to the installed pages
  vdir=$(mktemp -d "$prefix/verify-XXXXXX")
  sed "s|$conf_prefix/|$prefix/|g" "$unit" > "$vdir/leadscore.service"
  printf '[Service]\nExecStart=/bin/true\n' > "$vdir/probe.service"
  if ! probe=$(MANPATH="$prefix/share/man" SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$vdir/probe.service" 2>&1); then
    skip "systemd-analyze verify cannot run here (even a trivial unit fails: $probe)"
  else
    out=$(MANPATH="$prefix/share/man" systemd-analyze verify "$vdir/leadscore.service" 2>&1) \
      || fail "systemd-analyze verify leadscore.service: $out"
    echo "$out" | grep -i 'leadscore' && fail "systemd-analyze verify warns about leadscore.service"
  fi
fi

# ---- sd_notify: READY=1 when it answers, STOPPING=1 on SIGTERM ---------------
if ! command -v python3 >/dev/null; then
  fail "python3 is needed for the sd_notify check"
fi
python3 - "$ls" "$prefix" <<'PY' || fail "sd_notify check failed"
import os, re, signal, socket, subprocess, sys, time, urllib.request

ls, prefix = sys.argv[1], sys.argv[2]
path = os.path.join(prefix, "notify.sock")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
sock.settimeout(30)
out_path = os.path.join(prefix, "notify-serve.out")
data = os.path.join(prefix, "notify-data")
with open(out_path, "w") as out:
    proc = subprocess.Popen([ls, "serve", "--data", data, "--bind", "tcp://127.0.0.1:*",
                             "--pull", "tcp://127.0.0.1:*", "--metrics", "127.0.0.1:0"],
                            stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, NOTIFY_SOCKET=path))

def check(cond, what):
    if not cond:
        proc.kill()
        sys.stderr.write("sd_notify: %s\n--- serve output:\n%s" % (what, open(out_path).read()))
        sys.exit(1)

try:
    msg = sock.recv(4096).decode()
except socket.timeout:
    check(False, "no datagram within 30 s")
lines = msg.split("\n")
check("READY=1" in lines, "first datagram is not READY=1: %r" % msg)
# READY=1 means the store is open and every endpoint accepts connections now
check(os.path.exists(os.path.join(data, "data.mdb")), "READY=1 before the store exists")
status = [l for l in lines if l.startswith("STATUS=")]
check(status, "READY=1 without STATUS=")
eps = re.findall(r"tcp://127\.0\.0\.1:(\d+)", status[0])
check(len(eps) == 2, "STATUS does not name both endpoints: %r" % status[0])
for port in eps:
    socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
ping = subprocess.run([ls, "ping", "--connect", "tcp://127.0.0.1:" + eps[0], "--timeout", "3000"],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
check(ping.returncode == 0, "ping right after READY=1 failed: %s" % ping.stdout.decode())
m = re.search(r"metrics +http://127\.0\.0\.1:(\d+)/metrics", open(out_path).read())
check(m, "serve printed no metrics endpoint before READY=1")
with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % m.group(1), timeout=3) as r:
    check(r.status == 200, "/metrics answered %d" % r.status)

proc.send_signal(signal.SIGTERM)
try:
    msg = sock.recv(4096).decode()
except socket.timeout:
    check(False, "no STOPPING=1 within 30 s of SIGTERM")
check("STOPPING=1" in msg.split("\n"), "after SIGTERM: %r, not STOPPING=1" % msg)
rc = proc.wait(timeout=60)
check(rc == 0, "serve exited %d after SIGTERM" % rc)
sock.setblocking(False)
try:
    extra = sock.recv(4096)
    check(False, "unexpected datagram after STOPPING=1: %r" % extra)
except BlockingIOError:
    pass
PY

echo "install_layout: 1 passed, 0 failed"
