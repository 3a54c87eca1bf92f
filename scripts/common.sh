# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Shared helpers for scripts/test.sh and scripts/demo.sh. Source it, do not run it.
# Expects `set -euo pipefail` in the caller and the current directory at the repository root.

JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

banner() {
  printf '\n==================== %s ====================\n' "$*"
}

note() {
  printf '%s: %s\n' "${MPOTR_SCRIPT:-mpotr}" "$*"
}

die() {
  printf '%s: ERROR: %s\n' "${MPOTR_SCRIPT:-mpotr}" "$*" >&2
  exit 1
}

bootstrap() {
  if [ "${MPOTR_SKIP_BOOTSTRAP:-0}" = "1" ]; then
    note "MPOTR_SKIP_BOOTSTRAP=1: not installing packages"
    return 0
  fi
  bash scripts/bootstrap.sh || die "scripts/bootstrap.sh failed (apt could not install the build dependencies)"
}

# The normal build (build/): shared by test.sh and demo.sh so they reuse one build tree.
# Options are spelled out so a build tree configured differently by hand is put back.
configure_normal() {
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMPOTR_WERROR=ON -DMPOTR_SANITIZE=OFF -DMPOTR_FUZZ=OFF -DMPOTR_TESTS=ON -DMPOTR_BENCH=ON \
    || die "cmake configure of build/ failed"
}
