// The GEMM drivers, gemm_packed and gemm_general, for sizes that are multiples of nothing (m, n, k
// not multiples of 4, 8, 24, kMC or kKC): against a double-precision product, the same bits for
// any split of the rows (and of the panels), the same bits on every ISA, and gemm_general the same
// bits as gemm_packed (both are one fma chain per element over k in order), also when it sums k a
// window at a time (gemm_general_packed_range). Also the huge-page advice for large buffers.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <string>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "error.h"
#include "gemm.h"
#include "kernels/kernels.h"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

using namespace fastgru;

namespace {

struct Size {
  int m, n, k;
};
const Size kSizes[] = {{1, 1, 1},     {3, 5, 7},      {5, 23, 25},   {13, 50, 255}, {131, 101, 257},
                       {130, 77, 513}, {7, 200, 600}, {257, 9, 3},   {2, 49, 0},    {6, 25, 23}};

// C = A·B (+ C0) in double, and the scale sum |C0| + sum |a·b| that bounds float rounding.
void naive(const Size& s, const std::vector<float>& A, int64_t lda, const std::vector<float>& B,
           const std::vector<float>* C0, std::vector<double>& C, std::vector<double>& scale) {
  C.assign(size_t(s.m) * s.n, 0.0);
  scale.assign(size_t(s.m) * s.n, 0.0);
  for (int i = 0; i < s.m; i++)
    for (int j = 0; j < s.n; j++) {
      double acc = C0 ? double((*C0)[size_t(i) * s.n + j]) : 0.0, sc = std::fabs(acc);
      for (int kk = 0; kk < s.k; kk++) {
        const double t = double(A[size_t(i * lda + kk)]) * double(B[size_t(kk) * s.n + j]);
        acc += t;
        sc += std::fabs(t);
      }
      C[size_t(i) * s.n + j] = acc;
      scale[size_t(i) * s.n + j] = sc;
    }
}

// The n logical columns of m rows of a padded C.
std::vector<float> logical(const std::vector<float>& c, int m, int n, int64_t ldc) {
  std::vector<float> out(size_t(m) * n);
  for (int i = 0; i < m; i++) std::copy(c.begin() + i * ldc, c.begin() + i * ldc + n, out.begin() + int64_t(i) * n);
  return out;
}

double check_against_double(const std::vector<float>& got, const std::vector<double>& want,
                            const std::vector<double>& scale, const std::string& what) {
  double worst = 0;
  for (size_t e = 0; e < got.size(); e++) {
    const double err = std::fabs(double(got[e]) - want[e]) / std::max(scale[e], 1e-30);
    if (!(err <= 1e-5)) {
      EXPECT(false, "%s: element %zu = %.9g, double product %.9g (error %.3g of its scale %.3g)", what.c_str(), e,
             got[e], want[e], err, scale[e]);
      return err;
    }
    worst = std::max(worst, err);
  }
  check::pass();
  return worst;
}

// One ISA, one size: returns the logical result (load_c false) for the cross-ISA check.
std::vector<float> packed_case(const KernelTable& kt, const Size& s, check::Rng& rng, double& worst) {
  const int64_t lda = s.k + 3;
  const std::vector<float> A = rng.floats(int64_t(s.m) * lda, -1, 1);
  const std::vector<float> B = rng.floats(int64_t(s.k) * s.n, -1, 1);
  const std::vector<float> C0 = rng.floats(int64_t(s.m) * s.n, -1, 1);
  PackedB pb = pack_b(kt, s.k, s.n, B.data(), s.n, 1, nullptr, nullptr);
  const Panels& b = pb.view;
  const int64_t ldc = int64_t(b.panels) * b.pw + 7;
  const std::string what = check::format("%s gemm_packed m=%d n=%d k=%d", kt.name, s.m, s.n, s.k);
  EXPECT(b.panels * b.pw >= s.n && (b.panels - 1) * b.pw < s.n, "%s: %d panels of %d for n=%d", what.c_str(),
         b.panels, b.pw, s.n);

  Rows a;
  a.base = A.data();
  a.ld = lda;
  std::vector<double> want, scale;
  naive(s, A, lda, B, nullptr, want, scale);

  // Whole call, load_c false over a C full of garbage.
  std::vector<float> c(size_t(s.m * ldc + 1), 1e30f);
  MutRows cr;
  cr.base = c.data();
  cr.ld = ldc;
  gemm_packed(kt, s.m, a, 1, b, 0, b.panels, cr, false);
  const std::vector<float> whole = logical(c, s.m, s.n, ldc);
  worst = std::max(worst, check_against_double(whole, want, scale, what + " load_c=0"));
  bool pad_zero = true;
  for (int i = 0; i < s.m; i++)
    for (int64_t j = s.n; j < int64_t(b.panels) * b.pw; j++) pad_zero = pad_zero && c[size_t(i * ldc + j)] == 0.0f;
  EXPECT(pad_zero, "%s: columns past n within the last panel are not 0", what.c_str());

  // load_c true continues from C0.
  std::vector<float> c1(size_t(s.m * ldc + 1), 0.0f);
  for (int i = 0; i < s.m; i++) std::copy(C0.begin() + int64_t(i) * s.n, C0.begin() + int64_t(i + 1) * s.n, c1.begin() + i * ldc);
  MutRows cr1 = cr;
  cr1.base = c1.data();
  gemm_packed(kt, s.m, a, 1, b, 0, b.panels, cr1, true);
  std::vector<double> want1, scale1;
  naive(s, A, lda, B, &C0, want1, scale1);
  worst = std::max(worst, check_against_double(logical(c1, s.m, s.n, ldc), want1, scale1, what + " load_c=1"));

  // Row splits: [0, h) and [h, m) through offset row views, and the same rows through row pointers
  // with A read at a column stride (acs = 2 over an interleaved copy).
  for (int h : {1, s.m / 2, std::min(s.m, kMC + 1), std::max(0, s.m - 3)}) {
    if (h < 0 || h > s.m) continue;
    std::vector<float> c2(c.size(), -5.0f);
    MutRows top = cr, bottom = cr;
    top.base = c2.data();
    bottom.base = c2.data() + h * ldc;
    Rows a_bottom = a;
    a_bottom.base = A.data() + h * lda;
    gemm_packed(kt, h, a, 1, b, 0, b.panels, top, false);
    gemm_packed(kt, s.m - h, a_bottom, 1, b, 0, b.panels, bottom, false);
    EXPECT_SAME_BITS(logical(c2, s.m, s.n, ldc).data(), whole.data(), int64_t(whole.size()), "%s rows split at %d",
                     what.c_str(), h);
  }
  {
    std::vector<float> wide(size_t(s.m) * s.k * 2 + 1, 9.0f);
    std::vector<const float*> ptrs(size_t(s.m));
    for (int i = s.m - 1; i >= 0; i--) {  // rows placed in reverse order in memory
      float* row = wide.data() + int64_t(s.m - 1 - i) * s.k * 2;
      for (int kk = 0; kk < s.k; kk++) row[kk * 2] = A[size_t(i * lda + kk)];
      ptrs[size_t(i)] = row;
    }
    Rows ap;
    ap.ptrs = ptrs.data();
    std::vector<float> c3(c.size(), 3.0f);
    MutRows cr3 = cr;
    cr3.base = c3.data();
    // Panels split in two calls as well, as the time loop splits them across threads.
    const int mid = b.panels / 2;
    gemm_packed(kt, s.m, ap, 2, b, 0, mid, cr3, false);
    gemm_packed(kt, s.m, ap, 2, b, mid, b.panels, cr3, false);
    EXPECT_SAME_BITS(logical(c3, s.m, s.n, ldc).data(), whole.data(), int64_t(whole.size()),
                     "%s row pointers, acs=2, panels split at %d", what.c_str(), mid);
  }
  // A transposed B source with a column map (reversed) gives the reversed columns' bits.
  if (s.k > 0) {
    std::vector<float> Bt(size_t(s.n) * s.k);
    for (int kk = 0; kk < s.k; kk++)
      for (int j = 0; j < s.n; j++) Bt[size_t(j) * s.k + kk] = B[size_t(kk) * s.n + j];
    std::vector<int> rev(size_t(s.n));
    for (int j = 0; j < s.n; j++) rev[size_t(j)] = s.n - 1 - j;
    PackedB pt = pack_b(kt, s.k, s.n, Bt.data(), 1, s.k, nullptr, rev.data());
    std::vector<float> c4(c.size(), 0.0f);
    MutRows cr4 = cr;
    cr4.base = c4.data();
    gemm_packed(kt, s.m, a, 1, pt.view, 0, pt.view.panels, cr4, false);
    std::vector<float> got = logical(c4, s.m, s.n, ldc), unrev(got.size());
    for (int i = 0; i < s.m; i++)
      for (int j = 0; j < s.n; j++) unrev[size_t(i) * s.n + j] = got[size_t(i) * s.n + (s.n - 1 - j)];
    EXPECT_SAME_BITS(unrev.data(), whole.data(), int64_t(whole.size()), "%s pack_b transposed + column map",
                     what.c_str());
  }
  return whole;
}

std::vector<float> general_case(const KernelTable& kt, const Size& s, bool transposed, check::Rng& rng,
                                double& worst, std::vector<float>* packed_bits) {
  // A(i, kk): row-major [m, k] or, as the weight gradients read it, column-major.
  const std::vector<float> A = rng.floats(int64_t(s.m) * s.k + 1, -1, 1);
  const int64_t a_rs = transposed ? 1 : s.k, a_cs = transposed ? s.m : 1;
  const int64_t ldb = s.n + 2;
  const std::vector<float> Bm = rng.floats(int64_t(s.k) * ldb + 1, -1, 1);
  std::vector<float> Ad(size_t(s.m) * s.k), Bd(size_t(s.k) * s.n);
  for (int i = 0; i < s.m; i++)
    for (int kk = 0; kk < s.k; kk++) Ad[size_t(i) * s.k + kk] = A[size_t(i * a_rs + kk * a_cs)];
  for (int kk = 0; kk < s.k; kk++)
    for (int j = 0; j < s.n; j++) Bd[size_t(kk) * s.n + j] = Bm[size_t(kk * ldb + j)];
  std::vector<double> want, scale;
  naive(s, Ad, s.k, Bd, nullptr, want, scale);

  const int64_t ldc = kt.padded_width(s.n) + 5;
  Rows b;
  b.base = Bm.data();
  b.ld = ldb;
  const std::string what =
      check::format("%s gemm_general m=%d n=%d k=%d %s", kt.name, s.m, s.n, s.k, transposed ? "A^T" : "A");
  GemmWorkspace ws;
  ws.reserve(gemm_general_a_floats(), gemm_general_b_floats(kt, s.n));
  std::vector<float> c(size_t(s.m * ldc + 1), 1e30f);
  gemm_general(kt, 0, s.m, s.n, s.k, A.data(), a_rs, a_cs, b, c.data(), ldc, ws);
  const std::vector<float> whole = logical(c, s.m, s.n, ldc);
  worst = std::max(worst, check_against_double(whole, want, scale, what));
  if (packed_bits) {
    EXPECT_SAME_BITS(whole.data(), packed_bits->data(), int64_t(whole.size()), "%s vs gemm_packed", what.c_str());
  }
  for (int h : {1, s.m / 2, std::min(s.m, kMC + 3), std::max(0, s.m - 1)}) {
    if (h < 0 || h > s.m) continue;
    GemmWorkspace ws1, ws2;  // one per thread, as in backward
    ws1.reserve(gemm_general_a_floats(), gemm_general_b_floats(kt, s.n));
    ws2.reserve(gemm_general_a_floats(), gemm_general_b_floats(kt, s.n));
    std::vector<float> c2(c.size(), -1.0f);
    gemm_general(kt, h, s.m, s.n, s.k, A.data(), a_rs, a_cs, b, c2.data(), ldc, ws2);
    gemm_general(kt, 0, h, s.n, s.k, A.data(), a_rs, a_cs, b, c2.data(), ldc, ws1);
    EXPECT_SAME_BITS(logical(c2, s.m, s.n, ldc).data(), whole.data(), int64_t(whole.size()), "%s rows split at %d",
                     what.c_str(), h);
  }
  // The sum over k a window of kKC-multiple rows at a time (gemm_general_packed_range, B packed
  // per window with pack_rows): the bits of the whole product, over a C full of garbage.
  for (int64_t window : {int64_t(kKC), int64_t(2) * kKC, int64_t(s.k) + 1}) {
    if (window % kKC != 0 && window <= s.k) continue;
    std::vector<float> packed(size_t(packed_floats(kt, std::max<int64_t>(1, std::min<int64_t>(window, s.k)), s.n)));
    std::vector<float> c3(c.size(), 1e30f);
    for (int64_t k0 = 0; k0 < s.k || (k0 == 0 && s.k == 0); k0 += window) {
      const int64_t k1 = std::min<int64_t>(s.k, k0 + window);
      Rows shifted = b;
      shifted.base = Bm.data() + k0 * ldb;
      pack_rows(kt, s.n, k1 - k0, shifted, 0, (k1 - k0 + kKC - 1) / kKC, packed.data());
      gemm_general_packed_range(kt, 0, s.m, s.n, k0, k1, A.data(), a_rs, a_cs, packed.data(), c3.data(), ldc, ws);
      if (s.k == 0) break;
    }
    EXPECT_SAME_BITS(logical(c3, s.m, s.n, ldc).data(), whole.data(), int64_t(whole.size()),
                     "%s summed in windows of %lld rows", what.c_str(), (long long)window);
  }
  return whole;
}

}  // namespace

