#!/usr/bin/env bash
# The addon itself under a sanitizer: the same sources built with cmake-js into its own directory,
# loaded by vitest through FASTGRU_ADDON, with the sanitizer's runtime preloaded into node (node
# itself is not instrumented).
#   bash .ci/sanitized-addon.sh [address] [tests]   AddressSanitizer + UndefinedBehaviorSanitizer
#                                                   (build-asan-addon/): every allocation goes through
#                                                   ASan's allocator and every byte the addon touches is
#                                                   checked; leak checking is off (V8 keeps memory until
#                                                   exit by design). Default: the whole suite.
#   bash .ci/sanitized-addon.sh thread [tests]      ThreadSanitizer (build-tsan-addon/). Default: the
#                                                   files that run the addon on several threads at once
#                                                   (forwardAsync on libuv's workers beside the main
#                                                   thread, worker_threads sharing the pool, a worker
#                                                   terminated mid-call).
# What the uninstrumented node decides under TSan:
#   - ignore_noninstrumented_modules=1: without it, V8's own platform threads produce a report in
#     most runs (a data race in v8::platform::DefaultJobState::~DefaultJobState, pthread_mutex_destroy
#     against pthread_cond_wait in DefaultJobState::Join: V8 synchronises through atomics TSan cannot
#     see). With it, the libc calls node makes are not checked as memory accesses, but the locks it
#     takes still order the addon's accesses (libuv's queue between Execute and the completion), and
#     every access the addon and the core make is checked: a core with the scratch free list's lock
#     removed fails here with a report naming ScratchLease::~ScratchLease on a libuv worker.
#   - What JS reads and writes (typed arrays, V8's heap) is invisible: a race between JS and a
#     worker thread of the addon cannot be reported.
#   - Only node gets the runtime: a shell with libtsan preloaded dies of SIGSEGV before its first
#     command, so vitest is started with node, not npx, and the tests must spawn node directly
#     (runNode does), never through a shell.
# The first report ends that process (halt_on_error): vitest's fork dying fails the run, and a child
# process's exit code fails the test that spawned it.
set -euo pipefail
cd "$(dirname "$0")/.."

kind=address
if [[ ${1:-} == address || ${1:-} == thread ]]; then kind=$1; shift; fi
start=$SECONDS
if [[ $kind == address ]]; then
  name="ASan + UBSan" dir=build-asan-addon sanitize=address,undefined
  runtimes="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libubsan.so)"
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:handle_segv=0:allow_user_segv_handler=1
  export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
  files=("$@")
else
  name="TSan" dir=build-tsan-addon sanitize=thread
  runtimes=$(g++ -print-file-name=libtsan.so)
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1
  files=("$@")
  ((${#files[@]})) || files=(test/native-workers.test.ts test/native-eventloop.test.ts)
fi
for lib in $runtimes; do [ -f "$lib" ] || { echo "== sanitized addon ($name): no runtime $lib"; exit 1; }; done

echo "== sanitized addon ($name): build (cmake-js, -DFASTGRU_SANITIZE=$sanitize)"
npx cmake-js compile --out "$dir" --CDFASTGRU_SANITIZE="$sanitize" >/dev/null
addon="$PWD/$dir/Release/fastgru.node"
[ -f "$addon" ] || { echo "== sanitized addon ($name): no $addon"; exit 1; }
npm run build >/dev/null  # worker_threads and child processes load dist/
echo "== sanitized addon ($name): vitest with $addon (built in $((SECONDS - start)) s)"
FASTGRU_ADDON="$addon" LD_PRELOAD="$runtimes" node node_modules/vitest/vitest.mjs run "${files[@]}"
echo "== sanitized addon ($name): passed in $((SECONDS - start)) s"
