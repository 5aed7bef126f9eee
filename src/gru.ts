/**
 * The GRU class: options, parameters (PyTorch's names and layouts), forward, training forward and
 * backward. It checks every argument, then hands flat arrays to one Backend.
 *
 * It depends on no other room of the package: serving (src/serve/: batcher(), session(), share(),
 * GRU.fromShared) and files (src/io/: fromSafetensors, saveSafetensors, the Keras and ONNX layouts)
 * depend on it and attach their entry points to the class (src/attach.ts), declaring them on GRU's
 * type by module augmentation. src/index.ts loads both rooms, so every entry point has them.
 */
import type { Backend, BackendModel, ForwardResult, GruConfig, LayerWeights, SequenceBatch } from './backend/backend.js';
import { selectBackend, type BackendChoice } from './backend/index.js';
import {
  abortedError,
  argError,
  ArgumentError,
  callerStack,
  formatShape,
  OptionError,
  ShapeError,
  StateDictError,
  memoryError,
  withCallerStack,
  withMemoryErrors,
} from './errors.js';
import {
  backendOption,
  booleanOption,
  checkKnownKeys,
  optionsObject,
  positiveIntegerOption,
  seedOption,
} from './check.js';
import { gruDirectionNames, parameterSpecs, type ParameterSpec } from './pytorch.js';
import { Random } from './random.js';
import { checkShape, gradientOf, sameShape, sizeOf, tensor, toTensor, type Tensor, type TensorLike } from './tensor.js';

/** The options of `new GRU(options)`: sizes and layout as torch.nn.GRU's, plus the backend, threads and seed. */
export interface GRUOptions {
  /** I: the features of each step of x (torch.nn.GRU's input_size), a positive integer. */
  inputSize: number;
  /** H: the features of the hidden state (hidden_size), a positive integer. */
  hiddenSize: number;
  /** Stacked layers, each feeding its output to the next. Default 1. */
  numLayers?: number;
  /** Run a second direction over each sequence, end to start; outputs are concatenated. Default false. */
  bidirectional?: boolean;
  /** x and output are [B, T, ·] instead of [T, B, ·]. Default false. */
  batchFirst?: boolean;
  /** Learnable biases (bias_ih, bias_hh). Default true. */
  bias?: boolean;
  /**
   * true (default): n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), as PyTorch, cuDNN and Keras.
   * false: n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn), as Cho et al. 2014 and the d2l lecture.
   */
  resetAfter?: boolean;
  /** Dropout probability on each layer's output but the last, in forwardTrain only. Default 0. */
  dropout?: number;
  /** 'auto' (default) uses the native addon where it loads, else the pure-TypeScript backend. */
  backend?: BackendChoice;
  /**
   * Threads of the native backend; default backendInfo().threads (FASTGRU_THREADS, else the CPUs this
   * process may use). A call runs on at most backendInfo().maxThreads: the hardware threads, fewer
   * under an affinity mask or a cgroup CPU quota. The js backend uses one.
   */
  threads?: number;
  /** Seeds initialisation and dropout masks; without it they are random. */
  seed?: number;
}

/** Per-sequence lengths: a number array or any non-BigInt typed array of integers. */
export type Lengths = readonly number[] | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array |
  Uint32Array | Float32Array | Float64Array;

/** The options of forward and forwardTrain. */
export interface ForwardOptions {
  /** Per-sequence lengths (PyTorch's packed-sequence semantics), each an integer in 0..T. */
  lengths?: Lengths | null;
}

/** The options of forwardAsync: forward's, and an AbortSignal. */
export interface ForwardAsyncOptions extends ForwardOptions {
  /** Aborting before the work starts rejects the promise with an AbortedError (ERR_ABORTED). */
  signal?: AbortSignal;
}

/** What forward gives: every step's output of the last layer and each sequence's final hidden state. */
export interface GRUOutput {
  /** [T, B, D*H] ([B, T, D*H] with batchFirst; [T, D*H] unbatched); zero past each length. */
  readonly output: Tensor;
  /** [numLayers*D, B, H] ([numLayers*D, H] unbatched): each sequence's state after its last step. */
  readonly hidden: Tensor;
}

/** What a training run's backward gives: the gradients of the input, the initial state and every parameter. */
export interface GRUGradients {
  /** The gradient with respect to x, shaped like x. */
  readonly dInput: Tensor;
  /** The gradient with respect to h0, shaped like hidden. */
  readonly dH0: Tensor;
  /** The gradient of every parameter, under its state-dict name. */
  readonly grads: StateDict;
}

