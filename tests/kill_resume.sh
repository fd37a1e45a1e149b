#!/usr/bin/env bash
# Issue #17: a training run killed with SIGKILL in the middle of a checkpoint save, or in the
# middle of an optimizer update, then resumed from "latest", ends bit for bit where an
# uninterrupted run with the same seed ends; and no checkpoint-N folder is ever partial.
#
#   tests/kill_resume.sh BUILD_DIR full|qlora
#
# full: the tiny GPT-2 trained whole (adamw_torch); qlora: the tiny GPT-2 quantized to NF4 with
# LoRA r=32 on c_attn (paged_adamw_8bit: 8-bit optimizer states). Each run is step5_finetune,
# 9 updates of 4 rows, a checkpoint every 3 (save_total_limit 2), one thread, on 35 rows of
# the novel (2 lines each, so a step is short):
#   a  uninterrupted
#   b  GALVANI_FAULT_INJECT=kill_in_save:6 — killed while checkpoint-6 is written (its weights
#      and optimizer state in .checkpoint-6.tmp, no trainer_state.json); resumed from latest
#      (checkpoint-3), which removes the .tmp and writes checkpoint-6 afresh
#   c  GALVANI_FAULT_INJECT=kill_in_step:8 — killed in update 8 with half the parameters
#      updated; resumed from latest (checkpoint-6), across the epoch boundary after update 7
# Checked: a killed run exits with 137 (SIGKILL) and says where it died; after every run each
# checkpoint-N holds exactly the files of a's checkpoint-9, each .safetensors of a's size, and a
# trainer_state.json that parses with global_step N; nothing hidden is left once a run ends
# well; and b and c end with every file of final/ (the weights or the adapter) and of each
# checkpoint (weights, optimizer.safetensors) byte-identical to a's (cmp on whole files: the
# safetensors metadata is the same too), trainer_state.json and log.jsonl equal but for their
# wall-clock fields (elapsed, tokens_per_second).
# Needs the shared data (the GPT-2 tokenizer, the novel): exit 77 (skipped) without it.
set -euo pipefail
build=$(cd "${1:?usage: kill_resume.sh BUILD_DIR full|qlora}" && pwd)
method=${2:?usage: kill_resume.sh BUILD_DIR full|qlora}
case "$method" in full) weights=model.safetensors ;; qlora) weights=adapter_model.safetensors ;;
  *) echo "kill_resume.sh: method is full or qlora, not '$method'"; exit 2 ;; esac
src=$(cd "$(dirname "$0")/.." && pwd)
prog=$build/step5_finetune
[ -x "$prog" ] || { echo "FAIL: $prog is not built"; exit 1; }

data=${GALVANI_DATA:-$src/../shared/data}
for f in tokenizers/gpt2/tokenizer.json frankenstein/pg84.txt; do
  [ -f "$data/$f" ] || { echo "SKIP: $data/$f not found (set GALVANI_DATA or run tools/fetch_data.sh)"; exit 77; }
done
export GALVANI_DATA=$data OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
unset GALVANI_FAULT_INJECT

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() { echo "FAIL ($method): $*"; exit 1; }

# 35 rows of two non-blank lines of chapter 3 on: 28 train (7 batches of 4), 7 test.
awk 'NR >= 1000 && NF { buf = buf (buf == "" ? "" : " ") $0; if (++k % 2 == 0) {
       gsub(/"/, "\"\"", buf); print "\"" buf "\""; buf = ""; if (++rows == 35) exit } }
     BEGIN { print "text" }' "$data/frankenstein/pg84.txt" >"$scratch/rows.csv"

flags=(--model tiny --method "$method" --csv "$scratch/rows.csv" --batch-size 4 --max-steps 9 --save-steps 3
       --warmup 2 --seed 42)

# train NAME [ENV=VALUE…] [-- FLAG…]: step5_finetune into $scratch/NAME, output in NAME.log; sets rc.
train() {
  local name=$1 envs=() extra=()
  shift
  while (($#)) && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  (($#)) && shift && extra=("$@")
  local t0=$SECONDS
  set +e
  env "${envs[@]}" "$prog" "${flags[@]}" --out "$scratch/$name" "${extra[@]}" >"$scratch/$name.log" 2>&1
  rc=$?
  set -e
  echo "  $name: exit $rc, $((SECONDS - t0)) s ${envs[*]} ${extra[*]}"
}
expect_rc() {  # expect_rc NAME CODE
  [ "$rc" = "$2" ] || { tail -n 20 "$scratch/$1.log"; fail "$1 exited with $rc, expected $2"; }
}
expect_log() {  # expect_log NAME TEXT: the run's output holds TEXT
  grep -qF -- "$2" "$scratch/$1.log" || { tail -n 20 "$scratch/$1.log"; fail "$1's output lacks: $2"; }
}

# The state of a checkpoint's trainer_state.json: parses, and global_step is N.
state_ok() {  # state_ok FILE N
  if command -v python3 >/dev/null; then
    python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); sys.exit(s["global_step"] != int(sys.argv[2]))' "$1" "$2"
  else  # no Python: the writer's shape at least (indent 2, one top-level object)
    [ "$(head -c1 "$1")" = "{" ] && [ "$(tail -n1 "$1")" = "}" ] && grep -q "^  \"global_step\": $2,\$" "$1"
  fi
}

# Every checkpoint-N of output folder NAME is whole: a's files, a's sizes, a sound state.
check_whole() {
  local name=$1 dir n f
  for dir in "$scratch/$name"/checkpoint-*; do
    [ -d "$dir" ] || continue
    n=${dir##*-}
    [ "$(ls -A "$dir")" = "$ref_files" ] || fail "$name: ${dir##*/} holds [$(ls -A "$dir" | tr '\n' ' ')], not [$(tr '\n' ' ' <<<"$ref_files")]"
    for f in "$dir"/*.safetensors; do
      [ "$(stat -c %s "$f")" = "$(stat -c %s "$scratch/a/checkpoint-9/${f##*/}")" ] || fail "$name: ${dir##*/}/${f##*/} is not whole"
    done
    state_ok "$dir/trainer_state.json" "$n" || fail "$name: ${dir##*/}/trainer_state.json does not parse or is not step $n's"
  done
}

