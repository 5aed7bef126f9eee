# Cross-compiling the addon for win32-x64 with Debian's MinGW-w64 (g++-mingw-w64-x86-64): the
# -posix thread variant, since GCC 12's default (-win32) variant has no std::thread. Used with
# -DFASTGRU_PREBUILD=ON (scripts/prebuild.mjs); .ci/wine.sh loads the result in node.exe under Wine.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(FASTGRU_MINGW_ROOT /usr/x86_64-w64-mingw32 CACHE PATH "Debian's MinGW-w64 headers and libraries")

set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_DLLTOOL x86_64-w64-mingw32-dlltool)

# GCC does not realign the stack for 32- and 64-byte spills on Win64 (GCC bug 54412), yet spills
# __m256/__m512 with vmovaps/vmovdqa, which fault on the 16-byte aligned stack. The assembler turns
# every aligned vector move into its unaligned twin (same speed on aligned data, same bits).
set(CMAKE_C_FLAGS_INIT "-Wa,-muse-unaligned-vector-move")
set(CMAKE_CXX_FLAGS_INIT "-Wa,-muse-unaligned-vector-move")

# Libraries and headers from the target's tree only; programs (cmake's own tools) from the host.
set(CMAKE_FIND_ROOT_PATH ${FASTGRU_MINGW_ROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