/** What forwardTrain gives: forward's output and hidden state, and backward. */
export interface TrainingRun extends GRUOutput {
  /**
   * Backpropagates dOutput (shaped like output) and dHidden (shaped like hidden); either may be
   * null or omitted for zeros. It may be called more than once, each call giving fresh gradients
   * (nothing accumulates, unlike PyTorch's `.grad`).
   *
   * @param dOutput - The gradient of the loss with respect to `output`, with output's shape; null
   *   or omitted for zeros (a loss on the final state only).
   * @param dHidden - The gradient of the loss with respect to `hidden`, with hidden's shape; null or
   *   omitted for zeros.
   * @returns `dInput` shaped like x, `dH0` shaped like hidden, and `grads`: every parameter's
   *   gradient by state-dict name, ready for an optimizer's step({ gru: grads }).
   * @throws {@link ShapeError} (ERR_SHAPE) when dOutput or dHidden has another shape than output or hidden.
   * @throws {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when a gradient is not a Tensor or nested number array.
   * @throws {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) when the gradients cannot be allocated.
   */
  backward(dOutput?: TensorLike | null, dHidden?: TensorLike | null): GRUGradients;
}

/** The options a shared model carries, all set (the rest, backend, threads and seed, are each worker's choice). */
export type SharedOptions = Readonly<Required<Pick<GRUOptions,
  'inputSize' | 'hiddenSize' | 'numLayers' | 'bidirectional' | 'batchFirst' | 'bias' | 'resetAfter' | 'dropout'>>>;

/**
 * What `gru.share()` returns: plain data that postMessage passes to workers without copying the
 * buffer. Declared here because the GRU's constructor builds a model over one (GRU.fromShared).
 */
export interface SharedGRU {
  /** Marks the object as a share, for GRU.fromShared's check (a structured clone keeps it). */
  readonly kind: 'fastgru.SharedGRU';
  /** The options of the model shared, which every model built from the share takes. */
  readonly options: SharedOptions;
  /** Every parameter's float32 values, end to end, in state-dict order. */
  readonly buffer: SharedArrayBuffer;
  /** Each parameter's place in the buffer, in floats. */
  readonly tensors: ReadonlyArray<{
    /** The parameter's state-dict name, such as weight_ih_l0. */
    readonly name: string;
    /** Its shape, as in stateDict(). */
    readonly shape: readonly number[];
    /** Where its values start in the buffer, counted in floats (4 bytes each). */
    readonly offset: number;
  }>;
}

/**
 * What the serve and io rooms reach inside a model (not part of the public API): its parameters as
 * specs and live arrays, the share it views, and a forward of a checked batch off the event loop.
 */
export interface GRUInternals {
  readonly specs: readonly ParameterSpec[];
  readonly params: ReadonlyMap<string, Float32Array>;
  readonly shared: SharedGRU | null;
  /**
   * Runs a batch the caller has checked and owns (no one else holds or changes its arrays), so the
   * backend may read them in place instead of copying them first. Memory errors are OutOfMemoryError.
   */
  runOwned(batch: SequenceBatch): Promise<ForwardResult>;
  /**
   * An array for runOwned to read without a copy (Backend.batchBuffer).
   * @param floats - Its length.
   * @returns A Float32Array of `floats` zeros.
   * @throws OutOfMemoryError (ERR_OUT_OF_MEMORY) when the memory cannot be had.
   */
  batchBuffer(floats: number): Float32Array;
}

let internalsOf: (gru: GRU) => GRUInternals;

/** The internals of a model, for the serve and io rooms. */
export function gruInternals(gru: GRU): GRUInternals {
  return internalsOf(gru);
}

/** Parameters by PyTorch's state-dict names (weight_ih_l0, ...), as stateDict() and parameters() give them. */
export type StateDict = Record<string, Tensor>;
/** A parameter's values as loadStateDict takes them: a Tensor, a typed array, or a flat or nested number array. */
export type StateDictValue = Tensor | Float32Array | Float64Array | number[] | number[][];
/** What loadStateDict takes: values by state-dict name, in an object or a Map. */
export type StateDictInput = Record<string, StateDictValue> | Map<string, StateDictValue>;

const OPTION_NAMES = new Set([
  'inputSize', 'hiddenSize', 'numLayers', 'bidirectional', 'batchFirst', 'bias',
  'resetAfter', 'dropout', 'backend', 'threads', 'seed',
]);
const FORWARD_OPTION_NAMES = new Set(['lengths']);
const FORWARD_ASYNC_OPTION_NAMES = new Set(['lengths', 'signal']);
/** No parameter tensor may hold more elements than this (a Float32Array of 4 GiB). */
const MAX_PARAMETER_ELEMENTS = 2 ** 30;
/** Nor may a result (output or hidden state): the longest Float32Array. */
const MAX_RESULT_ELEMENTS = 2 ** 32;
/** Steps and sequences per call (the engine counts them in int32, on both backends alike). */
const MAX_STEPS_OR_BATCH = 2 ** 31 - 1;
/** Nor all of them together more than this (8 GiB of float32). */
const MAX_TOTAL_PARAMETERS = 2 ** 31;

/**
 * A gated recurrent unit with PyTorch's parameters and semantics (torch.nn.GRU): forward, forwardAsync,
 * forwardTrain and backward. The serve and io rooms add their methods when the package loads.
 */