#if defined(__linux__)
// Bytes of [lo, hi) that lie in mappings whose VmFlags include "hg" (MADV_HUGEPAGE), from
// /proc/self/smaps; -1 when it cannot be read.
int64_t advised_bytes(uintptr_t lo, uintptr_t hi) {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  uintptr_t start = 0, end = 0;
  int64_t total = 0;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long a, b;
    if (std::sscanf(line, "%lx-%lx ", &a, &b) == 2 && std::strchr(line, '-') < std::strchr(line, ' ')) {
      start = a;
      end = b;
    } else if (std::strncmp(line, "VmFlags:", 8) == 0 && std::strstr(line, " hg")) {
      const uintptr_t x = std::max(lo, start), y = std::min(hi, end);
      if (y > x) total += int64_t(y - x);
    }
  }
  std::fclose(f);
  return total;
}

// advise_huge_pages marks exactly the 2 MB-aligned interior of a buffer of 4 MB or more, and
// nothing of a smaller one; the data is untouched. Skipped where the kernel has no huge pages.
void huge_page_advice() {
  if (access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK) != 0) {
    std::printf("skip advise_huge_pages: this kernel has no transparent huge pages\n");
    return;
  }
  const size_t huge = size_t(2) << 20, bytes = 12 * huge;
  char* base = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (!EXPECT(base != MAP_FAILED, "mmap of %zu bytes failed", bytes)) return;
  // Whether a direct madvise shows in smaps here at all (qemu-user, for one, accepts the advice and
  // drops it), on a probe mapping of its own.
  {
    char* probe = static_cast<char*>(mmap(nullptr, 2 * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    const bool shown = probe != MAP_FAILED && madvise(probe, 2 * huge, MADV_HUGEPAGE) == 0 &&
                       advised_bytes(reinterpret_cast<uintptr_t>(probe), reinterpret_cast<uintptr_t>(probe + 2 * huge)) > 0;
    if (probe != MAP_FAILED) munmap(probe, 2 * huge);
    if (!shown) {
      std::printf("skip advise_huge_pages: a direct madvise(MADV_HUGEPAGE) does not show in /proc/self/smaps here\n");
      munmap(base, bytes);
      return;
    }
  }
  // A buffer that starts 12 KB past a 2 MB boundary and ends 20 KB short of one.
  const uintptr_t boundary = (reinterpret_cast<uintptr_t>(base) + huge - 1) & ~uintptr_t(huge - 1);
  float* p = reinterpret_cast<float*>(boundary + 3 * 4096);
  const int64_t n = int64_t(8 * huge - 3 * 4096 - 5 * 4096) / 4;
  for (int64_t i = 0; i < n; i += 1000) p[i] = float(i);
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p), hi = reinterpret_cast<uintptr_t>(p + n);
  advise_huge_pages(p, n);
  const int64_t marked = advised_bytes(lo, hi);
  // A buffer just under 4 MB that starts on a boundary (past the first): left alone.
  float* small = reinterpret_cast<float*>(boundary + 8 * huge);
  const int64_t small_n = int64_t(2 * huge - 4096) / 4;
  advise_huge_pages(small, small_n);
  const int64_t marked_small =
      advised_bytes(reinterpret_cast<uintptr_t>(small), reinterpret_cast<uintptr_t>(small + small_n));
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; i += 1000) wrong += p[i] != float(i);
  const int64_t interior = int64_t(6 * huge);  // (boundary + 2 MB) to (boundary + 14 MB)
  const char* off = std::getenv("FASTGRU_HUGE_PAGES");
  const int64_t want = off && *off == '0' ? 0 : interior;
  EXPECT(marked == want && marked_small == 0 && wrong == 0,
         "advise_huge_pages: %lld bytes marked (expected %lld), %lld of a buffer under 4 MB, %lld values changed",
         (long long)marked, (long long)want, (long long)marked_small, (long long)wrong);
  std::printf("%s advise_huge_pages on %.1f MB not aligned to 2 MB: %lld bytes marked MADV_HUGEPAGE, the aligned "
              "interior; a buffer under 4 MB left alone; data unchanged\n",
              marked == want && marked_small == 0 && wrong == 0 ? "ok  " : "FAIL", double(n) * 4 / (1 << 20),
              (long long)marked);
  munmap(base, bytes);
}
#endif

