#!/usr/bin/env bash
# Build the libFuzzer targets and run them for a short time (CI): tools/fuzz/run_fuzz.sh [seconds=20]
# The seconds are the whole run's budget, shared equally by the targets.
#
# Seeds: tools/fuzz/corpus/<target>/ (committed) plus the malformed fixtures of its format.
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
declare -A seeds=([fuzz_safetensors_header]=../tests/fixtures/checkpoints/malformed
                  [fuzz_gguf]=../tests/fixtures/gguf/malformed)
targets=(fuzz_safetensors_header fuzz_gguf)
each=$(( SECS / ${#targets[@]} )); [ "$each" -ge 1 ] || each=1
for target in "${targets[@]}"; do
  work=$(mktemp -d)
  echo "== $target for ${each}s"
  (cd build-fuzz && ./"$target" -max_total_time="$each" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
     "$work" "../tools/fuzz/corpus/$target" "${seeds[$target]}")
  rm -rf "$work"
done
