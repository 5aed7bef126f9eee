/**
 * One direction of one GRU layer, forward and backward, in TypeScript.
 *
 * Forward: one GEMM projects every running (t, b) row of the input at once; then, step by step, the
 * recurrent GEMM of the running rows and one pass of gate math. Backward: only dh runs step by step;
 * the weight gradients and the input gradient are GEMMs over all packed rows after the loop.
 *
 *   r = σ(x W_ir + b_ir + h W_hr + b_hr)
 *   z = σ(x W_iz + b_iz + h W_hz + b_hz)
 *   n = tanh(x W_in + b_in + r ⊙ (h W_hn + b_hn))      resetAfter
 *   n = tanh(x W_in + b_in + (r ⊙ h) W_hn + b_hn)      reset before (Cho 2014, d2l)
 *   h' = z ⊙ h + (1 − z) ⊙ n = n + z ⊙ (h − n)
 */
import type { LayerWeights } from '../backend.js';
import { sigmoid, tanh } from './activations.js';
import { gemm, GemmScratch, packB, transposePacked, view, type PackedB } from './gemm.js';
import { gatherPacked, scatterAddPacked, type Schedule, type SeqLayout } from './schedule.js';

/**
 * A direction's weights, packed once per model for the products forward and backward need. It keeps
 * no reference to the parameter arrays: the model (and every training tape, which holds the model)
 * sees the weights as they were when it was built, whatever happens to the arrays afterwards.
 */
export class PackedDirection {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly resetAfter: boolean;
  /** The layer has biases: backward returns their gradients. */
  readonly hasBias: boolean;
  /** x · W_ihᵀ: n = 3H, k = I */
  readonly wIh: PackedB;
  /** h · W_h{r,z}ᵀ: n = 2H, k = H */
  readonly wHhRz: PackedB;
  /** h · W_hnᵀ (or (r ⊙ h) · W_hnᵀ): n = H, k = H */
  readonly wHhN: PackedB;
  /** b_i{r,z} + b_h{r,z}, [2H] */
  readonly biasRz: Float32Array;
  /** b_in, plus b_hn when the reset comes before the product, [H] */
  readonly biasXn: Float32Array;
  /** b_hn inside the reset when resetAfter (zeros otherwise), [H] */
  readonly biasHn: Float32Array;
  private transposed: { wIh: PackedB; wHhRz: PackedB; wHhN: PackedB } | null = null;

  constructor(weights: LayerWeights, inputSize: number, hiddenSize: number, resetAfter: boolean) {
    const H = hiddenSize;
    const I = inputSize;
    this.inputSize = I;
    this.hiddenSize = H;
    this.resetAfter = resetAfter;
    this.hasBias = weights.bIh !== null;
    this.wIh = packB(view(weights.wIh, 0, I), 3 * H, I);
    this.wHhRz = packB(view(weights.wHh, 0, H), 2 * H, H);
    this.wHhN = packB(view(weights.wHh, 2 * H * H, H), H, H);
    const { bIh, bHh } = weights;
    this.biasRz = new Float32Array(2 * H);
    this.biasXn = new Float32Array(H);
    this.biasHn = new Float32Array(H);
    if (bIh && bHh) {
      for (let j = 0; j < 2 * H; j++) this.biasRz[j] = bIh[j] + bHh[j];
      for (let j = 0; j < H; j++) {
        if (resetAfter) {
          this.biasXn[j] = bIh[2 * H + j];
          this.biasHn[j] = bHh[2 * H + j];
        } else {
          this.biasXn[j] = bIh[2 * H + j] + bHh[2 * H + j];
        }
      }
    }
  }

  /**
   * The transposed operands of backward (dX = dG · W_ih, dh = dG · W_hh), packed on first use: an
   * inference-only model never pays for them, and a model packs them once however many tapes use
   * them. They come from the forward operands, not the parameter arrays, which an optimizer step or
   * a caller may have rewritten since this model's forwardTrain recorded its tapes.
   */
  get backwardOperands(): { wIh: PackedB; wHhRz: PackedB; wHhN: PackedB } {
    if (!this.transposed) {
      this.transposed = {
        wIh: transposePacked(this.wIh),
        wHhRz: transposePacked(this.wHhRz),
        wHhN: transposePacked(this.wHhN),
      };
    }
    return this.transposed;
  }
}

