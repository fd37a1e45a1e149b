#!/usr/bin/env bash
# The README's test command: install what is missing, build, fuzz briefly, run every test, then
# the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
#   tools/test.sh [ctest arguments…]     e.g. tools/test.sh -R tokenizer (both builds' ctest)
# Environment: GALVANI_FUZZ_SECONDS (default 45, shared by the 9 fuzz targets; 0 skips the fuzz
# run); GALVANI_SANITIZED_TESTS=0 skips the sanitized build (build-asan/).
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,6p' "$0"; exit 0 ;; esac
cd "$(dirname "$0")/.."
# build/ exists to run the tests: its programs compile at -O1 like the tests themselves
# (GALVANI_PROGRAMS_O1; benchmarks keep -O3), the programs as one multi-call executable and the
# unit tests as one per core (GALVANI_PROGRAMS_UNITY, GALVANI_TEST_TUS: unity builds, ~7x less
# compiling). The main job builds its own, build-native/, one executable per program.
GALVANI_CMAKE_ARGS="-DGALVANI_PROGRAMS_O1=ON -DGALVANI_PROGRAMS_UNITY=ON ${GALVANI_CMAKE_ARGS:-}" tools/bootstrap.sh build

# build-asan/: the unit tests alone (GALVANI_TEST_SET=unit), compiled by clang 14 with
# -fsanitize=address,undefined (clang compiles them in half GCC's time under the sanitizers);
# UBSAN_OPTIONS=halt_on_error=1 makes any report fail its test. docs/robustness.md, "Sanitizers".
jobs=$(nproc 2>/dev/null || echo 2)
sanitized=${GALVANI_SANITIZED_TESTS:-1}
if [ "$sanitized" != 0 ]; then
  tools/apt_ensure.sh test.sh clang-14 libclang-rt-14-dev libomp-14-dev
  if [ ! -f build-asan/CMakeCache.txt ]; then
    cmake -S . -B build-asan -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Release \
      -DGALVANI_TEST_SET=unit -DGALVANI_SANITIZE=address,undefined \
      -DGALVANI_BUILD_EXAMPLES=OFF -DGALVANI_BUILD_TOOLS=OFF -DGALVANI_CUDA=OFF >/dev/null
  fi
  echo "test.sh: building build-asan (the unit tests under ASan + UBSan)"
  cmake --build build-asan -j "$jobs"
fi

# Every file parser under libFuzzer + ASan/UBSan, from the committed seed corpora (5 s each, one
# per core at a time).
if [ "${GALVANI_FUZZ_SECONDS:-45}" != 0 ]; then
  tools/fuzz/run_fuzz.sh "${GALVANI_FUZZ_SECONDS:-45}"
fi

# ctest runs tests in parallel; with OpenMP's default busy-waiting, two test
# processes with two threads each on two cores would spin against each other.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
status=0
ctest --test-dir build --output-on-failure -j "$jobs" "$@" || status=$?
if [ "$sanitized" != 0 ]; then
  echo "test.sh: the unit tests under ASan + UBSan (build-asan)"
  ctest --test-dir build-asan --output-on-failure -j "$jobs" "$@" || status=$?
fi
exit "$status"
