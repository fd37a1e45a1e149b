#!/usr/bin/env bash
# The README's test command: install what is missing, build, run every test.
#   tools/test.sh [ctest arguments…]     e.g. tools/test.sh -R tokenizer
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh build
cd build
ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@"
