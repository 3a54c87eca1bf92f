#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Model-checks mpOTR's shutdown and key publication against a hostile relay (README.md here).
# Builds each verifier in a temporary directory (spin -a, cc -DSAFETY, ./pan) and exits 0 if and
# only if
#   * v2.pml, v2-nomac.pml, v2-reliable.pml and v1-nopresence.pml PASS: full state space
#     searched, no error;
#   * v1.pml and v1-attack1.pml FAIL with the forged-entry assertion !(forged_entry_shown): an
#     honest member shows an entry the relay signed with a published key (attack 1).
# The counterexamples are printed (v1: the shortest, by breadth-first search).
# Knobs (environment): SPIN (default spin), CC (default cc), MPOTR_MODEL_JOBS (verifiers run in
# parallel, default 2), MPOTR_MODEL_MAXE=2 (alice may write 2 entries in the v2 models: 4 times
# the states, not for CI), MPOTR_MODEL_KEEP=1 (keep the temporary directory and print it).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SPIN="${SPIN:-spin}"
CC="${CC:-cc}"
JOBS="${MPOTR_MODEL_JOBS:-2}"
MAXE="${MPOTR_MODEL_MAXE:-1}"

command -v "$SPIN" >/dev/null || { echo "check.sh: '$SPIN' not found" >&2; exit 2; }
command -v "$CC" >/dev/null || { echo "check.sh: '$CC' not found" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mpotr-model.XXXXXX")"
if [ "${MPOTR_MODEL_KEEP:-0}" = 1 ]; then
  trap 'echo "check.sh: kept $WORK"' EXIT
else
  trap 'rm -rf "$WORK"' EXIT
fi

# Per configuration: extra spin flags, cc flags, pan flags. The v2 searches are exhaustive (-m is
# far above the depth reached; checked below). v1 is searched breadth-first, which stops at the
# shortest counterexample; v1-attack1 depth-first (breadth-first needs 6.6 million states there).
declare -A SPINFLAGS=([v2]="-DMAXE=$MAXE" [v2-nomac]="-DMAXE=$MAXE" [v2-reliable]="" [v1-nopresence]=""
                      [v1]="" [v1-attack1]="")
declare -A CCFLAGS=([v2]="-DSAFETY" [v2-nomac]="-DSAFETY" [v2-reliable]="-DSAFETY" [v1-nopresence]="-DSAFETY"
                    [v1]="-DSAFETY -DBFS" [v1-attack1]="-DSAFETY")
declare -A PANFLAGS=([v2]="-m10000" [v2-nomac]="-m10000" [v2-reliable]="-m10000" [v1-nopresence]="-m10000"
                     [v1]="" [v1-attack1]="-m10000")
CONFIGS=(v2-nomac v2 v2-reliable v1-nopresence v1 v1-attack1)
PASSING=(v2 v2-nomac v2-reliable v1-nopresence)
FAILING=(v1 v1-attack1)

verify() {  # verify <config>: output in $WORK/<config>/{spin,cc,pan}.out, seconds in time.out
  local cfg="$1" dir="$WORK/$1" start
  mkdir -p "$dir"
  cp "$HERE"/*.pml "$dir/"
  cd "$dir"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$SPIN" ${SPINFLAGS[$cfg]} -a "$cfg.pml" >spin.out 2>&1 || return 1
  # shellcheck disable=SC2086
  "$CC" -O2 -w ${CCFLAGS[$cfg]} -o pan pan.c >cc.out 2>&1 || return 1
  # shellcheck disable=SC2086
  ./pan ${PANFLAGS[$cfg]} >pan.out 2>&1 || true    # pan's exit status does not tell errors apart
  awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", e - s }' >time.out
}

declare -A PID
for cfg in "${CONFIGS[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  verify "$cfg" &
  PID[$cfg]=$!
done
status=0
for cfg in "${CONFIGS[@]}"; do
  if ! wait "${PID[$cfg]}"; then
    echo "FAIL  $cfg: spin or the compiler failed:"
    cat "$WORK/$cfg/spin.out" "$WORK/$cfg/cc.out" 2>/dev/null | head -20
    status=1
  fi
done
[ "$status" -eq 0 ] || exit 1

trail() {  # trail <config>: the counterexample pan wrote, as the model's printf lines
  (cd "$WORK/$1" && "$SPIN" -t -T "$1.pml" 2>&1) |
    sed -n '/^ *$/d; /text of failed assertion/q; /^spin:/d; s/^/        /p'
}

figures() {  # figures <config>: states stored, depth reached, seconds (spin + cc + pan)
  local out="$WORK/$1/pan.out"
  printf 'states stored %s, depth %s, %s s' \
    "$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$out" | head -1)" \
    "$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$out" | head -1)" \
    "$(cat "$WORK/$1/time.out")"
}

for cfg in "${PASSING[@]}"; do
  out="$WORK/$cfg/pan.out"
  if grep -q "errors: 0" "$out" && grep -q "^Full statespace search" "$out" &&
     ! grep -q "max search depth too small" "$out"; then
    echo "PASS  $cfg: no error in the full state space ($(figures "$cfg"))"
  else
    echo "FAIL  $cfg: the model must pass; pan says:"
    grep -E "violated|errors:|too small|^pan" "$out" | head -20
    if [ -f "$WORK/$cfg/$cfg.pml.trail" ]; then echo "      the trail:"; trail "$cfg"; fi
    status=1
  fi
done

for cfg in "${FAILING[@]}"; do
  out="$WORK/$cfg/pan.out"
  if grep -Eq "assertion violated +!\(forged_entry_shown\)" "$out"; then
    echo "PASS  $cfg: attack 1 found, !(forged_entry_shown) violated ($(figures "$cfg")); the trail:"
    trail "$cfg"
  else
    echo "FAIL  $cfg: the model must violate !(forged_entry_shown) (attack 1); pan says:"
    grep -E "violated|errors:|^pan" "$out" | head -20
    status=1
  fi
done
exit "$status"
