/**
 * A lookup table of vectors (torch.nn.Embedding): integer ids of any shape in, their rows of the
 * weight out, and backward with the gradient of each row summed over the ids that picked it. The
 * first layer of a text model, in front of a GRU.
 */
import { argError, ArgumentError, DTypeError, formatShape, OptionError, ShapeError, StateDictError } from '../errors.js';
import { checkKnownKeys, integerOption, optionsObject, positiveIntegerOption, seedOption } from '../check.js';
import { Random } from '../random.js';
import { checkShape, gradientOf, sameShape, sizeOf, toTensor, type NestedNumberArray, type Tensor, type TensorLike } from '../tensor.js';
import type { Module } from './module.js';

/** The options of `new Embedding(options)`, as torch.nn.Embedding's. */
export interface EmbeddingOptions {
  /** The size of the table (num_embeddings): ids run from 0 to numEmbeddings − 1. An integer from 1 to 2^30. */
  numEmbeddings: number;
  /** The size of each vector (embedding_dim), an integer from 1 to 2^30; the table at most 2^30 values. */
  embeddingDim: number;
  /**
   * The id whose row is a padding vector (padding_idx): initialised to zeros and never given a
   * gradient. From −numEmbeddings to numEmbeddings − 1 (a negative one counts from the end, as
   * PyTorch's); null or undefined (the default) for none.
   */
  paddingIdx?: number | null;
  /** Seeds the initialisation. */
  seed?: number;
}

/** The integer typed arrays ids may come in. */
export type IntegerArray = Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array;

/**
 * Ids for {@link Embedding}: `{ data, shape }` with data an integer typed array (an Int32Array
 * most often) of `shape`'s element count, row-major; or a rectangular nested array of integers,
 * whose nesting is the shape (`[[1, 2, 3], [4, 5, 6]]` is [2, 3]).
 */
export type EmbeddingIds = IdTensor | NestedNumberArray;

/** Ids as a typed array and a shape, as a Tensor holds floats. */
export interface IdTensor {
  /** The ids, row-major: an Int32Array most often, or another integer typed array. */
  readonly data: IntegerArray;
  /** The dimensions, outermost first; their product is data's length. */
  readonly shape: readonly number[];
}

/** What Embedding's forwardTrain gives: the output, and backward. */
export interface EmbeddingRun {
  /** The ids' rows, [...ids' shape, embeddingDim], as forward gives them. */
  readonly output: Tensor;
  /**
   * dOutput shaped like output; returns the weight's gradient. It may be called more than once;
   * each call gives fresh gradients. Ids have no gradient.
   *
   * @param dOutput - The gradient of the loss with respect to output, with output's shape.
   * @returns `grads.weight`, of shape [numEmbeddings, embeddingDim], whose row i is the sum of
   *   dOutput's vectors at the ids equal to i (zero for ids that do not occur, and for paddingIdx).
   * @throws {@link ShapeError} (ERR_SHAPE) when dOutput's shape is not output's.
   * @throws {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when dOutput is not a Tensor or nested number array.
   */
  backward(dOutput: TensorLike): {
    /** The gradient of weight, by that name: ready for an optimizer's step. */
    grads: Record<string, Tensor>;
  };
}

const OPTION_NAMES = ['numEmbeddings', 'embeddingDim', 'paddingIdx', 'seed'];

/** Options of torch.nn.Embedding that this one does not have, and why. */
const REFUSED: Record<string, string> = {
  maxNorm: 'no maxNorm: rows are not renormalised (scale the weight yourself)',
  normType: 'no normType: rows are not renormalised',
  scaleGradByFreq: 'no scaleGradByFreq: gradients are plain sums',
  sparse: 'no sparse: gradients are dense',
};

/** A lookup table of vectors, torch.nn.Embedding: PyTorch's initialisation and parameter name (weight). */
export class Embedding implements Module {
  /** The size of the table: ids run from 0 to numEmbeddings − 1. */
  readonly numEmbeddings: number;
  /** The size of each vector. */
  readonly embeddingDim: number;
  /** The padding id, from 0 to numEmbeddings − 1 (a negative option counted from the end), or null. */
  readonly paddingIdx: number | null;
  private readonly weight: Float32Array;

