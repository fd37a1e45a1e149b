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
need_value() { [ $# -ge 2 ] || { echo "launch.sh: $1 needs a value (see --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    -n) need_value "$@"; n=$2; shift 2 ;;
    --threads) need_value "$@"; threads=$2; shift 2 ;;
    --hostfile) need_value "$@"; hostfile=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "launch.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
case "$n" in ''|*[!0-9]*|0*) echo "launch.sh: -n must be a whole number > 0, got '$n'" >&2; exit 2 ;; esac
case "$threads" in ''|[1-9]|[1-9][0-9]|[1-9][0-9][0-9]) ;; *) echo "launch.sh: --threads must be a whole number from 1 to 999, got '$threads'" >&2; exit 2 ;; esac
[ $# -ge 1 ] || { echo "launch.sh: no program given (see --help)" >&2; exit 2; }
command -v "$1" >/dev/null || { echo "launch.sh: $1: no such program (build it first: tools/bootstrap.sh build)" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "launch.sh: no mpirun; install Open MPI (Debian: apt install openmpi-bin libopenmpi-dev) and rebuild galvani" >&2; exit 2; }
cores=$(nproc 2>/dev/null || echo 1)
[ -n "$threads" ] || threads=$(( cores / n > 0 ? cores / n : 1 ))
export OMP_NUM_THREADS=$threads  # a launch on this machine passes the environment on
args=(-np "$n")
mapfile -t passed < <(env | sed -n 's/^\(GALVANI_[A-Za-z0-9_]*\|OMP_[A-Za-z0-9_]*\)=.*/\1/p')  # to every rank
version=$(mpirun --version 2>/dev/null || true)
if [[ "$version" == *"Open MPI"* ]]; then
  # Open MPI: -x passes variables to ranks on other machines too; root in a container, more
  # ranks than cores, shared memory without ptrace.
  for v in "${passed[@]}"; do args+=(-x "$v"); done
  [ "$(id -u)" -ne 0 ] || args+=(--allow-run-as-root)
  [ -n "$hostfile" ] || (( n * threads <= cores )) || args+=(--oversubscribe)
  args+=(--bind-to none --mca btl_vader_single_copy_mechanism none)
else
  args+=(-genvlist "$(IFS=,; echo "${passed[*]}")")  # MPICH
fi
[ -z "$hostfile" ] || args+=(--hostfile "$hostfile")
exec mpirun "${args[@]}" "$@"
