#!/usr/bin/env bash
# deps.sh -- installs the Debian packages leadscore builds and tests with,
# when any is missing.  Used by serve.sh and test.sh; safe to run again.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libzmq3-dev libmsgpack-dev liblmdb-dev libjansson-dev zlib1g-dev libmicrohttpd-dev
  libnats-dev nats-server
  check libsubunit-dev
  python3-zmq python3-msgpack python3-setuptools python3-wheel python3-pip python3-venv
  libsystemd-dev systemd groff-base man-db zsh
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "leadscore: installing missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "leadscore: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
