#!/usr/bin/env bash
# System packages the tests need: Debian's chromium (browser tests), coturn (TURN tests), iproute2
# (ip, tc) and iptables (network-namespace tests, parley.testing.netns).
# Installed only when missing; fails with a clear message when they cannot be installed.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v turnserver >/dev/null 2>&1 || need+=(coturn)
{ command -v ip && command -v tc; } >/dev/null 2>&1 || need+=(iproute2)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "installing system packages: ${need[*]}"
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "cannot install ${need[*]}: no apt-get on this machine; install them by hand" >&2
  exit 1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# coturn's Debian package starts a system service; Parley runs its own instances.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now coturn >/dev/null 2>&1 || true; fi
