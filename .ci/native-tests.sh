#!/usr/bin/env bash
# The C++ tests of the core (native/test, registered with ctest by CMakeLists.txt), built and run
# twice: Release (build-native/) and under AddressSanitizer + UndefinedBehaviorSanitizer
# (build-asan/, leaks detected, the first UB report fatal). Both runs happen even when the first
# fails, so one CI run shows every failure; the exit status is non-zero if either failed.
#   bash .ci/native-tests.sh            both
#   bash .ci/native-tests.sh release    only the Release run (or: asan)
#   bash .ci/native-tests.sh tsan       ThreadSanitizer (build-tsan/): only the tests that run
#                                       threads (thread_pool, model_determinism, concurrency), and
#                                       only their targets built; the first report is fatal
# Each run prints its time. On the 2-core CI machine the tsan run takes about 55 s from nothing
# (36 s to build, 17 s of tests, model_determinism the longest). The addon itself under TSan, driven
# by vitest: .ci/sanitized-addon.sh thread.
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)
which=${1:-all}
case $which in all | release | asan | tsan) ;; *) echo "usage: $0 [all|release|asan|tsan]" >&2; exit 2 ;; esac
failed=()

run() {  # name build-dir tests cmake-args...   (tests: "all", or ctest names whose targets alone are built)
  local name=$1 dir=$2 tests=$3
  shift 3
  local start=$SECONDS targets=() select=()
  if [[ $tests != all ]]; then
    local t
    for t in $tests; do targets+=(--target "test_$t"); done
    select=(-R "^(${tests// /|})\$")
  fi
  echo "== native tests: $name ($dir)"
  if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DFASTGRU_TESTS=ON "$@"; then
    echo "== native tests: $name: cmake configure failed"
    failed+=("$name")
    return
  fi
  if ! cmake --build "$dir" -j "$jobs" "${targets[@]}"; then
    echo "== native tests: $name: build failed"
    failed+=("$name")
    return
  fi
  echo "== native tests: $name built in $((SECONDS - start)) s"
  if ! FASTGRU_POISON=1 ctest --test-dir "$dir" --output-on-failure --no-tests=error -j "$jobs" "${select[@]}"; then
    echo "== native tests: $name: ctest failed"
    failed+=("$name")
    return
  fi
  echo "== native tests: $name passed in $((SECONDS - start)) s"
}

if [[ $which == all || $which == release ]]; then
  run Release build-native all -DFASTGRU_SANITIZE=
fi
if [[ $which == all || $which == asan ]]; then
  export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run "ASan+UBSan" build-asan all -DFASTGRU_SANITIZE=address,undefined
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi
if [[ $which == tsan ]]; then
  # halt_on_error: the first report ends the test with a non-zero status, so ctest fails;
  # second_deadlock_stack: a lock-order report shows where both locks were taken.
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  run ThreadSanitizer build-tsan "thread_pool model_determinism concurrency" -DFASTGRU_SANITIZE=thread
  unset TSAN_OPTIONS
fi

if ((${#failed[@]})); then
  echo "== native tests FAILED: ${failed[*]}"
  exit 1
fi
echo "== native tests passed"