export class GRU {
  /** I, the features of each step of x (GRUOptions.inputSize). */
  readonly inputSize: number;
  /** H, the features of the hidden state (GRUOptions.hiddenSize). */
  readonly hiddenSize: number;
  /** Stacked layers (GRUOptions.numLayers; 1 by default). */
  readonly numLayers: number;
  /** Whether each layer also runs end to start (D = 2 directions): outputs are then 2·H wide. */
  readonly bidirectional: boolean;
  /** Whether x and output are [B, T, ·] rather than [T, B, ·]. h0 and hidden are [numLayers·D, B, H] either way. */
  readonly batchFirst: boolean;
  /** Whether the model has the biases bias_ih and bias_hh. */
  readonly bias: boolean;
  /** The form of the candidate state: true is PyTorch's (see GRUOptions.resetAfter). */
  readonly resetAfter: boolean;
  /** The dropout probability between layers, applied by forwardTrain only. */
  readonly dropout: number;
  /** The seed of the initialisation and dropout masks, or undefined when they are random. */
  readonly seed: number | undefined;
  /** The thread count asked for; undefined means the backend's default (the available cores). */
  readonly threads: number | undefined;
  private readonly engine: Backend;
  private readonly specs: readonly ParameterSpec[];
  private params = new Map<string, Float32Array>();
  private model: BackendModel | null = null;
  private readonly random: Random;
  /** The share this model's parameters view (read-only), or null. */
  private readonly share_: SharedGRU | null;

  static {
    internalsOf = (gru) => ({
      specs: gru.specs,
      params: gru.params,
      shared: gru.share_,
      runOwned: (batch) => withMemoryErrors(() => gru.backendModel().forwardAsync(batch, undefined, true)).catch((error) => {
        throw memoryError(error);
      }),
      batchBuffer: (floats) => withMemoryErrors(() => gru.engine.batchBuffer(floats)),
    });
  }

  /**
   * A model with PyTorch's initialisation: every parameter drawn from U(−1/√H, 1/√H), reproducibly
   * when `options.seed` is set. Its options are torch.nn.GRU's, in camelCase.
   *
   * @param options - The sizes (inputSize and hiddenSize are required), layout, form, dropout,
   *   backend, threads and seed; see {@link GRUOptions} for each one's range and default.
   * @param shared - For {@link GRU.fromShared}, which passes the share after checking it: the
   *   parameters then view its buffer rather than being initialised. Leave it out otherwise.
   * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has an unknown key,
   *   lacks inputSize or hiddenSize, or has a value of the wrong type or out of range (sizes not
   *   positive integers, dropout outside [0, 1], threads above 1024, sizes whose weights would pass
   *   2^30 elements each or 2^31 in all).
   * @throws {@link BackendUnavailableError} (ERR_BACKEND_UNAVAILABLE) when `backend` is 'native' and
   *   the native engine does not load here (the message says why).
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when `shared` lacks a parameter of this model or
   *   places one outside its buffer.
   *
   * @example
   * ```ts
   * import { GRU } from 'fastgru';
   *
   * // torch.nn.GRU(input_size=8, hidden_size=16, num_layers=2)
   * const gru = new GRU({ inputSize: 8, hiddenSize: 16, numLayers: 2, seed: 1 });
   * console.log(gru.parameterNames()); // ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', ...]
   * ```
   */
  constructor(options: GRUOptions, shared?: SharedGRU) {
    const o = optionsObject(options, 'an object with at least inputSize and hiddenSize');
    checkKnownKeys(o, OPTION_NAMES);
    // Both sizes are required: a missing one is named before any other option is read.
    if (o.inputSize === undefined) throw argError(OptionError, 'options.inputSize', 'a positive integer', undefined);
    if (o.hiddenSize === undefined) throw argError(OptionError, 'options.hiddenSize', 'a positive integer', undefined);
    this.inputSize = positiveIntegerOption(o, 'inputSize');
    this.hiddenSize = positiveIntegerOption(o, 'hiddenSize');
    this.numLayers = positiveIntegerOption(o, 'numLayers', 1);
    this.bidirectional = booleanOption(o, 'bidirectional', false);
    this.batchFirst = booleanOption(o, 'batchFirst', false);
    this.bias = booleanOption(o, 'bias', true);
    this.resetAfter = booleanOption(o, 'resetAfter', true);
    const dropout = o.dropout === undefined ? 0 : o.dropout;
    if (typeof dropout !== 'number' || !(dropout >= 0 && dropout <= 1)) {
      throw argError(OptionError, 'options.dropout', 'a probability in [0, 1]', dropout);
    }
    this.dropout = dropout;
    const backend = backendOption(o);
    this.threads = o.threads === undefined ? undefined : positiveIntegerOption(o, 'threads');
    if (this.threads !== undefined && this.threads > 1024) {
      throw argError(OptionError, 'options.threads', 'a positive integer up to 1024', this.threads);
    }
    const seed = seedOption(o);
    this.seed = seed;
    const D = this.bidirectional ? 2 : 1;
    const H = this.hiddenSize;
    const widest = 3 * H * Math.max(this.inputSize, D * H);
    if (widest > MAX_PARAMETER_ELEMENTS) {
      throw argError(OptionError, 'options', `sizes whose largest weight holds at most 2^30 elements`,
        `inputSize ${this.inputSize}, hiddenSize ${H} (${widest} elements)`, { gotIsText: true });
    }
    const layerParams = (input: number) => D * (3 * H * input + 3 * H * H + (this.bias ? 6 * H : 0));
    const total = layerParams(this.inputSize) + (this.numLayers - 1) * layerParams(D * H);
    if (total > MAX_TOTAL_PARAMETERS) {
      throw argError(OptionError, 'options', 'sizes whose parameters hold at most 2^31 elements in all',
        `numLayers ${this.numLayers}, inputSize ${this.inputSize}, hiddenSize ${H} (${total} elements)`, { gotIsText: true });
    }
    this.engine = selectBackend(backend);
    this.specs = parameterSpecs(this);
    this.random = new Random(seed);
    this.share_ = shared ?? null;
    if (shared) {
      this.params = viewShare(shared, this.specs);
      return;
    }
    // PyTorch's initialisation: every parameter U(-1/sqrt(H), 1/sqrt(H)), in state-dict order.
    const bound = 1 / Math.sqrt(H);
    for (const spec of this.specs) {
      this.params.set(spec.name, this.random.fillUniform(new Float32Array(sizeOf(spec.shape)), -bound, bound));
    }
  }

