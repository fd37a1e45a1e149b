#!/usr/bin/env bash
# The README's main-job command: install what is missing, build with -march=native,
# then run the whole Frankenstein pipeline offline into runs/frankenstein (or --out DIR).
#   tools/frankenstein.sh [frankenstein arguments…]   e.g. --model distilgpt2 --out runs/d2, or --help for all options
# Environment: GALVANI_BUILD_DIR=DIR runs DIR/frankenstein as it is, without installing or
# building (the docs test uses it to check the README's commands against a built tree).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${GALVANI_BUILD_DIR:-}" ]]; then
  bin="$GALVANI_BUILD_DIR/frankenstein"
else
  GALVANI_CMAKE_ARGS="-DGALVANI_NATIVE=ON -DGALVANI_BUILD_TESTS=OFF ${GALVANI_CMAKE_ARGS:-}" \
    tools/bootstrap.sh build-native
  bin=build-native/frankenstein
fi
# The default run folder, unless the caller names one (CLI11 takes --out once).
for a in "$@"; do
  case "$a" in --out|--out=*) exec "$bin" "$@" ;; esac
done
exec "$bin" --out runs/frankenstein "$@"
