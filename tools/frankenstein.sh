#!/usr/bin/env bash
# The README's main-job command: install what is missing, build with -march=native,
# then run the whole Frankenstein pipeline offline into runs/frankenstein.
#   tools/frankenstein.sh [frankenstein arguments…]   e.g. --model distilgpt2, or --help for all options
set -euo pipefail
cd "$(dirname "$0")/.."
GALVANI_CMAKE_ARGS="-DGALVANI_NATIVE=ON -DGALVANI_BUILD_TESTS=OFF ${GALVANI_CMAKE_ARGS:-}" \
  tools/bootstrap.sh build-native
exec build-native/frankenstein --out runs/frankenstein "$@"
