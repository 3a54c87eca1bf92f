#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs one libFuzzer target for a fixed time on a temporary copy of its seed corpus, so the
# repository is never modified. Fails (non-zero) on any crash, leak, timeout or failed check.
#   run_fuzz.sh <binary> <corpus_dir> <seconds> [artifact_dir] [extra libFuzzer flags...]
# MPOTR_FUZZ_SECONDS in the environment overrides <seconds>.
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 <binary> <corpus_dir> <seconds> [artifact_dir] [libFuzzer flags...]" >&2
  exit 2
fi
bin="$1"
corpus="$2"
seconds="${MPOTR_FUZZ_SECONDS:-$3}"
artifacts="${4:-$PWD/fuzz-artifacts}"
shift 3
if [ $# -gt 0 ]; then shift; fi

[ -x "$bin" ] || { echo "run_fuzz.sh: $bin is not an executable" >&2; exit 2; }
[ -d "$corpus" ] || { echo "run_fuzz.sh: seed corpus $corpus does not exist" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/mpotr-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -R "$corpus"/. "$work"/
mkdir -p "$artifacts"

name="$(basename "$bin")"
echo "run_fuzz.sh: $name for ${seconds}s on a copy of $corpus ($(find "$work" -type f | wc -l) seeds)"
set +e
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$@" "$work"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  echo "run_fuzz.sh: $name FAILED (exit $rc). Input(s) that triggered it:" >&2
  ls -l "$artifacts" >&2 || true
  echo "run_fuzz.sh: reproduce with: $bin $artifacts/<file>" >&2
  exit "$rc"
fi
echo "run_fuzz.sh: $name ran ${seconds}s without findings"