  /** The backend this model runs on. */
  get backend(): 'js' | 'native' {
    return this.engine.name;
  }

  private get directions(): 1 | 2 {
    return this.bidirectional ? 2 : 1;
  }

  /**
   * The parameter names in PyTorch's state-dict order.
   *
   * @returns weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, then the same with `_reverse` when
   *   bidirectional, then layer 1 and so on (no bias_ names without biases).
   */
  parameterNames(): string[] {
    return this.specs.map((s) => s.name);
  }

  /**
   * A copy of every parameter under PyTorch's names, in PyTorch's order: what `gru.state_dict()`
   * holds, so it loads into torch.nn.GRU (converted to torch tensors) and back.
   *
   * @returns The parameters by name, each a Tensor with its own copy of the values: weight_ih_l{k}
   *   [3H, I] (layer 0) or [3H, D·H], weight_hh_l{k} [3H, H], bias_ih_l{k} and bias_hh_l{k} [3H], gate
   *   rows in PyTorch's order r, z, n.
   */
  stateDict(): StateDict {
    const out: StateDict = {};
    for (const spec of this.specs) out[spec.name] = { data: this.params.get(spec.name)!.slice(), shape: spec.shape };
    return out;
  }

  /**
   * The live parameters by state-dict name, as Tensors over the model's own arrays (no copy): an
   * optimizer updates them in place and then calls parametersChanged(). A shared model (fromShared)
   * is read-only and throws.
   *
   * @returns The parameters by name, as stateDict() names and shapes them, each Tensor's data the
   *   model's own array: a write into it changes the model once parametersChanged() is called.
   * @throws {@link StateDictError} (ERR_STATE_DICT) when the model views shared weights (GRU.fromShared).
   */
  parameters(): StateDict {
    if (this.share_) {
      throw new StateDictError('parameters: this model views shared weights (GRU.fromShared), which are read-only');
    }
    const out: StateDict = {};
    for (const spec of this.specs) out[spec.name] = { data: this.params.get(spec.name)!, shape: spec.shape };
    return out;
  }

  /** Says the arrays of parameters() were changed in place: the next call repacks the weights. */
  parametersChanged(): void {
    this.model = null;
  }

