#!/usr/bin/env bash
# The addon itself under AddressSanitizer + UndefinedBehaviorSanitizer: the same sources built with
# cmake-js and -DFASTGRU_SANITIZE=address,undefined into build-asan-addon/, loaded by the vitest
# suite through FASTGRU_ADDON, with the sanitizer runtimes preloaded into node (node itself is not
# instrumented; every allocation goes through ASan's allocator, and every byte the addon touches is
# checked). Leak checking is off: V8 keeps memory until exit by design.
#   bash .ci/sanitized-addon.sh               the whole suite
#   bash .ci/sanitized-addon.sh test/x.ts     some files
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
echo "== sanitized addon: build (cmake-js, ASan + UBSan)"
npx cmake-js compile --out build-asan-addon --CDFASTGRU_SANITIZE=address,undefined >/dev/null
addon="$PWD/build-asan-addon/Release/fastgru.node"
[ -f "$addon" ] || { echo "== sanitized addon: no $addon"; exit 1; }
asan=$(g++ -print-file-name=libasan.so)
ubsan=$(g++ -print-file-name=libubsan.so)
echo "== sanitized addon: vitest with $addon (built in $((SECONDS - start)) s)"
npm run build >/dev/null
export LD_PRELOAD="$asan $ubsan"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:handle_segv=0:allow_user_segv_handler=1
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export FASTGRU_ADDON="$addon"
npx vitest run "$@"
echo "== sanitized addon: passed in $((SECONDS - start)) s"
