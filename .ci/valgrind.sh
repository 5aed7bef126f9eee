#!/usr/bin/env bash
# The core's C++ tests (native/test) under valgrind's memcheck: a Release build with debug info and
# no sanitizer (build-valgrind/), each ctest entry run as ctest would run it (its command and its
# ENVIRONMENT property) but under
#   valgrind --error-exitcode=1 --leak-check=full
# A test fails on any memcheck error (invalid read or write, use of uninitialised values,
# definite or possible leaks) or on its own failure. FASTGRU_POISON is not set here, so memcheck,
# not NaN poison, sees a read of an unwritten buffer. Forked children are checked too (valgrind
# follows fork). The tests run two at a time (valgrind runs each process's threads on one core).
#   bash .ci/valgrind.sh                  every test
#   bash .ci/valgrind.sh gemm kernels     some (ctest names)
# FASTGRU_VALGRIND_TIMEOUT: seconds per test (default 1800). Logs: build-valgrind/valgrind/NAME.log.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${FASTGRU_VALGRIND_BUILD_DIR:-build-valgrind}
limit=${FASTGRU_VALGRIND_TIMEOUT:-1800}
jobs=$(nproc 2>/dev/null || echo 2)
command -v valgrind >/dev/null || { echo "== valgrind: FAILED: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

start=$SECONDS
echo "== valgrind: $(valgrind --version); build $dir (Release, -g)"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=-g -DFASTGRU_TESTS=ON -DFASTGRU_SANITIZE= >/dev/null
cmake --build "$dir" -j "$jobs" >/dev/null
built=$SECONDS

# One runner script per ctest entry, from ctest's own description of the tests.
mkdir -p "$dir/valgrind"
rm -f "$dir"/valgrind/*.sh "$dir"/valgrind/*.log "$dir"/valgrind/*.out "$dir"/valgrind/*.status
# default_pool() is never destroyed, on purpose (thread_pool.cpp: its workers must not be joined
# during static destruction), so its threads are alive at exit, and glibc's per-thread TLS vector
# (allocate_dtv), pointed to only from inside the thread's own stack mapping, reads as 'possibly
# lost'. Only that block is suppressed: any other leak, possible or definite, still fails.
cat > "$dir/valgrind/fastgru.supp" <<'SUPP'
{
   fastgru-pool-workers-alive-at-exit-tls
   Memcheck:Leak
   match-leak-kinds: possible
   fun:calloc
   ...
   fun:_dl_allocate_tls
   ...
   fun:pthread_create*
   ...
   fun:_ZN7fastgru10ThreadPool14ensure_workersEi
}
SUPP
ctest --test-dir "$dir" --show-only=json-v1 > "$dir/valgrind/tests.json"
node - "$dir/valgrind" "$limit" "$@" <<'EOF'
const fs = require('node:fs');
const [outArg, limit, ...only] = process.argv.slice(2);
// Absolute: each test runs in its own working directory (ctest's WORKING_DIRECTORY).
const out = require('node:path').resolve(outArg);
const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
const { tests } = JSON.parse(fs.readFileSync(`${out}/tests.json`, 'utf8'));
const unknown = only.filter((n) => !tests.some((t) => t.name === n));
if (unknown.length) { console.error(`== valgrind: no ctest entry named ${unknown.join(', ')}`); process.exit(1); }
for (const t of tests) {
  if (only.length && !only.includes(t.name)) continue;
  const prop = (name) => (t.properties ?? []).find((p) => p.name === name)?.value;
  const env = prop('ENVIRONMENT') ?? [];
  const cwd = prop('WORKING_DIRECTORY') ?? process.cwd();
  const vg = ['valgrind', '--error-exitcode=1', '--leak-check=full', '--num-callers=40', `--suppressions=${out}/fastgru.supp`, `--log-file=${out}/${t.name}.log`];
  fs.writeFileSync(`${out}/${t.name}.sh`, [
    '#!/usr/bin/env bash',
    `cd ${q(cwd)}`,
    `exec env ${env.map(q).join(' ')} timeout --kill-after=30 ${q(limit)} ${[...vg, ...t.command].map(q).join(' ')}`,
    '',
  ].join('\n'));
}
EOF

run_one() {  # name
  local name=$1 t0=$SECONDS rc=0
  bash "$dir/valgrind/$name.sh" > "$dir/valgrind/$name.out" 2>&1 || rc=$?
  echo "$rc $((SECONDS - t0))" > "$dir/valgrind/$name.status"
}

names=()
for f in "$dir"/valgrind/*.sh; do names+=("$(basename "$f" .sh)"); done
running=0
for name in "${names[@]}"; do
  if ((running >= jobs)); then wait -n || true; running=$((running - 1)); fi
  run_one "$name" &
  running=$((running + 1))
done
wait || true

failed=()
for name in "${names[@]}"; do
  read -r rc secs < "$dir/valgrind/$name.status"
  log="$dir/valgrind/$name.log"
  # One ERROR SUMMARY per process: the test and each child it forked.
  summary=$(awk '/ERROR SUMMARY/ { n++; e += $4; s += $(NF-2) }
    END { printf "%d process%s, %d memcheck errors, %d suppressed", n, n == 1 ? "" : "es", e, s }' "$log" 2>/dev/null)
  if [[ $rc == 0 ]]; then
    printf '   ok    %-20s %5d s  %s\n' "$name" "$secs" "$summary"
  else
    case $rc in
      124|137) why="timed out after $limit s" ;;
      1) why="memcheck errors or a failed check" ;;
      *) why="exit $rc" ;;
    esac
    printf '   FAIL  %-20s %5d s  %s; %s\n' "$name" "$secs" "$why" "$summary"
    failed+=("$name")
  fi
done
for name in "${failed[@]}"; do
  echo "---- $name: the test's last lines ($dir/valgrind/$name.out)"
  tail -n 15 "$dir/valgrind/$name.out"
  echo "---- $name: memcheck's report ($dir/valgrind/$name.log)"
  grep -v '^==[0-9]*== *$' "$dir/valgrind/$name.log" | sed -n '/Invalid\|uninitialised\|definitely\|possibly\|Process terminating/,+25p' | head -n 80
done
echo "== valgrind: build $((built - start)) s, tests $((SECONDS - built)) s"
if ((${#failed[@]})); then
  echo "== valgrind FAILED: ${failed[*]}"
  exit 1
fi
echo "${#names[@]} passed, 0 failed"
