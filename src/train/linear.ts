/**
 * A fully connected layer, y = x·Wᵀ + b (torch.nn.Linear), forward and backward, on the backend's
 * matrix product (the native GEMM where the addon loads). Enough to put a classifier or a language
 * model's output layer on top of a GRU.
 */
import { selectBackend, type BackendChoice } from '../backend/index.js';
import type { Backend } from '../backend/backend.js';
import { argError, formatShape, OptionError, ShapeError, StateDictError } from '../errors.js';
import { backendOption, booleanOption, checkKnownKeys, optionsObject, positiveIntegerOption, seedOption } from '../check.js';
import { Random } from '../random.js';
import { gradientOf, sameShape, toTensor, type Tensor, type TensorLike } from '../tensor.js';
import type { Module } from './module.js';

/** The options of `new Linear(options)`, as torch.nn.Linear's. */
export interface LinearOptions {
  /** The features of each input row (in_features), an integer from 1 to 2^30. */
  inFeatures: number;
  /** The features of each output row (out_features), an integer from 1 to 2^30; in·out at most 2^30. */
  outFeatures: number;
  /** Default true. */
  bias?: boolean;
  /** 'auto' (default), 'native' or 'js', as for GRU. */
  backend?: BackendChoice;
  /** Seeds the initialisation. */
  seed?: number;
}

/** What Linear's forwardTrain gives: the output, and backward. */
export interface LinearRun {
  /** y = x·Wᵀ + b, [..., outFeatures], as forward gives it. */
  readonly output: Tensor;
  /**
   * dOutput shaped like output; returns dInput (shaped like x) and the parameters' gradients. It
   * may be called more than once; each call gives fresh gradients.
   *
   * @param dOutput - The gradient of the loss with respect to output, with output's shape.
   * @returns `dInput` = dOutput·W, shaped like x, and `grads`: `weight` [out, in] = dOutputᵀ·x and
   *   `bias` [out] (the sum of dOutput's rows, when the layer has a bias).
   * @throws {@link ShapeError} (ERR_SHAPE) when dOutput's shape is not output's.
   * @throws {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when dOutput is not a Tensor or nested number array.
   */
  backward(dOutput: TensorLike): {
    /** The gradient with respect to x, shaped like x. */
    dInput: Tensor;
    /** The gradients of weight and bias, by those names: ready for an optimizer's step. */
    grads: Record<string, Tensor>;
  };
}

const OPTION_NAMES = ['inFeatures', 'outFeatures', 'bias', 'backend', 'seed'];

/** A fully connected layer, y = x·Wᵀ + b, with PyTorch's initialisation and parameter names (weight, bias). */
export class Linear implements Module {
  /** The features of each input row. */
  readonly inFeatures: number;
  /** The features of each output row. */
  readonly outFeatures: number;
  /** Whether the layer has a bias (a `bias` parameter). */
  readonly bias: boolean;
  private readonly engine: Backend;
  private readonly weight: Float32Array;
  private readonly biasData: Float32Array | null;

