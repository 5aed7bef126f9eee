# Cross-compiling the core and its C++ tests for AArch64 with Debian's toolchain
# (g++-aarch64-linux-gnu); .ci/arm.sh runs the result under qemu-user. No Node, no addon.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(FASTGRU_AARCH64_SYSROOT /usr/aarch64-linux-gnu CACHE PATH "Debian's AArch64 libraries, for qemu -L")

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Libraries and headers from the target's tree only; programs (cmake's own tools) from the host.
set(CMAKE_FIND_ROOT_PATH ${FASTGRU_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest runs every test executable through qemu-user, with the target's loader and libc.
if(NOT CMAKE_CROSSCOMPILING_EMULATOR)
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${FASTGRU_AARCH64_SYSROOT})
endif()