  /**
   * A table with PyTorch's initialisation: weight [numEmbeddings, embeddingDim] drawn from N(0, 1),
   * the paddingIdx row zeros, reproducibly when `options.seed` is set. torch.nn.Embedding(n, d,
   * padding_idx).
   *
   * @param options - numEmbeddings and embeddingDim (required), paddingIdx and seed; see {@link EmbeddingOptions}.
   * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has an unknown key or one
   *   of PyTorch's options this table does not have (maxNorm, normType, scaleGradByFreq, sparse),
   *   lacks a size, or has a value of the wrong type or out of range.
   *
   * @example
   * ```ts
   * import { Embedding, GRU } from 'fastgru';
   *
   * // A vocabulary of 100 tokens (0 pads) as 8 features each, in front of a GRU.
   * const embed = new Embedding({ numEmbeddings: 100, embeddingDim: 8, paddingIdx: 0 });
   * const gru = new GRU({ inputSize: 8, hiddenSize: 16, batchFirst: true });
   * const x = embed.forward([[5, 17, 42, 0], [7, 7, 3, 9]]); // ids [B = 2, T = 4] -> x [2, 4, 8]
   * const { hidden } = gru.forward(x);                       // hidden [1, 2, 16]
   * ```
   */
  constructor(options: EmbeddingOptions) {
    const o = optionsObject(options, 'an object with numEmbeddings and embeddingDim');
    for (const key of Object.keys(o)) {
      if (Object.hasOwn(REFUSED, key)) throw argError(OptionError, `options.${key}`, REFUSED[key], o[key]);
    }
    checkKnownKeys(o, OPTION_NAMES);
    for (const name of ['numEmbeddings', 'embeddingDim']) positiveIntegerOption(o, name, undefined, 2 ** 30);
    this.numEmbeddings = o.numEmbeddings as number;
    this.embeddingDim = o.embeddingDim as number;
    if (this.numEmbeddings * this.embeddingDim > 2 ** 30) {
      throw argError(OptionError, 'options', 'a weight of at most 2^30 elements', `${this.numEmbeddings} × ${this.embeddingDim}`, { gotIsText: true });
    }
    const N = this.numEmbeddings;
    if (o.paddingIdx === undefined || o.paddingIdx === null) {
      this.paddingIdx = null;
    } else {
      const p = integerOption(o, 'paddingIdx', -N, N - 1, undefined, `null or an integer from ${-N} to ${N - 1} (numEmbeddings ${N})`);
      this.paddingIdx = p < 0 ? p + N : p;
    }
    const seed = seedOption(o);
    // PyTorch's initialisation: weight N(0, 1), the padding row zeros.
    this.weight = new Random(seed).fillNormal(new Float32Array(N * this.embeddingDim));
    if (this.paddingIdx !== null) this.weight.fill(0, this.paddingIdx * this.embeddingDim, (this.paddingIdx + 1) * this.embeddingDim);
  }

  /**
   * The live parameter, weight [numEmbeddings, embeddingDim], as a Tensor over the table's own array
   * (no copy), for an optimizer.
   *
   * @returns `{ weight }`; writes into its data change the table.
   */
  parameters(): Record<string, Tensor> {
    return { weight: { data: this.weight, shape: [this.numEmbeddings, this.embeddingDim] } };
  }

  /** Part of {@link Module}: Embedding caches nothing from its parameters, so there is nothing to do. */
  parametersChanged(): void {
    // Nothing is cached from the parameters.
  }

  /**
   * A copy of weight [numEmbeddings, embeddingDim], PyTorch's name.
   *
   * @returns `{ weight }` with its own copy of the values: what nn.Embedding's state_dict() holds.
   */
  stateDict(): Record<string, Tensor> {
    return { weight: { data: this.weight.slice(), shape: [this.numEmbeddings, this.embeddingDim] } };
  }

