// NEON kernels for AArch64 (4 floats per vector). Advanced SIMD is mandatory on AArch64, so no
// runtime check is needed; this file is compiled on aarch64 only.
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "impl.h"

namespace fastgru {
namespace {

struct NeonV {
  static constexpr int W = 4;
  using reg = float32x4_t;

  static reg zero() { return vdupq_n_f32(0.0f); }
  static reg set1(float x) { return vdupq_n_f32(x); }
  static reg load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, reg a) { vst1q_f32(p, a); }
  static reg load_n(const float* p, int n) {
    float tmp[4] = {0, 0, 0, 0};
    std::memcpy(tmp, p, sizeof(float) * n);
    return vld1q_f32(tmp);
  }
  static void store_n(float* p, reg a, int n) {
    float tmp[4];
    vst1q_f32(tmp, a);
    std::memcpy(p, tmp, sizeof(float) * n);
  }
  static reg add(reg a, reg b) { return vaddq_f32(a, b); }
  static reg sub(reg a, reg b) { return vsubq_f32(a, b); }
  static reg mul(reg a, reg b) { return vmulq_f32(a, b); }
  static reg div(reg a, reg b) { return vdivq_f32(a, b); }
  static reg fma(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }
  static reg fnma(reg a, reg b, reg c) { return vfmsq_f32(c, a, b); }
  // SSE semantics (a > b ? a : b), not vmaxq's NaN propagation, so every ISA agrees on every input.
  static reg max(reg a, reg b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
  static reg min(reg a, reg b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
  static reg round(reg a) { return vrndnq_f32(a); }
  static reg pow2(reg n) {
    const int32x4_t e = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
    return vreinterpretq_f32_s32(vshlq_n_s32(e, 23));
  }
  static reg abs(reg a) { return vabsq_f32(a); }
  static reg copysign(reg mag, reg sign) {
    const uint32x4_t m = vdupq_n_u32(0x80000000u);
    return vbslq_f32(m, sign, mag);
  }
  static reg select_lt(reg x, reg y, reg a, reg b) { return vbslq_f32(vcltq_f32(x, y), a, b); }

  // 32 q registers: up to 24 accumulators.
  template <int M>
  static constexpr int tile_panels() {
    return M == 1 ? 8 : M == 2 ? 4 : 2;
  }
};

}  // namespace

const KernelTable& neon_kernels() {
  static const KernelTable table = impl::make_table<NeonV>("neon");
  return table;
}

}  // namespace fastgru
