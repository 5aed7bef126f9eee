/**
 * The js backend's matrix product: C[m, n] (+)= sum_k A[m, k] * B[n, k].
 *
 * B (usually weights) is packed once into panels of NR columns: panel p holds, for each k, the NR
 * values B[p*NR + 0..NR-1, k] side by side, zero-padded past n. A is packed MR rows at a time into a
 * small scratch buffer the same way. The micro-kernel then reads both operands sequentially and keeps
 * an MR x NR block of C in local variables (doubles in registers), which is what lets V8 approach
 * two to three GFLOP/s on one core. Each C element sums over k in order 0..K-1 whatever M is, so a
 * row's result does not depend on which other rows share the call.
 *
 * Any operand layout is reachable through strides: element (i, j) of a matrix is at
 * offset + i * rowStride + j * colStride. Transposes cost nothing but a different packing.
 */

/** Rows of A per micro-kernel call; the tail (m % MR rows) runs one row at a time. */
export const MR = 4;
/** Columns of B per packed panel. */
export const NR = 8;

export interface PackedB {
  readonly data: Float32Array;
  readonly n: number;
  readonly k: number;
}

/** A strided view of a matrix in a flat array. */
export interface MatrixView {
  readonly data: Float32Array;
  readonly offset: number;
  readonly rowStride: number;
  readonly colStride: number;
}

export function view(data: Float32Array, offset: number, rowStride: number, colStride = 1): MatrixView {
  return { data, offset, rowStride, colStride };
}

/** Packs the n x k matrix `src` (element (j, p) at offset + j*rowStride + p*colStride) as a B operand. */
export function packB(src: MatrixView, n: number, k: number, out?: Float32Array): PackedB {
  const panels = Math.ceil(n / NR);
  const size = panels * NR * k;
  const data = out && out.length >= size ? out : new Float32Array(size);
  const { data: s, offset, rowStride, colStride } = src;
  for (let panel = 0; panel < panels; panel++) {
    const base = panel * NR * k;
    const j0 = panel * NR;
    const width = Math.min(NR, n - j0);
    for (let jj = 0; jj < NR; jj++) {
      if (jj < width) {
        let si = offset + (j0 + jj) * rowStride;
        for (let p = 0, di = base + jj; p < k; p++, di += NR, si += colStride) data[di] = s[si];
      } else {
        for (let p = 0, di = base + jj; p < k; p++, di += NR) data[di] = 0;
      }
    }
  }
  return { data, n, k };
}

/**
 * The transpose of a packed operand, packed: element (j, p) of the result is element (p, j) of `b`,
 * so n and k swap. It reads the packed copy rather than the matrix packB read, so it holds the
 * values packB saw even if that matrix has changed since.
 */
export function transposePacked(b: PackedB): PackedB {
  const { data: src, n, k } = b;
  // Zeroed at allocation: that is the padding of the last panel past k.
  const data = new Float32Array(Math.ceil(k / NR) * NR * n);
  for (let j = 0; j < n; j++) {
    const s0 = Math.floor(j / NR) * NR * k + (j % NR); // element (j, p) of b is at s0 + p * NR
    for (let q = 0; q < k; q += NR) {
      const d0 = q * n + j * NR; // row j of the result's panel starting at column q
      const width = Math.min(NR, k - q);
      for (let pp = 0; pp < width; pp++) data[d0 + pp] = src[s0 + (q + pp) * NR];
    }
  }
  return { data, n: k, k: n };
}

/**
 * Reusable scratch for gemm: the packed A rows and the accumulator block. One per thread of work;
 * it grows to the largest k it has seen and is never reallocated inside a time loop once warm.
 */
export class GemmScratch {
  aPanel = new Float32Array(0);
  readonly acc = new Float64Array(MR * NR);

  panelFor(k: number): Float32Array {
    if (this.aPanel.length < MR * k) this.aPanel = new Float32Array(MR * k);
    return this.aPanel;
  }
}

/**
 * C[m, n] = (accumulate ? C : 0) + A[m, k] * B[n, k]^T for the first m rows of A and all n of B.
 * c is written at cOffset + i * cRowStride + j (C rows are contiguous).
 */
