// GEMM micro-tiles of every ISA this CPU runs, against the reference table's tiles (bit for bit:
// each element is one fma chain over k in order) and against a double-precision product.
// k covers tails below, at and above the vector width and the K block (kKC).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "error.h"
#include "gemm.h"
#include "kernels/kernels.h"

using namespace fastgru;

namespace {

const int kKs[] = {0, 1, 3, 7, 8, 9, 16, 17, 255, 256, 257, 600};
const int kAcs[] = {1, 3};
const float kGuard = check::from_bits(0x7fc0beef);  // a NaN no kernel produces

struct Worst {
  double err = 0;
};

// One tile call: m rows, np panels of kPanelVectors vectors of kt.width floats, k steps, A column
// stride acs.
void check_tile(const KernelTable& kt, GemmTileFn fn, const char* kind, int m, int np, int k, int acs, bool load_c,
                check::Rng& rng, Worst& worst) {
  const KernelTable& ref = ref_kernels();
  const int pw = kt.panel_width();
  const int N = np * pw;
  // A: row i holds k * acs floats, read at kk * acs.
  std::vector<std::vector<float>> a_rows(static_cast<size_t>(m));
  const float* a[kMR];
  for (int i = 0; i < m; i++) {
    a_rows[size_t(i)] = rng.floats(int64_t(std::max(1, k * acs)), -1, 1);
    a[i] = a_rows[size_t(i)].data();
  }
  const std::vector<float> B = rng.floats(int64_t(k) * N, -1, 1);    // logical k x N, row-major
  const std::vector<float> C0 = rng.floats(int64_t(m) * N, -2, 2);   // logical m x N
  // The ISA's layout: panel p at p * bps, k rows of pw; bps larger than k * pw as in the driver.
  const int64_t bps = int64_t(k) * pw + 3 * pw;
  std::vector<float> bp(size_t(np * bps + 1), 0.0f);
  for (int p = 0; p < np; p++)
    for (int kk = 0; kk < k; kk++)
      for (int j = 0; j < pw; j++) bp[size_t(p * bps + int64_t(kk) * pw + j)] = B[size_t(int64_t(kk) * N + p * pw + j)];
  // C rows with guards on both sides.
  const int guard = 32;
  std::vector<std::vector<float>> c_rows(static_cast<size_t>(m));
  float* c[kMR];
  for (int i = 0; i < m; i++) {
    std::vector<float>& row = c_rows[size_t(i)];
    row.assign(size_t(N + 2 * guard), kGuard);
    std::copy(C0.begin() + int64_t(i) * N, C0.begin() + int64_t(i + 1) * N, row.begin() + guard);
    c[i] = row.data() + guard;
  }
  fn(k, a, acs, bp.data(), bps, c, load_c);

  // The reference tiles over the same logical matrices, in the reference's panel width.
  const int rpw = ref.panel_width();
  const int rnp = (N + rpw - 1) / rpw;
  const int RN = rnp * rpw;
  std::vector<float> rb(size_t(int64_t(rnp) * k * rpw + 1), 0.0f);
  for (int p = 0; p < rnp; p++)
    for (int kk = 0; kk < k; kk++)
      for (int j = 0; j < rpw; j++) {
        const int col = p * rpw + j;
        rb[size_t(int64_t(p) * k * rpw + int64_t(kk) * rpw + j)] = col < N ? B[size_t(int64_t(kk) * N + col)] : 0.0f;
      }
  std::vector<float> rc(size_t(m) * RN, 0.0f);
  for (int i = 0; i < m; i++) std::copy(C0.begin() + int64_t(i) * N, C0.begin() + int64_t(i + 1) * N, rc.begin() + int64_t(i) * RN);
  for (int p = 0; p < rnp; p++) {
    float* rcp[kMR];
    for (int i = 0; i < m; i++) rcp[i] = rc.data() + int64_t(i) * RN + p * rpw;
    ref.single[m - 1](k, a, acs, rb.data() + int64_t(p) * k * rpw, int64_t(k) * rpw, rcp, load_c);
  }

  const std::string where =
      check::format("%s %s m=%d np=%d k=%d acs=%d load_c=%d", kt.name, kind, m, np, k, acs, int(load_c));
  for (int i = 0; i < m; i++) {
    const float* row = c_rows[size_t(i)].data();
    bool guards_ok = true;
    for (int g = 0; g < guard; g++)
      guards_ok = guards_ok && check::bits(row[g]) == check::bits(kGuard) &&
                  check::bits(row[guard + N + g]) == check::bits(kGuard);
    EXPECT(guards_ok, "%s: row %d written outside its %d columns", where.c_str(), i, N);
    EXPECT_SAME_BITS(c[i], rc.data() + int64_t(i) * RN, N, "%s: row %d vs ref tile", where.c_str(), i);
    for (int j = 0; j < N; j++) {
      double exact = load_c ? double(C0[size_t(int64_t(i) * N + j)]) : 0.0;
      double scale = std::fabs(exact);
      for (int kk = 0; kk < k; kk++) {
        const double t = double(a[i][int64_t(kk) * acs]) * double(B[size_t(int64_t(kk) * N + j)]);
        exact += t;
        scale += std::fabs(t);
      }
      const double err = std::fabs(double(c[i][j]) - exact) / std::max(scale, 1e-30);
      if (!(err <= 1e-5)) {
        EXPECT(false, "%s: c[%d][%d] = %.9g, double product %.9g (error %.3g of sum|ab| %.3g)", where.c_str(), i, j,
               c[i][j], exact, err, scale);
      } else {
        check::pass();
        worst.err = std::max(worst.err, scale > 0 ? err : 0.0);
      }
    }
  }
}

}  // namespace

int main() {
  const std::vector<std::string> isas = available_isas();
  for (const char* name : {"ref", "avx2", "avx512", "neon"})
    if (std::find(isas.begin(), isas.end(), name) == isas.end())
      std::printf("skip %s: not available on this CPU or in this build (available: %s)\n", name, join(isas).c_str());
  check::Rng rng(0x6e6d);
  for (const std::string& isa : isas) {
    const KernelTable& kt = kernels_for(isa);
    EXPECT(std::string(kt.name) == isa, "kernels_for(%s).name is %s", isa.c_str(), kt.name);
    for (int m = 1; m <= kMR; m++)
      for (int kind = 0; kind < 2; kind++) {
        const GemmTileFn fn = kind == 0 ? kt.tile[m - 1] : kt.single[m - 1];
        const int np = kind == 0 ? kt.tile_panels[m - 1] : 1;
        const char* kind_name = kind == 0 ? "tile" : "single";
        const int64_t failures_before = check::state().failures;
        if (!EXPECT(fn != nullptr && np >= 1, "%s %s[%d] missing", kt.name, kind_name, m - 1)) continue;
        Worst worst;
        int cases = 0;
        for (int k : kKs)
          for (int acs : kAcs)
            for (bool load_c : {false, true}) {
              check_tile(kt, fn, kind_name, m, np, k, acs, load_c, rng, worst);
              cases++;
            }
        std::printf("%s %s %s m=%d (%d panel%s of %d): %d cases, k in {0..600}, bits == ref tile, max error "
                    "vs double %.2e of sum|ab|\n",
                    check::state().failures == failures_before ? "ok  " : "FAIL", kt.name, kind_name, m, np,
                    np > 1 ? "s" : "", kt.panel_width(), cases, worst.err);
      }
  }
  return check::finish("kernels");
}
