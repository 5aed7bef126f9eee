#!/usr/bin/env bash
# The core's C++ tests on AArch64: the core (NEON kernels included) and native/test cross-compiled
# with Debian's aarch64 toolchain (cmake/toolchains/aarch64-linux-gnu.cmake), and ctest running every test under
# qemu-user. No Node and no addon: the tests compare each ISA's kernels (here ref and neon) with the
# reference, bit for bit.
#   bash .ci/arm.sh                   runs if aarch64-linux-gnu-g++ and qemu-aarch64 are on PATH,
#                                     otherwise says so and exits 0
#   FASTGRU_ARM=install bash .ci/arm.sh   installs them first (.ci/arm-tools.sh: apt-get)
#   FASTGRU_ARM=require bash .ci/arm.sh   missing tools are an error, not a skip
# Build directory: build-arm/ (FASTGRU_ARM_BUILD_DIR overrides).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${FASTGRU_ARM_BUILD_DIR:-build-arm}
jobs=$(nproc 2>/dev/null || echo 2)
# shellcheck source=.ci/arm-tools.sh
source .ci/arm-tools.sh
arm_tools arm

start=$SECONDS
echo "== arm: $(aarch64-linux-gnu-g++ --version | head -n 1); $(qemu-aarch64 --version | head -n 1)"
cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchains/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DFASTGRU_TESTS=ON -DFASTGRU_SANITIZE= \
  -DCMAKE_CROSSCOMPILING_EMULATOR="qemu-aarch64;-L;$sysroot" >/dev/null
cmake --build "$dir" -j "$jobs"
built=$SECONDS
# The build must really be AArch64 with the NEON kernels in it, or the run below proves nothing.
file_out=$(od -An -tx1 -j18 -N2 "$dir/test_kernels" | tr -d ' ')
if [[ $file_out != b700 ]]; then  # e_machine EM_AARCH64 = 0xb7, little-endian
  echo "== arm: FAILED: $dir/test_kernels is not an AArch64 executable (e_machine $file_out)" >&2
  exit 1
fi
kernels_out=$(qemu-aarch64 -L "$sysroot" "$dir/test_kernels" 2>&1) || true
if ! grep -q '^ok   neon ' <<<"$kernels_out"; then
  echo "== arm: FAILED: test_kernels under qemu checked no neon kernel" >&2
  exit 1
fi
FASTGRU_POISON=1 ctest --test-dir "$dir" --output-on-failure -j "$jobs"
echo "== arm: passed (build $((built - start)) s, ctest under qemu $((SECONDS - built)) s)"
