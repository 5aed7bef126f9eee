// Packing and the blocked GEMM driver (gemm.h): which micro-tile runs where.
#include "gemm.h"

#include <algorithm>
#include <cstring>

namespace fastgru {

int64_t packed_floats(const KernelTable& kt, int64_t k, int n) {
  return k * kt.padded_width(n);
}

PackedB pack_b(const KernelTable& kt, int k, int n, const float* src, int64_t k_stride, int64_t c_stride,
               const int* kmap, const int* cmap, Arena* arena) {
  PackedB packed;
  Panels& b = packed.view;
  b.pw = kt.panel_width();
  b.k = k;
  b.panels = kt.panels_for(n);
  packed.data = make_buffer(b.floats(), arena);
  b.data = packed.data.get();
  // The loop runs along the source's contiguous dimension (training repacks the weights after every
  // optimizer step, so this is not only load-time work); the destination starts zeroed.
  for (int p = 0; p < b.panels; p++) {
    float* dst = packed.data.get() + int64_t(p) * k * b.pw;
    for (int j = 0; j < b.pw; j++) {
      const int c = p * b.pw + j;
      const int sc = c < n ? (cmap ? cmap[c] : c) : -1;
      if (sc < 0 || k_stride != 1) continue;
      const float* col = src + sc * c_stride;
      for (int kk = 0; kk < k; kk++) {
        const int sk = kmap ? kmap[kk] : kk;
        if (sk >= 0) dst[int64_t(kk) * b.pw + j] = col[sk];
      }
    }
    if (k_stride == 1) continue;
    for (int kk = 0; kk < k; kk++) {
      const int sk = kmap ? kmap[kk] : kk;
      if (sk < 0) continue;
      const float* row = src + sk * k_stride;
      for (int j = 0; j < b.pw; j++) {
        const int c = p * b.pw + j;
        const int sc = c < n ? (cmap ? cmap[c] : c) : -1;
        if (sc >= 0) dst[int64_t(kk) * b.pw + j] = row[sc * c_stride];
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
  const int rest = int(r1 - full_end);
  // Rows [i0, i1) in tiles of m rows over panels [q, pe): tiles of np panels, then single panels.
  auto span = [&](int64_t i0, int64_t i1, int m, int q, int pe) {
    if (i1 <= i0) return;
    const int np = kt.tile_panels[m - 1];
    for (; q + np <= pe; q += np)
      for (int64_t i = i0; i < i1; i += m) tiles(i, m, kt.tile[m - 1], q);
    for (; q < pe; q++)
      for (int64_t i = i0; i < i1; i += m) tiles(i, m, kt.single[m - 1], q);
  };
  // Panels in steps that both tiles divide, so the rows left over by the full tiles run while the
  // step's panels are still in cache, not in a second pass over all of B (from L3 when B is W_hh).
  const int np_full = full_end > r0 ? kt.tile_panels[kMR - 1] : 1;
  const int np_rest = rest > 0 ? kt.tile_panels[rest - 1] : 1;
  int step = np_full;
  while (step % np_rest) step += np_full;
  for (int p = p0; p < p1; p += step) {
    const int pe = std::min(p1, p + step);
    span(r0, full_end, kMR, p, pe);
    span(full_end, r1, rest, p, pe);
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

int64_t gemm_general_b_floats(const KernelTable& kt, int n) { return packed_floats(kt, kKC, n); }

void pack_rows(const KernelTable& kt, int n, int64_t k, const Rows& b, int64_t block0, int64_t block1, float* dst) {
  const int pw = kt.panel_width();
  const int panels = kt.panels_for(n);
  for (int64_t blk = block0; blk < block1; blk++) {
    const int64_t kb = blk * kKC;
    const int kc = int(std::min<int64_t>(kKC, k - kb));
    float* base = dst + kb * panels * pw;
    for (int p = 0; p < panels; p++) {
      float* out = base + int64_t(p) * kc * pw;
      const int width = std::min(pw, n - p * pw);
      for (int kk = 0; kk < kc; kk++) {
        std::memcpy(out + int64_t(kk) * pw, b.row(kb + kk) + p * pw, sizeof(float) * width);
        if (width < pw) std::memset(out + int64_t(kk) * pw + width, 0, sizeof(float) * (pw - width));
      }
    }
  }
}

namespace {

// Rows [m0, m1) of C against one K block of B (already packed): packs the A block, runs the tiles.
void general_block(const KernelTable& kt, int64_t m0, int64_t m1, int64_t kb, int kc, const float* a, int64_t a_rs,
                   int64_t a_cs, const Panels& view, float* c, int64_t ldc, GemmWorkspace& ws) {
  const float* a_rows[kMC];
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
    // C is loaded for every K block after the first, continuing each element's fma chain.
    Rows ar;
    ar.ptrs = a_rows;
    MutRows cr;
    cr.base = c + r0 * ldc;
    cr.ld = ldc;
    block(kt, 0, rows, ar, kMR, view, 0, view.panels, 0, kc, cr, kb > 0);
  }
}

Panels block_view(const KernelTable& kt, int n, int kc, const float* data) {
  Panels view;
  view.pw = kt.panel_width();
  view.k = kc;
  view.panels = kt.panels_for(n);
  view.data = data;
  return view;
}

}  // namespace

void gemm_general_packed(const KernelTable& kt, int64_t m0, int64_t m1, int n, int64_t k, const float* a, int64_t a_rs,
                         int64_t a_cs, const float* b_packed, float* c, int64_t ldc, GemmWorkspace& ws) {
  if (m1 <= m0) return;
  const int pw = kt.panel_width();
  const int panels = kt.panels_for(n);
  if (k == 0) {
    for (int64_t i = m0; i < m1; i++) std::memset(c + i * ldc, 0, sizeof(float) * panels * pw);
    return;
  }
  for (int64_t kb = 0; kb < k; kb += kKC) {
    const int kc = int(std::min<int64_t>(kKC, k - kb));
    general_block(kt, m0, m1, kb, kc, a, a_rs, a_cs, block_view(kt, n, kc, b_packed + kb * panels * pw), c, ldc, ws);
  }
}

void gemm_general_packed_range(const KernelTable& kt, int64_t m0, int64_t m1, int n, int64_t k0, int64_t k1,
                               const float* a, int64_t a_rs, int64_t a_cs, const float* b_packed, float* c,
                               int64_t ldc, GemmWorkspace& ws) {
  if (m1 <= m0) return;
  const int pw = kt.panel_width();
  const int panels = kt.panels_for(n);
  if (k1 <= k0) {
    if (k0 == 0)
      for (int64_t i = m0; i < m1; i++) std::memset(c + i * ldc, 0, sizeof(float) * panels * pw);
    return;
  }
  // general_block loads C for every block but the sum's first (kb > 0), as one call over all rows.
  for (int64_t kb = k0; kb < k1; kb += kKC) {
    const int kc = int(std::min<int64_t>(kKC, k1 - kb));
    general_block(kt, m0, m1, kb, kc, a, a_rs, a_cs, block_view(kt, n, kc, b_packed + (kb - k0) * panels * pw), c,
                  ldc, ws);
  }
}

void gemm_general(const KernelTable& kt, int64_t m0, int64_t m1, int n, int64_t k, const float* a, int64_t a_rs,
                  int64_t a_cs, const Rows& b, float* c, int64_t ldc, GemmWorkspace& ws) {
  if (m1 <= m0) return;
  const int pw = kt.panel_width();
  const int panels = kt.panels_for(n);
  if (k == 0) {
    for (int64_t i = m0; i < m1; i++) std::memset(c + i * ldc, 0, sizeof(float) * panels * pw);
    return;
  }
  for (int64_t kb = 0; kb < k; kb += kKC) {
    const int kc = int(std::min<int64_t>(kKC, k - kb));
    // Pack this K block of B into the workspace, laid out as pack_rows lays out one block.
    Rows shifted;
    shifted.base = b.ptrs ? nullptr : b.base + kb * b.ld;
    shifted.ld = b.ld;
    shifted.ptrs = b.ptrs ? b.ptrs + kb : nullptr;
    pack_rows(kt, n, kc, shifted, 0, 1, ws.b.get());
    general_block(kt, m0, m1, kb, kc, a, a_rs, a_cs, block_view(kt, n, kc, ws.b.get()), c, ldc, ws);
  }
}

}  // namespace fastgru

namespace fastgru {

void matmul(const KernelTable& kt, int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_cs,
            const float* b, int64_t b_rs, int64_t b_cs, float* c, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) std::memset(c, 0, sizeof(float) * size_t(m * n));
    return;
  }
  // B's rows must be contiguous for packing: copy a strided B into row-major first.
  Buffer b_copy;
  Rows rows;
  if (b_cs == 1) {
    rows.base = b;
    rows.ld = b_rs;
  } else {
    b_copy = uninit_buffer(k * n);
    for (int64_t p = 0; p < k; p++)
      for (int64_t j = 0; j < n; j++) b_copy[p * n + j] = b[p * b_rs + j * b_cs];
    rows.base = b_copy.get();
    rows.ld = n;
  }
  const int64_t ldc = kt.padded_width(n);
  Buffer out = uninit_buffer(m * ldc);
  GemmWorkspace ws;
  ws.reserve(gemm_general_a_floats(), gemm_general_b_floats(kt, int(n)));
  gemm_general(kt, 0, m, int(n), k, a, a_rs, a_cs, rows, out.get(), ldc, ws);
  for (int64_t i = 0; i < m; i++) {
    const float* src = out.get() + i * ldc;
    float* dst = c + i * n;
    if (accumulate)
      for (int64_t j = 0; j < n; j++) dst[j] += src[j];
    else
      std::memcpy(dst, src, sizeof(float) * size_t(n));
  }
}

}  // namespace fastgru
