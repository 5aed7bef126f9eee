/** Softmax cross-entropy: the loss of a classifier or language model over its logits, and its gradient. */
import { argError, ArgumentError, formatShape, ShapeError } from '../errors.js';
import { toTensor, type Tensor, type TensorLike } from '../tensor.js';

/** What softmaxCrossEntropy gives: the loss and its gradient. */
export interface CrossEntropy {
  /** The mean over rows of -log softmax(logits)[target]. */
  readonly loss: number;
  /** d loss / d logits, shaped like logits. */
  readonly dLogits: Tensor;
}

/**
 * logits [N, C] (or any [..., C], rows flattened), targets N class indices in 0..C-1. Computed in
 * double precision with the max subtracted, so it is finite for any finite logits. PyTorch's
 * `F.cross_entropy(logits, targets)` with its default mean reduction.
 *
 * @param logitsArg - The logits, [N, C] or any [..., C]: each row one example's unnormalised scores
 *   over C classes.
 * @param targets - One class index per row, N integers in 0..C−1, in any array-like (number[],
 *   Int32Array, ...).
 * @returns `loss`, the mean over rows of −log softmax(logits)[target] (0 for no rows), and `dLogits`,
 *   its gradient, shaped like logits.
 * @throws {@link ShapeError} (ERR_SHAPE) when logits has no class dimension, more than 2^30 classes,
 *   or targets has not one entry per row.
 * @throws {@link ArgumentError} (ERR_ARGUMENT) when logits is not a Tensor or nested number array,
 *   targets is not array-like, or a target is not an integer in 0..C−1.
 * @throws {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array.
 *
 * @example
 * ```ts
 * import { softmaxCrossEntropy } from 'fastgru';
 *
 * const { loss, dLogits } = softmaxCrossEntropy([[2, 0, -1], [0, 1, 0]], [0, 1]);
 * console.log(loss.toFixed(4), dLogits.shape); // 0.3606 [2, 3]
 * ```
 */
export function softmaxCrossEntropy(logitsArg: TensorLike, targets: ArrayLike<number>): CrossEntropy {
  const logits = toTensor(logitsArg, 'logits');
  if (logits.shape.length < 1 || logits.shape[logits.shape.length - 1] < 1) {
    throw argError(ShapeError, 'logits', 'shape [N, C] with C >= 1', formatShape(logits.shape), { gotIsText: true });
  }
  const C = logits.shape[logits.shape.length - 1];
  if (C > 2 ** 30) throw argError(ShapeError, 'logits', 'at most 2^30 classes', formatShape(logits.shape), { gotIsText: true });
  const N = logits.data.length / C;
  if (targets === null || typeof targets !== 'object' || typeof targets.length !== 'number') {
    throw argError(ArgumentError, 'targets', `an array of ${N} class indices`, targets);
  }
  if (targets.length !== N) {
    throw argError(ShapeError, 'targets', `${N} class indices (one per row of logits ${formatShape(logits.shape)})`,
      `${targets.length}`, { gotIsText: true });
  }
  const x = logits.data;
  const grad = new Float32Array(x.length);
  const e = new Float64Array(C);
  let total = 0;
  for (let i = 0; i < N; i++) {
    const t = targets[i];
    if (!Number.isInteger(t) || t < 0 || t >= C) throw argError(ArgumentError, `targets[${i}]`, `an integer in 0..${C - 1}`, t);
    const row = i * C;
    let max = -Infinity;
    for (let j = 0; j < C; j++) if (x[row + j] > max) max = x[row + j];
    let sum = 0;
    for (let j = 0; j < C; j++) sum += (e[j] = Math.exp(x[row + j] - max));
    total += Math.log(sum) + max - x[row + t];
    for (let j = 0; j < C; j++) grad[row + j] = (e[j] / sum - (j === t ? 1 : 0)) / N;
  }
  return { loss: N > 0 ? total / N : 0, dLogits: { data: grad, shape: logits.shape } };
}
