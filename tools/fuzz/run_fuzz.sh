#!/usr/bin/env bash
# Build the libFuzzer targets (ASan + UBSan) and run each from its seeds.
#
#   tools/fuzz/run_fuzz.sh [SECONDS [TARGET…]]        the targets share SECONDS of fuzzing (default 45;
#                                                      CI), one per core at a time
#   tools/fuzz/run_fuzz.sh --each SECONDS [TARGET…]   SECONDS per target (the long runs of
#                                                      docs/robustness.md use --each 600)
#
# Targets: every fuzz_* in tools/fuzz/CMakeLists.txt unless named. Seeds: tools/fuzz/corpus/<target>/
# (committed; tools/fuzz/gen_seeds.py writes most of them) plus the malformed fixtures of the
# format. New inputs go to a scratch corpus, so the committed one never changes. Each input has
# 10 s (-timeout: a hang is a finding) and 2 GB (-rss_limit_mb). A crash, hang, leak, uncaught
# exception or sanitizer report leaves crash-*/timeout-*/leak-* in build-fuzz/ and exits non-zero;
# a per-target summary (runs, coverage, peak RSS) goes to build-fuzz/fuzz-summary.md.
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,13p' "$0"; exit 0 ;; esac
cd "$(dirname "$0")/../.."
mode=share
if [ "${1:-}" = --each ]; then mode=each; shift; fi
SECS=${1:-45}
shift || true
case "$SECS" in ''|*[!0-9]*) echo "run_fuzz.sh: SECONDS must be a whole number, got '$SECS' (see --help)" >&2; exit 2 ;; esac
CXX=${FUZZ_CXX:-clang++-14}
# clang's libFuzzer and OpenMP, and the library's own dependencies (tools/bootstrap.sh's list).
packages=(clang-14 libclang-rt-14-dev libomp-14-dev cmake make pkg-config libxtensor-dev libxsimd-dev
          libutf8proc-dev libre2-dev nlohmann-json3-dev)
tools/apt_ensure.sh run_fuzz.sh "${packages[@]}"
cmake -S tools/fuzz -B build-fuzz -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)"

declare -A seeds=([fuzz_safetensors_header]=../tests/fixtures/checkpoints/malformed
                  [fuzz_gguf]=../tests/fixtures/gguf/malformed
                  [fuzz_tokenizer_json]=../tests/fixtures/differential/tokenizer
                  [fuzz_csv]=../tests/fixtures/differential/csv)
if (($#)); then
  targets=("$@")
else
  mapfile -t targets < <(sed 's/#.*//' tools/fuzz/CMakeLists.txt | sed -n '/^set(GALVANI_FUZZ_TARGETS/,/)/p' \
                           | sed 's/set(GALVANI_FUZZ_TARGETS//;s/)//' | tr -s ' \n' '\n' | grep .)
fi
if [ "$mode" = each ]; then each=$SECS; else each=$(( SECS / ${#targets[@]} )); fi
[ "$each" -ge 1 ] || each=1
# The targets run in build-fuzz/, so the shared data is given by an absolute path.
if [ -z "${GALVANI_DATA:-}" ]; then
  for d in ../shared/data data; do
    if [ -d "$d/tokenizers" ]; then export GALVANI_DATA; GALVANI_DATA=$(cd "$d" && pwd); break; fi
  done
fi
summary=build-fuzz/fuzz-summary.md
{ echo "| target | seconds | runs | coverage (edges) | features | corpus | peak RSS MB | result |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|"; } > "$summary"
# The targets run side by side, one per core (nproc at a time), each for its share of SECONDS:
# the same fuzzing time in a half or less of the wall time on CI's two cores. Each writes its
# summary row to a file; the rows are gathered in the targets' order.
rows=$(mktemp -d)  # each target's row, report and scratch corpus
kill_tree() {  # kill_tree PID: the process and everything it started (a job, its subshell, the fuzzer)
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
trap 'for j in $(jobs -p); do kill_tree "$j"; done; rm -rf "$rows"' EXIT  # interrupted: no fuzzer outlives the script
run_one() {  # run_one TARGET: fuzz it, write its row and its report; return 1 on a finding
  local target=$1 work=$rows/$1.work extra=() log rc=0 runs rss last cov ft corp result
  if [ "$target" = fuzz_tokenizer_encode ] && ! [ -f "${GALVANI_DATA:-/nonexistent}/tokenizers/gpt2/tokenizer.json" ]; then
    echo "== $target skipped: it needs the shared data's tokenizers (set GALVANI_DATA)"
    echo "| $target | 0 | | | | | | skipped: no shared data (set GALVANI_DATA) |" > "$rows/$target"
    return 0
  fi
  mkdir -p "$work"
  [ -n "${seeds[$target]:-}" ] && [ -d "build-fuzz/${seeds[$target]}" ] && extra=("${seeds[$target]}")
  log=build-fuzz/$target.log
  (cd build-fuzz && ./"$target" -max_total_time="$each" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
     -print_final_stats=1 "$work" "../tools/fuzz/corpus/$target" "${extra[@]}") >"$log" 2>&1 || rc=$?
  rm -rf "$work"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1 || true)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last" || true)
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last" || true)
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last" || true)
  if [ "$rc" -eq 0 ]; then result="clean"; else result="**FAILED (exit $rc)**"; fi
  echo "| $target | $each | ${runs:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | ${rss:-?} | $result |" > "$rows/$target"
  { echo "== $target, ${each}s: ${runs:-?} runs"
    tail -n 12 "$log" | grep -E 'ERROR|SUMMARY' || true
    [ "$rc" -eq 0 ] || { echo "run_fuzz.sh: $target failed (exit $rc); its log: $log"; grep -A30 -m1 'ERROR' "$log" || tail -40 "$log"; }
  } > "$rows/$target.report"
  [ "$rc" -eq 0 ]
}
jobs=$(nproc 2>/dev/null || echo 1)
echo "run_fuzz.sh: ${#targets[@]} targets, ${each}s each, $jobs at a time"
pids=()
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "$target" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
for target in "${targets[@]}"; do
  cat "$rows/$target" >> "$summary"
  [ -f "$rows/$target.report" ] && cat "$rows/$target.report"
done
cat "$summary"
exit "$failed"
