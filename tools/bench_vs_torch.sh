#!/usr/bin/env bash
# bench_vs_torch.sh — galvani's bench_train against a PyTorch CPU baseline, back to back, same
# config and threads, alternating baseline, galvani, baseline, galvani, …; then a table of
# galvani/baseline ratios. Two baselines (../shared/bench/README.md):
#   torch  torch_gpt2_baseline.py: Debian's torch 1.13 + OpenBLAS, plain-PyTorch GPT-2 (the
#          strongest PyTorch on the Zen 5 machine it was measured on); GPT-2 configs only
#   hf     hf_baseline.py full: transformers' GPT2LMHeadModel / LlamaForCausalLM on torch from
#          the package registry, in a virtualenv (--python); the only one for smollm2
#
#   tools/bench_vs_torch.sh --config tiny --threads 2
#   tools/bench_vs_torch.sh --config distilgpt2 --threads 1 --quick --rounds 1
#   tools/bench_vs_torch.sh --config smollm2 --threads 2 --quick --rounds 2      # against hf
#
# Options (defaults in brackets):
#   --config distilgpt2|tiny|smollm2 [tiny]   --threads N [all cores]   --quick
#   --baseline torch|hf    [torch; hf for smollm2]
#   --python PY            the hf baseline's interpreter [$GALVANI_REFENV/bin/python, else
#                          ../refenv/bin/python]; made with python3 -m venv and the README's
#                          pip line when missing (unless --no-install)
#   --rounds R [2]         torch+galvani pairs
#   --idle-load L [0.5]    before every run, wait until the 1-minute load average is
#                          below L and other processes use < 5% of the CPUs over 3 s
#   --max-wait S [600]     give up waiting after S seconds (the run is then marked busy)
#   --out DIR              where the JSON lines and logs go [a fresh /tmp directory]
#   --machine              also run both programs' machine section (sgemm/copy) in round 1
#   --no-install           do not install the baseline's packages (apt-get for torch, pip for hf)
#   -- ARGS                passed to both programs (e.g. -- --seq-lens 256 --sections train);
#                          with the hf baseline only --seq-lens L (hf_baseline.py takes no other)
#
# Each baseline runs as ../shared/bench/README.md says. torch: /usr/bin/python3, with
#   LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp
#   GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736:glibc.malloc.hugetlb=1
#   OPENBLAS_CORETYPE unset; hf: the virtualenv's python with the same GLIBC_TUNABLES.
# bench_train gets the same GLIBC_TUNABLES (it also calls keep_freed_memory() itself,
# but hugetlb=1 can only come from the tunable), so the mallocs behave alike.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASELINE_DIR="$(cd "$REPO/../shared/bench" && pwd)"
BUILD="${GALVANI_BENCH_BUILD:-$REPO/build-bench}"
BENCH="$BUILD/bench_train"

CONFIG=tiny THREADS=$(nproc) QUICK=() ROUNDS=2 IDLE_LOAD=0.5 MAX_WAIT=600 OUT="" MACHINE=0 INSTALL=1 EXTRA=()
DEFAULT_PY="${GALVANI_REFENV:-$REPO/../refenv}/bin/python"
BASE="" PY="$DEFAULT_PY"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config|--baseline|--python|--threads|--rounds|--idle-load|--max-wait|--out)
      [[ $# -ge 2 && $2 != --* ]] || { echo "bench_vs_torch.sh: $1 needs a value (see --help)" >&2; exit 2; } ;;&
    --config) CONFIG="$2"; shift 2 ;;
    --baseline) BASE="$2"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --quick) QUICK=(--quick); shift ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --idle-load) IDLE_LOAD="$2"; shift 2 ;;
    --max-wait) MAX_WAIT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --machine) MACHINE=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_vs_torch.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$CONFIG" in
  distilgpt2|tiny) BASE="${BASE:-torch}" ;;
  smollm2) BASE="${BASE:-hf}" ;;
  *) echo "bench_vs_torch.sh: --config $CONFIG: expected distilgpt2, tiny or smollm2" >&2; exit 2 ;;