/** What backward needs from a training forward, all in packed row order. */
export interface DirectionTape {
  /** the direction's input rows, [P, I] */
  readonly xs: Float32Array;
  /** the state before each step, [P, H] */
  readonly hPrev: Float32Array;
  readonly r: Float32Array;
  readonly z: Float32Array;
  readonly n: Float32Array;
  /** resetAfter: h · W_hnᵀ + b_hn; reset before: r ⊙ h. [P, H] */
  readonly inner: Float32Array;
}

export interface DirectionIO {
  readonly sched: Schedule;
  readonly reverse: boolean;
  readonly input: Float32Array;
  readonly inputLayout: SeqLayout;
  /** [B, H] rows in batch order at h0Offset, or null for zeros */
  readonly h0: Float32Array | null;
  readonly h0Offset: number;
  readonly output: Float32Array;
  readonly outputLayout: SeqLayout;
  readonly outputColumn: number;
  /** receives the final state of every sequence, [B, H] rows in batch order at hiddenOffset */
  readonly hidden: Float32Array;
  readonly hiddenOffset: number;
}

export function forwardDirection(
  pd: PackedDirection,
  io: DirectionIO,
  keepTape: boolean,
  scratch: GemmScratch,
): DirectionTape | null {
  const { inputSize: I, hiddenSize: H, resetAfter } = pd;
  const { sched, reverse, output, outputColumn, hidden, hiddenOffset, h0, h0Offset } = io;
  const { tStride: oT, bStride: oB, width: oW } = io.outputLayout;
  const { perm, len, active, offset, rows: P, batch: B, steps: S } = sched;
  const H2 = 2 * H;
  const H3 = 3 * H;

  const xs = gatherPacked(io.input, io.inputLayout, 0, I, sched, reverse, new Float32Array(P * I));
  const gx = new Float32Array(P * H3);
  gemm(P, view(xs, 0, I), pd.wIh, gx, 0, H3, false, scratch);

  // The state before each step: all of them for training, two alternating slots otherwise.
  const hs = new Float32Array((keepTape ? P : 2 * B) * H);
  const r = keepTape ? new Float32Array(P * H) : null;
  const z = keepTape ? new Float32Array(P * H) : null;
  const n = keepTape ? new Float32Array(P * H) : null;
  const inner = new Float32Array((keepTape ? P : B) * H);
  const ghRz = new Float32Array(B * H2);
  const ghN = new Float32Array(B * H);
  const { biasRz, biasXn, biasHn } = pd;

  for (let i = 0; i < B; i++) {
    const src = h0Offset + perm[i] * H;
    const dst = len[i] > 0 ? i * H : hiddenOffset + perm[i] * H;
    const target = len[i] > 0 ? hs : hidden;
    if (h0) target.set(h0.subarray(src, src + H), dst);
    else target.fill(0, dst, dst + H);
  }

  for (let s = 0; s < S; s++) {
    const bt = active[s];
    const btNext = active[s + 1];
    const prev = keepTape ? offset[s] : (s & 1) * B; // first state row of this step
    const next = keepTape ? offset[s + 1] : ((s + 1) & 1) * B;
    const tapeRow = offset[s]; // row of this step in the packed tape
    const innerRow = keepTape ? tapeRow : 0;
    gemm(bt, view(hs, prev * H, H), pd.wHhRz, ghRz, 0, H2, false, scratch);

    if (resetAfter) {
      gemm(bt, view(hs, prev * H, H), pd.wHhN, ghN, 0, H, false, scratch);
    } else {
      // r first, then the candidate's recurrent product runs on r ⊙ h
      for (let i = 0; i < bt; i++) {
        const gxi = (tapeRow + i) * H3;
        const ghi = i * H2;
        const hi = (prev + i) * H;
        const ii = (innerRow + i) * H;
        for (let j = 0; j < H; j++) {
          const rj = sigmoid(gx[gxi + j] + ghRz[ghi + j] + biasRz[j]);
          if (r) r[(tapeRow + i) * H + j] = rj;
          inner[ii + j] = rj * hs[hi + j];
        }
      }
      gemm(bt, view(inner, innerRow * H, H), pd.wHhN, ghN, 0, H, false, scratch);
    }

    for (let i = 0; i < bt; i++) {
      const gxi = (tapeRow + i) * H3;
      const ghi = i * H2;
      const hi = (prev + i) * H;
      const ti = (tapeRow + i) * H;
      const t = reverse ? len[i] - 1 - s : s;
      const oi = (t * oT + perm[i] * oB) * oW + outputColumn;
      const ended = i >= btNext;
      const dest = ended ? hidden : hs;
      const di = ended ? hiddenOffset + perm[i] * H : (next + i) * H;
      for (let j = 0; j < H; j++) {
        let rj: number;
        let preN: number;
        if (resetAfter) {
          rj = sigmoid(gx[gxi + j] + ghRz[ghi + j] + biasRz[j]);
          const hn = ghN[i * H + j] + biasHn[j];
          if (keepTape) inner[ti + j] = hn;
          preN = gx[gxi + H2 + j] + biasXn[j] + rj * hn;
        } else {
          rj = 0; // stored by the first pass
          preN = gx[gxi + H2 + j] + biasXn[j] + ghN[i * H + j];
        }
        const zj = sigmoid(gx[gxi + H + j] + ghRz[ghi + H + j] + biasRz[H + j]);
        const nj = tanh(preN);
        const hNew = nj + zj * (hs[hi + j] - nj);
        dest[di + j] = hNew;
        output[oi + j] = hNew;
        if (r && z && n) {
          if (resetAfter) r[ti + j] = rj;
          z[ti + j] = zj;
          n[ti + j] = nj;
        }
      }
    }
  }
  if (!keepTape || !r || !z || !n) return null;
  return { xs, hPrev: hs, r, z, n, inner };
}

