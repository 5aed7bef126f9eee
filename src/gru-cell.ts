/**
 * GRUCell: one step of a GRU, as torch.nn.GRUCell. A step is a GRU of one layer, one direction and
 * one time step, so the cell runs over an internal GRU: both backends and both forms of the
 * candidate state come with it, its results are the bits of `gru.forward` at T = 1, and its weights
 * are packed once and repacked only after parametersChanged() or loadStateDict().
 */
import type { BackendChoice } from './backend/index.js';
import { argError, ArgumentError, formatShape, OptionError, ShapeError, StateDictError } from './errors.js';
import {
  backendOption,
  booleanOption,
  checkKnownKeys,
  optionsObject,
  positiveIntegerOption,
  seedOption,
} from './check.js';
import { GRU, readParameter, type GRUOptions, type StateDict, type StateDictInput } from './gru.js';
import { cellParameterSpecs, cellToGruName, type ParameterKind, type ParameterSpec } from './pytorch.js';
import { gradientOf, sameShape, toTensor, type Tensor, type TensorLike } from './tensor.js';
import type { Module } from './train/module.js';

/** The options of `new GRUCell(options)`: torch.nn.GRUCell's, plus the form, backend, threads and seed. */
export interface GRUCellOptions {
  /** I: the features of x (torch.nn.GRUCell's input_size), a positive integer. */
  inputSize: number;
  /** H: the features of the hidden state (hidden_size), a positive integer. */
  hiddenSize: number;
  /** Learnable biases (bias_ih, bias_hh). Default true. */
  bias?: boolean;
  /**
   * true (default): n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), as PyTorch.
   * false: n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn), as Cho et al. 2014 and the d2l lecture.
   */
  resetAfter?: boolean;
  /** 'auto' (default) uses the native addon where it loads, else the pure-TypeScript backend. */
  backend?: BackendChoice;
  /** Threads of the native backend, as GRUOptions.threads; the js backend uses one. */
  threads?: number;
  /** Seeds the initialisation; without it, it is random. */
  seed?: number;
}

/** The options of `cell.toGRU(options)`: the GRU's layout, backend and threads. */
export interface CellToGRUOptions {
  /** The GRU's x and output are [B, T, ·]. Default false. */
  batchFirst?: boolean;
  /** The GRU's backend; default the cell's. */
  backend?: BackendChoice;
  /** The GRU's threads; default the cell's. */
  threads?: number;
}

/** The options of `GRUCell.fromGRU(gru, options)`: the cell's backend and threads. */
export interface CellFromGRUOptions {
  /** The cell's backend; default the GRU's. */
  backend?: BackendChoice;
  /** The cell's threads; default the GRU's. */
  threads?: number;
}

/** What a cell run's backward gives: the gradients of x, h and every parameter. */
export interface GRUCellGradients {
  /** The gradient with respect to x, shaped like x. */
  readonly dInput: Tensor;
  /** The gradient with respect to h (the zeros a call without h starts from), shaped like h'. */
  readonly dH: Tensor;
  /** The gradient of every parameter, under the cell's names (weight_ih, weight_hh, bias_ih, bias_hh). */
  readonly grads: StateDict;
}

/** What `cell.forwardTrain` gives: the new state h' and backward. */
export interface GRUCellRun {
  /** h', [B, H] ([H] unbatched), as forward gives it. */
  readonly output: Tensor;
  /**
   * Backpropagates the gradient of the loss with respect to h'. It may be called more than once,
   * each call giving fresh gradients; the run keeps the weights it was recorded with.
   *
   * @param dOutput - The gradient with respect to `output` (h'), with its shape: in a decoder loop,
   *   the loss's gradient at this step plus the `dH` of the next step's backward.
   * @returns `dInput` shaped like x, `dH` shaped like h', and `grads` by the cell's parameter names,
   *   ready for an optimizer's step({ cell: grads }).
   * @throws {@link ShapeError} (ERR_SHAPE) when dOutput's shape is not output's.
   * @throws {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when dOutput is not a Tensor or nested number array.
   * @throws {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) when the gradients cannot be allocated.
   */
  backward(dOutput: TensorLike): GRUCellGradients;
}

const OPTION_NAMES = ['inputSize', 'hiddenSize', 'bias', 'resetAfter', 'backend', 'threads', 'seed'];
const TO_GRU_OPTION_NAMES = ['batchFirst', 'backend', 'threads'];
const FROM_GRU_OPTION_NAMES = ['backend', 'threads'];

