# node-gyp build of the addon: what a checkout's `npm install` and `npx fastgru build` run (scripts/build.mjs).
# CMakeLists.txt lists the same sources; test/build-files.test.ts checks that they agree.
# Each ISA's kernels are a static library of their own, compiled with their own flags; the core
# calls them only after cpu.cpp has checked the CPU. -ffp-contract=off everywhere in the kernels:
# they fuse exactly where they say fma, so every ISA gives the reference's bits.
{
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++1y"],
    "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-ffp-contract=off"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "OTHER_CPLUSPLUSFLAGS": ["-O3", "-ffp-contract=off"]
    },
    "msvs_settings": {"VCCLCompilerTool": {"ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"]}}
  },
  "targets": [
    {
      "target_name": "fastgru_kernels_ref",
      "type": "static_library",
      "sources": ["native/core/kernels/ref.cpp"]
    },
    {
      "target_name": "fastgru_kernels_avx2",
      "type": "static_library",
      "conditions": [
        ["target_arch=='x64'", {
          "sources": ["native/core/kernels/avx2.cpp"],
          "cflags_cc": ["-mavx2", "-mfma"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma"]}
        }]
      ]
    },
    {
      "target_name": "fastgru_kernels_avx512",
      "type": "static_library",
      "conditions": [
        ["target_arch=='x64'", {
          "sources": ["native/core/kernels/avx512.cpp"],
          "cflags_cc": ["-mavx512f", "-mfma", "-Wno-maybe-uninitialized"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-mavx512f", "-mfma"]}
        }]
      ]
    },
    {
      "target_name": "fastgru_kernels_neon",
      "type": "static_library",
      "conditions": [
        ["target_arch=='arm64'", {"sources": ["native/core/kernels/neon.cpp"]}]
      ]
    },
    {
      "target_name": "fastgru",
      "sources": [
        "native/core/backward.cpp",
        "native/core/checks.cpp",
        "native/core/cpu.cpp",
        "native/core/cpu_limit.cpp",
        "native/core/fma_peak.cpp",
        "native/core/forward.cpp",
        "native/core/gemm.cpp",
        "native/core/memory.cpp",
        "native/core/model.cpp",
        "native/core/model_cache.cpp",
        "native/core/schedule.cpp",
        "native/core/scratch.cpp",
        "native/core/tape.cpp",
        "native/core/thread_pool.cpp",
        "native/addon/addon.cpp"
      ],
      "dependencies": [
        "fastgru_kernels_ref",
        "fastgru_kernels_avx2",
        "fastgru_kernels_avx512",
        "fastgru_kernels_neon"
      ],
      "conditions": [
        ["OS=='linux'", {"libraries": ["-lpthread"]}]
      ]
    }
  ]
}
