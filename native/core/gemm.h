// Packing and the blocked GEMM driver. The driver decides which micro-tile runs where; the tiles
// themselves (kernels/*) are chosen by ISA. C is always an internal buffer whose rows span whole
// panels, so the tiles never need a partial store.
#pragma once

#include <cstdint>

#include "kernels/kernels.h"
#include "memory.h"

namespace fastgru {

// K-block: a B panel slice of kKC x panel-width floats (48 KB with AVX2) stays in L2 while the
// row tiles pass over it. 512 runs the recurrent products of H <= 512 in one pass, so their C tiles
// are stored once (measured: 4-7% faster forward on large than 256, whose slice fit L1).
constexpr int kKC = 512;
// Rows of A per block: an A block of kMC x kKC floats stays in L2.
constexpr int kMC = 128;

// B operand laid out for the tiles: `panels` panels of pw = kPanelVectors * width columns, each k
// rows of pw.
struct Panels {
  const float* data = nullptr;
  int pw = 0;
  int k = 0;
  int panels = 0;
  const float* panel(int p) const { return data + int64_t(p) * k * pw; }
  int64_t floats() const { return int64_t(panels) * k * pw; }
};

// A B operand packed once and owned (weights).
struct PackedB {
  Panels view;
  Buffer data;
};

// Packs B[kk][c] for kk < k, c < n (rounded up to whole panels, zero past n) where
//   B[kk][c] = src[kmap(kk) * k_stride + cmap(c) * c_stride], or 0 where a map gives -1.
// Null maps are the identity. Used once per model for weights, so clarity beats speed here.
PackedB pack_b(const KernelTable& kt, int k, int n, const float* src, int64_t k_stride, int64_t c_stride,
               const int* kmap, const int* cmap, Arena* arena = nullptr);
// The floats a B of k rows and n columns takes packed, by pack_b or by pack_rows (the same panels,
// K block after K block).
int64_t packed_floats(const KernelTable& kt, int64_t k, int n);

// Rows of a matrix: row i at ptrs[i] when ptrs is set, else at base + i * ld.
struct Rows {
  const float* base = nullptr;
  int64_t ld = 0;
  const float* const* ptrs = nullptr;
  const float* row(int64_t i) const { return ptrs ? ptrs[i] : base + i * ld; }
};
struct MutRows {
  float* base = nullptr;
  int64_t ld = 0;
  float* const* ptrs = nullptr;
  float* row(int64_t i) const { return ptrs ? ptrs[i] : base + i * ld; }
};

// C[i][p*pw ...] (+)= sum_k A[i][k * acs] * B for rows [0, m) and panels [p0, p1), all of B's k.
// load_c false overwrites C. Blocked by kMC rows and kKC of k; a row's result does not depend on
// m, the panel range or the blocking.
void gemm_packed(const KernelTable& kt, int64_t m, const Rows& a, int64_t acs, const Panels& b, int p0, int p1,
                 const MutRows& c, bool load_c);

// Scratch for gemm_general, one per thread: a packed A block and a packed B block.
struct GemmWorkspace {
  Buffer a, b;
  int64_t a_size = 0, b_size = 0;
  void reserve(int64_t a_floats, int64_t b_floats);
};

// C[i][j] = sum_kk A(i, kk) * B(kk, j) for rows [m0, m1), all j < n (C rows padded to whole panels),
// where A(i, kk) = a[i * a_rs + kk * a_cs] and B(kk, j) = b.row(kk)[j]. Packs both
// operands block by block; for the weight gradients, where k is every time step of the batch.
void gemm_general(const KernelTable& kt, int64_t m0, int64_t m1, int n, int64_t k, const float* a, int64_t a_rs,
                  int64_t a_cs, const Rows& b, float* c, int64_t ldc, GemmWorkspace& ws);

// B of k rows and n columns packed once for gemm_general_packed: K block after K block, each
// block's panels in the tiles' layout. pack_rows packs blocks [block0, block1) of kKC rows, so
// several threads can pack one B side by side. It takes packed_floats(kt, k, n).
void pack_rows(const KernelTable& kt, int n, int64_t k, const Rows& b, int64_t block0, int64_t block1, float* dst);

// gemm_general with B packed by pack_rows: what the weight gradients use, so that the row blocks of
// C, computed by different threads, do not each pack B again.
void gemm_general_packed(const KernelTable& kt, int64_t m0, int64_t m1, int n, int64_t k, const float* a, int64_t a_rs,
                         int64_t a_cs, const float* b_packed, float* c, int64_t ldc, GemmWorkspace& ws);

// C = (accumulate ? C : 0) + A·B, one thread, for the small products around the GRU (a Linear
// layer): A(i, p) = a[i * a_rs + p * a_cs], B(p, j) = b[p * b_rs + j * b_cs], C row-major m x n.
// Each element sums over p in order, so it does not depend on m. n must fit an int.
void matmul(const KernelTable& kt, int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_cs,
            const float* b, int64_t b_rs, int64_t b_cs, float* c, bool accumulate);

// gemm_general_packed over rows [k0, k1) of the sum only (k0 a multiple of kKC), with B packed by
// pack_rows from row k0 on: C is overwritten when k0 is 0 and accumulated otherwise, so calls over
// consecutive ranges give C the bits of one call over all of them. For weight gradients whose B
// is packed a window of rows at a time.
void gemm_general_packed_range(const KernelTable& kt, int64_t m0, int64_t m1, int n, int64_t k0, int64_t k1,
                               const float* a, int64_t a_rs, int64_t a_cs, const float* b_packed, float* c,
                               int64_t ldc, GemmWorkspace& ws);

// Workspace floats gemm_general needs for n columns.
int64_t gemm_general_a_floats();
int64_t gemm_general_b_floats(const KernelTable& kt, int n);

}  // namespace fastgru
