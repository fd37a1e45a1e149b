#!/usr/bin/env bash
# Install what galvani needs to build and test on Debian 12, then configure and build.
# Idempotent: packages already present are not touched, a configured build is reused.
#
#   tools/bootstrap.sh [BUILD_DIR [TARGET…]]     (default: build, every target)
#
# Environment: GALVANI_CMAKE_ARGS adds CMake options (e.g. -DGALVANI_CUDA=OFF).
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,7p' "$0"; exit 0 ;; esac
cd "$(dirname "$0")/.."
build_dir=${1:-build}
targets=("${@:2}")

packages=(cmake g++ make pkg-config libxtensor-dev libxsimd-dev libutf8proc-dev catch2
          nlohmann-json3-dev libcli11-dev libre2-dev
          libopenmpi-dev openmpi-bin)  # data-parallel training (docs/distributed.md)
tools/apt_ensure.sh bootstrap "${packages[@]}"

jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  echo "bootstrap: configuring $build_dir (Release)"
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release ${GALVANI_CMAKE_ARGS:-}
elif [ -n "${GALVANI_CMAKE_ARGS:-}" ]; then  # a configured folder takes the options given now
  cmake -S . -B "$build_dir" ${GALVANI_CMAKE_ARGS} >/dev/null
fi
if ((${#targets[@]})); then
  echo "bootstrap: building ${targets[*]} in $build_dir with $jobs jobs"
  cmake --build "$build_dir" -j "$jobs" --target "${targets[@]}"
else
  echo "bootstrap: building $build_dir with $jobs jobs"
  cmake --build "$build_dir" -j "$jobs"
fi
