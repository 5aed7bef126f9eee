// The reference kernels: portable scalar code, the oracle every ISA is tested against. A "vector"
// is 8 floats processed lane by lane with the same IEEE operations the SIMD kernels use (std::fma
// where they fuse), so the SIMD kernels reproduce these results bit for bit. Compiled with
// -ffp-contract=off so the compiler fuses nothing on its own.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "impl.h"

namespace fastgru {
namespace {

#if defined(__MINGW32__)
// MinGW-w64's fmaf (libmingwex, version 10 in Debian 12) is not correctly rounded: it is off by an
// ulp in about a third of random cases, so these kernels would not reproduce the SIMD kernels'
// vfmadd bits on Windows. This one is: the product of two floats is exact in double (24 + 24 bits),
// the sum p + c is rounded to odd in double (TwoSum gives its exact error), and rounding to odd
// with 53 >= 24 + 2 bits, then to float, gives the correctly rounded result (subnormals included).
float fused_multiply_add(float a, float b, float c) {
  const double p = double(a) * double(b);
  const double s = p + double(c);
  if (!std::isfinite(s)) return float(s);
  const double cb = s - p;
  const double e = (p - (s - cb)) + (double(c) - cb);  // s + e == p + c exactly
  if (e == 0) return float(s);
  uint64_t u;
  std::memcpy(&u, &s, sizeof u);
  // An inexact s with an even last bit: its neighbour on e's side is the odd one.
  if ((u & 1) == 0) u = (e > 0) == (s > 0) ? u + 1 : u - 1;
  double odd;
  std::memcpy(&odd, &u, sizeof odd);
  return float(odd);
}
#else
float fused_multiply_add(float a, float b, float c) { return std::fma(a, b, c); }
#endif

struct RefV {
  static constexpr int W = 8;
  struct reg {
    float v[W];
  };

  template <class F>
  static reg map(F f) {
    reg r;
    for (int i = 0; i < W; i++) r.v[i] = f(i);
    return r;
  }
  static reg zero() { return map([](int) { return 0.0f; }); }
  static reg set1(float x) { return map([x](int) { return x; }); }
  static reg load(const float* p) { return map([p](int i) { return p[i]; }); }
  static void store(float* p, reg a) { std::memcpy(p, a.v, sizeof a.v); }
  static reg load_n(const float* p, int n) { return map([p, n](int i) { return i < n ? p[i] : 0.0f; }); }
  static void store_n(float* p, reg a, int n) { std::memcpy(p, a.v, sizeof(float) * n); }
  static reg add(reg a, reg b) { return map([&](int i) { return a.v[i] + b.v[i]; }); }
  static reg sub(reg a, reg b) { return map([&](int i) { return a.v[i] - b.v[i]; }); }
  static reg mul(reg a, reg b) { return map([&](int i) { return a.v[i] * b.v[i]; }); }
  static reg div(reg a, reg b) { return map([&](int i) { return a.v[i] / b.v[i]; }); }
  static reg fma(reg a, reg b, reg c) { return map([&](int i) { return fused_multiply_add(a.v[i], b.v[i], c.v[i]); }); }
  static reg fnma(reg a, reg b, reg c) { return map([&](int i) { return fused_multiply_add(-a.v[i], b.v[i], c.v[i]); }); }
  static reg max(reg a, reg b) { return map([&](int i) { return a.v[i] > b.v[i] ? a.v[i] : b.v[i]; }); }
  static reg min(reg a, reg b) { return map([&](int i) { return a.v[i] < b.v[i] ? a.v[i] : b.v[i]; }); }
  static reg round(reg a) { return map([&](int i) { return std::nearbyint(a.v[i]); }); }
  static reg pow2(reg n) {
    return map([&](int i) {
      // As cvtps2dq: NaN gives the integer indefinite (INT32_MIN); casting NaN would be UB.
      const int32_t e = n.v[i] == n.v[i] ? int32_t(n.v[i]) : INT32_MIN;
      const uint32_t bits = uint32_t(e + 127) << 23;
      float f;
      std::memcpy(&f, &bits, sizeof f);
      return f;
    });
  }
  static uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
  }
  static float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
  static reg abs(reg a) { return map([&](int i) { return from_bits(bits(a.v[i]) & 0x7fffffffu); }); }
  static reg copysign(reg mag, reg sign) {
    return map([&](int i) { return from_bits((bits(mag.v[i]) & 0x7fffffffu) | (bits(sign.v[i]) & 0x80000000u)); });
  }
  static reg select_lt(reg x, reg y, reg a, reg b) {
    return map([&](int i) { return x.v[i] < y.v[i] ? a.v[i] : b.v[i]; });
  }

  // The same tile shapes as AVX2, so a run forced to 'ref' walks the same loops.
  template <int M>
  static constexpr int tile_panels() {
    return M == 1 ? 4 : M == 2 ? 2 : 1;
  }
};

}  // namespace

const KernelTable& ref_kernels() {
  static const KernelTable table = impl::make_table<RefV>("ref");
  return table;
}

}  // namespace fastgru
