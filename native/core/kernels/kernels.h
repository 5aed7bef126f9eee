// The kernel table: everything whose speed depends on the instruction set. Each ISA fills one
// table in its own translation unit (ref.cpp, avx2.cpp, avx512.cpp, neon.cpp), compiled with its
// own flags; cpu.cpp picks one at load. The reference kernels are the oracle: every ISA computes
// the same operations in the same order, so its results equal the reference bit for bit.
#pragma once

#include <cstdint>

namespace fastgru {

// Rows of A per GEMM micro-tile, for every ISA.
constexpr int kMR = 4;

// Gate columns are stored in blocks of this many units on every ISA (resetAfter: [r z n] per
// block; reset before: [r z] per block, then n). The backward products sum over that order, so a
// fixed block keeps gradients bit-identical across vector widths (4, 8, 16 all divide it).
constexpr int kGateBlock = 16;

// B panels are this many vectors wide (pw = kPanelVectors * width floats): with kMR rows, a
// tile's 12 accumulators, 3 B vectors and a broadcast fill AVX2's 16 registers.
constexpr int kPanelVectors = 3;

// One GEMM micro-tile: m rows (1..kMR) by np panels.
//   c[i][p*pw + j] = (load_c ? c[i][p*pw + j] : 0) + sum_k a[i][k*acs] * b[p*bps + k*pw + j]
// pw is the panel width; b holds each panel as k rows of pw floats. Every element is
// one fused multiply-add chain over k in order, so a tile's shape never changes a result's bits.
using GemmTileFn = void (*)(int k, const float* const* a, int64_t acs, const float* b, int64_t bps,
                            float* const* c, bool load_c);

// The gate math of one step for rows [0, rows) and units [u0, u1) (u0 a multiple of the width).
// Row i of every per-step operand is at base + i * ld; outputs that land in the caller's layout
// (out, final) are row pointers and are written for units < H only.
struct GateStep {
  int rows;       // rows running at this step
  int rows_next;  // rows still running at the next step: rows >= rows_next end here
  int u0, u1;     // unit range, multiples of the width (lanes past H are padding, computed on zeros)
  int H;
  const float* gx; int64_t gx_ld;      // input projection, in the form's gate column order
  int64_t n_col;                       // reset before: first column of the n part (2·Hp)
  const float* gh; int64_t gh_ld;      // recurrent product (resetAfter: [r z n] blocks; before: see below)
  const float* bias_x;                 // biases in gx's column order (r, z summed with b_h; n: b_in (+ b_hn before))
  const float* bias_hn;                // b_hn, natural order (resetAfter only)
  const float* h; int64_t h_ld;        // state before the step
  float* h_next; int64_t h_next_ld;    // state after the step, rows < rows_next
  float* const* out;                   // output row of each row i (the direction's H columns)
  float* const* final_h;               // final-state row for rows that end at this step
  // Training tape (null in inference): rows at + i * tape_ld.
  float* r; float* z; float* n; float* inner; int64_t tape_ld;
  // Reset-before scratch: z of the step and r ⊙ h (the A operand of the second product).
  float* z_step; float* rh; int64_t step_ld;
};

// Backward of one step's gate math for rows [0, rows) and units [u0, u1).
struct GateGradStep {
  int rows;
  int u0, u1;
  int H;
  const float* const* d_out;           // upstream gradient rows (null pointer array: zeros)
  float* dh; int64_t dh_ld;            // in: dL/dh after the step; out: the direct part of dL/dh before it
  const float* h; const float* r; const float* z; const float* n; const float* inner; int64_t tape_ld;
  float* dgx; int64_t dgx_ld;          // gradient of the gate pre-activations, gx's column order
  int64_t n_col;                       // reset before: first column of the n part (2·Hp)
  float* dgh; int64_t dgh_ld;          // resetAfter: gradient of h·W_hhᵀ + b_hh, [r z n] blocks
  const float* drh; int64_t drh_ld;    // reset-before, second pass: dL/d(r ⊙ h)
};

struct KernelTable {
  const char* name;   // "ref", "avx2", "avx512", "neon"
  int width;          // floats per vector: the unit block of the gate column layout
  int panel_width() const { return kPanelVectors * width; }  // floats per B panel row
  // Panels that n columns take (the last one padded with zeros), and the columns they hold.
  int panels_for(int64_t n) const { return int((n + panel_width() - 1) / panel_width()); }
  int64_t padded_width(int64_t n) const { return int64_t(panels_for(n)) * panel_width(); }
  GemmTileFn tile[kMR];           // [m - 1]: covers tile_panels[m - 1] panels
  int tile_panels[kMR];
  GemmTileFn single[kMR];         // [m - 1]: one panel
  void (*gates_after)(const GateStep&);
  void (*gates_before_rz)(const GateStep&);
  void (*gates_before_n)(const GateStep&);
  void (*dgates_after)(const GateGradStep&);
  void (*dgates_before_1)(const GateGradStep&);   // z and n parts, and dh ← g ⊙ z
  void (*dgates_before_2)(const GateGradStep&);   // r part and dh += d(r⊙h) ⊙ r
  // 12 independent chains of vector FMAs, `iters` rounds: the machine's peak for the bench.
  float (*fma_loop)(int64_t iters);
  // Element-wise activations over n floats (for tests and the accuracy sweep).
  void (*sigmoid)(const float* x, float* y, int64_t n);
  void (*tanh)(const float* x, float* y, int64_t n);
};

const KernelTable& ref_kernels();
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
const KernelTable& avx2_kernels();
const KernelTable& avx512_kernels();
#endif
#if defined(__aarch64__)
const KernelTable& neon_kernels();
#endif

}  // namespace fastgru