/** A cell's checked call: x and h viewed as a GRU's one-step input, and the shapes to give back. */
interface CellCall {
  x: Tensor;
  h: Tensor | null;
  inputShape: readonly number[];
  stateShape: readonly number[];
}

/**
 * One step of a gated recurrent unit with PyTorch's parameters and semantics (torch.nn.GRUCell):
 * `h' = cell(x, h)`, for a decoder that feeds each output back in, one token at a time. forward,
 * forwardTrain and backward; PyTorch's cell names in stateDict and loadStateDict; conversion to and
 * from a one-layer GRU keeps the weights bit for bit.
 */
export class GRUCell implements Module {
  /** I, the features of x. */
  readonly inputSize: number;
  /** H, the features of the hidden state. */
  readonly hiddenSize: number;
  /** Whether the cell has the biases bias_ih and bias_hh. */
  readonly bias: boolean;
  /** The form of the candidate state: true is PyTorch's (see GRUCellOptions.resetAfter). */
  readonly resetAfter: boolean;
  /** The seed of the initialisation, or undefined when it is random. */
  readonly seed: number | undefined;
  /** The thread count asked for; undefined means the backend's default. */
  readonly threads: number | undefined;
  /** The one-layer, one-direction GRU whose single steps the cell runs. */
  private readonly gru: GRU;
  private readonly specs: readonly ParameterSpec[];

  /**
   * A cell with PyTorch's initialisation: every parameter drawn from U(−1/√H, 1/√H), reproducibly
   * when `options.seed` is set (the values a one-layer `new GRU` of the same sizes and seed draws).
   * torch.nn.GRUCell(input_size, hidden_size, bias).
   *
   * @param options - inputSize and hiddenSize (required), bias, resetAfter, backend, threads and
   *   seed; see {@link GRUCellOptions}.
   * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has an unknown key
   *   (numLayers, bidirectional, batchFirst and dropout are a GRU's, not a cell's), lacks inputSize or
   *   hiddenSize, or has a value of the wrong type or out of range.
   * @throws {@link BackendUnavailableError} (ERR_BACKEND_UNAVAILABLE) when `backend` is 'native' and
   *   the native engine does not load here.
   *
   * @example
   * ```ts
   * import { GRUCell } from 'fastgru';
   *
   * // torch.nn.GRUCell(input_size=8, hidden_size=16)
   * const cell = new GRUCell({ inputSize: 8, hiddenSize: 16, seed: 1 });
   * console.log(cell.parameterNames()); // ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']
   * ```
   */
  constructor(options: GRUCellOptions) {
    const o = optionsObject(options, 'an object with at least inputSize and hiddenSize');
    checkKnownKeys(o, OPTION_NAMES);
    if (o.inputSize === undefined) throw argError(OptionError, 'options.inputSize', 'a positive integer', undefined);
    if (o.hiddenSize === undefined) throw argError(OptionError, 'options.hiddenSize', 'a positive integer', undefined);
    this.inputSize = positiveIntegerOption(o, 'inputSize');
    this.hiddenSize = positiveIntegerOption(o, 'hiddenSize');
    this.bias = booleanOption(o, 'bias', true);
    this.resetAfter = booleanOption(o, 'resetAfter', true);
    const backend = backendOption(o);
    this.threads = o.threads === undefined ? undefined : positiveIntegerOption(o, 'threads');
    this.seed = seedOption(o);
    const gruOptions: GRUOptions = {
      inputSize: this.inputSize, hiddenSize: this.hiddenSize, bias: this.bias, resetAfter: this.resetAfter, backend,
    };
    if (this.threads !== undefined) gruOptions.threads = this.threads;
    if (this.seed !== undefined) gruOptions.seed = this.seed;
    // The GRU checks what is left (threads up to 1024, weights of at most 2^30 elements).
    this.gru = new GRU(gruOptions);
    this.specs = cellParameterSpecs(this);
  }

