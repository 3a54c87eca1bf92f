#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The project's demo command (README): installs the build dependencies, builds the demo in build/
# (the same tree scripts/test.sh uses) and runs it: three members set up an mpOTR session in one
# process and chat; the demo prints what each of them sees. Extra arguments go to the demo.
# Knobs (environment): JOBS, MPOTR_SKIP_BOOTSTRAP=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MPOTR_SCRIPT=demo.sh
# shellcheck source=scripts/common.sh
source scripts/common.sh

DEMO=build/tools/mpotr-demo

banner "bootstrap (apt packages)"
bootstrap

banner "build (build/)"
configure_normal
if ! ninja -C build -t targets all 2>/dev/null | grep -q '^mpotr-demo:'; then
  die "$DEMO is missing: the build has no mpotr-demo target (tools/mpotr-demo.cpp does not exist yet)"
fi
cmake --build build -j "$JOBS" --target mpotr-demo || die "building mpotr-demo failed (see the compiler output above)"
[ -x "$DEMO" ] || die "$DEMO is missing after the build"

banner "demo"
exec "$DEMO" "$@"