  /**
   * Replaces every parameter (copying the values). Names and layouts are PyTorch's; values may be
   * Tensors, Float32Arrays, Float64Arrays, flat or nested number arrays. A missing, unexpected or
   * wrongly shaped entry is an error that names it, and then nothing is changed.
   *
   * @param stateDict - Every parameter of this model and nothing else, by state-dict name, in an
   *   object or a Map: what `gru.state_dict()` holds in PyTorch (converted with `.tolist()`, or read
   *   from a file with readSafetensorsFile). A flat array or Float32Array needs as many values as the
   *   parameter's shape; a Tensor or nested array must have its shape.
   * @returns This model, for chaining (`new GRU(options).loadStateDict(sd)`).
   * @throws {@link StateDictError} (ERR_STATE_DICT) when `stateDict` is not an object or Map, an
   *   entry is missing or unexpected, a value is not a tensor or has the wrong shape or number of
   *   values, or the model views shared weights (GRU.fromShared).
   *
   * @example
   * ```ts
   * import { readFileSync } from 'node:fs';
   * import { GRU } from 'fastgru';
   *
   * // Saved in Python with
   * //   json.dump({k: v.tolist() for k, v in gru.state_dict().items()}, open("gru.json", "w"))
   * const gru = new GRU({ inputSize: 8, hiddenSize: 16, numLayers: 2 })
   *   .loadStateDict(JSON.parse(readFileSync('gru.json', 'utf8')));
   * ```
   */
  loadStateDict(stateDict: StateDictInput): this {
    if (this.share_) {
      throw new StateDictError('loadStateDict: this model views shared weights (GRU.fromShared), which are read-only; ' +
        'build a new GRU to load other weights');
    }
    if (typeof stateDict !== 'object' || stateDict === null || Array.isArray(stateDict)) {
      throw argError(StateDictError, 'stateDict', 'an object mapping parameter names to tensors', stateDict);
    }
    const entries = new Map<string, unknown>(
      stateDict instanceof Map ? stateDict : Object.entries(stateDict),
    );
    const expected = new Set(this.specs.map((s) => s.name));
    const missing = this.specs.map((s) => s.name).filter((name) => !entries.has(name));
    const unexpected = [...entries.keys()].filter((name) => !expected.has(name));
    if (missing.length > 0 || unexpected.length > 0) {
      const parts: string[] = [];
      if (missing.length) parts.push(`missing ${missing.join(', ')}`);
      if (unexpected.length) parts.push(`unexpected ${unexpected.map(String).join(', ')}`);
      throw new StateDictError(
        `stateDict: expected exactly the parameters of this GRU (${this.describeConfig()}): ${parts.join('; ')}`,
      );
    }
    const next = new Map<string, Float32Array>();
    for (const spec of this.specs) {
      next.set(spec.name, readParameter(entries.get(spec.name), spec));
    }
    this.params = next;
    this.model = null;
    return this;
  }

  private describeConfig(): string {
    return `numLayers ${this.numLayers}, ${this.bidirectional ? 'bidirectional' : 'unidirectional'}, ` +
      `bias ${this.bias}, inputSize ${this.inputSize}, hiddenSize ${this.hiddenSize}`;
  }

  private backendModel(): BackendModel {
    if (!this.model) {
      const weights: LayerWeights[] = gruDirectionNames(this).map((n) => ({
        wIh: this.params.get(n.wIh)!,
        wHh: this.params.get(n.wHh)!,
        bIh: this.params.get(n.bIh) ?? null,
        bHh: this.params.get(n.bHh) ?? null,
      }));
      const config: GruConfig = {
        inputSize: this.inputSize,
        hiddenSize: this.hiddenSize,
        numLayers: this.numLayers,
        numDirections: this.directions,
        resetAfter: this.resetAfter,
        bias: this.bias,
      };
      this.model = this.engine.createModel(config, weights, this.threads, { shared: this.share_ !== null });
    }
    return this.model;
  }

  /**
   * Runs the GRU over x, in inference mode (no dropout): `output, h_n = gru(x, h0)` in PyTorch.
   * Inference calls may run concurrently on one model; the native backend uses `threads` cores.
   *
   * @param x - The input: [T, B, I] ([B, T, I] with batchFirst), or [T, I] for one unbatched
   *   sequence; a Tensor or a nested number array.
   * @param h0 - The initial hidden state, [numLayers·D, B, H] ([numLayers·D, H] unbatched), D = 2 when
   *   bidirectional; null or omitted for zeros.
   * @param options - `lengths`: each sequence's length, an integer in 0..T, for sequences padded to T
   *   (PyTorch's pack_padded_sequence; unsorted lengths are fine).
   * @returns `output` [T, B, D·H] ([B, T, D·H] with batchFirst, [T, D·H] unbatched), the last layer's
   *   state at every step, zero past each length; `hidden` [numLayers·D, B, H], each sequence's state
   *   after its last step. Both are new arrays of the caller's.
   * @throws {@link ShapeError} (ERR_SHAPE) when x is not [T, B, I] or [T, I] with this model's I, h0
   *   has another shape than the one above, or lengths has not one entry per sequence.
   * @throws {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when x or h0 is not a Tensor or nested number array,
   *   lengths is not an array of numbers, or a length is not an integer in 0..T.
   * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object or has an unknown key.
   * @throws {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) when the output or working memory cannot be allocated.
   *
   * @example
   * ```ts
   * import { GRU, tensor } from 'fastgru';
   *
   * const gru = new GRU({ inputSize: 8, hiddenSize: 16 });
   * const x = tensor(new Float32Array(10 * 2 * 8), [10, 2, 8]); // T = 10 steps, B = 2 sequences
   * const { output, hidden } = gru.forward(x, null, { lengths: [10, 7] });
   * console.log(output.shape, hidden.shape); // [10, 2, 16] [1, 2, 16]
   * ```
   */
  forward(x: TensorLike, h0?: TensorLike | null, options?: ForwardOptions | null): GRUOutput {
    const call = this.prepare(x, h0, options);
    const result = withMemoryErrors(() => this.backendModel().forward(call.batch));
    return call.wrap(result.output, result.hidden);
  }

