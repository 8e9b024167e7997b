#!/usr/bin/env bash
# Makes sure the Debian packages the test suite starts for itself are installed, before any test runs:
# Chromium for the browser tests, redis-server/redis-cli for the Redis, Sentinel and Cluster cases,
# openssl for certificate checks, iptables and iproute2 for the network-namespace lab tests, certutil
# (libnss3-tools) to give a test browser's own profile the test CA.
# Run as root with apt available, it installs what is missing (once; later runs find it there).
# Otherwise it stops with the exact command to run: a missing package never becomes a skipped test.
set -euo pipefail

# command-or-path -> Debian package
declare -A wanted=(
  [/usr/bin/chromium]=chromium
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [openssl]=openssl
  [iptables]=iptables
  [ip]=iproute2
  [certutil]=libnss3-tools
)

missing=()
for probe in "${!wanted[@]}"; do
  if [[ "$probe" == /* ]]; then
    [[ -x "$probe" ]] || missing+=("${wanted[$probe]}")
  else
    command -v "$probe" >/dev/null 2>&1 || missing+=("${wanted[$probe]}")
  fi
done
((${#missing[@]} == 0)) && exit 0

# Sorted and unique, so the message is stable.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "test setup: installing missing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  echo "test setup: installed ${missing[*]}" >&2
  exit 0
fi
echo "test setup: the test suite needs these Debian packages, which are not installed: ${missing[*]}" >&2
echo "test setup: run this, then npm test again:  sudo $cmd" >&2
exit 1
