// The platforms the package ships a prebuilt engine for: how each is built (CMake, natively or with
// a toolchain file from cmake/toolchains) and what its binary must look like. One list serves the
// release command (scripts/prebuild.mjs), its checks (check.mjs) and the by-hand emulator runs.
export const TARGETS = {
  'linux-x64': {
    folder: 'linux-x64',
    file: 'node.napi.glibc.node',
    toolchain: null,
    format: 'elf',
    machine: 0x3e, // EM_X86_64
    objdump: 'objdump',
    apt: ['cmake', 'g++'],
    compiler: 'g++',
  },
  'linux-arm64': {
    folder: 'linux-arm64',
    file: 'node.napi.glibc.node',
    toolchain: 'cmake/toolchains/aarch64-linux-gnu.cmake',
    format: 'elf',
    machine: 0xb7, // EM_AARCH64
    objdump: 'aarch64-linux-gnu-objdump',
    apt: ['cmake', 'g++-aarch64-linux-gnu', 'libc6-dev-arm64-cross'],
    compiler: 'aarch64-linux-gnu-g++',
  },
  'win32-x64': {
    folder: 'win32-x64',
    file: 'node.napi.node',
    toolchain: 'cmake/toolchains/x86_64-w64-mingw32.cmake',
    format: 'pe',
    machine: 0x8664, // IMAGE_FILE_MACHINE_AMD64
    objdump: 'x86_64-w64-mingw32-objdump',
    apt: ['cmake', 'g++-mingw-w64-x86-64-posix', 'binutils-mingw-w64-x86-64'],
    compiler: 'x86_64-w64-mingw32-g++-posix',
  },
};

/**
 * The scripts npm runs when it installs a package (`prepare` too, for tarball and git installs, and
 * npm 11 warns about it): the packed package.json has none of them (scripts/prebuild.mjs --pack).
 */
export const LIFECYCLE_SCRIPTS = ['preinstall', 'install', 'postinstall', 'preprepare', 'prepare', 'postprepare', 'prepublish', 'prepublishOnly'];
