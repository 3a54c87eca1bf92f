#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The project's test command (README, CI): installs the build dependencies, then builds and tests
#   1. build/       RelWithDebInfo, warnings are errors: unit (+ integration, e2e) tests
#   2. build-asan/  ASan + UBSan, same tests
#   3. build-fuzz/  clang + libFuzzer + ASan/UBSan: every fuzz target for a short time
#   4. the benchmark suite once, briefly, as a smoke test, and the XMPP benchmark (report in build/)
# Integration tests (label integration) start their own ejabberd on loopback (testserver/); the
# load test (label load) runs in build/ only.
# The last line of output is "<N> passed, <M> failed", N and M counting CTest tests over all steps
# (a failing build or other non-test step counts as one failure). Exit status 0 only if all passed.
#
# Knobs (environment): JOBS (parallel build and test jobs, default: all cores),
#   MPOTR_SKIP_BOOTSTRAP=1, MPOTR_SKIP_ASAN=1, MPOTR_SKIP_FUZZ=1, MPOTR_SKIP_BENCH=1, MPOTR_SKIP_LOAD=1,
#   MPOTR_FUZZ_SECONDS (run time per fuzz target, default 20).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MPOTR_SCRIPT=test.sh
# shellcheck source=scripts/common.sh
source scripts/common.sh

export MPOTR_FUZZ_SECONDS="${MPOTR_FUZZ_SECONDS:-20}"
SAN_ENV=(
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
)
# Tests of these labels run in the normal and the sanitizer build, when any test carries them.
TEST_LABELS=(unit integration e2e)

TOTAL_PASSED=0
TOTAL_FAILED=0
STEP_NAMES=()
STEP_TIMES=()
STEP_RESULTS=()
STEP_TESTS=()
CURRENT_STEP=""
CURRENT_TESTS=""
STEP_START=0
RUN_START=$SECONDS

begin_step() {
  CURRENT_STEP="$1"
  CURRENT_TESTS=""
  STEP_START=$SECONDS
  banner "$1"
}

end_step() {
  STEP_NAMES+=("$CURRENT_STEP")
  STEP_TIMES+=("$((SECONDS - STEP_START))")
  STEP_RESULTS+=("${1:-ok}")
  STEP_TESTS+=("$CURRENT_TESTS")
  CURRENT_STEP=""
}

print_summary() {
  banner "summary"
  local i
  for i in "${!STEP_NAMES[@]}"; do
    printf '  %-56s %-7s %5ss  %s\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}" "${STEP_TIMES[$i]}" "${STEP_TESTS[$i]}"
  done
  printf '  %-56s %-7s %5ss\n' "total" "" "$((SECONDS - RUN_START))"
}

on_exit() {
  local rc=$?
  trap - EXIT
  if [ "$rc" -ne 0 ]; then
    if [ -n "$CURRENT_STEP" ]; then
      local failed_step="$CURRENT_STEP"
      end_step FAILED
      # A step that failed without failing tests (configure, build, bench) still counts once.
      if [ "$TOTAL_FAILED" -eq 0 ]; then TOTAL_FAILED=1; fi
      print_summary
      echo "test.sh: FAILED in step: $failed_step"
    else
      if [ "$TOTAL_FAILED" -eq 0 ]; then TOTAL_FAILED=1; fi
      print_summary
      echo "test.sh: FAILED"
    fi
    echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
  fi
  exit "$rc"
}
trap on_exit EXIT

build_tree() {  # build_tree <dir> [targets...]
  local dir="$1"
  shift
  local targets=()
  local t
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "$dir" -j "$JOBS" "${targets[@]}" || die "build in $dir failed (see the compiler output above)"
}

# Regex for `ctest -L` selecting the labels of TEST_LABELS that some test in <dir> carries.
# Prints only the regex on stdout (it runs in a command substitution); notes go to stderr.
label_regex() {  # label_regex <dir>
  local dir="$1" present label found=()
  present="$(ctest --test-dir "$dir" --print-labels 2>/dev/null | sed -n 's/^ \{1,\}//p')"
  for label in "${TEST_LABELS[@]}"; do
    if grep -qx -- "$label" <<<"$present"; then
      found+=("$label")
    elif [ "$label" = unit ]; then
      die "no test in $dir carries the label 'unit' (did test discovery fail?)"
    else
      note "no test carries the label '$label' in $dir: nothing to run for it" >&2
    fi
  done
  local IFS='|'
  echo "^(${found[*]})\$"
}

