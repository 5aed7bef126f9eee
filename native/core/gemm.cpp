#include "gemm.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace fastgru {

Buffer uninit_buffer(int64_t n) {
  const size_t bytes = (size_t(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw std::bad_alloc();
  return Buffer(static_cast<float*>(p));
}

Buffer make_buffer(int64_t n) {
  Buffer b = uninit_buffer(n);
  std::memset(b.get(), 0, size_t(std::max<int64_t>(n, 1)) * sizeof(float));
  return b;
}

PackedB pack_b(const KernelTable& kt, int nv, int k, int n, const float* src, int64_t k_stride, int64_t c_stride,
               const int* kmap, const int* cmap) {
  PackedB packed;
  Panels& b = packed.view;
  b.nv = nv;
  b.pw = nv * kt.width;
  b.k = k;
  b.panels = (n + b.pw - 1) / b.pw;
  packed.data = make_buffer(int64_t(b.panels) * k * b.pw);
  b.data = packed.data.get();
  for (int p = 0; p < b.panels; p++) {
    float* dst = packed.data.get() + int64_t(p) * k * b.pw;
    for (int kk = 0; kk < k; kk++) {
      const int sk = kmap ? kmap[kk] : kk;
      for (int j = 0; j < b.pw; j++) {
        const int c = p * b.pw + j;
        const int sc = c < n ? (cmap ? cmap[c] : c) : -1;
        dst[int64_t(kk) * b.pw + j] = (sk < 0 || sc < 0) ? 0.0f : src[sk * k_stride + sc * c_stride];
      }
    }
  }
  return packed;
}

namespace {

// One K block over rows [r0, r1) and panels [p0, p1): panel-major, so a panel's K-block stays in
// L1 while every row tile passes over it.
void block(const KernelTable& kt, int64_t r0, int64_t r1, const Rows& a, int64_t acs, const Panels& b, int p0,
           int p1, int kb, int kc, const MutRows& c, bool load_c) {
  const int nvi = b.nv - 2;
  const int pw = b.pw;
  const int64_t bps = int64_t(b.k) * pw;
  const float* ap[kMR];
  float* cp[kMR];
  auto tiles = [&](int64_t i0, int m, GemmTileFn fn, int p) {
    for (int ii = 0; ii < m; ii++) {
      ap[ii] = a.row(i0 + ii) + kb * acs;
      cp[ii] = c.row(i0 + ii) + int64_t(p) * pw;
    }
    fn(kc, ap, acs, b.panel(p) + int64_t(kb) * pw, bps, cp, load_c);
  };
  const int64_t full_end = r0 + (r1 - r0) / kMR * kMR;
  if (full_end > r0) {
    const int np = kt.tile_panels[nvi][kMR - 1];
    int p = p0;
    for (; p + np <= p1; p += np)
      for (int64_t i = r0; i < full_end; i += kMR) tiles(i, kMR, kt.tile[nvi][kMR - 1], p);
    for (; p < p1; p++)
      for (int64_t i = r0; i < full_end; i += kMR) tiles(i, kMR, kt.single[nvi][kMR - 1], p);
  }
  const int rest = int(r1 - full_end);
  if (rest > 0) {
    const int np = kt.tile_panels[nvi][rest - 1];
    int p = p0;
    for (; p + np <= p1; p += np) tiles(full_end, rest, kt.tile[nvi][rest - 1], p);
    for (; p < p1; p++) tiles(full_end, rest, kt.single[nvi][rest - 1], p);
  }
}

}  // namespace

void gemm_packed(const KernelTable& kt, int64_t m, const Rows& a, int64_t acs, const Panels& b, int p0, int p1,
                 const MutRows& c, bool load_c) {
  if (m <= 0 || p1 <= p0) return;
  if (b.k == 0) {
    if (!load_c)
      for (int64_t i = 0; i < m; i++) std::memset(c.row(i) + int64_t(p0) * b.pw, 0, sizeof(float) * (p1 - p0) * b.pw);
    return;
  }
  for (int64_t r0 = 0; r0 < m; r0 += kMC) {
    const int64_t r1 = std::min<int64_t>(m, r0 + kMC);
    for (int kb = 0; kb < b.k; kb += kKC) {
      const int kc = std::min(kKC, b.k - kb);
      block(kt, r0, r1, a, acs, b, p0, p1, kb, kc, c, load_c || kb > 0);
    }
  }
}

void GemmWorkspace::reserve(int64_t a_floats, int64_t b_floats) {
  if (a_size < a_floats) {
    a = make_buffer(a_floats);
    a_size = a_floats;
  }
  if (b_size < b_floats) {
    b = make_buffer(b_floats);
    b_size = b_floats;
  }
}

int64_t gemm_general_a_floats() { return int64_t(kMC) * kKC; }

int64_t gemm_general_b_floats(const KernelTable& kt, int n) {
  const int pw = 3 * kt.width;
  return int64_t((n + pw - 1) / pw) * pw * kKC;
}

void gemm_general(const KernelTable& kt, int64_t m0, int64_t m1, int n, int64_t k, const float* a, int64_t a_rs,
                  int64_t a_cs, const Rows& b, float* c, int64_t ldc, GemmWorkspace& ws) {
  if (m1 <= m0) return;
  const int pw = 3 * kt.width;
  const int panels = (n + pw - 1) / pw;
  if (k == 0) {
    for (int64_t i = m0; i < m1; i++) std::memset(c + i * ldc, 0, sizeof(float) * panels * pw);
    return;
  }
  const float* a_rows[kMC];
  for (int64_t kb = 0; kb < k; kb += kKC) {
    const int kc = int(std::min<int64_t>(kKC, k - kb));
    // B block: kc rows of b, in panels of pw columns, zero past n.
    Panels view;
    view.nv = 3;
    view.pw = pw;
    view.k = kc;
    view.panels = panels;
    float* bp = ws.b.get();
    view.data = bp;
    for (int p = 0; p < panels; p++) {
      float* dst = bp + int64_t(p) * kc * pw;
      const int width = std::min(pw, n - p * pw);
      for (int kk = 0; kk < kc; kk++) {
        const float* src = b.row(kb + kk) + p * pw;
        std::memcpy(dst + int64_t(kk) * pw, src, sizeof(float) * width);
        if (width < pw) std::memset(dst + int64_t(kk) * pw + width, 0, sizeof(float) * (pw - width));
      }
    }
    for (int64_t r0 = m0; r0 < m1; r0 += kMC) {
      const int rows = int(std::min<int64_t>(kMC, m1 - r0));
      // A block: micro-panels of kMR rows, each kc steps of kMR values (k-major).
      float* apk = ws.a.get();
      for (int q = 0; q * kMR < rows; q++) {
        float* dst = apk + int64_t(q) * kc * kMR;
        const int mr = std::min(kMR, rows - q * kMR);
        for (int kk = 0; kk < kc; kk++) {
          const float* src = a + (r0 + q * kMR) * a_rs + (kb + kk) * a_cs;
          for (int ii = 0; ii < kMR; ii++) dst[kk * kMR + ii] = ii < mr ? src[ii * a_rs] : 0.0f;
        }
        for (int ii = 0; ii < mr; ii++) a_rows[q * kMR + ii] = dst + ii;
      }
      // The packed view hands the driver one K block: its own kb is 0, the A panels start at 0.
      // C is loaded for every K block after the first, continuing each element's fma chain.
      Rows ar;
      ar.ptrs = a_rows;
      MutRows cr;
      cr.base = c + r0 * ldc;
      cr.ld = ldc;
      block(kt, 0, rows, ar, kMR, view, 0, panels, 0, kc, cr, kb > 0);
    }
  }
}

}  // namespace fastgru