  /**
   * forward, settled asynchronously: on the native backend the work runs on a libuv worker thread,
   * so the event loop stays free. The inputs are copied when it is called, so the caller may reuse
   * or transfer them at once. Argument errors reject the promise rather than throw.
   *
   * @param x - The input, as for {@link GRU.forward}: [T, B, I] ([B, T, I] with batchFirst) or [T, I].
   * @param h0 - The initial hidden state, [numLayers·D, B, H] ([numLayers·D, H] unbatched); null or
   *   omitted for zeros.
   * @param options - `lengths`, as for forward, and `signal`: an AbortSignal; aborting it before the
   *   work starts rejects the promise (once started, the call completes).
   * @returns A promise of forward's result: `output` [T, B, D·H] and `hidden` [numLayers·D, B, H].
   * @throws {@link ShapeError} (ERR_SHAPE), {@link DTypeError} (ERR_DTYPE), {@link ArgumentError}
   *   (ERR_ARGUMENT), {@link OptionError} (ERR_OPTION) and {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY)
   *   as forward does, as rejections; ArgumentError too when `signal` is not an AbortSignal.
   * @throws {@link AbortedError} (ERR_ABORTED), as a rejection, when `signal` aborts before the work
   *   starts; its `cause` is the signal's reason.
   *
   * @example
   * ```ts
   * import { GRU } from 'fastgru';
   *
   * const gru = new GRU({ inputSize: 4, hiddenSize: 8 });
   * const x = [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]; // [T = 2, I = 4], one sequence
   * const { output } = await gru.forwardAsync(x, null, { signal: AbortSignal.timeout(1000) });
   * console.log(output.shape); // [2, 8]
   * ```
   */
  async forwardAsync(x: TensorLike, h0?: TensorLike | null, options?: ForwardAsyncOptions | null): Promise<GRUOutput> {
    const stack = callerStack();
    const call = this.prepare(x, h0, options, FORWARD_ASYNC_OPTION_NAMES);
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw argError(ArgumentError, 'options.signal', 'an AbortSignal', signal);
    }
    if (signal?.aborted) throw abortedError(signal);
    const result = await withMemoryErrors(() => this.backendModel().forwardAsync(call.batch, signal)).catch((error) => {
      throw withCallerStack(memoryError(error), stack);
    });
    return call.wrap(result.output, result.hidden);
  }

  /**
   * forward in training mode (dropout on between layers), keeping what backward needs: the model's
   * output and a `backward` that gives the gradients of the input, h0 and every parameter, as
   * `output.backward(...)` and the `.grad`s do in PyTorch. The run keeps the weights it was recorded
   * with, so an optimizer step or loadStateDict before backward does not change its gradients.
   *
   * @param x - The input, as for {@link GRU.forward}: [T, B, I] ([B, T, I] with batchFirst) or [T, I].
   * @param h0 - The initial hidden state, [numLayers·D, B, H] ([numLayers·D, H] unbatched); null or
   *   omitted for zeros.
   * @param options - `lengths`, as for forward: steps past a sequence's length get no output and no gradient.
   * @returns The run: `output` and `hidden` as forward gives them, and `backward(dOutput, dHidden)`.
   * @throws {@link ShapeError} (ERR_SHAPE), {@link DTypeError} (ERR_DTYPE), {@link ArgumentError}
   *   (ERR_ARGUMENT), {@link OptionError} (ERR_OPTION) and {@link OutOfMemoryError}
   *   (ERR_OUT_OF_MEMORY) as forward does.
   *
   * @example
   * ```ts
   * import { GRU, SGD, tensor } from 'fastgru';
   *
   * const gru = new GRU({ inputSize: 8, hiddenSize: 16, seed: 1 });
   * const opt = new SGD({ gru }, { lr: 0.1 });
   * const x = tensor(new Float32Array(10 * 2 * 8).fill(0.5), [10, 2, 8]);
   * const run = gru.forwardTrain(x);
   * // For the loss 0.5·‖output‖², the gradient of the output is the output itself.
   * const { dInput, grads } = run.backward(run.output);
   * opt.step({ gru: grads });
   * console.log(dInput.shape); // [10, 2, 8]
   * ```
   */
  forwardTrain(x: TensorLike, h0?: TensorLike | null, options?: ForwardOptions | null): TrainingRun {
    const call = this.prepare(x, h0, options);
    const masks = this.dropoutMasks(call.batch);
    const run = withMemoryErrors(() => this.backendModel().forwardTrain(call.batch, masks));
    const { output, hidden } = call.wrap(run.output, run.hidden);
    const shapes = new Map(this.specs.map((spec) => [spec.name, spec.shape]));
    const names = gruDirectionNames(this);
    return {
      output,
      hidden,
      backward: (dOutput?: TensorLike | null, dHidden?: TensorLike | null): GRUGradients => {
        const dOut = optionalGradient(dOutput, 'dOutput', output.shape, 'output');
        const dHid = optionalGradient(dHidden, 'dHidden', hidden.shape, 'hidden');
        const g = withMemoryErrors(() => run.backward(dOut, dHid));
        const grads: StateDict = {};
        names.forEach((n, index) => {
          for (const key of ['wIh', 'wHh', 'bIh', 'bHh'] as const) {
            const data = g.weights[index][key];
            if (data) grads[n[key]] = { data, shape: shapes.get(n[key])! };
          }
        });
        return {
          dInput: { data: g.dInput, shape: call.inputShape },
          dH0: { data: g.dH0, shape: hidden.shape },
          grads,
        };
      },
    };
  }

  private dropoutMasks(batch: SequenceBatch): Float32Array[] | null {
    if (this.dropout === 0 || this.numLayers === 1) return null;
    const size = batch.steps * batch.batch * this.directions * this.hiddenSize;
    const keep = 1 - this.dropout;
    const scale = keep > 0 ? 1 / keep : 0;
    const masks: Float32Array[] = [];
    for (let layer = 0; layer < this.numLayers - 1; layer++) {
      const mask = new Float32Array(size);
      for (let k = 0; k < size; k++) mask[k] = this.random.nextFloat() < keep ? scale : 0;
      masks.push(mask);
    }
    return masks;
  }

  /** Checks forward's arguments and builds the backend's batch and the result's shapes. */
  private prepare(xArg: TensorLike, h0Arg: TensorLike | null | undefined, options: ForwardOptions | null | undefined,
    knownOptions = FORWARD_OPTION_NAMES) {
    const x = toTensor(xArg, 'x');
    const I = this.inputSize;
    const H = this.hiddenSize;
    const LD = this.numLayers * this.directions;
    const DH = this.directions * H;
    const batched = x.shape.length === 3;
    if ((x.shape.length !== 2 && x.shape.length !== 3) || x.shape[x.shape.length - 1] !== I) {
      const layout = this.batchFirst ? 'B, T' : 'T, B';
      throw argError(ShapeError, 'x', `shape [${layout}, ${I}] (or [T, ${I}] for one unbatched sequence)`,
        formatShape(x.shape), { gotIsText: true });
    }
    const steps = batched ? x.shape[this.batchFirst ? 1 : 0] : x.shape[0];
    const batch = batched ? x.shape[this.batchFirst ? 0 : 1] : 1;
    if (steps > MAX_STEPS_OR_BATCH || batch > MAX_STEPS_OR_BATCH) {
      throw argError(ShapeError, 'x', `at most ${MAX_STEPS_OR_BATCH} steps and sequences`, formatShape(x.shape), { gotIsText: true });
    }
    const hiddenShape = batched ? [LD, batch, H] : [LD, H];
    if (steps * batch * DH > MAX_RESULT_ELEMENTS || LD * batch * H > MAX_RESULT_ELEMENTS) {
      throw argError(ShapeError, 'x', `a shape whose output and hidden state hold at most 2^32 elements each`,
        formatShape(x.shape), { gotIsText: true });
    }
    let h0: Float32Array | null = null;
    if (h0Arg !== undefined && h0Arg !== null) {
      const h = toTensor(h0Arg, 'h0');
      if (!sameShape(h.shape, hiddenShape)) {
        throw argError(ShapeError, 'h0', `shape ${formatShape(hiddenShape)} ([numLayers * directions, ${batched ? 'B, ' : ''}hiddenSize])`,
          formatShape(h.shape), { gotIsText: true });
      }
      h0 = h.data;
    }
    checkKnownKeys(optionsObject(options, 'an object such as { lengths }', 'options', true), knownOptions);
    const lengths = readLengths(options?.lengths, batch, steps);
    // A getter read above (options, lengths, h0's data) may have detached or transferred x's or h0's
    // buffer: every backend would then read a zero-length view. Checked once, after the last getter.
    if (x.data.length !== steps * batch * I) {
      throw argError(ArgumentError, 'x', `a buffer that stays attached while the arguments are read (${steps * batch * I} floats)`,
        `one detached or resized to ${x.data.length} floats`, { gotIsText: true });
    }
    if (h0 !== null && h0.length !== LD * batch * H) {
      throw argError(ArgumentError, 'h0', `a buffer that stays attached while the arguments are read (${LD * batch * H} floats)`,
        `one detached or resized to ${h0.length} floats`, { gotIsText: true });
    }
    const outputShape = batched
      ? this.batchFirst ? [batch, steps, DH] : [steps, batch, DH]
      : [steps, DH];
    const seqBatch: SequenceBatch = {
      x: x.data,
      steps,
      batch,
      batchFirst: batched && this.batchFirst,
      h0,
      lengths,
    };
    const frozenOutput = Object.freeze(outputShape);
    const frozenHidden = Object.freeze(hiddenShape);
    return {
      batch: seqBatch,
      inputShape: x.shape,
      wrap: (output: Float32Array, hidden: Float32Array): GRUOutput => ({
        output: { data: output, shape: frozenOutput },
        hidden: { data: hidden, shape: frozenHidden },
      }),
    };
  }
}

