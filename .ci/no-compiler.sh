#!/usr/bin/env bash
# A clean clone installed where no compiler and no make are on PATH (failing shims shadow them),
# and no prebuilt engine exists (a clone never has one): `npm ci` must still succeed (the source
# build of `prepare` warns and records why), backendInfo() must say 'js' and give the reason (no
# prebuilt engine for this platform, the source build's failure, the command that builds it), and
# the test suite must pass on the js backend.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/fastgru"
source "$repo/.ci/shims.sh"
make_shims "$work/shims" c++ g++ gcc cc clang clang++ make
cd "$work/fastgru"
export PATH="$work/shims:$PATH"
unset FASTGRU_REQUIRE_NATIVE FASTGRU_ADDON CXX CC
npm ci --no-audit --no-fund 2>&1 | tee "$work/install.log" | tail -n 5
grep -q "native engine not built" "$work/install.log"
node -e "
import('./dist/index.js').then(({ backendInfo }) => {
  const info = backendInfo();
  console.log(info);
  const ok = info.backend === 'js' && /no prebuilt engine for linux-/.test(info.reason ?? '') &&
    /the source build \(npx fastgru build\) failed: node-gyp exited/.test(info.reason ?? '');
  if (!ok) process.exit(1);
});"
npm test
echo "== install without a compiler: ok"
