#!/usr/bin/env bash
# The README's test command: install what is missing, build, fuzz briefly, run every test.
#   tools/test.sh [ctest arguments…]     e.g. tools/test.sh -R tokenizer
# Environment: GALVANI_FUZZ_SECONDS (default 45, shared by the 9 fuzz targets; 0 skips the fuzz run).
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,4p' "$0"; exit 0 ;; esac
cd "$(dirname "$0")/.."
# build/ exists to run the tests: its programs compile at -O1 like the tests themselves
# (GALVANI_PROGRAMS_O1; benchmarks keep -O3). The main job builds its own, build-native/.
GALVANI_CMAKE_ARGS="-DGALVANI_PROGRAMS_O1=ON ${GALVANI_CMAKE_ARGS:-}" tools/bootstrap.sh build

# Every file parser under libFuzzer + ASan/UBSan, from the committed seed corpora (5 s each).
if [ "${GALVANI_FUZZ_SECONDS:-45}" != 0 ]; then
  tools/fuzz/run_fuzz.sh "${GALVANI_FUZZ_SECONDS:-45}"
fi

# ctest runs tests in parallel; with OpenMP's default busy-waiting, two test
# processes with two threads each on two cores would spin against each other.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
cd build
ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@"