function readLengths(value: unknown, batch: number, steps: number): Int32Array | null {
  if (value === undefined || value === null) return null;
  const isList = Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView));
  if (!isList || value instanceof BigInt64Array || value instanceof BigUint64Array) {
    throw argError(ArgumentError, 'options.lengths', `an array of ${batch} integers`, value);
  }
  const list = value as ArrayLike<unknown>;
  if (list.length !== batch) {
    throw argError(ShapeError, 'options.lengths', `one length per sequence (${batch})`, `${list.length} lengths`, {
      gotIsText: true,
    });
  }
  const out = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    const L = list[b];
    if (typeof L !== 'number' || !Number.isInteger(L) || L < 0 || L > steps) {
      throw argError(ArgumentError, `options.lengths[${b}]`, `an integer in 0..${steps} (T)`, L);
    }
    out[b] = L;
  }
  return out;
}

function optionalGradient(value: TensorLike | null | undefined, arg: string, shape: readonly number[], of: string): Float32Array | null {
  return value === undefined || value === null ? null : gradientOf(value, arg, shape, of).data;
}

/** A float32 copy of a parameter's values; a detached buffer is a StateDictError, not V8's TypeError. */
function copyValues(values: Float32Array | Float64Array, arg: string): Float32Array {
  try {
    return Float32Array.from(values);
  } catch (error) {
    if (error instanceof TypeError) throw argError(StateDictError, arg, 'a readable array', 'a detached buffer', { gotIsText: true });
    throw error;
  }
}

