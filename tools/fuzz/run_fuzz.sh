#!/usr/bin/env bash
# Build the libFuzzer targets and run each for a short time (CI): tools/fuzz/run_fuzz.sh [seconds=20]
#
# Seeds: tools/fuzz/corpus/<target>/ (committed) plus the malformed checkpoint fixtures.
# New inputs go to a scratch corpus, so the committed one never changes. A crash
# leaves crash-* in build-fuzz/ and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-20}
CXX=${FUZZ_CXX:-clang++-14}
if ! command -v "$CXX" >/dev/null || ! [ -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ] \
   || ! [ -e /usr/lib/llvm-14/lib/clang/14.0.6/include/omp.h ]; then
  echo "run_fuzz.sh: installing clang-14, libclang-rt-14-dev, libomp-14-dev"
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq clang-14 libclang-rt-14-dev libomp-14-dev
fi
cmake -S tools/fuzz -B build-fuzz -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)"
for target in fuzz_safetensors_header; do
  work=$(mktemp -d)
  echo "== $target for ${SECS}s"
  (cd build-fuzz && ./"$target" -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
     "$work" "../tools/fuzz/corpus/$target" ../tests/fixtures/checkpoints/malformed)
  rm -rf "$work"
done