export function gemm(
  m: number,
  a: MatrixView,
  b: PackedB,
  c: Float32Array,
  cOffset: number,
  cRowStride: number,
  accumulate: boolean,
  scratch: GemmScratch,
): void {
  const { n, k } = b;
  if (m === 0 || n === 0) return;
  const ap = scratch.panelFor(k);
  const acc = scratch.acc;
  const bp = b.data;
  const panels = Math.ceil(n / NR);
  const { data: ad, offset: aOff, rowStride: aRs, colStride: aCs } = a;
  let i0 = 0;
  for (; i0 + MR <= m; i0 += MR) {
    // pack MR rows of A, interleaved by k
    for (let ii = 0; ii < MR; ii++) {
      let si = aOff + (i0 + ii) * aRs;
      for (let p = 0, di = ii; p < k; p++, di += MR, si += aCs) ap[di] = ad[si];
    }
    for (let panel = 0; panel < panels; panel++) {
      kernel4x8(k, ap, bp, panel * NR * k, acc);
      store(acc, MR, Math.min(NR, n - panel * NR), c, cOffset + i0 * cRowStride + panel * NR, cRowStride, accumulate);
    }
  }
  for (; i0 < m; i0++) {
    let si = aOff + i0 * aRs;
    for (let p = 0; p < k; p++, si += aCs) ap[p] = ad[si];
    for (let panel = 0; panel < panels; panel++) {
      kernel1x8(k, ap, bp, panel * NR * k, acc);
      store(acc, 1, Math.min(NR, n - panel * NR), c, cOffset + i0 * cRowStride + panel * NR, cRowStride, accumulate);
    }
  }
}

function store(
  acc: Float64Array,
  rows: number,
  cols: number,
  c: Float32Array,
  offset: number,
  rowStride: number,
  accumulate: boolean,
): void {
  for (let i = 0; i < rows; i++) {
    const ci = offset + i * rowStride;
    const ai = i * NR;
    if (accumulate) for (let j = 0; j < cols; j++) c[ci + j] += acc[ai + j];
    else for (let j = 0; j < cols; j++) c[ci + j] = acc[ai + j];
  }
}

/** acc[4 x 8] = sum_p ap[p*4 + i] * bp[bOff + p*8 + j] */
function kernel4x8(k: number, ap: Float32Array, bp: Float32Array, bOff: number, acc: Float64Array): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c04 = 0, c05 = 0, c06 = 0, c07 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0, c14 = 0, c15 = 0, c16 = 0, c17 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c24 = 0, c25 = 0, c26 = 0, c27 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0, c34 = 0, c35 = 0, c36 = 0, c37 = 0;
  for (let p = 0, ai = 0, bi = bOff; p < k; p++, ai += 4, bi += 8) {
    const a0 = ap[ai], a1 = ap[ai + 1], a2 = ap[ai + 2], a3 = ap[ai + 3];
    const b0 = bp[bi], b1 = bp[bi + 1], b2 = bp[bi + 2], b3 = bp[bi + 3];
    const b4 = bp[bi + 4], b5 = bp[bi + 5], b6 = bp[bi + 6], b7 = bp[bi + 7];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c04 += a0 * b4; c05 += a0 * b5; c06 += a0 * b6; c07 += a0 * b7;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c14 += a1 * b4; c15 += a1 * b5; c16 += a1 * b6; c17 += a1 * b7;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c24 += a2 * b4; c25 += a2 * b5; c26 += a2 * b6; c27 += a2 * b7;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
    c34 += a3 * b4; c35 += a3 * b5; c36 += a3 * b6; c37 += a3 * b7;
  }
  acc[0] = c00; acc[1] = c01; acc[2] = c02; acc[3] = c03; acc[4] = c04; acc[5] = c05; acc[6] = c06; acc[7] = c07;
  acc[8] = c10; acc[9] = c11; acc[10] = c12; acc[11] = c13; acc[12] = c14; acc[13] = c15; acc[14] = c16; acc[15] = c17;
  acc[16] = c20; acc[17] = c21; acc[18] = c22; acc[19] = c23; acc[20] = c24; acc[21] = c25; acc[22] = c26; acc[23] = c27;
  acc[24] = c30; acc[25] = c31; acc[26] = c32; acc[27] = c33; acc[28] = c34; acc[29] = c35; acc[30] = c36; acc[31] = c37;
}

/** acc[1 x 8] = sum_p ap[p] * bp[bOff + p*8 + j] */
function kernel1x8(k: number, ap: Float32Array, bp: Float32Array, bOff: number, acc: Float64Array): void {
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, c7 = 0;
  for (let p = 0, bi = bOff; p < k; p++, bi += 8) {
    const a = ap[p];
    c0 += a * bp[bi]; c1 += a * bp[bi + 1]; c2 += a * bp[bi + 2]; c3 += a * bp[bi + 3];
    c4 += a * bp[bi + 4]; c5 += a * bp[bi + 5]; c6 += a * bp[bi + 6]; c7 += a * bp[bi + 7];
  }
  acc[0] = c0; acc[1] = c1; acc[2] = c2; acc[3] = c3; acc[4] = c4; acc[5] = c5; acc[6] = c6; acc[7] = c7;
}