/** A state-dict value checked against its spec (name and shape) and copied to float32; errors name `stateDict.<name>`. */
export function readParameter(value: unknown, spec: ParameterSpec): Float32Array {
  const arg = `stateDict.${spec.name}`;
  const expected = formatShape(spec.shape);
  let data: Float32Array;
  let shape: readonly number[] | null = null;
  if (value instanceof Float32Array || value instanceof Float64Array) {
    data = copyValues(value, arg);
  } else if (Array.isArray(value)) {
    let t: Tensor;
    try {
      t = tensor(value as number[], undefined, arg);
    } catch (error) {
      throw new StateDictError((error as Error).message);
    }
    data = t.data.slice();
    if (t.shape.length > 1) shape = t.shape;
  } else if (typeof value === 'object' && value !== null && 'data' in value && 'shape' in value) {
    const v = value as { data: unknown; shape: unknown };
    if (!(v.data instanceof Float32Array) && !(v.data instanceof Float64Array)) {
      throw argError(StateDictError, `${arg}.data`, 'a Float32Array', v.data);
    }
    try {
      shape = checkShape(v.shape, `${arg}.shape`);
    } catch (error) {
      throw new StateDictError((error as Error).message);
    }
    data = copyValues(v.data, `${arg}.data`);
  } else if (ArrayBuffer.isView(value)) {
    throw argError(StateDictError, arg, 'a Tensor, Float32Array, Float64Array or number array', value);
  } else {
    throw argError(StateDictError, arg, `a tensor of shape ${expected}`, value);
  }
  if (shape && !sameShape(shape, spec.shape)) {
    throw argError(StateDictError, arg, `shape ${expected}`, formatShape(shape), { gotIsText: true });
  }
  if (data.length !== sizeOf(spec.shape)) {
    throw argError(StateDictError, arg, `${sizeOf(spec.shape)} values (shape ${expected})`, `${data.length} values`, {
      gotIsText: true,
    });
  }
  return data;
}


/** Checks a share against a model's parameters and returns views of its buffer, by name. */
function viewShare(shared: SharedGRU, specs: readonly ParameterSpec[]): Map<string, Float32Array> {
  const s = shared;
  if (!(s.buffer instanceof SharedArrayBuffer)) throw argError(ArgumentError, 'shared.buffer', 'a SharedArrayBuffer', s.buffer);
  if (!Array.isArray(s.tensors)) throw argError(ArgumentError, 'shared.tensors', 'an array', s.tensors);
  const floats = s.buffer.byteLength / 4;
  const params = new Map<string, Float32Array>();
  for (const spec of specs) {
    const entry = s.tensors.find((t) => t && t.name === spec.name);
    if (!entry) throw argError(ArgumentError, 'shared.tensors', `an entry for ${spec.name}`, 'none', { gotIsText: true });
    const n = sizeOf(spec.shape);
    const same = Array.isArray(entry.shape) && entry.shape.length === spec.shape.length && entry.shape.every((d: number, i: number) => d === spec.shape[i]);
    if (!same || !Number.isSafeInteger(entry.offset) || entry.offset < 0 || entry.offset + n > floats) {
      throw argError(ArgumentError, `shared.tensors (${spec.name})`, `shape [${spec.shape.join(', ')}] inside the buffer`,
        `shape ${JSON.stringify(entry.shape)} at offset ${String(entry.offset)} of ${floats} floats`, { gotIsText: true });
    }
    params.set(spec.name, new Float32Array(s.buffer, entry.offset * 4, n));
  }
  return params;
}
