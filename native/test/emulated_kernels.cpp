// The emulated kernel tables of emulated_kernels.h: impl.h's kernels over a scalar vector type of
// 4 or 16 lanes, compiled with the core's flags (-ffp-contract=off) like kernels/ref.cpp.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "emulated_kernels.h"
#include "kernels/impl.h"

namespace emulated {
namespace {

template <int Width>
struct ScalarV {
  static constexpr int W = Width;
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
  static reg fma(reg a, reg b, reg c) { return map([&](int i) { return std::fma(a.v[i], b.v[i], c.v[i]); }); }
  static reg fnma(reg a, reg b, reg c) { return map([&](int i) { return std::fma(-a.v[i], b.v[i], c.v[i]); }); }
  static reg max(reg a, reg b) { return map([&](int i) { return a.v[i] > b.v[i] ? a.v[i] : b.v[i]; }); }
  static reg min(reg a, reg b) { return map([&](int i) { return a.v[i] < b.v[i] ? a.v[i] : b.v[i]; }); }
  static reg round(reg a) { return map([&](int i) { return std::nearbyint(a.v[i]); }); }
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
  static reg pow2(reg n) {
    // As cvtps2dq: NaN gives the integer indefinite 0x80000000 (the reference casts, which is UB).
    return map([&](int i) {
      const int32_t e = std::isnan(n.v[i]) ? INT32_MIN : int32_t(n.v[i]);
      return from_bits(uint32_t(e + 127) << 23);
    });
  }
  static reg abs(reg a) { return map([&](int i) { return from_bits(bits(a.v[i]) & 0x7fffffffu); }); }
  static reg copysign(reg mag, reg sign) {
    return map([&](int i) { return from_bits((bits(mag.v[i]) & 0x7fffffffu) | (bits(sign.v[i]) & 0x80000000u)); });
  }
  static reg select_lt(reg x, reg y, reg a, reg b) {
    return map([&](int i) { return x.v[i] < y.v[i] ? a.v[i] : b.v[i]; });
  }
  // NEON's and AVX-512's shapes (32 registers).
  template <int M>
  static constexpr int tile_panels() {
    return M == 1 ? 8 : M == 2 ? 4 : 2;
  }
};

}  // namespace

const fastgru::KernelTable& width4() {
  static const fastgru::KernelTable t = fastgru::impl::make_table<ScalarV<4>>("emulated-w4");
  return t;
}
const fastgru::KernelTable& width16() {
  static const fastgru::KernelTable t = fastgru::impl::make_table<ScalarV<16>>("emulated-w16");
  return t;
}

}  // namespace emulated