  /**
   * A layer with PyTorch's initialisation: weight [out, in] and bias [out] drawn from
   * U(−1/√in, 1/√in), reproducibly when `options.seed` is set. torch.nn.Linear(in, out).
   *
   * @param options - inFeatures and outFeatures (required), bias, backend and seed; see {@link LinearOptions}.
   * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has an unknown key,
   *   lacks a size, or has a value of the wrong type or out of range.
   * @throws {@link BackendUnavailableError} (ERR_BACKEND_UNAVAILABLE) when `backend` is 'native' and
   *   the native engine does not load here.
   *
   * @example
   * ```ts
   * import { GRU, Linear } from 'fastgru';
   *
   * // A classifier head over a GRU's last state: 16 features to 5 classes.
   * const gru = new GRU({ inputSize: 8, hiddenSize: 16 });
   * const head = new Linear({ inFeatures: 16, outFeatures: 5 });
   * const { hidden } = gru.forward(new Array(10).fill(new Array(8).fill(0.1))); // [T = 10, I = 8]
   * const logits = head.forward(hidden); // hidden [1, 16] -> logits [1, 5]
   * ```
   */
  constructor(options: LinearOptions) {
    const o = optionsObject(options, 'an object with inFeatures and outFeatures');
    checkKnownKeys(o, OPTION_NAMES);
    for (const name of ['inFeatures', 'outFeatures']) positiveIntegerOption(o, name, undefined, 2 ** 30);
    this.inFeatures = o.inFeatures as number;
    this.outFeatures = o.outFeatures as number;
    if (this.inFeatures * this.outFeatures > 2 ** 30) {
      throw argError(OptionError, 'options', 'a weight of at most 2^30 elements', `${this.outFeatures} × ${this.inFeatures}`, { gotIsText: true });
    }
    const bias = booleanOption(o, 'bias', true);
    this.bias = bias;
    const backend = backendOption(o);
    const seed = seedOption(o);
    this.engine = selectBackend(backend);
    // PyTorch's initialisation: weight and bias U(-1/sqrt(in), 1/sqrt(in)).
    const random = new Random(seed);
    const bound = 1 / Math.sqrt(this.inFeatures);
    this.weight = random.fillUniform(new Float32Array(this.outFeatures * this.inFeatures), -bound, bound);
    this.biasData = bias ? random.fillUniform(new Float32Array(this.outFeatures), -bound, bound) : null;
  }

  /** The backend the products run on. */
  get backend(): 'js' | 'native' {
    return this.engine.name;
  }

  /**
   * The live parameters, weight [out, in] and bias [out], as Tensors over the layer's own arrays (no
   * copies), for an optimizer.
   *
   * @returns `{ weight, bias }` (no bias without one); writes into their data change the layer.
   */
  parameters(): Record<string, Tensor> {
    const out: Record<string, Tensor> = { weight: { data: this.weight, shape: [this.outFeatures, this.inFeatures] } };
    if (this.biasData) out.bias = { data: this.biasData, shape: [this.outFeatures] };
    return out;
  }

  /** Part of {@link Module}: Linear caches nothing from its parameters, so there is nothing to do. */
  parametersChanged(): void {
    // Nothing is cached from the parameters.
  }

