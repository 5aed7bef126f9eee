#!/usr/bin/env bash
# The C++ tests of the core (native/test, registered with ctest by CMakeLists.txt), built and run
# twice: Release (build-native/) and under AddressSanitizer + UndefinedBehaviorSanitizer
# (build-asan/, leaks detected, the first UB report fatal). Both runs happen even when the first
# fails, so one CI run shows every failure; the exit status is non-zero if either failed.
#   bash .ci/native-tests.sh            both
#   bash .ci/native-tests.sh release    only the Release run (or: asan)
# A ThreadSanitizer build of the same tests, by hand:
#   cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Release -DFASTGRU_SANITIZE=thread &&
#   cmake --build build-tsan -j && ctest --test-dir build-tsan --output-on-failure
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)
which=${1:-all}
failed=()

run() {  # name build-dir cmake-args...
  local name=$1 dir=$2
  shift 2
  local start=$SECONDS
  echo "== native tests: $name ($dir)"
  if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DFASTGRU_TESTS=ON "$@"; then
    echo "== native tests: $name: cmake configure failed"
    failed+=("$name")
    return
  fi
  if ! cmake --build "$dir" -j "$jobs"; then
    echo "== native tests: $name: build failed"
    failed+=("$name")
    return
  fi
  if ! FASTGRU_POISON=1 ctest --test-dir "$dir" --output-on-failure -j "$jobs"; then
    echo "== native tests: $name: ctest failed"
    failed+=("$name")
    return
  fi
  echo "== native tests: $name passed in $((SECONDS - start)) s"
}

if [[ $which == all || $which == release ]]; then
  run Release build-native -DFASTGRU_SANITIZE=
fi
if [[ $which == all || $which == asan ]]; then
  export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run "ASan+UBSan" build-asan -DFASTGRU_SANITIZE=address,undefined
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi

if ((${#failed[@]})); then
  echo "== native tests FAILED: ${failed[*]}"
  exit 1
fi
echo "== native tests passed"