  /**
   * Copies weight in; a missing, unexpected or wrongly shaped entry changes nothing. The paddingIdx
   * row is taken as it comes (as PyTorch's load_state_dict does): it is zeros only if the file's is.
   *
   * @param sd - `{ weight }` as nn.Embedding's state_dict() holds it: [numEmbeddings, embeddingDim],
   *   a Tensor or nested number array.
   * @returns This table, for chaining.
   * @throws {@link StateDictError} (ERR_STATE_DICT) when `sd` is not an object, weight is missing,
   *   another entry is there, or weight has the wrong shape.
   * @throws {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when the value is not a Tensor or nested number array.
   */
  loadStateDict(sd: Record<string, TensorLike>): this {
    if (typeof sd !== 'object' || sd === null) throw argError(StateDictError, 'stateDict', 'an object with weight', sd);
    for (const key of Object.keys(sd)) if (key !== 'weight') throw argError(StateDictError, 'stateDict', 'only weight', `"${key}"`, { gotIsText: true });
    const shape = [this.numEmbeddings, this.embeddingDim];
    if (!Object.hasOwn(sd, 'weight')) throw argError(StateDictError, 'stateDict.weight', `a tensor of shape ${formatShape(shape)}`, undefined);
    const v = toTensor(sd.weight, 'stateDict.weight');
    if (!sameShape(v.shape, shape)) throw argError(StateDictError, 'stateDict.weight', `shape ${formatShape(shape)}`, formatShape(v.shape), { gotIsText: true });
    this.weight.set(v.data);
    return this;
  }

  /**
   * The ids' rows of the weight: output[..., :] = weight[ids[...], :].
   *
   * @param ids - Integer ids of any shape, each from 0 to numEmbeddings − 1: `{ data: Int32Array, shape }`
   *   (or another integer typed array) or a nested array of integers; see {@link EmbeddingIds}.
   * @returns The vectors, [...ids' shape, embeddingDim], a new array.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when `ids` is neither form, or an id is not an integer
   *   or out of range (the message names its index and value).
   * @throws {@link DTypeError} (ERR_DTYPE) when `ids.data` is not an integer typed array.
   * @throws {@link ShapeError} (ERR_SHAPE) when `ids.shape` is not a shape of data's length, or a
   *   nested array is not rectangular.
   */
  forward(ids: EmbeddingIds): Tensor {
    const { data, shape } = this.readIds(ids);
    return { data: this.gather(data), shape: [...shape, this.embeddingDim] };
  }

  /**
   * forward, keeping the ids for backward (a copy: later writes to them do not change the gradient).
   *
   * @param ids - Integer ids of any shape, as forward takes them.
   * @returns The run: `output` [...ids' shape, embeddingDim] and `backward(dOutput)`.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when `ids` is neither form, or an id is not an integer
   *   or out of range (the message names its index and value).
   * @throws {@link DTypeError} (ERR_DTYPE) when `ids.data` is not an integer typed array.
   * @throws {@link ShapeError} (ERR_SHAPE) when `ids.shape` is not a shape of data's length, or a
   *   nested array is not rectangular.
   */
  forwardTrain(ids: EmbeddingIds): EmbeddingRun {
    const { data, shape } = this.readIds(ids);
    const output: Tensor = { data: this.gather(data), shape: [...shape, this.embeddingDim] };
    return {
      output,
      backward: (dOutputArg: TensorLike) => {
        const dOut = gradientOf(dOutputArg, 'dOutput', output.shape, 'output');
        const D = this.embeddingDim;
        const g = dOut.data;
        // Row id of dW gathers every dOutput vector whose id it is, summed in double, in the order
        // the ids come; only the rows of ids that occur are summed (a table of 50,000 rows and a
        // batch of a few thousand ids touch a few thousand), the rest of dW stays zero.
        const slot = new Int32Array(this.numEmbeddings).fill(-1);
        const used: number[] = [];
        for (let n = 0; n < data.length; n++) {
          if (slot[data[n]] < 0) {
            slot[data[n]] = used.length;
            used.push(data[n]);
          }
        }
        const sums = new Float64Array(used.length * D);
        for (let n = 0; n < data.length; n++) {
          const row = slot[data[n]] * D;
          for (let j = 0; j < D; j++) sums[row + j] += g[n * D + j];
        }
        const dW = new Float32Array(this.numEmbeddings * D);
        used.forEach((id, k) => {
          if (id !== this.paddingIdx) dW.set(sums.subarray(k * D, (k + 1) * D), id * D);
        });
        return { grads: { weight: { data: dW, shape: [this.numEmbeddings, D] } } };
      },
    };
  }