# Runs ctest and adds its pass/fail counts to the totals. Fails the script on any failure.
run_ctest() {  # run_ctest <dir> <label-regex> [VAR=value...]
  local dir="$1" regex="$2"
  shift 2
  local log="$dir/ctest-output.log"
  note "ctest --test-dir $dir -L '$regex' -j $JOBS"
  set +e
  env "$@" ctest --test-dir "$dir" -L "$regex" --output-on-failure --no-tests=error -j "$JOBS" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  local line total failed
  line="$(grep -Eo '[0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1 || true)"
  if [ -n "$line" ]; then
    failed="${line%% *}"
    total="${line##* }"
    TOTAL_PASSED=$((TOTAL_PASSED + total - failed))
    TOTAL_FAILED=$((TOTAL_FAILED + failed))
    CURRENT_TESTS="$((total - failed)) passed, $failed failed"
  elif [ "$rc" -ne 0 ]; then
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
  fi
  if [ "$rc" -ne 0 ]; then
    die "ctest failed in $dir (exit $rc); the failing tests' output is above, the full log in $log"
  fi
}

# ---------------------------------------------------------------------------------------------
begin_step "bootstrap (apt packages)"
bootstrap
end_step

begin_step "normal build (build/, RelWithDebInfo, -Werror)"
configure_normal
build_tree build
end_step

begin_step "tests (build/)"
regex="$(label_regex build)"
run_ctest build "$regex"
end_step

# The load test runs in the optimised build only: under the sanitizers it would take an hour.
if [ "${MPOTR_SKIP_LOAD:-0}" = "1" ]; then
  note "MPOTR_SKIP_LOAD=1: skipping the load test"
else
  begin_step "load test (build/): 20 rooms x 10 members x 1000 messages each, one ejabberd"
  run_ctest build '^load$'
  end_step
fi

if [ "${MPOTR_SKIP_ASAN:-0}" = "1" ]; then
  note "MPOTR_SKIP_ASAN=1: skipping the sanitizer build"
else
  begin_step "sanitizer build (build-asan/, ASan+UBSan)"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
    -DMPOTR_WERROR=ON -DMPOTR_SANITIZE=ON -DMPOTR_FUZZ=OFF -DMPOTR_TESTS=ON -DMPOTR_BENCH=OFF \
    || die "cmake configure of build-asan/ failed"
  build_tree build-asan
  end_step

  begin_step "tests under ASan+UBSan (build-asan/)"
  regex="$(label_regex build-asan)"
  run_ctest build-asan "$regex" "${SAN_ENV[@]}"
  end_step
fi

if [ "${MPOTR_SKIP_FUZZ:-0}" = "1" ]; then
  note "MPOTR_SKIP_FUZZ=1: skipping the fuzz build"
else
  begin_step "fuzz build (build-fuzz/, clang, libFuzzer+ASan+UBSan)"
  command -v clang++ >/dev/null || die "clang++ not found (scripts/bootstrap.sh installs it)"
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DMPOTR_WERROR=ON -DMPOTR_FUZZ=ON -DMPOTR_SANITIZE=ON -DMPOTR_TESTS=ON -DMPOTR_BENCH=OFF \
    || die "cmake configure of build-fuzz/ failed"
  build_tree build-fuzz mpotr-fuzz
  end_step

  begin_step "fuzzing, ${MPOTR_FUZZ_SECONDS}s per target (build-fuzz/)"
  run_ctest build-fuzz '^fuzz$' "${SAN_ENV[@]}" MPOTR_FUZZ_SECONDS="$MPOTR_FUZZ_SECONDS"
  end_step
fi

BENCH=build/tests/bench/mpotr-bench
if [ "${MPOTR_SKIP_BENCH:-0}" = "1" ]; then
  note "MPOTR_SKIP_BENCH=1: skipping the benchmark smoke run"
elif [ ! -x "$BENCH" ]; then
  note "$BENCH does not exist (benchmarks not built): skipping the benchmark smoke run"
else
  begin_step "benchmark smoke run (report in build/bench-report.json)"
  timeout 900 "$BENCH" --report="$ROOT/build/bench-report.json" --benchmark_min_time=0.01 \
    || die "$BENCH failed or ran longer than 15 minutes"
  [ -s build/bench-report.json ] || die "$BENCH did not write build/bench-report.json"
  end_step

  begin_step "XMPP benchmark (real ejabberd; adds an xmpp section to build/bench-report.json)"
  timeout 600 build/tests/bench/mpotr-bench-xmpp --report="$ROOT/build/bench-report.json" \
    || die "mpotr-bench-xmpp failed or ran longer than 10 minutes"
  end_step

  if [ -x build/tests/bench/mpotr-bench-otp ]; then
    begin_step "OTP benchmark (real files, fdatasync; adds an otp section to build/bench-report.json)"
    timeout 300 build/tests/bench/mpotr-bench-otp --report="$ROOT/build/bench-report.json" --dir="$ROOT/build" \
      || die "mpotr-bench-otp failed or ran longer than 5 minutes"
    end_step
  fi
fi

print_summary
echo "test.sh: all steps passed"
trap - EXIT
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
