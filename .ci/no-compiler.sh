#!/usr/bin/env bash
# A clean clone installed with no C++ compiler on PATH: the install must succeed, backendInfo()
# must say 'js' and why, and the test suite must pass on the js backend.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/fastgru"
# Shims that shadow every compiler name the install could look for.
mkdir -p "$work/shims"
for cc in c++ g++ gcc cc clang clang++; do
  printf '#!/bin/sh\necho "%s: not installed" >&2\nexit 127\n' "$cc" > "$work/shims/$cc"
  chmod +x "$work/shims/$cc"
done
cd "$work/fastgru"
export PATH="$work/shims:$PATH"
unset FASTGRU_REQUIRE_NATIVE CXX CC
npm ci --no-audit --no-fund 2>&1 | tee "$work/install.log" | tail -n 5
grep -q "native addon not built" "$work/install.log"
node -e "
import('./dist/index.js').then(({ backendInfo }) => {
  const info = backendInfo();
  console.log(info);
  if (info.backend !== 'js' || !/compiler/.test(info.reason ?? '')) process.exit(1);
});"
npm test
echo "== install without a compiler: ok"
