#!/usr/bin/env bash
# Run a galvani program as N data-parallel ranks, on this machine or a hostfile's (docs/distributed.md).
#
#   tools/launch.sh [-n N] [--threads T] [--hostfile FILE] PROGRAM [ARGS…]
#
# CPU (MPI): mpirun -np N, each rank with T OpenMP threads (default: the cores / N, at least 1;
# ranks are not bound, as Open MPI would bind each to a single core). --hostfile spreads the
# ranks over the machines it lists (Open MPI's format: "host slots=K" per line; galvani must be
# built at the same path on each).
# Environment passed to every rank: GALVANI_DATA, GALVANI_* and OMP_* variables.
# GPUs (NCCL) come with the CUDA backend (issue #16); this script then picks it.
set -euo pipefail
case "${1:-}" in -h|--help|'') sed -n '2,11p' "$0"; exit 0 ;; esac
n=2
threads=
hostfile=
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --hostfile) hostfile=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "launch.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "launch.sh: no program given (see --help)" >&2; exit 2; }
case "$n" in ''|*[!0-9]*|0) echo "launch.sh: -n must be a whole number > 0, got '$n'" >&2; exit 2 ;; esac
command -v mpirun >/dev/null || { echo "launch.sh: no mpirun; install Open MPI (Debian: apt install openmpi-bin libopenmpi-dev) and rebuild galvani" >&2; exit 2; }
cores=$(nproc 2>/dev/null || echo 1)
[ -n "$threads" ] || threads=$(( cores / n > 0 ? cores / n : 1 ))
args=(-np "$n" -x OMP_NUM_THREADS="$threads")
for v in $(env | sed -n 's/^\(GALVANI_[A-Za-z0-9_]*\|OMP_[A-Za-z0-9_]*\)=.*/\1/p'); do
  [ "$v" = OMP_NUM_THREADS ] || args+=(-x "$v")
done
if mpirun --version 2>/dev/null | grep -q "Open MPI"; then
  [ "$(id -u)" -ne 0 ] || args+=(--allow-run-as-root)
  (( n * threads <= cores )) || args+=(--oversubscribe)
  args+=(--bind-to none --mca btl_vader_single_copy_mechanism none)
fi
[ -z "$hostfile" ] || args+=(--hostfile "$hostfile")
exec mpirun "${args[@]}" "$@"
