#!/usr/bin/env bash
# What a user gets from `npm install fastgru`: the package as `npm pack` makes it, installed into a
# fresh project twice.
#   1. no C++ compiler on PATH: the install succeeds and says why the addon was not built,
#      backendInfo() says 'js' and repeats the reason, backend: 'native' throws
#      BackendUnavailableError, a forward gives the right shapes and finite values;
#   2. with the compiler: the addon builds (FASTGRU_REQUIRE_NATIVE=1 makes a failed build fatal),
#      backendInfo() says 'native', and forward, forwardAsync and the js backend agree.
# Both also run `npx fastgru info`. dist/ is built first (npm run build); the runtime dependencies
# (bindings, node-addon-api) come from the npm cache or the registry.
#   bash .ci/pack-install.sh            both
#   bash .ci/pack-install.sh js         only the install without a compiler (or: native)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
which=${1:-all}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
t0=$SECONDS

echo "== pack-install: npm run build && npm pack"
(cd "$repo" && npm run build --silent && npm pack --ignore-scripts --silent --pack-destination "$work" >/dev/null)
tarballs=("$work"/fastgru-*.tgz)
tarball=${tarballs[0]}
[[ -f $tarball ]] || { echo "== pack-install: FAILED: npm pack wrote no fastgru-*.tgz" >&2; exit 1; }
tar -tzf "$tarball" > "$work/files.txt"
echo "   $(basename "$tarball"): $(du -k "$tarball" | cut -f1) KiB, $(wc -l < "$work/files.txt") files"
# The package must ship what install and import need, and no build output of this checkout.
for f in package/package.json package/binding.gyp package/scripts/install.mjs package/dist/index.js \
         package/dist/index.d.ts package/bin/fastgru.mjs package/native/core/gru.cpp package/native/addon/addon.cpp; do
  grep -qx "$f" "$work/files.txt" || { echo "== pack-install: FAILED: $f is not in the tarball" >&2; exit 1; }
done
if grep -q '^package/build/' "$work/files.txt"; then
  echo "== pack-install: FAILED: the tarball holds build/ output of this checkout" >&2
  exit 1
fi

# Shims that shadow every compiler name the install could look for (as in .ci/no-compiler.sh).
mkdir -p "$work/shims"
for cc in c++ g++ gcc cc clang clang++; do
  printf '#!/bin/sh\necho "%s: not installed" >&2\nexit 127\n' "$cc" > "$work/shims/$cc"
  chmod +x "$work/shims/$cc"
done

# The user's program: what the README's quick start promises, with numbers checked.
cat > "$work/check.mjs" <<'EOF'
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { BackendUnavailableError, GRU, backendInfo, tensor } from 'fastgru';

const expected = process.argv[2];
const from = fileURLToPath(import.meta.resolve('fastgru'));
assert.ok(from.startsWith(process.cwd() + '/node_modules/fastgru/'), `fastgru resolved outside the project: ${from}`);
const info = backendInfo();
console.log(`   backendInfo(): ${JSON.stringify(info)}`);
assert.equal(info.backend, expected, 'backendInfo().backend');
assert.ok(Number.isInteger(info.threads) && info.threads >= 1, `threads: ${info.threads}`);
if (expected === 'js') {
  assert.match(info.reason ?? '', /no C\+\+ compiler/, 'backendInfo().reason');
  assert.throws(() => new GRU({ inputSize: 2, hiddenSize: 2, backend: 'native' }), BackendUnavailableError);
} else {
  assert.equal(info.reason, undefined, 'backendInfo().reason');
  assert.ok(['ref', 'avx2', 'avx512', 'neon'].includes(info.isa), `isa: ${info.isa}`);
}

