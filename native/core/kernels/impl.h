// The kernels, written once over a vector type V and compiled per ISA: ref.cpp instantiates them
// with a portable scalar V, avx2.cpp with __m256, and so on, each with its own compiler flags.
// Every function performs the same IEEE operations in the same order whatever V is (fused
// multiply-adds where the text says fma), which is why the ISAs agree bit for bit.
//
// V provides: W (floats per vector), reg, zero, set1, load, store, load_n, store_n (the first n
// lanes; load_n zero-fills the rest), add, sub, mul, div, fma(a, b, c) = a*b + c fused,
// fnma(a, b, c) = c - a*b fused, max/min with SSE semantics (max(a, b) = a > b ? a : b, so a NaN
// in b comes through), round (to nearest even), pow2 (2^n for integral n in [-126, 127]), abs,
// copysign(magnitude, sign), select_lt(x, y, a, b) = x < y ? a : b per lane.
#pragma once

#include <cstdint>

#include "kernels.h"

namespace fastgru {
namespace impl {

// ---------------------------------------------------------------------------------------------
// Activations
// ---------------------------------------------------------------------------------------------

// exp(x) for x clamped to [-87, 88]: Cody-Waite range reduction x = n·ln2 + r, |r| <= ln2/2, and
// the degree-7 Taylor polynomial of e^r (truncation below 1e-8 relative), scaled by 2^n. The clamp
// keeps 2^n normal and the result finite: exp(-x) of a huge x never overflows to inf.
template <class V>
inline typename V::reg exp_clamped(typename V::reg x) {
  using R = typename V::reg;
  x = V::min(V::set1(88.0f), V::max(V::set1(-87.0f), x));
  const R n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
  R r = V::fnma(n, V::set1(0.693359375f), x);
  r = V::fnma(n, V::set1(-2.12194440e-4f), r);
  R p = V::set1(1.0f / 5040);
  p = V::fma(p, r, V::set1(1.0f / 720));
  p = V::fma(p, r, V::set1(1.0f / 120));
  p = V::fma(p, r, V::set1(1.0f / 24));
  p = V::fma(p, r, V::set1(1.0f / 6));
  p = V::fma(p, r, V::set1(0.5f));
  p = V::fma(p, r, V::set1(1.0f));
  p = V::fma(p, r, V::set1(1.0f));
  return V::mul(p, V::pow2(n));
}

// σ(x) = 1 / (1 + e^-x): within a few ulp where the result is a normal float, exactly 1 for large
// x, exactly 0 below -88 (where σ is under 6e-39, the denormal range), never inf or NaN for finite x.
template <class V>
inline typename V::reg sigmoid(typename V::reg x) {
  const typename V::reg one = V::set1(1.0f);
  const typename V::reg y = V::div(one, V::add(one, exp_clamped<V>(V::sub(V::zero(), x))));
  return V::select_lt(x, V::set1(-88.0f), V::zero(), y);
}

// tanh(x): x + x³·P(x²) for |x| < 0.625 (a least-squares fit, under 1 ulp), else
// 1 − 2/(e^{2|x|} + 1), which reaches exactly 1 for large |x|; the sign is x's (so tanh(-0) = -0).
template <class V>
inline typename V::reg tanh(typename V::reg x) {
  using R = typename V::reg;
  const R a = V::abs(x);
  const R u = V::mul(x, x);
  R p = V::set1(-0.0057189627550542355f);
  p = V::fma(p, u, V::set1(0.020653124898672104f));
  p = V::fma(p, u, V::set1(-0.05374465882778168f));
  p = V::fma(p, u, V::set1(0.13331513106822968f));
  p = V::fma(p, u, V::set1(-0.3333328664302826f));
  const R small = V::fma(V::mul(x, u), p, x);
  const R e = exp_clamped<V>(V::add(a, a));
  const R big = V::sub(V::set1(1.0f), V::div(V::set1(2.0f), V::add(e, V::set1(1.0f))));
  return V::copysign(V::select_lt(a, V::set1(0.625f), small, big), x);
}

template <class V>
void sigmoid_n(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(y + i, sigmoid<V>(V::load(x + i)));
  if (i < n) V::store_n(y + i, sigmoid<V>(V::load_n(x + i, int(n - i))), int(n - i));
}

template <class V>
void tanh_n(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(y + i, tanh<V>(V::load(x + i)));
  if (i < n) V::store_n(y + i, tanh<V>(V::load_n(x + i, int(n - i))), int(n - i));
}

// ---------------------------------------------------------------------------------------------
// GEMM micro-tile: M rows x NP panels of kPanelVectors vectors, accumulators in registers.
// ---------------------------------------------------------------------------------------------

template <class V, int M, int NP>
void gemm_tile(int k, const float* const* a, int64_t acs, const float* b, int64_t bps, float* const* c,
               bool load_c) {
  using R = typename V::reg;
  constexpr int W = V::W;
  constexpr int NV = kPanelVectors;
  constexpr int PW = NV * W;
  R acc[M][NP][NV];
  // C's lines are written only after all k steps; asking for them (for writing) now lets a miss
  // be served while the tile computes (the large projection writes 19.7 MB, from L3 or memory).
  // Large forward at 2 threads, in-process A/B against no prefetch: 2-7% faster in 6 of 6
  // medians. With load_c the loads below ask for them at once anyway.
  if (!load_c)
    for (int i = 0; i < M; i++) {
      for (int off = 0; off < NP * PW; off += 64 / int(sizeof(float))) __builtin_prefetch(c[i] + off, 1, 3);
      __builtin_prefetch(c[i] + NP * PW - 1, 1, 3);
    }
  for (int i = 0; i < M; i++)
    for (int p = 0; p < NP; p++)
      for (int v = 0; v < NV; v++)
        acc[i][p][v] = load_c ? V::load(c[i] + p * PW + v * W) : V::zero();
  const float* ai[M];
  for (int i = 0; i < M; i++) ai[i] = a[i];
  const float* bk = b;
  for (int kk = 0; kk < k; kk++, bk += PW) {
    R bv[NP][NV];
    for (int p = 0; p < NP; p++)
      for (int v = 0; v < NV; v++) bv[p][v] = V::load(bk + p * bps + v * W);
    for (int i = 0; i < M; i++) {
      const R av = V::set1(ai[i][kk * acs]);
      for (int p = 0; p < NP; p++)
        for (int v = 0; v < NV; v++) acc[i][p][v] = V::fma(av, bv[p][v], acc[i][p][v]);
    }
  }
  for (int i = 0; i < M; i++)
    for (int p = 0; p < NP; p++)
      for (int v = 0; v < NV; v++) V::store(c[i] + p * PW + v * W, acc[i][p][v]);
}

// ---------------------------------------------------------------------------------------------
// Gate math of one step (forward) and its backward, per unit block of W lanes.
// ---------------------------------------------------------------------------------------------

// Column of gate g (0 r, 1 z, 2 n) of unit j (a multiple of W, so W lanes stay contiguous) in
// each form's gate layout: blocks of kGateBlock units.
template <class V>
inline int64_t col_after(int g, int j) {
  static_assert(kGateBlock % V::W == 0, "the gate block must hold whole vectors");
  return int64_t(j / kGateBlock) * 3 * kGateBlock + int64_t(g) * kGateBlock + j % kGateBlock;
}
template <class V>
inline int64_t col_before_rz(int g, int j) {
  return int64_t(j / kGateBlock) * 2 * kGateBlock + int64_t(g) * kGateBlock + j % kGateBlock;
}

// The caller's rows end at H: lanes past it (the padding) are neither stored nor loaded.
template <class V>
inline void store_row(float* p, typename V::reg v, int j, int H) {
  if (j + V::W <= H) V::store(p + j, v);
  else if (j < H) V::store_n(p + j, v, H - j);
}

template <class V>
inline typename V::reg load_row(const float* p, int j, int H) {
  if (j + V::W <= H) return V::load(p + j);
  return j < H ? V::load_n(p + j, H - j) : V::zero();
}

// Touches the cache lines of gx that row i + 2 will read: the projection wrote gx long before, so
// it comes from L3 or memory, row after row at a stride the hardware prefetcher does not follow.
inline void prefetch_gx(const GateStep& s, int i, int64_t first, int64_t last) {
  if (i + 2 >= s.rows) return;
  const char* row = reinterpret_cast<const char*>(s.gx + (i + 2) * s.gx_ld);
  for (int64_t b = first * 4; b < last * 4; b += 64) __builtin_prefetch(row + b);
}

template <class V>
void gates_after(const GateStep& s) {
  using R = typename V::reg;
  for (int i = 0; i < s.rows; i++) {
    prefetch_gx(s, i, col_after<V>(0, s.u0), col_after<V>(0, s.u1 - V::W) + 2 * kGateBlock + V::W);
    const float* gx = s.gx + i * s.gx_ld;
    const float* gh = s.gh + i * s.gh_ld;
    const float* h = s.h + i * s.h_ld;
    const bool ends = i >= s.rows_next;
    float* hn_row = ends ? nullptr : s.h_next + i * s.h_next_ld;
    for (int j = s.u0; j < s.u1; j += V::W) {
      const int64_t cr = col_after<V>(0, j), cz = col_after<V>(1, j), cn = col_after<V>(2, j);
      const R r = sigmoid<V>(V::add(V::add(V::load(gx + cr), V::load(gh + cr)), V::load(s.bias_x + cr)));
      const R z = sigmoid<V>(V::add(V::add(V::load(gx + cz), V::load(gh + cz)), V::load(s.bias_x + cz)));
      const R hn = V::add(V::load(gh + cn), V::load(s.bias_hn + j));
      const R n = tanh<V>(V::fma(r, hn, V::add(V::load(gx + cn), V::load(s.bias_x + cn))));
      const R hv = V::load(h + j);
      const R out = V::fma(z, V::sub(hv, n), n);
      if (hn_row) V::store(hn_row + j, out);
      else store_row<V>(s.final_h[i], out, j, s.H);
      store_row<V>(s.out[i], out, j, s.H);
      if (s.r) {
        const int64_t t = i * s.tape_ld + j;
        V::store(s.r + t, r);
        V::store(s.z + t, z);
        V::store(s.n + t, n);
        V::store(s.inner + t, hn);
      }
    }
  }
}

// Reset before, first pass: r and z, and r ⊙ h for the candidate's product. In training z_step and
// rh point into the tape (z and inner), so they are stored once.
template <class V>
void gates_before_rz(const GateStep& s) {
  using R = typename V::reg;
  for (int i = 0; i < s.rows; i++) {
    const float* gx = s.gx + i * s.gx_ld;
    const float* gh = s.gh + i * s.gh_ld;
    const float* h = s.h + i * s.h_ld;
    for (int j = s.u0; j < s.u1; j += V::W) {
      const int64_t cr = col_before_rz<V>(0, j), cz = col_before_rz<V>(1, j);
      const R r = sigmoid<V>(V::add(V::add(V::load(gx + cr), V::load(gh + cr)), V::load(s.bias_x + cr)));
      const R z = sigmoid<V>(V::add(V::add(V::load(gx + cz), V::load(gh + cz)), V::load(s.bias_x + cz)));
      const R rh = V::mul(r, V::load(h + j));
      V::store(s.z_step + i * s.step_ld + j, z);
      V::store(s.rh + i * s.step_ld + j, rh);
      if (s.r) V::store(s.r + i * s.tape_ld + j, r);
    }
  }
}

// Reset before, second pass: n from gx's n part (columns 2·Hp + j) and (r ⊙ h)·W_hnᵀ in gh.
template <class V>
void gates_before_n(const GateStep& s) {
  using R = typename V::reg;
  const int64_t n_base = s.n_col;
  for (int i = 0; i < s.rows; i++) {
    const float* gx = s.gx + i * s.gx_ld;
    const float* gh = s.gh + i * s.gh_ld;
    const float* h = s.h + i * s.h_ld;
    const bool ends = i >= s.rows_next;
    float* hn_row = ends ? nullptr : s.h_next + i * s.h_next_ld;
    for (int j = s.u0; j < s.u1; j += V::W) {
      const R pre = V::add(V::add(V::load(gx + n_base + j), V::load(s.bias_x + n_base + j)), V::load(gh + j));
      const R n = tanh<V>(pre);
      const R z = V::load(s.z_step + i * s.step_ld + j);
      const R out = V::fma(z, V::sub(V::load(h + j), n), n);
      if (hn_row) V::store(hn_row + j, out);
      else store_row<V>(s.final_h[i], out, j, s.H);
      store_row<V>(s.out[i], out, j, s.H);
      if (s.n) V::store(s.n + i * s.tape_ld + j, n);
    }
  }
}

template <class V>
void dgates_after(const GateGradStep& s) {
  using R = typename V::reg;
  const R one = V::set1(1.0f);
  for (int i = 0; i < s.rows; i++) {
    float* dh = s.dh + i * s.dh_ld;
    const int64_t t = i * s.tape_ld;
    float* dgx = s.dgx + i * s.dgx_ld;
    float* dgh = s.dgh + i * s.dgh_ld;
    for (int j = s.u0; j < s.u1; j += V::W) {
      R g = V::load(dh + j);
      if (s.d_out) g = V::add(g, load_row<V>(s.d_out[i], j, s.H));
      const R r = V::load(s.r + t + j), z = V::load(s.z + t + j), n = V::load(s.n + t + j);
      const R omz = V::sub(one, z);
      const R da_n = V::mul(V::mul(g, omz), V::fnma(n, n, one));
      const R da_z = V::mul(V::mul(V::mul(g, V::sub(V::load(s.h + t + j), n)), z), omz);
      const R da_r = V::mul(V::mul(V::mul(da_n, V::load(s.inner + t + j)), r), V::sub(one, r));
      const int64_t cr = col_after<V>(0, j), cz = col_after<V>(1, j), cn = col_after<V>(2, j);
      V::store(dgx + cr, da_r);
      V::store(dgx + cz, da_z);
      V::store(dgx + cn, da_n);
      V::store(dgh + cr, da_r);
      V::store(dgh + cz, da_z);
      V::store(dgh + cn, V::mul(da_n, r));
      V::store(dh + j, V::mul(g, z));
    }
  }
}

template <class V>
void dgates_before_1(const GateGradStep& s) {
  using R = typename V::reg;
  const R one = V::set1(1.0f);
  const int64_t n_base = s.n_col;
  for (int i = 0; i < s.rows; i++) {
    float* dh = s.dh + i * s.dh_ld;
    const int64_t t = i * s.tape_ld;
    float* dgx = s.dgx + i * s.dgx_ld;
    for (int j = s.u0; j < s.u1; j += V::W) {
      R g = V::load(dh + j);
      if (s.d_out) g = V::add(g, load_row<V>(s.d_out[i], j, s.H));
      const R z = V::load(s.z + t + j), n = V::load(s.n + t + j);
      const R omz = V::sub(one, z);
      const R da_n = V::mul(V::mul(g, omz), V::fnma(n, n, one));
      const R da_z = V::mul(V::mul(V::mul(g, V::sub(V::load(s.h + t + j), n)), z), omz);
      V::store(dgx + col_before_rz<V>(1, j), da_z);
      V::store(dgx + n_base + j, da_n);
      V::store(dh + j, V::mul(g, z));
    }
  }
}

template <class V>
void dgates_before_2(const GateGradStep& s) {
  using R = typename V::reg;
  const R one = V::set1(1.0f);
  for (int i = 0; i < s.rows; i++) {
    float* dh = s.dh + i * s.dh_ld;
    const int64_t t = i * s.tape_ld;
    const float* drh = s.drh + i * s.drh_ld;
    float* dgx = s.dgx + i * s.dgx_ld;
    for (int j = s.u0; j < s.u1; j += V::W) {
      const R d = V::load(drh + j);
      const R r = V::load(s.r + t + j);
      const R da_r = V::mul(V::mul(V::mul(d, V::load(s.h + t + j)), r), V::sub(one, r));
      V::store(dgx + col_before_rz<V>(0, j), da_r);
      V::store(dh + j, V::fma(d, r, V::load(dh + j)));
    }
  }
}

// 12 independent accumulator chains, enough to keep two FMA pipes of 4-cycle latency busy.
template <class V>
float fma_loop(int64_t iters) {
  using R = typename V::reg;
  R acc[12];
  for (int i = 0; i < 12; i++) acc[i] = V::set1(float(i) * 1e-3f);
  const R m = V::set1(0.999999f), c = V::set1(1e-7f);
  for (int64_t it = 0; it < iters; it++)
    for (int i = 0; i < 12; i++) acc[i] = V::fma(acc[i], m, c);
  R sum = acc[0];
  for (int i = 1; i < 12; i++) sum = V::add(sum, acc[i]);
  float out[V::W];
  V::store(out, sum);
  return out[0];
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

// The tile of M rows over as many panels as V's registers hold (V::tile_panels<M>()).
template <class V, int M>
constexpr GemmTileFn tile_fn() {
  return &gemm_tile<V, M, V::template tile_panels<M>()>;
}

template <class V>
KernelTable make_table(const char* name) {
  KernelTable t{};
  t.name = name;
  t.width = V::W;
  static_assert(kMR == 4, "the tables below list one tile per row count");
  t.tile[0] = tile_fn<V, 1>();
  t.tile[1] = tile_fn<V, 2>();
  t.tile[2] = tile_fn<V, 3>();
  t.tile[3] = tile_fn<V, 4>();
  t.tile_panels[0] = V::template tile_panels<1>();
  t.tile_panels[1] = V::template tile_panels<2>();
  t.tile_panels[2] = V::template tile_panels<3>();
  t.tile_panels[3] = V::template tile_panels<4>();
  t.single[0] = &gemm_tile<V, 1, 1>;
  t.single[1] = &gemm_tile<V, 2, 1>;
  t.single[2] = &gemm_tile<V, 3, 1>;
  t.single[3] = &gemm_tile<V, 4, 1>;
  t.gates_after = &gates_after<V>;
  t.gates_before_rz = &gates_before_rz<V>;
  t.gates_before_n = &gates_before_n<V>;
  t.dgates_after = &dgates_after<V>;
  t.dgates_before_1 = &dgates_before_1<V>;
  t.dgates_before_2 = &dgates_before_2<V>;
  t.fma_loop = &fma_loop<V>;
  t.sigmoid = &sigmoid_n<V>;
  t.tanh = &tanh_n<V>;
  return t;
}

}  // namespace impl
}  // namespace fastgru
