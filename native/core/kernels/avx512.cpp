// AVX-512F kernels (16 floats per vector), compiled with -mavx512f -mfma. Only called after
// cpu.cpp has checked that the CPU has AVX-512F and the OS saves the zmm and mask registers.
#include <immintrin.h>

#include <cstdint>

#include "impl.h"

namespace fastgru {
namespace {

struct Avx512V {
  static constexpr int W = 16;
  using reg = __m512;

  static __mmask16 mask(int n) { return __mmask16((1u << n) - 1u); }
  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg a) { _mm512_storeu_ps(p, a); }
  static reg load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store_n(float* p, reg a, int n) { _mm512_mask_storeu_ps(p, mask(n), a); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm512_div_ps(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg fnma(reg a, reg b, reg c) { return _mm512_fnmadd_ps(a, b, c); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static reg round(reg a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static reg pow2(reg n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  static reg abs(reg a) {
    return _mm512_castsi512_ps(_mm512_and_epi32(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)));
  }
  static reg copysign(reg mag, reg sign) {
    const __m512i m = _mm512_set1_epi32(0x7fffffff);
    return _mm512_castsi512_ps(_mm512_or_epi32(_mm512_and_epi32(_mm512_castps_si512(mag), m),
                                               _mm512_andnot_epi32(m, _mm512_castps_si512(sign))));
  }
  static reg select_lt(reg x, reg y, reg a, reg b) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, y, _CMP_LT_OQ), b, a);
  }

  // 32 zmm registers: up to 24 accumulators.
  template <int M>
  static constexpr int tile_panels() {
    return M == 1 ? 8 : M == 2 ? 4 : 2;
  }
};

}  // namespace

const KernelTable& avx512_kernels() {
  static const KernelTable table = impl::make_table<Avx512V>("avx512");
  return table;
}

}  // namespace fastgru