esac
case "$BASE" in
  torch) [[ $CONFIG != smollm2 ]] || { echo "bench_vs_torch.sh: torch_gpt2_baseline.py has no smollm2; use --baseline hf" >&2; exit 2; } ;;
  hf) if [[ ${#EXTRA[@]} -gt 0 && ! ( ${#EXTRA[@]} -eq 2 && ${EXTRA[0]} == --seq-lens ) ]]; then
        echo "bench_vs_torch.sh: -- ${EXTRA[*]}: hf_baseline.py takes only --seq-lens L after --" >&2; exit 2
      fi ;;
  *) echo "bench_vs_torch.sh: --baseline $BASE: expected torch or hf" >&2; exit 2 ;;
esac
if [[ $PY != "$DEFAULT_PY" ]]; then
  [[ $BASE == hf ]] || echo "bench_vs_torch.sh: note: --python is for --baseline hf; the torch baseline runs Debian's /usr/bin/python3" >&2
  [[ ! $BASE == hf || -x $PY ]] || { echo "bench_vs_torch.sh: --python $PY: no such interpreter (give a virtualenv's bin/python)" >&2; exit 2; }
fi
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# ---------------------------------------------------------------- dependencies
OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
if [[ $BASE == torch ]]; then
  if [[ $INSTALL == 1 ]] && { ! /usr/bin/python3 -c 'import torch' 2>/dev/null || [[ ! -d $OPENBLAS_DIR ]]; }; then
    SUDO=(); [[ $(id -u) == 0 ]] || SUDO=(sudo)
    log "installing python3-torch and libopenblas0-openmp (takes a while) ..."
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get install -y python3-torch libopenblas0-openmp ||
      { "${SUDO[@]}" apt-get update && "${SUDO[@]}" apt-get install -y python3-torch libopenblas0-openmp; }
  fi
  /usr/bin/python3 -c 'import torch' || { echo "bench_vs_torch.sh: /usr/bin/python3 cannot import torch" >&2; exit 1; }
else
  # Only the default virtualenv is made or filled here; an interpreter named with --python is the user's.
  if [[ $INSTALL == 1 && $PY == "$DEFAULT_PY" ]] && ! "$PY" -c 'import torch, transformers' 2>/dev/null; then
    venv="$(dirname "$(dirname "$PY")")"
    log "making $venv with torch and transformers from the package registry (~5.7 GB, a few minutes) ..."
    [[ -x $PY ]] || python3 -m venv "$venv"
    "$PY" -m pip install -q torch transformers tokenizers safetensors peft bitsandbytes accelerate >&2
  fi
  "$PY" -c 'import torch, transformers' 2>/dev/null ||
    { echo "bench_vs_torch.sh: $PY cannot import torch and transformers (make a venv, see ../shared/bench/README.md, and pass --python)" >&2; exit 1; }
fi
if [[ ! -x $BENCH ]]; then
  log "building bench_train in $BUILD ..."
  cmake -S "$REPO" -B "$BUILD" -DGALVANI_NATIVE=ON -DGALVANI_BUILD_TESTS=OFF -DGALVANI_CUDA=OFF >&2
  cmake --build "$BUILD" --target bench_train -j2 >&2
fi
[[ -n "$OUT" ]] || OUT="$(mktemp -d /tmp/bench_vs_torch.XXXXXX)"  # only once everything is in place
mkdir -p "$OUT"

# ---------------------------------------------------------------- idle wait
cpu_busy() {  # share of all CPUs busy over 3 s (nothing of ours runs between programs)
  local a b
  a=($(head -1 /proc/stat)); sleep 3; b=($(head -1 /proc/stat))
  awk -v a="${a[*]}" -v b="${b[*]}" 'BEGIN { n = split(a, x, " "); split(b, y, " ");
    for (i = 2; i <= 9; i++) { d = y[i] - x[i]; tot += d; if (i == 5 || i == 6) idle += d }
    printf "%.3f", (tot > 0 ? (tot - idle) / tot : 0) }'
}
wait_idle() {  # prints "load busy waited_s" of the moment the run starts
  local t0=$SECONDS load busy
  while :; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    busy=$(cpu_busy)
    if awk -v l="$load" -v t="$IDLE_LOAD" -v b="$busy" 'BEGIN { exit !(l < t && b < 0.05) }'; then break; fi
    if (( SECONDS - t0 > MAX_WAIT )); then log "WARNING: still busy (load $load, cpu $busy) after ${MAX_WAIT}s; running anyway"; break; fi
    log "  waiting for idle: load $load (want < $IDLE_LOAD), cpu busy $busy ..."
    sleep 10
  done
  echo "$load $busy $((SECONDS - t0))"
}

# ---------------------------------------------------------------- runs
TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736:glibc.malloc.hugetlb=1
COMMON=(--config "$CONFIG" --threads "$THREADS" "${QUICK[@]}" "${EXTRA[@]}")
log "config $CONFIG, threads $THREADS ${QUICK[*]}, $ROUNDS round(s); results in $OUT"
for ((r = 1; r <= ROUNDS; r++)); do
  machine=(--no-machine); [[ $MACHINE == 1 && $r == 1 ]] && machine=()
  read -r load busy waited < <(wait_idle)
  log "round $r: $BASE baseline (load $load, cpu busy $busy, waited ${waited}s)"
  echo "{\"who\":\"torch\",\"round\":$r,\"loadavg_1m\":$load,\"cpu_busy_before\":$busy}" > "$OUT/torch.$r.meta"
  if [[ $BASE == torch ]]; then
    (cd "$BASELINE_DIR" && unset OPENBLAS_CORETYPE &&
      LD_LIBRARY_PATH=$OPENBLAS_DIR GLIBC_TUNABLES=$TUNABLES \
      /usr/bin/python3 torch_gpt2_baseline.py "${COMMON[@]}" "${machine[@]}") > "$OUT/torch.$r.json" 2> "$OUT/torch.$r.log"
  else  # hf_baseline.py has no machine section and no --no-machine
    (cd "$BASELINE_DIR" && GLIBC_TUNABLES=$TUNABLES "$PY" hf_baseline.py full "${COMMON[@]}") \
      > "$OUT/torch.$r.json" 2> "$OUT/torch.$r.log" ||
      { echo "bench_vs_torch.sh: hf_baseline.py failed; the end of $OUT/torch.$r.log:" >&2; tail -5 "$OUT/torch.$r.log" >&2; exit 1; }
  fi
  read -r load busy waited < <(wait_idle)
  log "round $r: galvani (load $load, cpu busy $busy, waited ${waited}s)"
  echo "{\"who\":\"galvani\",\"round\":$r,\"loadavg_1m\":$load,\"cpu_busy_before\":$busy}" > "$OUT/galvani.$r.meta"
  (unset OPENBLAS_CORETYPE && GLIBC_TUNABLES=$TUNABLES "$BENCH" "${COMMON[@]}" "${machine[@]}") \
    > "$OUT/galvani.$r.json" 2> "$OUT/galvani.$r.log"
done

# ---------------------------------------------------------------- table
python3 - "$OUT" "$ROUNDS" "$BASE" <<'EOF'
import json, statistics, sys
out, rounds, base = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def load(who):
    runs = []
    for r in range(1, rounds + 1):
        with open(f"{out}/{who}.{r}.json") as f:
            j = json.loads(f.read().strip().splitlines()[-1])
        with open(f"{out}/{who}.{r}.meta") as f:
            j["meta"] = json.load(f)
        runs.append(j)
    return runs
T, G = load("torch"), load("galvani")
med = lambda xs: statistics.median(xs) if xs else float("nan")
def col(runs, get):
    vals = []
    for j in runs:
        try:
            vals.append(get(j))
        except (KeyError, IndexError, TypeError):
            pass
    return med(vals)
rows = []  # (label, getter, higher_is_better, fmt)
seqs = [t["seq"] for t in T[0].get("train", [])]
for i, s in enumerate(seqs):
    rows.append((f"train T={s} tok/s", lambda j, i=i: j["train"][i]["tokens_per_s"], True, "%.1f"))
    rows.append((f"  step ms", lambda j, i=i: (lambda v: v if isinstance(v, (int, float)) else v["median"])(j["train"][i]["step_ms"]),
                 False, "%.1f"))
    rows.append((f"  forward+loss ms", lambda j, i=i: j["train"][i]["forward_loss_ms_median"], False, "%.1f"))
    rows.append((f"  backward ms", lambda j, i=i: j["train"][i]["backward_ms_median"], False, "%.1f"))
    rows.append((f"  AdamW+zero_grad ms", lambda j, i=i: j["train"][i]["adamw_step_zero_grad_ms_median"], False, "%.1f"))
    rows.append((f"  minor faults/step", lambda j, i=i: j["train"][i]["minor_page_faults_per_step"], False, "%.0f"))
rows.append(("train peak RSS MB", lambda j: j["train_peak_rss_mb"], False, "%.0f"))
rows.append(("eval b1 T256 tok/s", lambda j: j["eval"]["tokens_per_s"], True, "%.1f"))
rows.append(("generate tok/s", lambda j: j["generate"]["tokens_per_s"], True, "%.1f"))
rows.append(("  prompt pass ms", lambda j: j["generate"]["prompt_pass_ms_median"], False, "%.2f"))
if "machine" in T[0] and "machine" in G[0]:
    rows.append(("machine sgemm 2048^3 GFLOP/s", lambda j: j["machine"]["sgemm_gflops"]["median"], True, "%.1f"))
    rows.append(("machine copy GB/s", lambda j: j["machine"]["copy_gbps"]["median"], True, "%.1f"))
name = "torch" if base == "torch" else "transformers"
print(f"config {G[0]['config']}, baseline {base} ({T[0].get('what', 'torch_gpt2_baseline.py')}, torch {T[0].get('torch', '?')}), "
      f"threads {T[0].get('threads', '?')}/{G[0]['threads']}, quick {G[0]['quick']}, "
      f"{rounds} round(s) each, medians across rounds; results in {out}")
print(f"| quantity | {name} | galvani | galvani/{name} |")
print("|---|---:|---:|---:|")
for label, get, _, fmt in rows:
    t, g = col(T, get), col(G, get)
    ratio = g / t if t == t and g == g and t else float("nan")
    show = lambda v: fmt % v if v == v else "—"  # not measured by that program (hf_baseline.py has no split)
    print(f"| {label} | {show(t)} | {show(g)} | {f'{ratio:.2f}' if ratio == ratio else '—'} |")
loads = [(j["meta"]["who"], j["meta"]["round"], j["meta"]["loadavg_1m"], j.get("max_foreign_cpu_load", float("nan")))
         for j in T + G]
print("load before each run / max foreign_cpu_load during it: " +
      ", ".join(f"{w}#{r} {l:.2f}/{f:.2f}" for w, r, l, f in sorted(loads, key=lambda x: (x[1], x[0] != "torch"))))
if base == "torch":
    print("losses (torch / galvani): train " + ", ".join(
        f"T={t['seq']} {t['loss_last']:.4f}/{g['loss_last']:.4f}" for t, g in zip(T[0].get("train", []), G[0].get("train", [])))
        + (f"; eval {T[0]['eval']['loss']:.4f}/{G[0]['eval']['loss']:.4f}" if "eval" in T[0] and "eval" in G[0] else ""))
EOF
