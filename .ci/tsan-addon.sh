#!/usr/bin/env bash
# The addon under ThreadSanitizer: the same sources built with cmake-js and -DFASTGRU_SANITIZE=thread
# into build-tsan-addon/, loaded through FASTGRU_ADDON by the vitest files that run it on several
# threads at once (forwardAsync on libuv's workers beside the main thread's calls, worker_threads
# sharing the pool, a worker terminated mid-call), with libtsan preloaded into node. Node itself is
# not instrumented, which decides three things here:
#   - ignore_noninstrumented_modules=1: without it, V8's own platform threads produce a report in
#     most runs (a data race in v8::platform::DefaultJobState::~DefaultJobState, pthread_mutex_destroy
#     against pthread_cond_wait in DefaultJobState::Join: V8 synchronises through atomics TSan cannot
#     see). With it, the libc calls node makes are not checked as memory accesses, but the locks it
#     takes still order the addon's accesses (libuv's queue between Execute and the completion), and
#     every access the addon and the core make is checked: a core with the scratch free list's lock
#     removed fails here with a report naming Model::give_back on a libuv worker.
#   - What JS reads and writes (typed arrays, V8's heap) is invisible: a race between JS and a
#     worker thread of the addon cannot be reported.
#   - Only node gets the runtime: a shell with libtsan preloaded dies of SIGSEGV before its first
#     command (sh and bash alike), so vitest is started with node, not npx, and the tests must spawn
#     node directly (runNode does), never through a shell.
# halt_on_error: the first report ends that process (exit 66): vitest's fork dying fails the run,
# and a child process's exit code fails the test that spawned it.
#   bash .ci/tsan-addon.sh               the two files below
#   bash .ci/tsan-addon.sh test/x.ts     some files
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
echo "== addon under TSan: build (cmake-js, -DFASTGRU_SANITIZE=thread)"
npx cmake-js compile --out build-tsan-addon --CDFASTGRU_SANITIZE=thread >/dev/null
addon="$PWD/build-tsan-addon/Release/fastgru.node"
[ -f "$addon" ] || { echo "== addon under TSan: no $addon"; exit 1; }
tsan=$(g++ -print-file-name=libtsan.so)
[ -f "$tsan" ] || { echo "== addon under TSan: no libtsan ($tsan)"; exit 1; }
npm run build >/dev/null  # worker_threads and child processes load dist/
echo "== addon under TSan: vitest with $addon (built in $((SECONDS - start)) s)"
files=("$@")
((${#files[@]})) || files=(test/native-workers.test.ts test/native-eventloop.test.ts)
FASTGRU_ADDON="$addon" TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1 \
  LD_PRELOAD="$tsan" node node_modules/vitest/vitest.mjs run "${files[@]}"
echo "== addon under TSan: passed in $((SECONDS - start)) s"
