/**
 * The order in which a batch's sequences are processed, as in PyTorch's packed sequences.
 *
 * Sequences are sorted by length, longest first (stably), so the sequences still running at step s
 * are always the first `active[s]` rows of the state. Everything a direction keeps per step (gate
 * values, previous states, gradients) is stored "packed": the rows of step s start at `offset[s]`,
 * and only running sequences have a row. Padding past a sequence's length is never read.
 */

export interface Schedule {
  /** The longest length: the number of steps the recurrence runs. */
  readonly steps: number;
  readonly batch: number;
  /** Row i of the state holds sequence perm[i]. */
  readonly perm: Int32Array;
  /** len[i] is the length of sequence perm[i] (non-increasing in i). */
  readonly len: Int32Array;
  /** active[s] is the number of rows running at step s; steps + 1 entries, the last 0. */
  readonly active: Int32Array;
  /** offset[s] is the first packed row of step s; steps + 1 entries, the last the total. */
  readonly offset: Int32Array;
  /** The number of packed rows: the sum of the lengths. */
  readonly rows: number;
}

export function makeSchedule(steps: number, batch: number, lengths: Int32Array | null): Schedule {
  const perm = new Int32Array(batch);
  for (let b = 0; b < batch; b++) perm[b] = b;
  if (lengths) {
    // stable sort by length, descending
    const order = Array.from(perm).sort((a, b) => lengths[b] - lengths[a] || a - b);
    perm.set(order);
  }
  const len = new Int32Array(batch);
  for (let i = 0; i < batch; i++) len[i] = lengths ? lengths[perm[i]] : steps;
  const maxLen = batch > 0 ? len[0] : 0;
  const active = new Int32Array(maxLen + 1);
  const offset = new Int32Array(maxLen + 1);
  let running = batch;
  let rows = 0;
  for (let s = 0; s < maxLen; s++) {
    while (running > 0 && len[running - 1] <= s) running--;
    active[s] = running;
    offset[s] = rows;
    rows += running;
  }
  offset[maxLen] = rows;
  return { steps: maxLen, batch, perm, len, active, offset, rows };
}

/**
 * Where a sequence buffer in the caller's layout keeps row (t, b): at (t * tStride + b * bStride) *
 * width + column. Time-first: tStride = B, bStride = 1; batch-first: tStride = 1, bStride = T.
 */
export interface SeqLayout {
  readonly tStride: number;
  readonly bStride: number;
  readonly width: number;
}

export function seqLayout(steps: number, batch: number, width: number, batchFirst: boolean): SeqLayout {
  return batchFirst ? { tStride: 1, bStride: steps, width } : { tStride: batch, bStride: 1, width };
}

/** Copies `width` columns from `col` of every running (t, b) row of src into packed order. */
export function gatherPacked(
  src: Float32Array,
  layout: SeqLayout,
  col: number,
  width: number,
  sched: Schedule,
  reverse: boolean,
  dst: Float32Array,
): Float32Array {
  const { tStride, bStride, width: rowWidth } = layout;
  for (let s = 0; s < sched.steps; s++) {
    const base = sched.offset[s];
    for (let i = 0, n = sched.active[s]; i < n; i++) {
      const t = reverse ? sched.len[i] - 1 - s : s;
      const from = (t * tStride + sched.perm[i] * bStride) * rowWidth + col;
      dst.set(src.subarray(from, from + width), (base + i) * width);
    }
  }
  return dst;
}

/** Adds packed rows back into the caller's layout (the adjoint of gatherPacked). */
export function scatterAddPacked(
  src: Float32Array,
  width: number,
  sched: Schedule,
  reverse: boolean,
  dst: Float32Array,
  layout: SeqLayout,
  col: number,
): void {
  const { tStride, bStride, width: rowWidth } = layout;
  for (let s = 0; s < sched.steps; s++) {
    const base = sched.offset[s];
    for (let i = 0, n = sched.active[s]; i < n; i++) {
      const t = reverse ? sched.len[i] - 1 - s : s;
      const to = (t * tStride + sched.perm[i] * bStride) * rowWidth + col;
      const from = (base + i) * width;
      for (let j = 0; j < width; j++) dst[to + j] += src[from + j];
    }
  }
}