  /**
   * A cell with the weights of a one-layer unidirectional GRU (copied bit for bit): weight_ih_l0
   * becomes weight_ih, and so on. Its sizes, bias and form are the GRU's.
   *
   * @param gru - A GRU with numLayers 1 and bidirectional false (batchFirst does not matter: a cell
   *   has no time axis).
   * @param options - The cell's `backend` and `threads`; by default the GRU's.
   * @returns A new cell whose steps are the GRU's steps.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when `gru` is not a GRU, or has more than one layer
   *   or two directions.
   * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has an unknown key or a
   *   bad value.
   * @throws {@link BackendUnavailableError} (ERR_BACKEND_UNAVAILABLE) when `backend` is 'native' and
   *   the native engine does not load here.
   *
   * @example
   * ```ts
   * import { GRU, GRUCell } from 'fastgru';
   *
   * const encoder = new GRU({ inputSize: 4, hiddenSize: 8, seed: 1 });
   * const cell = GRUCell.fromGRU(encoder); // step the same weights one input at a time
   * console.log(cell.forward([0.1, 0.2, 0.3, 0.4]).shape); // [8]
   * ```
   */
  static fromGRU(gru: GRU, options?: CellFromGRUOptions | null): GRUCell {
    if (!(gru instanceof GRU)) throw argError(ArgumentError, 'gru', 'a GRU', gru);
    if (gru.numLayers !== 1 || gru.bidirectional) {
      throw argError(ArgumentError, 'gru', 'a GRU with numLayers 1 and bidirectional false',
        `numLayers ${gru.numLayers}, bidirectional ${gru.bidirectional}`, { gotIsText: true });
    }
    const o = optionsObject(options, 'an object such as { backend, threads }', 'options', true);
    checkKnownKeys(o, FROM_GRU_OPTION_NAMES);
    const cellOptions: GRUCellOptions = {
      inputSize: gru.inputSize, hiddenSize: gru.hiddenSize, bias: gru.bias, resetAfter: gru.resetAfter,
      backend: o.backend === undefined ? gru.backend : backendOption(o),
    };
    const threads = o.threads === undefined ? gru.threads : positiveIntegerOption(o, 'threads');
    if (threads !== undefined) cellOptions.threads = threads;
    if (gru.seed !== undefined) cellOptions.seed = gru.seed;
    const cell = new GRUCell(cellOptions);
    cell.gru.loadStateDict(gru.stateDict());
    return cell;
  }

  /**
   * A one-layer unidirectional GRU with this cell's weights (copied bit for bit): weight_ih becomes
   * weight_ih_l0, and so on. Its forward over T steps is the cell stepped T times.
   *
   * @param options - The GRU's `batchFirst` (default false), `backend` and `threads` (default the cell's).
   * @returns A new GRU of the cell's sizes, bias and form.
   * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has an unknown key or a
   *   bad value.
   * @throws {@link BackendUnavailableError} (ERR_BACKEND_UNAVAILABLE) when `backend` is 'native' and
   *   the native engine does not load here.
   *
   * @example
   * ```ts
   * import { GRUCell } from 'fastgru';
   *
   * const cell = new GRUCell({ inputSize: 4, hiddenSize: 8, seed: 1 });
   * const gru = cell.toGRU({ batchFirst: true }); // run whole sequences with the same weights
   * console.log(gru.parameterNames()); // ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']
   * ```
   */
  toGRU(options?: CellToGRUOptions | null): GRU {
    const o = optionsObject(options, 'an object such as { batchFirst, backend, threads }', 'options', true);
    checkKnownKeys(o, TO_GRU_OPTION_NAMES);
    const gruOptions: GRUOptions = {
      inputSize: this.inputSize, hiddenSize: this.hiddenSize, bias: this.bias, resetAfter: this.resetAfter,
      batchFirst: booleanOption(o, 'batchFirst', false),
      backend: o.backend === undefined ? this.backend : backendOption(o),
    };
    const threads = o.threads === undefined ? this.threads : positiveIntegerOption(o, 'threads');
    if (threads !== undefined) gruOptions.threads = threads;
    if (this.seed !== undefined) gruOptions.seed = this.seed;
    return new GRU(gruOptions).loadStateDict(this.gru.stateDict());
  }

  /** The backend this cell runs on. */
  get backend(): 'js' | 'native' {
    return this.gru.backend;
  }

  /**
   * The parameter names in torch.nn.GRUCell's state-dict order.
   *
   * @returns weight_ih, weight_hh, bias_ih, bias_hh (no bias_ names without biases).
   */
  parameterNames(): string[] {
    return this.specs.map((s) => s.name);
  }

  /**
   * A copy of every parameter under torch.nn.GRUCell's names: what `cell.state_dict()` holds.
   *
   * @returns weight_ih [3H, I], weight_hh [3H, H], bias_ih and bias_hh [3H] (gate rows r, z, n),
   *   each a Tensor with its own copy of the values.
   */
  stateDict(): StateDict {
    const inner = this.gru.stateDict();
    const out: StateDict = {};
    for (const spec of this.specs) out[spec.name] = inner[cellToGruName(spec.name as ParameterKind)];
    return out;
  }

