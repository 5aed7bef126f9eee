# Sourced by .ci/arm.sh and .ci/arm-addon.sh: finds (or, with FASTGRU_ARM=install, installs) the
# AArch64 cross tools and qemu-user, and decides what a missing tool means.
#   arm_tools NAME            NAME prefixes the messages ("arm", "arm-addon")
# FASTGRU_ARM=auto (default): missing tools are a skip (exit 0); install: apt-get installs
# g++-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user first; require: missing tools fail.
# Sets sysroot (the aarch64 glibc the emulator loads).
sysroot=/usr/aarch64-linux-gnu

arm_have_tools() {
  command -v aarch64-linux-gnu-g++ >/dev/null && command -v aarch64-linux-gnu-objdump >/dev/null &&
    command -v qemu-aarch64 >/dev/null && [[ -d $sysroot/lib ]]
}

arm_tools() {
  local name=$1 mode=${FASTGRU_ARM:-auto}
  if ! arm_have_tools && [[ $mode == install ]]; then
    echo "== $name: installing g++-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
  fi
  arm_have_tools && return 0
  local what="aarch64-linux-gnu-g++, aarch64-linux-gnu-objdump or qemu-aarch64 not on PATH, or no $sysroot/lib"
  if [[ $mode == auto ]]; then
    echo "== $name: skipped: $what (FASTGRU_ARM=install installs them)"
    exit 0
  fi
  echo "== $name: FAILED: $what" >&2
  exit 1
}
