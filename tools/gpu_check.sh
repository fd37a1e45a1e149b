#!/usr/bin/env bash
# The whole GPU check in one call, for a machine with an NVIDIA GPU, the CUDA toolkit and a C++20
# host compiler for nvcc (g++ 10+; no CMake, no Debian packages). Builds every tests/cuda/test_*.cu and the
# CUDA benchmarks with nvcc for this GPU, runs each test (then, with --quick, under
# compute-sanitizer's memcheck and racecheck where it works), then the benchmarks, and writes everything to one folder. About 3–5 minutes.
#
#   tools/gpu_check.sh [RESULTS_DIR]     (default: $OUT if set, else gpu-results/)
#
# Files written (at most 8, flat, so a remote runner can fetch them all): device.txt (nvidia-smi,
# nvcc), build.log, tests.log, sanitizer.log, bench_nf4_cuda.md (the table for docs/benchmarks.md),
# bench_nf4_cuda.jsonl, summary.txt. Exit status: 0 when every build and test passed.
set -uo pipefail
case "${1:-}" in -h|--help) head -n 11 "$0" | tail -n +2; exit 0 ;; esac
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-results}}
mkdir -p "$out"
build=build-gpu
mkdir -p "$build"
summary="$out/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }

# nvcc from PATH, else the toolkit's usual home; its libraries (cuBLAS) found through an rpath.
cuda_home=${CUDA_HOME:-/usr/local/cuda}
command -v nvcc >/dev/null || export PATH="$cuda_home/bin:$PATH"
command -v nvcc >/dev/null || { note "gpu_check: no nvcc on PATH or in $cuda_home/bin"; exit 1; }
cuda_lib=$(dirname "$(dirname "$(command -v nvcc)")")/lib64
{ nvidia-smi; nvcc --version; } >"$out/device.txt" 2>&1
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
arch=${GALVANI_CUDA_ARCH:-${cap:-90}}
note "gpu_check: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1) sm_$arch, $(date -u +%FT%TZ)"

# Build: one nvcc per program, in parallel (each is one translation unit).
flags=(-std=c++20 -O3 "-gencode=arch=compute_$arch,code=sm_$arch" -Iinclude -Ikernels -lcublas
       -Xlinker "-rpath,$cuda_lib")
sources=(tests/cuda/test_*.cu tools/cuda/*.cu)
: >"$out/build.log"
pids=()
for src in "${sources[@]}"; do
  name=$(basename "$src" .cu)
  rm -f "$build/$name" "$build/$name.rc"  # never run a binary left by an earlier build
  (nvcc "${flags[@]}" "$src" -o "$build/$name" >"$build/$name.log" 2>&1; echo $? >"$build/$name.rc") &
  pids+=($!)
done
wait "${pids[@]}"
status=0
for src in "${sources[@]}"; do
  name=$(basename "$src" .cu)
  rc=$(cat "$build/$name.rc")
  { echo "== $name (rc $rc)"; cat "$build/$name.log"; } >>"$out/build.log"
  [ "$rc" = 0 ] || { note "BUILD FAILED: $name (build.log)"; status=1; }
done

# Tests.
: >"$out/tests.log"
for src in tests/cuda/test_*.cu; do
  name=$(basename "$src" .cu)
  [ -x "$build/$name" ] || continue
  start=$(date +%s)
  timeout 300 "$build/$name" >>"$out/tests.log" 2>&1
  rc=$?
  note "test $name: rc $rc ($(( $(date +%s) - start )) s)$([ "$rc" = 77 ] && echo ' skipped: no usable CUDA device')"
  [ "$rc" = 0 ] || status=1
done

# The same tests under compute-sanitizer: memcheck (out-of-bounds and misaligned accesses) and
# racecheck (shared-memory races), where the machine's runtime allows it (some sandboxes refuse
# the device to the sanitizer: then it is noted, not failed). --error-exitcode 9: errors found.
: >"$out/sanitizer.log"
if command -v compute-sanitizer >/dev/null; then
  for src in tests/cuda/test_*.cu; do
    name=$(basename "$src" .cu)
    [ -x "$build/$name" ] || continue
    for tool in memcheck racecheck; do
      echo "== $tool $name" >>"$out/sanitizer.log"
      timeout 150 compute-sanitizer --tool "$tool" --error-exitcode 9 "$build/$name" --quick >>"$out/sanitizer.log" 2>&1
      rc=$?
      case $rc in
        0) note "$tool $name: clean" ;;
        9) note "$tool $name: ERRORS (sanitizer.log)"; status=1 ;;
        *) note "$tool $name: could not run (rc $rc; sanitizer.log)" ;;
      esac
    done
  done
fi

# Benchmarks.
if [ -x "$build/bench_nf4_cuda" ]; then
  timeout 300 "$build/bench_nf4_cuda" --json "$out/bench_nf4_cuda.jsonl" >"$out/bench_nf4_cuda.md" 2>&1
  note "bench_nf4_cuda: rc $?"
fi
note "gpu_check: $([ $status = 0 ] && echo PASSED || echo FAILED)"
exit $status