export interface DirectionGradIO {
  readonly sched: Schedule;
  readonly reverse: boolean;
  /** gradient of the layer's output (null: zeros); this direction reads H columns at dOutputColumn */
  readonly dOutput: Float32Array | null;
  readonly dOutputLayout: SeqLayout;
  readonly dOutputColumn: number;
  /** gradient of the final states, [B, H] rows in batch order at dHiddenOffset (null: zeros) */
  readonly dHidden: Float32Array | null;
  readonly dHiddenOffset: number;
  /** receives (adds) the gradient of the layer input, in the input's layout */
  readonly dInput: Float32Array;
  readonly inputLayout: SeqLayout;
  /** receives the gradient of the initial states, [B, H] rows in batch order at dH0Offset */
  readonly dH0: Float32Array;
  readonly dH0Offset: number;
}

export function backwardDirection(
  pd: PackedDirection,
  tape: DirectionTape,
  io: DirectionGradIO,
  scratch: GemmScratch,
): LayerWeights {
  const { inputSize: I, hiddenSize: H, resetAfter } = pd;
  const { sched, reverse, dOutput, dOutputColumn, dHidden, dHiddenOffset } = io;
  const { tStride: oT, bStride: oB, width: oW } = io.dOutputLayout;
  const { perm, len, active, offset, rows: P, batch: B, steps: S } = sched;
  const H2 = 2 * H;
  const H3 = 3 * H;
  const { xs, hPrev, r, z, n, inner } = tape;
  const back = pd.backwardOperands;

  const dh = new Float32Array(B * H);
  if (dHidden) for (let i = 0; i < B; i++) dh.set(dHidden.subarray(dHiddenOffset + perm[i] * H, dHiddenOffset + (perm[i] + 1) * H), i * H);
  // Gradients of the gate pre-activations [r, z, n], packed rows; what multiplies h in the n row.
  const dG = new Float32Array(P * H3);
  const dHn = resetAfter ? new Float32Array(P * H) : null;
  const dRh = resetAfter ? null : new Float32Array(B * H);

  for (let s = S - 1; s >= 0; s--) {
    const bt = active[s];
    const base = offset[s];
    for (let i = 0; i < bt; i++) {
      const ti = (base + i) * H;
      const gi = (base + i) * H3;
      const t = reverse ? len[i] - 1 - s : s;
      const oi = (t * oT + perm[i] * oB) * oW + dOutputColumn;
      for (let j = 0; j < H; j++) {
        const g = dh[i * H + j] + (dOutput ? dOutput[oi + j] : 0);
        const zj = z[ti + j];
        const nj = n[ti + j];
        const dan = g * (1 - zj) * (1 - nj * nj);
        dG[gi + H + j] = g * (hPrev[ti + j] - nj) * zj * (1 - zj);
        dG[gi + H2 + j] = dan;
        dh[i * H + j] = g * zj;
        if (dHn) {
          const rj = r[ti + j];
          dG[gi + j] = dan * inner[ti + j] * rj * (1 - rj);
          dHn[ti + j] = dan * rj;
        }
      }
    }
    if (dRh) {
      // n = tanh(... + (r ⊙ h) W_hnᵀ): the product's gradient reaches both r and h
      gemm(bt, view(dG, base * H3 + H2, H3), back.wHhN, dRh, 0, H, false, scratch);
      for (let i = 0; i < bt; i++) {
        const ti = (base + i) * H;
        for (let j = 0; j < H; j++) {
          const rj = r[ti + j];
          const d = dRh[i * H + j];
          dG[(base + i) * H3 + j] = d * hPrev[ti + j] * rj * (1 - rj);
          dh[i * H + j] += d * rj;
        }
      }
    } else if (dHn) {
      gemm(bt, view(dHn, base * H, H), back.wHhN, dh, 0, H, true, scratch);
    }
    gemm(bt, view(dG, base * H3, H3), back.wHhRz, dh, 0, H, true, scratch);
  }

  for (let i = 0; i < B; i++) io.dH0.set(dh.subarray(i * H, (i + 1) * H), io.dH0Offset + perm[i] * H);

  // The parameter gradients: sums over every packed row, as GEMMs with k = P.
  const dWih = new Float32Array(H3 * I);
  gemm(H3, view(dG, 0, 1, H3), packB(view(xs, 0, 1, I), I, P), dWih, 0, I, false, scratch);
  const dWhh = new Float32Array(H3 * H);
  const hPacked = packB(view(hPrev, 0, 1, H), H, P);
  gemm(H2, view(dG, 0, 1, H3), hPacked, dWhh, 0, H, false, scratch);
  if (dHn) gemm(H, view(dHn, 0, 1, H), hPacked, dWhh, H2 * H, H, false, scratch);
  else gemm(H, view(dG, H2, 1, H3), packB(view(inner, 0, 1, H), H, P), dWhh, H2 * H, H, false, scratch);

  let dBih: Float32Array | null = null;
  let dBhh: Float32Array | null = null;
  if (pd.hasBias) {
    const sums = new Float64Array(H3);
    for (let p = 0; p < P; p++) for (let j = 0; j < H3; j++) sums[j] += dG[p * H3 + j];
    dBih = Float32Array.from(sums);
    dBhh = Float32Array.from(sums);
    if (dHn) {
      const sn = new Float64Array(H);
      for (let p = 0; p < P; p++) for (let j = 0; j < H; j++) sn[j] += dHn[p * H + j];
      for (let j = 0; j < H; j++) dBhh[H2 + j] = sn[j];
    }
  }

  const dxs = new Float32Array(P * I);
  gemm(P, view(dG, 0, H3), back.wIh, dxs, 0, I, false, scratch);
  scatterAddPacked(dxs, I, sched, reverse, io.dInput, io.inputLayout, 0);

  return { wIh: dWih, wHh: dWhh, bIh: dBih, bHh: dBhh };
}