  /**
   * Copies of weight [out, in] and bias [out], PyTorch's names.
   *
   * @returns `{ weight, bias }` (no bias without one), each with its own copy of the values: what
   *   nn.Linear's state_dict() holds.
   */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(this.parameters())) out[k] = { data: t.data.slice(), shape: t.shape };
    return out;
  }

  /**
   * Copies weight (and bias) in; a missing, unexpected or wrongly shaped entry changes nothing.
   *
   * @param sd - `{ weight, bias }` as nn.Linear's state_dict() holds them: weight [out, in] and bias
   *   [out] (none without a bias), Tensors or nested number arrays.
   * @returns This layer, for chaining.
   * @throws {@link StateDictError} (ERR_STATE_DICT) when `sd` is not an object, an entry is missing
   *   or unexpected, or one has the wrong shape.
   * @throws {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when a value is not a Tensor or nested number array.
   */
  loadStateDict(sd: Record<string, TensorLike>): this {
    if (typeof sd !== 'object' || sd === null) throw argError(StateDictError, 'stateDict', 'an object with weight and bias', sd);
    const want = this.parameters();
    for (const key of Object.keys(sd)) if (!Object.hasOwn(want, key)) throw argError(StateDictError, 'stateDict', `only ${Object.keys(want).join(', ')}`, `"${key}"`, { gotIsText: true });
    const values: Array<[Float32Array, Float32Array]> = [];
    for (const [key, t] of Object.entries(want)) {
      if (!Object.hasOwn(sd, key)) throw argError(StateDictError, `stateDict.${key}`, `a tensor of shape ${formatShape(t.shape)}`, undefined);
      const v = toTensor(sd[key], `stateDict.${key}`);
      if (!sameShape(v.shape, t.shape)) throw argError(StateDictError, `stateDict.${key}`, `shape ${formatShape(t.shape)}`, formatShape(v.shape), { gotIsText: true });
      values.push([t.data, v.data]);
    }
    for (const [dst, src] of values) dst.set(src);
    return this;
  }

  /**
   * y = x·Wᵀ + b for x [..., in]: y [..., out].
   *
   * @param x - The input, [..., inFeatures]: any leading dimensions, such as a GRU's output [T, B, H].
   * @returns y, [..., outFeatures], a new array.
   * @throws {@link ShapeError} (ERR_SHAPE) when x's last dimension is not inFeatures.
   * @throws {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when x is not a Tensor or nested number array.
   */
  forward(x: TensorLike): Tensor {
    const t = this.input(x);
    return { data: this.product(t), shape: [...t.shape.slice(0, -1), this.outFeatures] };
  }

  /**
   * forward, keeping x and the weight for backward: the run's backward gives the gradient of this
   * forward, even after an optimizer step, loadStateDict or a write into the parameters (as a GRU
   * tape does). The copy of W costs 1/N of the forward's product for N rows.
   *
   * @param x - The input, [..., inFeatures].
   * @returns The run: `output` [..., outFeatures] and `backward(dOutput)`.
   * @throws {@link ShapeError} (ERR_SHAPE) when x's last dimension is not inFeatures.
   * @throws {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when x is not a Tensor or nested number array.
   */
  forwardTrain(x: TensorLike): LinearRun {
    const t = this.input(x);
    const xData = t.data.slice();
    const weight = this.weight.slice();
    const output: Tensor = { data: this.product(t), shape: [...t.shape.slice(0, -1), this.outFeatures] };
    const N = xData.length / this.inFeatures;
    return {
      output,
      backward: (dOutputArg: TensorLike) => {
        const dOut = gradientOf(dOutputArg, 'dOutput', output.shape, 'output');
        const I = this.inFeatures;
        const O = this.outFeatures;
        const g = dOut.data;
        // dX [N, in] = dY [N, out] · W [out, in]; dW [out, in] = dYᵀ · X; db = Σ rows of dY.
        const dInput = new Float32Array(N * I);
        this.engine.matmul(N, I, O, g, O, 1, weight, I, 1, dInput, false);
        const dW = new Float32Array(O * I);
        this.engine.matmul(O, I, N, g, 1, O, xData, I, 1, dW, false);
        const grads: Record<string, Tensor> = { weight: { data: dW, shape: [O, I] } };
        if (this.biasData) {
          const sums = new Float64Array(O);
          for (let n = 0; n < N; n++) for (let j = 0; j < O; j++) sums[j] += g[n * O + j];
          grads.bias = { data: Float32Array.from(sums), shape: [O] };
        }
        return { dInput: { data: dInput, shape: t.shape }, grads };
      },
    };
  }

  private input(x: TensorLike): Tensor {
    const t = toTensor(x, 'x');
    if (t.shape.length < 1 || t.shape[t.shape.length - 1] !== this.inFeatures) {
      throw argError(ShapeError, 'x', `shape [..., ${this.inFeatures}]`, formatShape(t.shape), { gotIsText: true });
    }
    return t;
  }

  private product(t: Tensor): Float32Array {
    const I = this.inFeatures;
    const O = this.outFeatures;
    const N = t.data.length / I;
    const y = new Float32Array(N * O);
    if (this.biasData) for (let n = 0; n < N; n++) y.set(this.biasData, n * O);
    // y [N, out] += x [N, in] · Wᵀ: B(p, j) = W[j, p] at j·in + p.
    this.engine.matmul(N, O, I, t.data, I, 1, this.weight, 1, I, y, this.biasData !== null);
    return y;
  }
}