int main() {
  const std::vector<std::string> isas = available_isas();
  for (const char* name : {"ref", "avx2", "avx512", "neon"})
    if (std::find(isas.begin(), isas.end(), name) == isas.end())
      std::printf("skip %s: not available on this CPU or in this build (available: %s)\n", name, join(isas).c_str());

  for (const Size& s : kSizes) {
    std::vector<std::vector<float>> per_isa, general[2];
    for (const std::string& isa : isas) {
      const KernelTable& kt = kernels_for(isa);
      const int64_t failures = check::state().failures;
      double worst = 0;
      const uint64_t seed = uint64_t(s.m * 1000003 + s.n * 1009 + s.k) * 4 + 3;
      check::Rng packed_rng(seed);
      per_isa.push_back(packed_case(kt, s, packed_rng, worst));
      for (int t = 0; t < 2; t++) {
        check::Rng rng(seed);
        std::vector<float>* bits = nullptr;
        std::vector<float> same_inputs;
        if (t == 0) {
          // Recompute the gemm_packed result for gemm_general's own inputs.
          check::Rng r2 = rng;
          const std::vector<float> A = r2.floats(int64_t(s.m) * s.k + 1, -1, 1);
          const int64_t ldb = s.n + 2;
          const std::vector<float> Bm = r2.floats(int64_t(s.k) * ldb + 1, -1, 1);
          PackedB pb = pack_b(kt, s.k, s.n, Bm.data(), ldb, 1, nullptr, nullptr);
          const int64_t ldc = int64_t(pb.view.panels) * pb.view.pw;
          std::vector<float> c(size_t(s.m * ldc + 1));
          Rows a;
          a.base = A.data();
          a.ld = s.k;
          MutRows cr;
          cr.base = c.data();
          cr.ld = ldc;
          gemm_packed(kt, s.m, a, 1, pb.view, 0, pb.view.panels, cr, false);
          same_inputs = logical(c, s.m, s.n, ldc);
          bits = &same_inputs;
        }
        general[t].push_back(general_case(kt, s, t == 1, rng, worst, bits));
      }
      std::printf("%s %s m=%d n=%d k=%d: gemm_packed (load_c 0, 1) and gemm_general (A, A^T) within "
                  "%.2e of the double product's scale; row splits, panel splits, row pointers, transposed packing "
                  "and gemm_general vs gemm_packed give the same bits\n",
                  check::state().failures == failures ? "ok  " : "FAIL", kt.name, s.m, s.n, s.k, worst);
    }
    for (size_t i = 1; i < isas.size(); i++) {
      EXPECT_SAME_BITS(per_isa[i].data(), per_isa[0].data(), int64_t(per_isa[0].size()),
                       "gemm_packed m=%d n=%d k=%d: %s vs %s", s.m, s.n, s.k, isas[i].c_str(), isas[0].c_str());
      for (int v = 0; v < 2; v++) {
        EXPECT_SAME_BITS(general[v][i].data(), general[v][0].data(), int64_t(general[v][0].size()),
                         "gemm_general m=%d n=%d k=%d %s: %s vs %s", s.m, s.n, s.k, v ? "A^T" : "A",
                         isas[i].c_str(), isas[0].c_str());
      }
    }
    if (isas.size() > 1)
      std::printf("%s m=%d n=%d k=%d: %s give the same bits\n",
                  check::state().failures == 0 ? "ok  " : "FAIL", s.m, s.n, s.k, join(isas).c_str());
  }
#if defined(__linux__)
  huge_page_advice();
#endif
  return check::finish("gemm");
}
