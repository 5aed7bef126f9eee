// sigmoid and tanh of every ISA this CPU runs: equal to the reference kernels bit for bit on a
// dense sweep, accurate against double precision (max ulp reported; <= 4 ulp asserted for tanh on
// |x| < 9 and for sigmoid wherever the result is a normal float), saturated and special inputs,
// and the vector tails (n not a multiple of the width).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "error.h"
#include "kernels/kernels.h"

using namespace fastgru;

namespace {

using Fn = void (*)(const float*, float*, int64_t);

// Error of y in units in the last place of the float nearest `exact`.
double ulp_error(float y, double exact) {
  if (std::isnan(y) || std::isnan(exact)) return std::isnan(y) && std::isnan(exact) ? 0 : INFINITY;
  const double a = std::fabs(exact);
  double ulp;
  if (a < double(FLT_MIN)) {
    ulp = std::ldexp(1.0, -149);
  } else {
    int e;
    std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
    ulp = std::ldexp(1.0, e - 24);
  }
  return std::fabs(double(y) - exact) / ulp;
}

double sigmoid_exact(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double tanh_exact(double x) { return std::tanh(x); }

// Every `stride`-th float bit pattern in [0, hi] and its negative, plus a uniform grid over [-hi, hi].
std::vector<float> sweep(float hi, uint32_t stride, int grid) {
  std::vector<float> xs;
  for (uint32_t u = 0; u <= check::bits(hi); u += stride) {
    xs.push_back(check::from_bits(u));
    xs.push_back(-check::from_bits(u));
  }
  for (int i = 0; i <= grid; i++) xs.push_back(-hi + 2 * hi * float(i) / float(grid));
  return xs;
}

std::vector<float> special_values() {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = {0.0f, std::numeric_limits<float>::denorm_min(), FLT_MIN, 1e-30f, 1e-7f, 0.5f,
                          0.625f, std::nextafter(0.625f, 0.0f), std::nextafter(0.625f, 1.0f), 1.0f, 8.9f, 9.0f,
                          9.5f, 17.0f, 18.0f, 20.0f, 30.0f, 86.9f, 87.0f, 87.5f, 88.0f, 88.7f, 89.0f, 100.0f,
                          1e3f, 1e30f, FLT_MAX, inf};
  const size_t n = v.size();
  for (size_t i = 0; i < n; i++) v.push_back(-v[i]);
  return v;
}

struct Accuracy {
  double max_ulp = 0;
  float at = 0;
  void add(double u, float x) {
    if (!(u <= max_ulp)) {
      max_ulp = u;
      at = x;
    }
  }
};

void check_isa(const KernelTable& kt, const std::vector<float>& xs, check::Rng& rng) {
  const KernelTable& ref = ref_kernels();
  const int64_t n = int64_t(xs.size());
  std::vector<float> y(xs.size()), yr(xs.size());
  for (int f = 0; f < 2; f++) {
    const char* name = f == 0 ? "sigmoid" : "tanh";
    const Fn fn = f == 0 ? kt.sigmoid : kt.tanh;
    const Fn rfn = f == 0 ? ref.sigmoid : ref.tanh;
    fn(xs.data(), y.data(), n);
    rfn(xs.data(), yr.data(), n);
    EXPECT_SAME_BITS(y.data(), yr.data(), n, "%s %s vs ref over %lld swept inputs", kt.name, name, (long long)n);
    std::printf("%s %s %s == ref bit for bit on %lld inputs in [-20, 20]\n",
                check::first_difference(y.data(), yr.data(), n) < 0 ? "ok  " : "FAIL", kt.name, name, (long long)n);

    // Random bit patterns: NaNs, infinities, subnormals and huge values included.
    std::vector<float> rx(1 << 16), ry(rx.size()), rry(rx.size());
    for (float& x : rx) x = check::from_bits(uint32_t(rng.next()));
    fn(rx.data(), ry.data(), int64_t(rx.size()));
    rfn(rx.data(), rry.data(), int64_t(rx.size()));
    EXPECT_SAME_BITS(ry.data(), rry.data(), int64_t(rx.size()), "%s %s vs ref on random bit patterns", kt.name, name);

    // Tails: n = 1 .. 3W + 1 from an odd offset; lanes past n untouched and equal to the full call.
    const int W = kt.width;
    std::vector<float> tx = rng.floats(4 * W + 8, -10, 10), full(tx.size());
    fn(tx.data() + 1, full.data() + 1, int64_t(tx.size()) - 1);
    bool tails_ok = true;
    for (int len = 1; len <= 3 * W + 1; len++) {
      std::vector<float> out(tx.size(), -7.0f);
      fn(tx.data() + 1, out.data() + 1, len);
      for (size_t i = 0; i < out.size(); i++) {
        const bool inside = i >= 1 && i < size_t(len) + 1;
        const bool ok = inside ? check::same(out[i], full[i]) : out[i] == -7.0f;
        if (!ok && tails_ok) {
          EXPECT(false, "%s %s tail n=%d: y[%zu] = %.9g (%s)", kt.name, name, len, i - 1, out[i],
                 inside ? "differs from the full call" : "written past n");
          tails_ok = false;
        }
      }
    }
    EXPECT(tails_ok, "%s %s tails", kt.name, name);
    std::printf("%s %s %s tails n = 1..%d: same bits as the full call, nothing written past n\n",
                tails_ok ? "ok  " : "FAIL", kt.name, name, 3 * W + 1);
  }
}

}  // namespace

int main() {
  const std::vector<std::string> isas = available_isas();
  for (const char* name : {"ref", "avx2", "avx512", "neon"})
    if (std::find(isas.begin(), isas.end(), name) == isas.end())
      std::printf("skip %s: not available on this CPU or in this build (available: %s)\n", name, join(isas).c_str());

  const std::vector<float> xs = sweep(20.0f, 251, 1 << 20);
  check::Rng rng(0xac71);
  for (const std::string& isa : isas) check_isa(kernels_for(isa), xs, rng);

  // Accuracy of the reference (every ISA has its bits, checked above) against double precision.
  const KernelTable& ref = ref_kernels();
  {
    std::vector<float> y(xs.size());
    ref.tanh(xs.data(), y.data(), int64_t(xs.size()));
    Accuracy small, all;
    for (size_t i = 0; i < xs.size(); i++) {
      const double u = ulp_error(y[i], tanh_exact(xs[i]));
      all.add(u, xs[i]);
      if (std::fabs(xs[i]) < 9) small.add(u, xs[i]);
    }
    EXPECT(small.max_ulp <= 4, "tanh: %.2f ulp at x = %.9g (|x| < 9; at most 4 expected)", small.max_ulp, small.at);
    std::printf("%s tanh: max %.3f ulp for |x| < 9 (at x = %.9g), %.3f ulp over [-20, 20] (at x = %.9g), %zu inputs\n",
                small.max_ulp <= 4 ? "ok  " : "FAIL", small.max_ulp, small.at, all.max_ulp, all.at, xs.size());
  }
  {
    // sigmoid reaches subnormal results only below about -87: sweep to there as well.
    std::vector<float> wide = xs;
    const std::vector<float> more = sweep(88.0f, 977, 1 << 18);
    wide.insert(wide.end(), more.begin(), more.end());
    std::vector<float> y(wide.size());
    ref.sigmoid(wide.data(), y.data(), int64_t(wide.size()));
    Accuracy in20, normal;
    for (size_t i = 0; i < wide.size(); i++) {
      const double exact = sigmoid_exact(wide[i]);
      const double u = ulp_error(y[i], exact);
      if (std::fabs(wide[i]) <= 20) in20.add(u, wide[i]);
      if (exact >= double(FLT_MIN)) normal.add(u, wide[i]);
    }
    EXPECT(normal.max_ulp <= 4, "sigmoid: %.2f ulp at x = %.9g (normal results; at most 4 expected)", normal.max_ulp,
           normal.at);
    std::printf("%s sigmoid: max %.3f ulp over [-20, 20] (at x = %.9g), %.3f ulp wherever the result is normal, x in "
                "[-88, 88] (at x = %.9g), %zu inputs\n",
                normal.max_ulp <= 4 ? "ok  " : "FAIL", in20.max_ulp, in20.at, normal.max_ulp, normal.at, wide.size());
  }

  // Special and saturated inputs, every ISA.
  const std::vector<float> sv = special_values();
  for (const std::string& isa : isas) {
    const KernelTable& kt = kernels_for(isa);
    std::vector<float> s(sv.size()), t(sv.size());
    kt.sigmoid(sv.data(), s.data(), int64_t(sv.size()));
    kt.tanh(sv.data(), t.data(), int64_t(sv.size()));
    const int64_t failures = check::state().failures;
    for (size_t i = 0; i < sv.size(); i++) {
      const float x = sv[i];
      EXPECT(std::isfinite(s[i]) && s[i] >= 0 && s[i] <= 1, "%s sigmoid(%.9g) = %.9g: expected finite in [0, 1]",
             kt.name, x, s[i]);
      EXPECT(std::isfinite(t[i]) && t[i] >= -1 && t[i] <= 1, "%s tanh(%.9g) = %.9g: expected finite in [-1, 1]",
             kt.name, x, t[i]);
      if (x >= 18) EXPECT(s[i] == 1.0f, "%s sigmoid(%.9g) = %.9g: expected exactly 1", kt.name, x, s[i]);
      if (x <= -88) EXPECT(s[i] >= 0 && s[i] <= 1e-37f, "%s sigmoid(%.9g) = %.9g: expected tiny", kt.name, x, s[i]);
      if (std::fabs(x) >= 9.5f)
        EXPECT(t[i] == std::copysign(1.0f, x), "%s tanh(%.9g) = %.9g: expected exactly %g", kt.name, x, t[i],
               std::copysign(1.0f, x));
      if (std::fabs(x) < 9 && std::fabs(x) > 0)
        EXPECT(ulp_error(t[i], tanh_exact(x)) <= 4, "%s tanh(%.9g) = %.9g: %.2f ulp", kt.name, x, t[i],
               ulp_error(t[i], tanh_exact(x)));
      if (sigmoid_exact(x) >= double(FLT_MIN))
        EXPECT(ulp_error(s[i], sigmoid_exact(x)) <= 4, "%s sigmoid(%.9g) = %.9g: %.2f ulp", kt.name, x, s[i],
               ulp_error(s[i], sigmoid_exact(x)));
    }
    const float nans[] = {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::signaling_NaN(), check::from_bits(0x7f800001u)};
    float sn[4], tn[4];
    kt.sigmoid(nans, sn, 4);
    kt.tanh(nans, tn, 4);
    for (int i = 0; i < 4; i++) {
      EXPECT(std::isnan(sn[i]), "%s sigmoid(NaN 0x%08x) = %.9g: expected NaN", kt.name, check::bits(nans[i]), sn[i]);
      EXPECT(std::isnan(tn[i]), "%s tanh(NaN 0x%08x) = %.9g: expected NaN", kt.name, check::bits(nans[i]), tn[i]);
    }
    std::printf("%s %s special inputs (%zu values: 0, subnormals, 0.625 boundary, 9, 18, 87..89, 1e3, 1e30, FLT_MAX, "
                "inf, NaN): finite, in range, saturate to exactly 1 / +-1, sigmoid(<= -88) in [0, 1e-37], NaN -> NaN\n",
                check::state().failures == failures ? "ok  " : "FAIL", kt.name, sv.size() + 4);
    // Not part of the contract, reported: the sign of tanh(-0) (std::tanh keeps it), sigmoid's floor.
    const float probe[2] = {-0.0f, -FLT_MAX};
    float tz[2], sz[2];
    kt.tanh(probe, tz, 2);
    kt.sigmoid(probe, sz, 2);
    std::printf("note %s tanh(-0) = %s0 (std::tanh(-0) = -0); sigmoid(-FLT_MAX) = %.6g\n", kt.name,
                std::signbit(tz[0]) ? "-" : "+", sz[1]);
  }
  return check::finish("activations");
}
