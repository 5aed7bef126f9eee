#include "cpu.h"

#include <cstdint>
#include <cstdlib>

#include "error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace fastgru {

namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool avx = c & (1u << 28);
  const bool fma = c & (1u << 12);
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;            // SSE and AVX state
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;          // plus opmask, ZMM_Hi256, Hi16_ZMM
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  const bool avx2 = b & (1u << 5);
  const bool avx512f = b & (1u << 16);
  f.avx2_fma = avx2 && fma && os_ymm;
  f.avx512f = avx512f && f.avx2_fma && os_zmm;
#elif defined(__aarch64__)
  f.neon = true;  // Advanced SIMD is mandatory on AArch64
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::vector<std::string> available_isas() {
  std::vector<std::string> isas{"ref"};
  const CpuFeatures& f = cpu_features();
  (void)f;
#if defined(__x86_64__) || defined(__i386__)
  if (f.avx2_fma) isas.push_back("avx2");
  if (f.avx512f) isas.push_back("avx512");
#endif
#if defined(__aarch64__)
  if (f.neon) isas.push_back("neon");
#endif
  return isas;
}

const KernelTable& kernels_for(const std::string& isa) {
  const CpuFeatures& f = cpu_features();
  (void)f;
  if (isa == "ref") return ref_kernels();
  if (isa == "avx2" || isa == "avx512") {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == "avx2" && f.avx2_fma) return avx2_kernels();
    if (isa == "avx512" && f.avx512f) return avx512_kernels();
    throw Error("ERR_ISA", "FASTGRU_ISA: expected an instruction set this CPU supports (" + join(available_isas()) +
                               "), got '" + isa + "': the CPU or the OS lacks it");
#else
    throw Error("ERR_ISA", "FASTGRU_ISA: expected one of " + join(available_isas()) + ", got '" + isa +
                               "': this build is not for x86-64");
#endif
  }
  if (isa == "neon") {
#if defined(__aarch64__)
    return neon_kernels();
#else
    throw Error("ERR_ISA", "FASTGRU_ISA: expected one of " + join(available_isas()) + ", got 'neon': this build is not for AArch64");
#endif
  }
  throw Error("ERR_ISA", "FASTGRU_ISA: expected one of ref, avx2, avx512, neon, got '" + isa + "'");
}

const KernelTable& active_kernels() {
  // A function-local static: decided once, thread-safely; an error is rethrown on every call.
  struct Choice {
    const KernelTable* table = nullptr;
    std::string error_code, error;
  };
  static const Choice choice = [] {
    Choice c;
    try {
      const char* forced = std::getenv("FASTGRU_ISA");
      if (forced && *forced) c.table = &kernels_for(forced);
      else c.table = &kernels_for(available_isas().back());
    } catch (const Error& e) {
      c.error_code = e.code();
      c.error = e.what();
    }
    return c;
  }();
  if (!choice.table) throw Error(choice.error_code, choice.error);
  return *choice.table;
}

}  // namespace fastgru