  private gather(ids: Int32Array): Float32Array {
    const D = this.embeddingDim;
    const out = new Float32Array(ids.length * D);
    for (let n = 0; n < ids.length; n++) out.set(this.weight.subarray(ids[n] * D, ids[n] * D + D), n * D);
    return out;
  }

  /** The ids as a checked Int32Array copy and their shape. */
  private readIds(ids: unknown): { data: Int32Array; shape: readonly number[] } {
    const N = this.numEmbeddings;
    const expected = `an integer id from 0 to ${N - 1} (numEmbeddings ${N})`;
    const check = (value: unknown, path: () => string): number => {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= N) throw argError(ArgumentError, path(), expected, value);
      return value;
    };
    if (Array.isArray(ids)) {
      const shape: number[] = [];
      for (let level: unknown = ids; Array.isArray(level); level = level[0]) {
        shape.push(level.length);
        if (level.length === 0) break;
      }
      checkShape(shape, 'ids');
      const out = new Int32Array(sizeOf(shape));
      let offset = 0;
      const walk = (value: unknown, depth: number, path: string): void => {
        if (depth === shape.length) {
          if (Array.isArray(value)) throw argError(ShapeError, path, `an id (the nested array must be rectangular, shape ${formatShape(shape)})`, value);
          out[offset++] = check(value, () => path);
          return;
        }
        if (!Array.isArray(value) || value.length !== shape[depth]) {
          throw argError(ShapeError, path, `an array of length ${shape[depth]} (the nested array must be rectangular, shape ${formatShape(shape)})`, value);
        }
        for (let i = 0; i < shape[depth]; i++) walk(value[i], depth + 1, `${path}[${i}]`);
      };
      walk(ids, 0, 'ids');
      return { data: out, shape: Object.freeze(shape) };
    }
    if (typeof ids !== 'object' || ids === null || ArrayBuffer.isView(ids) || !('data' in ids) || !('shape' in ids)) {
      const hint = ArrayBuffer.isView(ids) ? ' (give a typed array its shape: { data, shape })' : '';
      throw argError(ArgumentError, 'ids', `integer ids: { data: Int32Array, shape } or a nested number array${hint}`, ids);
    }
    const { data, shape: rawShape } = ids as { data: unknown; shape: unknown };
    const integer = data instanceof Int32Array || data instanceof Uint32Array || data instanceof Int16Array ||
      data instanceof Uint16Array || data instanceof Int8Array || data instanceof Uint8Array || data instanceof Uint8ClampedArray;
    if (!integer) {
      throw argError(DTypeError, 'ids.data', 'an integer typed array (Int32Array, Uint32Array, Int16Array, Uint16Array, Int8Array, Uint8Array)', data);
    }
    const shape = checkShape(rawShape, 'ids.shape');
    const values = data as IntegerArray;
    if (sizeOf(shape) !== values.length) {
      throw argError(ShapeError, 'ids.shape', `a shape with ${values.length} elements (data's length)`,
        `${formatShape(shape)} (${sizeOf(shape)} elements)`, { gotIsText: true });
    }
    const out = new Int32Array(values.length);
    for (let n = 0; n < values.length; n++) {
      out[n] = check(values[n], () => `ids${indexPath(n, shape)}`);
    }
    return { data: out, shape };
  }
}

/** The flat index n in a row-major shape, as `[i][j][k]`. */
function indexPath(n: number, shape: readonly number[]): string {
  const parts: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    parts.unshift(n % shape[d]);
    n = Math.floor(n / shape[d]);
  }
  return parts.map((i) => `[${i}]`).join('');
}