  /**
   * The live parameters by the cell's names, as Tensors over the cell's own arrays (no copy): an
   * optimizer updates them in place and then calls parametersChanged().
   *
   * @returns weight_ih, weight_hh, bias_ih, bias_hh as stateDict() shapes them; a write into their
   *   data changes the cell once parametersChanged() is called.
   */
  parameters(): StateDict {
    const inner = this.gru.parameters();
    const out: StateDict = {};
    for (const spec of this.specs) out[spec.name] = inner[cellToGruName(spec.name as ParameterKind)];
    return out;
  }

  /** Says the arrays of parameters() were changed in place: the next call repacks the weights. */
  parametersChanged(): void {
    this.gru.parametersChanged();
  }

  /**
   * Replaces every parameter (copying the values), by torch.nn.GRUCell's names. Values may be
   * Tensors, Float32Arrays, Float64Arrays, flat or nested number arrays. A missing, unexpected or
   * wrongly shaped entry is an error that names it, and then nothing is changed. A GRU's names
   * (weight_ih_l0) are refused: convert with {@link GRUCell.fromGRU}.
   *
   * @param stateDict - weight_ih [3H, I], weight_hh [3H, H], bias_ih and bias_hh [3H] (no biases
   *   without them), in an object or a Map: what `cell.state_dict()` holds in PyTorch.
   * @returns This cell, for chaining.
   * @throws {@link StateDictError} (ERR_STATE_DICT) when `stateDict` is not an object or Map, an
   *   entry is missing or unexpected, or a value is not a tensor or has the wrong shape or number of values.
   *
   * @example
   * ```ts
   * import { GRUCell } from 'fastgru';
   *
   * // Saved in Python with {k: v.tolist() for k, v in nn.GRUCell(2, 1).state_dict().items()}
   * const cell = new GRUCell({ inputSize: 2, hiddenSize: 1 }).loadStateDict({
   *   weight_ih: [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], weight_hh: [[0.1], [0.2], [0.3]],
   *   bias_ih: [0, 0, 0], bias_hh: [0, 0, 0],
   * });
   * console.log(cell.forward([1, 1]).data); // Float32Array [h']
   * ```
   */
  loadStateDict(stateDict: StateDictInput): this {
    if (typeof stateDict !== 'object' || stateDict === null || Array.isArray(stateDict)) {
      throw argError(StateDictError, 'stateDict', 'an object mapping parameter names to tensors', stateDict);
    }
    const entries = new Map<string, unknown>(stateDict instanceof Map ? stateDict : Object.entries(stateDict));
    const names = this.parameterNames();
    const missing = names.filter((name) => !entries.has(name));
    const unexpected = [...entries.keys()].filter((name) => !names.includes(name));
    if (missing.length > 0 || unexpected.length > 0) {
      const parts: string[] = [];
      if (missing.length) parts.push(`missing ${missing.join(', ')}`);
      if (unexpected.length) parts.push(`unexpected ${unexpected.map(String).join(', ')}`);
      const hint = unexpected.some((n) => /_l0$/.test(String(n))) ? ' (a GRU\'s names: use GRUCell.fromGRU)' : '';
      throw new StateDictError(`stateDict: expected exactly the parameters of this GRUCell (${names.join(', ')}): ` +
        `${parts.join('; ')}${hint}`);
    }
    const next = new Map<string, Float32Array>();
    for (const spec of this.specs) next.set(cellToGruName(spec.name as ParameterKind), readParameter(entries.get(spec.name), spec));
    this.gru.loadStateDict(next);
    return this;
  }

