#!/usr/bin/env bash
# Install the Debian packages that are missing (apt-get, with sudo when not root); those
# present are not touched. Shared by tools/bootstrap.sh, tools/test.sh and tools/fuzz/run_fuzz.sh.
#
#   tools/apt_ensure.sh WHO PACKAGE…     WHO names the caller in the one line it prints
set -euo pipefail
case "${1:-}" in -h|--help|'') sed -n '2,5p' "$0"; exit 0 ;; esac
who=$1
shift
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "$who: installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "$who: all Debian packages present ($#)"
fi