no_leftovers() {  # a run that ended well leaves no hidden .checkpoint-N.tmp/.old
  local left
  left=$(find "$scratch/$1" -maxdepth 1 -name '.checkpoint-*' | tr '\n' ' ')
  [ -z "$left" ] || fail "$1: left behind: $left"
}

strip_times() { sed -E 's/"(elapsed|tokens_per_second)": ?[^,}]*,?//g' "$1"; }

# NAME ends as a: the same folders, final/ and every checkpoint byte for byte.
same_as_a() {
  local name=$1 f rel
  [ "$(ls -A "$scratch/$name")" = "$(ls -A "$scratch/a")" ] || fail "$name holds [$(ls -A "$scratch/$name" | tr '\n' ' ')], a holds [$(ls -A "$scratch/a" | tr '\n' ' ')]"
  for f in "$scratch/a"/final/* "$scratch/a"/checkpoint-*/*; do
    rel=${f#"$scratch/a/"}
    if [ "${f##*/}" = trainer_state.json ]; then
      cmp -s <(strip_times "$f") <(strip_times "$scratch/$name/$rel") || fail "$name/$rel differs from a's (beyond timings)"
    else
      cmp -s "$f" "$scratch/$name/$rel" || fail "$name/$rel differs from a's: $(cmp "$f" "$scratch/$name/$rel" 2>&1 | head -n1)"
    fi
  done
  cmp -s <(strip_times "$scratch/a/log.jsonl") <(strip_times "$scratch/$name/log.jsonl") || fail "$name/log.jsonl differs from a's (beyond timings)"
  echo "  $name = a: final/$weights, checkpoint-{6,9} weights and optimizer.safetensors identical (cmp)"
}

echo "kill_resume ($method): step5_finetune ${flags[*]}"
start=$SECONDS

# a: uninterrupted.
train a
expect_rc a 0
[ -d "$scratch/a/checkpoint-9" ] && [ -f "$scratch/a/final/$weights" ] || fail "a wrote no checkpoint-9 or final/$weights"
ref_files=$(ls -A "$scratch/a/checkpoint-9")
for f in optimizer.safetensors trainer_state.json "$weights"; do
  grep -qxF "$f" <<<"$ref_files" || fail "a's checkpoint-9 has no $f"
done
check_whole a
no_leftovers a

# b: killed while checkpoint-6 is written, resumed from checkpoint-3.
train b GALVANI_FAULT_INJECT=kill_in_save:6
expect_rc b 137
expect_log b "GALVANI_FAULT_INJECT: SIGKILL while writing checkpoint-6"
[ ! -e "$scratch/b/checkpoint-6" ] || fail "b: checkpoint-6 is visible after a kill in its save"
[ -f "$scratch/b/.checkpoint-6.tmp/optimizer.safetensors" ] && [ ! -e "$scratch/b/.checkpoint-6.tmp/trainer_state.json" ] ||
  fail "b: .checkpoint-6.tmp is not the half-written checkpoint the kill should leave"
[ -d "$scratch/b/checkpoint-3" ] || fail "b: no checkpoint-3 before the kill"
check_whole b
mv "$scratch/b.log" "$scratch/b_killed.log"
train b -- --resume-from-checkpoint latest
expect_rc b 0
expect_log b "removing $scratch/b/.checkpoint-6.tmp"
expect_log b "resuming from $scratch/b/checkpoint-3 at step 3"
check_whole b
no_leftovers b
same_as_a b

# c: killed in update 8, half its parameters updated; resumed from checkpoint-6.
train c GALVANI_FAULT_INJECT=kill_in_step:8
expect_rc c 137
expect_log c "GALVANI_FAULT_INJECT: SIGKILL in update 8, after its optimizer step updated"
check_whole c
[ "$(ls -d "$scratch/c"/checkpoint-* | sed 's|.*/||' | tr '\n' ' ')" = "checkpoint-3 checkpoint-6 " ] ||
  fail "c: after the kill in update 8 the checkpoints are not 3 and 6"
mv "$scratch/c.log" "$scratch/c_killed.log"
train c -- --resume-from-checkpoint latest
expect_rc c 0
expect_log c "resuming from $scratch/c/checkpoint-6 at step 6"
check_whole c
no_leftovers c
same_as_a c

echo "PASS kill_resume ($method): $((SECONDS - start)) s"