  /**
   * One step, in inference mode: `h' = cell(x, h)` in PyTorch. The result is the bits of a
   * one-layer GRU's forward over one step with the same weights.
   *
   * @param x - The input, [B, I], or [I] for one unbatched input; a Tensor or a nested number array.
   * @param h - The state, [B, H] ([H] when x is unbatched); null or omitted for zeros.
   * @returns h', [B, H] ([H] unbatched), a new array of the caller's.
   * @throws {@link ShapeError} (ERR_SHAPE) when x is not [B, I] or [I] with this cell's I, or h is not
   *   [B, H] (or [H]) to match.
   * @throws {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when x or h is not a Tensor or nested number array.
   * @throws {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) when the result cannot be allocated.
   *
   * @example
   * ```ts
   * import { GRUCell, tensor } from 'fastgru';
   *
   * const cell = new GRUCell({ inputSize: 4, hiddenSize: 8, seed: 1 });
   * let h = null;
   * for (let t = 0; t < 3; t++) {
   *   const x = tensor(new Float32Array(2 * 4).fill(t), [2, 4]); // B = 2 inputs of step t
   *   h = cell.forward(x, h);
   * }
   * console.log(h.shape); // [2, 8]
   * ```
   */
  forward(x: TensorLike, h?: TensorLike | null): Tensor {
    const call = this.prepare(x, h);
    const { hidden } = this.gru.forward(call.x, call.h);
    return { data: hidden.data, shape: call.stateShape };
  }

  /**
   * forward, keeping what backward needs: h' and a `backward(dOutput)` giving the gradients of x, h
   * and every parameter. A decoder trained through time calls it once per step and then runs the
   * backwards from the last step to the first, adding each step's `dH` into the previous step's
   * dOutput.
   *
   * @param x - The input, [B, I] or [I].
   * @param h - The state, [B, H] ([H] unbatched); null or omitted for zeros.
   * @returns The run: `output` (h') and `backward(dOutput)`.
   * @throws {@link ShapeError} (ERR_SHAPE), {@link DTypeError} (ERR_DTYPE), {@link ArgumentError}
   *   (ERR_ARGUMENT) and {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) as forward does.
   *
   * @example
   * ```ts
   * import { GRUCell, SGD } from 'fastgru';
   *
   * const cell = new GRUCell({ inputSize: 2, hiddenSize: 3, seed: 1 });
   * const opt = new SGD({ cell }, { lr: 0.1 });
   * const run = cell.forwardTrain([[0.5, -0.5]]); // B = 1, h = zeros
   * // For the loss 0.5·‖h'‖², the gradient of h' is h' itself.
   * const { dInput, dH, grads } = run.backward(run.output);
   * opt.step({ cell: grads });
   * console.log(dInput.shape, dH.shape); // [1, 2] [1, 3]
   * ```
   */
  forwardTrain(x: TensorLike, h?: TensorLike | null): GRUCellRun {
    const call = this.prepare(x, h);
    const run = this.gru.forwardTrain(call.x, call.h);
    const output: Tensor = { data: run.hidden.data, shape: call.stateShape };
    const specs = this.specs;
    return {
      output,
      backward: (dOutput: TensorLike): GRUCellGradients => {
        const d = gradientOf(dOutput, 'dOutput', output.shape, 'output');
        const g = run.backward(null, { data: d.data, shape: run.hidden.shape });
        const grads: StateDict = {};
        for (const spec of specs) grads[spec.name] = g.grads[cellToGruName(spec.name as ParameterKind)];
        return {
          dInput: { data: g.dInput.data, shape: call.inputShape },
          dH: { data: g.dH0.data, shape: call.stateShape },
          grads,
        };
      },
    };
  }

  /** Checks x and h and views them as a one-layer GRU's input of one step ([1, B, I], [1, B, H]). */
  private prepare(xArg: TensorLike, hArg: TensorLike | null | undefined): CellCall {
    const x = toTensor(xArg, 'x');
    const I = this.inputSize;
    const H = this.hiddenSize;
    const rank = x.shape.length;
    if ((rank !== 1 && rank !== 2) || x.shape[rank - 1] !== I) {
      throw argError(ShapeError, 'x', `shape [B, ${I}] (or [${I}] for one unbatched input)`, formatShape(x.shape),
        { gotIsText: true });
    }
    const batched = rank === 2;
    const stateShape = Object.freeze(batched ? [x.shape[0], H] : [H]);
    let h: Tensor | null = null;
    if (hArg !== undefined && hArg !== null) {
      const t = toTensor(hArg, 'h');
      if (!sameShape(t.shape, stateShape)) {
        throw argError(ShapeError, 'h', `shape ${formatShape(stateShape)} (${batched ? '[B, hiddenSize], B as x\'s' : '[hiddenSize], as x is unbatched'})`,
          formatShape(t.shape), { gotIsText: true });
      }
      h = { data: t.data, shape: [1, ...stateShape] };
    }
    return { x: { data: x.data, shape: [1, ...x.shape] }, h, inputShape: x.shape, stateShape };
  }
}
