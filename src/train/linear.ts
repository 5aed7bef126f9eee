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
import { toTensor, type Tensor, type TensorLike } from '../tensor.js';
import type { Module } from './module.js';

/** The options of `new Linear(options)`, as torch.nn.Linear's. */
export interface LinearOptions {
  inFeatures: number;
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
  readonly output: Tensor;
  /** dOutput shaped like output; returns dInput (shaped like x) and the parameters' gradients. */
  backward(dOutput: TensorLike): { dInput: Tensor; grads: Record<string, Tensor> };
}

const OPTION_NAMES = ['inFeatures', 'outFeatures', 'bias', 'backend', 'seed'];

/** A fully connected layer, y = x·Wᵀ + b, with PyTorch's initialisation and parameter names (weight, bias). */
export class Linear implements Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bias: boolean;
  private readonly engine: Backend;
  private readonly weight: Float32Array;
  private readonly biasData: Float32Array | null;

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

  parameters(): Record<string, Tensor> {
    const out: Record<string, Tensor> = { weight: { data: this.weight, shape: [this.outFeatures, this.inFeatures] } };
    if (this.biasData) out.bias = { data: this.biasData, shape: [this.outFeatures] };
    return out;
  }

  parametersChanged(): void {
    // Nothing is cached from the parameters.
  }

  /** Copies of weight [out, in] and bias [out], PyTorch's names. */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(this.parameters())) out[k] = { data: t.data.slice(), shape: t.shape };
    return out;
  }

  /** Copies weight (and bias) in; a missing, unexpected or wrongly shaped entry changes nothing. */
  loadStateDict(sd: Record<string, TensorLike>): this {
    if (typeof sd !== 'object' || sd === null) throw argError(StateDictError, 'stateDict', 'an object with weight and bias', sd);
    const want = this.parameters();
    for (const key of Object.keys(sd)) if (!Object.hasOwn(want, key)) throw argError(StateDictError, 'stateDict', `only ${Object.keys(want).join(', ')}`, `"${key}"`, { gotIsText: true });
    const values: Array<[Float32Array, Float32Array]> = [];
    for (const [key, t] of Object.entries(want)) {
      if (!Object.hasOwn(sd, key)) throw argError(StateDictError, `stateDict.${key}`, `a tensor of shape ${formatShape(t.shape)}`, undefined);
      const v = toTensor(sd[key], `stateDict.${key}`);
      if (v.shape.join() !== t.shape.join()) throw argError(StateDictError, `stateDict.${key}`, `shape ${formatShape(t.shape)}`, formatShape(v.shape), { gotIsText: true });
      values.push([t.data, v.data]);
    }
    for (const [dst, src] of values) dst.set(src);
    return this;
  }

  /** y = x·Wᵀ + b for x [..., in]: y [..., out]. */
  forward(x: TensorLike): Tensor {
    const t = this.input(x);
    return { data: this.product(t), shape: [...t.shape.slice(0, -1), this.outFeatures] };
  }

  /**
   * forward, keeping x and the weight for backward: the run's backward gives the gradient of this
   * forward, even after an optimizer step, loadStateDict or a write into the parameters (as a GRU
   * tape does). The copy of W costs 1/N of the forward's product for N rows.
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
        const dOut = toTensor(dOutputArg, 'dOutput');
        if (dOut.shape.join() !== output.shape.join()) {
          throw argError(ShapeError, 'dOutput', `shape ${formatShape(output.shape)} (the output's)`, formatShape(dOut.shape), { gotIsText: true });
        }
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