const T = 5, B = 3, I = 4, H = 6;
const options = { inputSize: I, hiddenSize: H, numLayers: 2, bidirectional: true, seed: 7 };
const gru = new GRU(options);
const x = tensor(Float32Array.from({ length: T * B * I }, (_, i) => Math.sin(0.37 * i)), [T, B, I]);
const { output, hidden } = gru.forward(x);
assert.deepEqual([...output.shape], [T, B, 2 * H], 'output.shape');
assert.deepEqual([...hidden.shape], [4, B, H], 'hidden.shape');
for (const [name, t] of [['output', output], ['hidden', hidden]]) {
  assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1), `${name}.data.length`);
  // From h0 = 0 every state is a convex blend of tanh values: finite and inside (-1, 1).
  const bad = t.data.findIndex((v) => !Number.isFinite(v) || Math.abs(v) >= 1);
  assert.equal(bad, -1, `${name}[${bad}] = ${t.data[bad]}`);
  assert.ok(t.data.some((v) => v !== 0), `${name} is all zeros`);
}
// The top layer's last forward state and first reverse state are in both output and hidden.
for (let b = 0; b < B; b++)
  for (let j = 0; j < H; j++) {
    assert.equal(output.data[((T - 1) * B + b) * 2 * H + j], hidden.data[(2 * B + b) * H + j]);
    assert.equal(output.data[b * 2 * H + H + j], hidden.data[(3 * B + b) * H + j]);
  }
let checked = `forward [${T}, ${B}, ${I}] -> output [${output.shape}], hidden [${hidden.shape}], finite, in (-1, 1)`;
if (expected === 'native') {
  const async = await gru.forwardAsync(x);
  assert.deepEqual(async.output.data, output.data, 'forwardAsync gives forward\'s bits');
  const js = new GRU({ ...options, backend: 'js' }).forward(x);
  let worst = 0;
  for (let i = 0; i < output.data.length; i++) worst = Math.max(worst, Math.abs(output.data[i] - js.output.data[i]));
  assert.ok(worst < 1e-5, `native vs js: max |diff| ${worst}`);
  checked += `; forwardAsync == forward; native vs js max |diff| ${worst.toExponential(2)}`;
}
console.log(`   ok: ${checked}`);
EOF

install_and_check() {  # name expected-backend
  local name=$1 expected=$2 app="$work/app-$1" start=$SECONDS
  mkdir -p "$app"
  printf '{ "name": "app-%s", "version": "1.0.0", "private": true, "type": "module" }\n' "$name" > "$app/package.json"
  cp "$work/check.mjs" "$app/check.mjs"
  cd "$app"
  echo "== pack-install: $name: npm install $(basename "$tarball")"
  # --foreground-scripts: the install script's own lines (the warning, or 'native addon built')
  # are part of what the user sees, so they are checked.
  if ! npm install --no-audit --no-fund --prefer-offline --foreground-scripts "$tarball" > "$work/install-$name.log" 2>&1; then
    tail -n 30 "$work/install-$name.log"
    echo "== pack-install: $name: FAILED: npm install exited non-zero" >&2
    return 1
  fi
  grep '^fastgru' "$work/install-$name.log" | sed 's/^/   /'
  if [[ $expected == js ]]; then
    grep -q 'native addon not built (no C++ compiler' "$work/install-$name.log" ||
      { echo "== pack-install: $name: FAILED: the install did not warn that the addon was not built" >&2; return 1; }
    [[ ! -e node_modules/fastgru/build/Release/fastgru.node ]] ||
      { echo "== pack-install: $name: FAILED: an addon was built without a compiler" >&2; return 1; }
  else
    grep -q 'native addon built' "$work/install-$name.log" ||
      { echo "== pack-install: $name: FAILED: the install did not report a built addon" >&2; return 1; }
  fi
  node check.mjs "$expected"
  local cli
  cli=$(npx --no fastgru info)
  node -e '
    const [cli, expected] = process.argv.slice(1), info = JSON.parse(cli);
    console.log(`   npx fastgru info: ${JSON.stringify(info)}`);
    if (info.backend !== expected) { console.error(`npx fastgru info: backend ${info.backend}, expected ${expected}`); process.exit(1); }' \
    "$cli" "$expected"
  echo "== pack-install: $name: ok in $((SECONDS - start)) s"
}

if [[ $which == all || $which == js ]]; then
  (
    export PATH="$work/shims:$PATH"
    unset FASTGRU_REQUIRE_NATIVE FASTGRU_SKIP_NATIVE FASTGRU_BACKEND FASTGRU_ISA CXX CC
    install_and_check no-compiler js
  )
fi
if [[ $which == all || $which == native ]]; then
  (
    export FASTGRU_REQUIRE_NATIVE=1
    unset FASTGRU_SKIP_NATIVE FASTGRU_BACKEND FASTGRU_ISA
    install_and_check compiler native
  )
fi
echo "== pack-install: passed in $((SECONDS - t0)) s"
