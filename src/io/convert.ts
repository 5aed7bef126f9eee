/**
 * Converters between fastgru's parameters (PyTorch's state-dict layout: weight_ih_l{k} [3H, I],
 * weight_hh_l{k} [3H, H], bias_ih_l{k} and bias_hh_l{k} [3H], gate rows r, z, n) and the layouts
 * of Keras's GRU layer and ONNX's GRU operator. Every conversion is a permutation (and for Keras a
 * transposition) of the same float32 values, copied bit for bit; the one exception is Keras's
 * reset_after=False form, which has a single bias (see toKeras).
 *
 * The two GRU forms are different functions, and each framework records which one its weights are
 * for: Keras by reset_after (and the bias's shape), ONNX by linear_before_reset. Converting weights
 * of one form for a model of the other is an error.
 */
import { argError, FastGruError, formatShape, OptionError, StateDictError } from '../errors.js';
import { booleanOption, checkKnownKeys } from '../check.js';
import { gruDirectionNames, parameterName, parameterShape, type ParameterKind } from '../pytorch.js';
import { sameShape, toTensor, type Tensor, type TensorLike } from '../tensor.js';
import { inferGruOptions, type GruLayoutOptions } from './statedict.js';

/**
 * One Keras GRU layer's weights, as `layer.get_weights()` lists them (or `layer.weights` names
 * them): `kernel` [I, 3H] and `recurrent_kernel` [H, 3H] with gate columns z, r, h; `bias` [3H]
 * with reset_after=False, [2, 3H] (input bias, recurrent bias) with reset_after=True, absent with
 * use_bias=False. `reset_after` is the layer's config value, needed only when there is no bias.
 */
export interface KerasGruWeights<T = TensorLike> {
  /** The input weights, [I, 3H] (the layer's input features by units of gates z, r, h). */
  kernel: T;
  /** The recurrent weights, [H, 3H]. */
  recurrent_kernel: T;
  /** [2, 3H] (input bias, recurrent bias) with reset_after=True, [3H] with False; absent or null without biases. */
  bias?: T | null;
  /** The layer's reset_after setting (Keras 2's default True); needed only when there is no bias to show it. */
  reset_after?: boolean;
}

/** A `Bidirectional(GRU(...))` layer (merge_mode 'concat'): its forward_layer and backward_layer. */
export interface KerasBidirectionalWeights<T = TensorLike> {
  /** The forward_layer's weights: fastgru's direction 0 (the names without `_reverse`). */
  forward: KerasGruWeights<T>;
  /** The backward_layer's weights: fastgru's `_reverse` direction. */
  backward: KerasGruWeights<T>;
}

/** One layer of a Keras stack: a GRU, or a Bidirectional wrapper of one. */
export type KerasGruLayer<T = TensorLike> = KerasGruWeights<T> | KerasBidirectionalWeights<T>;

/**
 * One ONNX GRU node's initializers and attributes: `W` [D, 3H, I], `R` [D, 3H, H] with gate rows
 * z, r, h; `B` [D, 6H] (Wb then Rb; absent means zeros). `linear_before_reset` is ONNX's attribute
 * (absent means 0, ONNX's default); `direction` 'forward' (default) or 'bidirectional' (D = 2).
 */
export interface OnnxGruWeights<T = TensorLike> {
  /** The input weights, [D, 3H, I] (layer 0) or [D, 3H, D·H], gate rows z, r, h. */
  W: T;
  /** The recurrent weights, [D, 3H, H]. */
  R: T;
  /** The biases [D, 6H]: Wb (z, r, h) then Rb; absent or null for zeros. */
  B?: T | null;
  /** ONNX's attribute: 1 for fastgru's resetAfter true (PyTorch's form), 0 (the default) for false. */
  linear_before_reset?: number;
  /** 'forward' (the default with D = 1) or 'bidirectional' (D = 2); 'reverse' has no fastgru equivalent and is refused. */
  direction?: 'forward' | 'reverse' | 'bidirectional';
  /** When given, checked against H from R's shape. */
  hidden_size?: number;
}

/** An ONNX GRU node as toOnnx makes it: every attribute set, B absent without biases. */
export interface OnnxGruNode {
  /** The input weights, [D, 3H, I] (layer 0) or [D, 3H, D·H], gate rows z, r, h. */
  W: Tensor;
  /** The recurrent weights, [D, 3H, H]. */
  R: Tensor;
  /** The biases [D, 6H], Wb then Rb; absent when the model has no biases. */
  B?: Tensor;
  /** 1 for resetAfter true, 0 for false. */
  linear_before_reset: 0 | 1;
  /** 'bidirectional' for a bidirectional model, else 'forward'. */
  direction: 'forward' | 'bidirectional';
  /** H. */
  hidden_size: number;
}

/** What converting to fastgru gives: the options to build the GRU with, and its state dict. */
export interface ConvertedGru {
  /** The options of the GRU the weights belong to, form included: `new GRU(options)`. */
  options: GruLayoutOptions;
  /** The weights in PyTorch's names and layouts: `gru.loadStateDict(stateDict)`. */
  stateDict: Record<string, Tensor>;
}

/** A state dict to convert: PyTorch's names; values Tensors or nested number arrays. */
export type StateDictLike = Record<string, TensorLike> | Map<string, TensorLike>;

/** The options of fromKeras and fromOnnx. */
export interface FromOptions {
  /** The form of the model the weights are for; when given, weights of the other form are an error. */
  resetAfter?: boolean;
}

/** The options of toKeras and toOnnx. */
export interface ToOptions {
  /** The form of the model whose state dict this is (a state dict cannot show it). */
  resetAfter: boolean;
}

/** Gate block g of ours (r, z, n) is block PERM[g] of Keras's and ONNX's (z, r, h), and back. */
const PERM = [1, 0, 2] as const;

/**
 * Gate row blocks of a [3H, cols] matrix (a vector when cols is 1) from ours (r, z, n) to Keras's
 * and ONNX's (z, r, h). The permutation is its own inverse, so the same call converts back.
 */
function permuteGates(src: Float32Array, srcOffset: number, out: Float32Array, outOffset: number, H: number, cols = 1): void {
  const s = bitsOf(src);
  const o = bitsOf(out);
  for (let g = 0; g < 3; g++) {
    const from = srcOffset + g * H * cols;
    o.set(s.subarray(from, from + H * cols), outOffset + PERM[g] * H * cols);
  }
}

/** One direction of one layer in our layout. */
interface Direction {
  wIh: Float32Array;
  wHh: Float32Array;
  bIh: Float32Array | null;
  bHh: Float32Array | null;
}

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function formText(resetAfter: boolean): string {
  return resetAfter
    ? 'the resetAfter: true form, n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))'
    : 'the resetAfter: false form, n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)';
}

const DIFFERENT = 'the two forms are different functions, so weights of one do not carry over to the other';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

function checkKeys(value: Record<string, unknown>, known: readonly string[], arg: string): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw argError(StateDictError, arg, `only the keys ${known.join(', ')}`, `the key ${JSON.stringify(key)}`, { gotIsText: true });
    }
  }
}

function readTensor(value: unknown, arg: string): Tensor {
  try {
    return toTensor(value, arg);
  } catch (error) {
    if (error instanceof FastGruError) throw new StateDictError(error.message);
    throw error;
  }
}

function expectShape(t: Tensor, expected: readonly number[], arg: string, why: string): void {
  if (!sameShape(t.shape, expected)) {
    throw argError(StateDictError, arg, `shape ${formatShape(expected)} (${why})`, formatShape(t.shape), { gotIsText: true });
  }
}

function checkFromOptions(options: unknown): boolean | undefined {
  if (options === undefined || options === null) return undefined;
  if (!isObject(options)) throw argError(OptionError, 'options', 'an object such as { resetAfter }', options);
  checkKnownKeys(options, ['resetAfter']);
  return booleanOption(options, 'resetAfter');
}

function checkToOptions(options: unknown): boolean {
  if (!isObject(options)) throw argError(OptionError, 'options', 'an object { resetAfter } (a state dict does not show its form)', options);
  checkKnownKeys(options, ['resetAfter']);
  if (typeof options.resetAfter !== 'boolean') throw argError(OptionError, 'options.resetAfter', 'a boolean', options.resetAfter);
  return options.resetAfter;
}

function listOf(value: unknown, arg: string, what: string): unknown[] {
  const list = Array.isArray(value) ? value : isObject(value) ? [value] : null;
  if (list === null || list.length === 0) throw argError(StateDictError, arg, `${what} (or a non-empty array of them, one per layer)`, value);
  return list;
}

/**
 * The form the weights record, checked against the caller's. `shown` holds, for each place that
 * shows a form, its argument, its form and how it shows it.
 */
function resolveForm(
  shown: Array<{ arg: string; resetAfter: boolean; how: string }>,
  wanted: boolean | undefined,
  noForm: string,
): boolean {
  const first = shown[0];
  for (const s of shown) {
    if (wanted !== undefined && s.resetAfter !== wanted) {
      throw argError(StateDictError, s.arg, `weights of ${formText(wanted)} (options.resetAfter ${wanted})`,
        `${s.how}, weights of ${formText(s.resetAfter)}; ${DIFFERENT}`, { gotIsText: true });
    }
    if (s.resetAfter !== first.resetAfter) {
      throw argError(StateDictError, s.arg, `the form of ${first.arg} (${first.how})`,
        `${s.how}: a model has one form, and ${DIFFERENT}`, { gotIsText: true });
    }
  }
  if (first) return first.resetAfter;
  if (wanted !== undefined) return wanted;
  throw argError(OptionError, 'options.resetAfter', `a boolean (${noForm}, so they do not show the GRU's form)`, undefined);
}

/** Our state dict from directions in layer-major order, with PyTorch's names and order. */
function buildStateDict(directions: Direction[], D: number, shapes: { I: number; H: number }): Record<string, Tensor> {
  const { I, H } = shapes;
  const entries: Array<[string, Tensor]> = [];
  const sizes = { inputSize: I, hiddenSize: H, directions: D };
  directions.forEach((dir, index) => {
    const k = Math.floor(index / D);
    const d = index % D;
    const add = (kind: ParameterKind, data: Float32Array) =>
      entries.push([parameterName(kind, k, d), { data, shape: parameterShape(kind, k, sizes) }]);
    add('weight_ih', dir.wIh);
    add('weight_hh', dir.wHh);
    if (dir.bIh && dir.bHh) {
      add('bias_ih', dir.bIh);
      add('bias_hh', dir.bHh);
    }
  });
  return Object.fromEntries(entries);
}

/** Our state dict's directions (layer-major), read and checked. */
function readStateDict(stateDict: unknown): { shape: ReturnType<typeof inferGruOptions>; directions: Direction[] } {
  const shape = inferGruOptions(stateDict as Record<string, unknown>);
  const get = (name: string): Float32Array => {
    const value = stateDict instanceof Map ? stateDict.get(name) : (stateDict as Record<string, unknown>)[name];
    return readTensor(value, `stateDict.${name}`).data;
  };
  const directions: Direction[] = gruDirectionNames(shape).map((names) => ({
    wIh: get(names.wIh),
    wHh: get(names.wHh),
    bIh: shape.bias ? get(names.bIh) : null,
    bHh: shape.bias ? get(names.bHh) : null,
  }));
  return { shape, directions };
}

// ---------------------------------------------------------------------------------------------
// Keras
// ---------------------------------------------------------------------------------------------

/** Which way convertKerasMatrix goes. */
type KerasDirection = 'fromKeras' | 'toKeras';

/**
 * Keras [rows, 3H] (gate column blocks z, r, h) to ours [3H, rows] (gate row blocks r, z, n), or
 * back: unit j of our gate g is our row g·H + j and Keras's column PERM[g]·H + j.
 */
function convertKerasMatrix(src: Float32Array, rows: number, H: number, direction: KerasDirection): Float32Array {
  const out = new Float32Array(3 * H * rows);
  const s = bitsOf(src);
  const o = bitsOf(out);
  const toKeras = direction === 'toKeras';
  // One unit's values are consecutive in ours (a row) and 3H apart in Keras's (a column).
  const srcStep = toKeras ? 1 : 3 * H;
  const outStep = toKeras ? 3 * H : 1;
  for (let g = 0; g < 3; g++) {
    for (let j = 0; j < H; j++) {
      const ours = (g * H + j) * rows;
      const keras = PERM[g] * H + j;
      const from = toKeras ? ours : keras;
      const to = toKeras ? keras : ours;
      for (let i = 0; i < rows; i++) o[to + i * outStep] = s[from + i * srcStep];
    }
  }
  return out;
}

interface KerasCell {
  arg: string;
  kernel: Tensor;
  recurrent: Tensor;
  bias: Tensor | null;
  resetAfter: boolean | undefined;
}

function readKerasCell(value: unknown, arg: string): KerasCell {
  if (!isObject(value)) throw argError(StateDictError, arg, 'a Keras GRU layer\'s weights { kernel, recurrent_kernel, bias? }', value);
  checkKeys(value, ['kernel', 'recurrent_kernel', 'bias', 'reset_after'], arg);
  if (value.reset_after !== undefined && typeof value.reset_after !== 'boolean') {
    throw argError(StateDictError, `${arg}.reset_after`, 'a boolean (the layer\'s reset_after)', value.reset_after);
  }
  return {
    arg,
    kernel: readTensor(value.kernel, `${arg}.kernel`),
    recurrent: readTensor(value.recurrent_kernel, `${arg}.recurrent_kernel`),
    bias: value.bias === undefined || value.bias === null ? null : readTensor(value.bias, `${arg}.bias`),
    resetAfter: value.reset_after as boolean | undefined,
  };
}

/**
 * fastgru's options and state dict from Keras GRU layers, first to last (one weight set, or a
 * Bidirectional's { forward, backward }, per layer). The form comes from each layer's bias shape
 * or reset_after; `options.resetAfter`, when given, must agree. Layers without a bias get zero
 * biases when others have one. Exact: the values are copied bit for bit.
 *
 * @param layers - One layer's weights, or an array of them, first layer first: each a
 *   {@link KerasGruWeights} (`{ kernel, recurrent_kernel, bias }` from `layer.get_weights()`), or a
 *   {@link KerasBidirectionalWeights} for a Bidirectional layer (all layers then are).
 * @param options - `resetAfter`: the form expected; weights of the other form are refused.
 * @returns The GRU's options (form included) and its state dict in PyTorch's layout.
 * @throws {@link StateDictError} (ERR_STATE_DICT) when a layer is not such an object, has an unknown
 *   key, a weight of the wrong shape (the message says which and why), or a form that disagrees with
 *   another layer's or with options.resetAfter.
 * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object or has another key, or no
 *   layer has a bias or reset_after to show the form and options.resetAfter does not give it.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { fromKeras, GRU } from 'fastgru';
 *
 * // A keras.layers.GRU(16) over 8 features, saved in Python with
 * //   json.dump([w.tolist() for w in layer.get_weights()], open("keras_gru.json", "w"))
 * const [kernel, recurrent_kernel, bias] = JSON.parse(readFileSync('keras_gru.json', 'utf8'));
 * const { options, stateDict } = fromKeras({ kernel, recurrent_kernel, bias });
 * const gru = new GRU(options).loadStateDict(stateDict); // inputSize 8, hiddenSize 16, resetAfter true
 * ```
 */
export function fromKeras(layers: KerasGruLayer | readonly KerasGruLayer[], options?: FromOptions): ConvertedGru {
  const wanted = checkFromOptions(options);
  const list = listOf(layers, 'layers', 'a Keras GRU layer\'s weights');
  const bidirectional = isObject(list[0]) && 'forward' in list[0];
  const D = bidirectional ? 2 : 1;
  const cells: KerasCell[] = [];
  list.forEach((layer, k) => {
    const arg = Array.isArray(layers) ? `layers[${k}]` : 'layers';
    if (!isObject(layer)) throw argError(StateDictError, arg, 'a Keras GRU layer\'s weights', layer);
    if (('forward' in layer) !== bidirectional) {
      throw argError(StateDictError, arg,
        bidirectional ? 'a Bidirectional layer\'s { forward, backward }, as layers[0]' : 'one GRU\'s weights, as layers[0]',
        bidirectional ? 'one GRU\'s weights' : 'a Bidirectional layer\'s { forward, backward }', { gotIsText: true });
    }
    if (bidirectional) {
      checkKeys(layer, ['forward', 'backward'], arg);
      cells.push(readKerasCell(layer.forward, `${arg}.forward`), readKerasCell(layer.backward, `${arg}.backward`));
    } else {
      cells.push(readKerasCell(layer, arg));
    }
  });

  const first = cells[0];
  if (first.recurrent.shape.length !== 2 || first.recurrent.shape[0] < 1 || first.recurrent.shape[1] !== 3 * first.recurrent.shape[0]) {
    throw argError(StateDictError, `${first.arg}.recurrent_kernel`, 'shape [units, 3·units] (gate columns z, r, h)',
      formatShape(first.recurrent.shape), { gotIsText: true });
  }
  const H = first.recurrent.shape[0];
  if (first.kernel.shape.length !== 2 || first.kernel.shape[0] < 1 || first.kernel.shape[1] !== 3 * H) {
    throw argError(StateDictError, `${first.arg}.kernel`, `shape [inputSize, ${3 * H}] (units ${H} from recurrent_kernel)`,
      formatShape(first.kernel.shape), { gotIsText: true });
  }
  const I = first.kernel.shape[0];
  const shown: Array<{ arg: string; resetAfter: boolean; how: string }> = [];
  cells.forEach((cell, index) => {
    const k = Math.floor(index / D);
    const input = k === 0 ? I : D * H;
    expectShape(cell.recurrent, [H, 3 * H], `${cell.arg}.recurrent_kernel`, `units ${H}, gate columns z, r, h`);
    expectShape(cell.kernel, [input, 3 * H], `${cell.arg}.kernel`,
      k === 0 ? `inputSize ${I}, units ${H}` : `layer ${k} reads the ${input} features of layer ${k - 1}`);
    if (cell.bias) {
      const [b0, b1] = cell.bias.shape;
      const biasForm = cell.bias.shape.length === 1 && b0 === 3 * H ? false
        : cell.bias.shape.length === 2 && b0 === 2 && b1 === 3 * H ? true : undefined;
      if (biasForm === undefined) {
        throw argError(StateDictError, `${cell.arg}.bias`, `shape [${3 * H}] (reset_after=False) or [2, ${3 * H}] (reset_after=True)`,
          formatShape(cell.bias.shape), { gotIsText: true });
      }
      if (cell.resetAfter !== undefined && cell.resetAfter !== biasForm) {
        throw argError(StateDictError, `${cell.arg}.reset_after`, `${biasForm} (the bias ${formatShape(cell.bias.shape)} is of that form)`,
          cell.resetAfter);
      }
      shown.push({ arg: `${cell.arg}.bias`, resetAfter: biasForm, how: `bias ${formatShape(cell.bias.shape)} (reset_after=${biasForm ? 'True' : 'False'})` });
    } else if (cell.resetAfter !== undefined) {
      shown.push({ arg: `${cell.arg}.reset_after`, resetAfter: cell.resetAfter, how: `reset_after ${cell.resetAfter}` });
    }
  });
  const resetAfter = resolveForm(shown, wanted, 'the layers have neither a bias nor reset_after');
  const bias = cells.some((c) => c.bias !== null);

  const directions = cells.map((cell, index): Direction => {
    const input = index < D ? I : D * H;
    const dir: Direction = {
      wIh: convertKerasMatrix(cell.kernel.data, input, H, 'fromKeras'),
      wHh: convertKerasMatrix(cell.recurrent.data, H, H, 'fromKeras'),
      bIh: bias ? new Float32Array(3 * H) : null,
      bHh: bias ? new Float32Array(3 * H) : null,
    };
    if (cell.bias && dir.bIh && dir.bHh) {
      // permuteGates maps ours -> theirs; being an involution, it maps theirs -> ours too.
      permuteGates(cell.bias.data, 0, dir.bIh, 0, H);
      if (resetAfter) permuteGates(cell.bias.data, 3 * H, dir.bHh, 0, H);
    }
    return dir;
  });
  return {
    options: { inputSize: I, hiddenSize: H, numLayers: list.length, bidirectional, bias, resetAfter },
    stateDict: buildStateDict(directions, D, { I, H }),
  };
}

/**
 * Keras GRU layers (one per layer, `{ forward, backward }` when bidirectional) holding a state
 * dict's weights, for `layer.set_weights([kernel, recurrent_kernel, bias])` on layers built with
 * `reset_after` as returned. With resetAfter true the bias is [2, 3H] and the conversion is exact
 * both ways. With resetAfter false Keras has one bias per gate, b_ih + b_hh: ours folds into it
 * as a function (b_hn sits outside the reset gate in both), rounded once to float32 where b_hh is
 * not zero, so converting back gives b_ih + b_hh and a zero b_hh: bit for bit the same parameters
 * when b_hh was zero (as in weights that came from Keras), the same function otherwise.
 *
 * @param stateDict - A GRU's parameters by PyTorch's names, as stateDict() gives them.
 * @param options - `resetAfter`: the form of the model they come from (required: a state dict does not show it).
 * @returns One entry per layer, first first: `{ kernel, recurrent_kernel, bias? }`, or
 *   `{ forward, backward }` of them when bidirectional.
 * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has another key, or
 *   resetAfter is not a boolean.
 * @throws {@link StateDictError} (ERR_STATE_DICT) when the names and shapes are not a PyTorch GRU's,
 *   or a value is not a tensor.
 */
export function toKeras(stateDict: StateDictLike, options: ToOptions): Array<KerasGruLayer<Tensor>> {
  const resetAfter = checkToOptions(options);
  const { shape, directions } = readStateDict(stateDict);
  const { inputSize: I, hiddenSize: H } = shape;
  const D = shape.bidirectional ? 2 : 1;
  const cells = directions.map((dir, index): KerasGruWeights<Tensor> => {
    const input = index < D ? I : D * H;
    const cell: KerasGruWeights<Tensor> = {
      kernel: { data: convertKerasMatrix(dir.wIh, input, H, 'toKeras'), shape: Object.freeze([input, 3 * H]) },
      recurrent_kernel: { data: convertKerasMatrix(dir.wHh, H, H, 'toKeras'), shape: Object.freeze([H, 3 * H]) },
    };
    if (dir.bIh && dir.bHh) {
      if (resetAfter) {
        const bias = new Float32Array(6 * H);
        permuteGates(dir.bIh, 0, bias, 0, H);
        permuteGates(dir.bHh, 0, bias, 3 * H, H);
        cell.bias = { data: bias, shape: Object.freeze([2, 3 * H]) };
      } else {
        const folded = new Float32Array(3 * H);
        const hh = bitsOf(dir.bHh);
        const foldedBits = bitsOf(folded);
        const ih = bitsOf(dir.bIh);
        // Adding +0 would turn a -0 into +0: copy the bits where there is nothing to add.
        for (let i = 0; i < 3 * H; i++) {
          if (hh[i] === 0) foldedBits[i] = ih[i];
          else folded[i] = dir.bIh[i] + dir.bHh[i];
        }
        const bias = new Float32Array(3 * H);
        permuteGates(folded, 0, bias, 0, H);
        cell.bias = { data: bias, shape: Object.freeze([3 * H]) };
      }
    }
    cell.reset_after = resetAfter;
    return cell;
  });
  const layers: Array<KerasGruLayer<Tensor>> = [];
  for (let k = 0; k < shape.numLayers; k++) {
    layers.push(D === 2 ? { forward: cells[2 * k], backward: cells[2 * k + 1] } : cells[k]);
  }
  return layers;
}

// ---------------------------------------------------------------------------------------------
// ONNX
// ---------------------------------------------------------------------------------------------

const ONNX_KEYS = ['W', 'R', 'B', 'linear_before_reset', 'direction', 'hidden_size'] as const;

/**
 * fastgru's options and state dict from ONNX GRU nodes, first layer to last (one node is one
 * layer, both directions when bidirectional). The form is each node's linear_before_reset (1:
 * resetAfter true; 0, ONNX's default: false); `options.resetAfter`, when given, must agree.
 * Nodes without B get zero biases when others have one. Exact: the values are copied bit for bit.
 * Only the weights are converted: a node must also use the default activations (Sigmoid, Tanh)
 * and no clip for the model to compute what ONNX does.
 *
 * @param nodes - One node's initializers and attributes, or an array of them, first layer first
 *   (see {@link OnnxGruWeights}).
 * @param options - `resetAfter`: the form expected; nodes of the other form are refused.
 * @returns The GRU's options (form included) and its state dict in PyTorch's layout.
 * @throws {@link StateDictError} (ERR_STATE_DICT) when a node is not such an object, has an unknown
 *   key, a tensor of the wrong shape, a direction of 'reverse' or one its W and R disagree with, a
 *   hidden_size other than R's, or a form that disagrees with another node's or with options.resetAfter.
 * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has another key, or its
 *   resetAfter is not a boolean.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { fromOnnx, GRU } from 'fastgru';
 *
 * // A GRU node's initializers, saved in Python with onnx.numpy_helper:
 * //   json.dump({i.name: to_array(i).tolist() for i in model.graph.initializer}, open("init.json", "w"))
 * const init = JSON.parse(readFileSync('init.json', 'utf8'));
 * // The names are the node's inputs 1, 2 and 3; linear_before_reset is the node's attribute.
 * const { options, stateDict } = fromOnnx({ W: init.W, R: init.R, B: init.B, linear_before_reset: 1 });
 * const gru = new GRU(options).loadStateDict(stateDict);
 * ```
 */
export function fromOnnx(nodes: OnnxGruWeights | readonly OnnxGruWeights[], options?: FromOptions): ConvertedGru {
  const wanted = checkFromOptions(options);
  const list = listOf(nodes, 'nodes', 'an ONNX GRU node\'s { W, R, B?, linear_before_reset? }');
  const read = list.map((node, k) => {
    const arg = Array.isArray(nodes) ? `nodes[${k}]` : 'nodes';
    if (!isObject(node)) throw argError(StateDictError, arg, 'an ONNX GRU node\'s { W, R, B?, linear_before_reset? }', node);
    checkKeys(node, ONNX_KEYS, arg);
    const lbr = node.linear_before_reset ?? 0;
    if (typeof lbr !== 'number' || !Number.isInteger(lbr)) {
      throw argError(StateDictError, `${arg}.linear_before_reset`, 'an integer (ONNX\'s attribute: 0 or 1)', lbr);
    }
    return {
      arg,
      W: readTensor(node.W, `${arg}.W`),
      R: readTensor(node.R, `${arg}.R`),
      B: node.B === undefined || node.B === null ? null : readTensor(node.B, `${arg}.B`),
      resetAfter: lbr !== 0,
      lbrGiven: node.linear_before_reset !== undefined,
      direction: node.direction,
      hiddenSize: node.hidden_size,
    };
  });

  const first = read[0];
  const R0 = first.R.shape;
  if (R0.length !== 3 || (R0[0] !== 1 && R0[0] !== 2) || R0[2] < 1 || R0[1] !== 3 * R0[2]) {
    throw argError(StateDictError, `${first.arg}.R`, 'shape [num_directions (1 or 2), 3·hidden_size, hidden_size]',
      formatShape(R0), { gotIsText: true });
  }
  const D = R0[0];
  const H = R0[2];
  const W0 = first.W.shape;
  if (W0.length !== 3 || W0[0] !== D || W0[1] !== 3 * H || W0[2] < 1) {
    throw argError(StateDictError, `${first.arg}.W`, `shape [${D}, ${3 * H}, input_size] (num_directions ${D} and hidden_size ${H} from R)`,
      formatShape(W0), { gotIsText: true });
  }
  const I = W0[2];
  const shown: Array<{ arg: string; resetAfter: boolean; how: string }> = [];
  read.forEach((node, k) => {
    const input = k === 0 ? I : D * H;
    expectShape(node.R, [D, 3 * H, H], `${node.arg}.R`, `num_directions ${D}, hidden_size ${H}, gate rows z, r, h`);
    expectShape(node.W, [D, 3 * H, input], `${node.arg}.W`,
      k === 0 ? `num_directions ${D}, hidden_size ${H}, input_size ${I}` : `layer ${k} reads the ${input} features of layer ${k - 1}`);
    if (node.B) expectShape(node.B, [D, 6 * H], `${node.arg}.B`, `num_directions ${D}, Wb then Rb, each z, r, h`);
    const direction = node.direction ?? (D === 2 ? 'bidirectional' : 'forward');
    if (direction === 'reverse') {
      throw argError(StateDictError, `${node.arg}.direction`,
        '"forward" or "bidirectional" (a fastgru layer runs forward, plus backward when bidirectional; it has no reverse-only layer)',
        direction);
    }
    if (direction !== (D === 2 ? 'bidirectional' : 'forward')) {
      throw argError(StateDictError, `${node.arg}.direction`,
        `${JSON.stringify(D === 2 ? 'bidirectional' : 'forward')} (W, R hold ${D} direction${D > 1 ? 's' : ''})`, direction);
    }
    if (node.hiddenSize !== undefined && node.hiddenSize !== H) {
      throw argError(StateDictError, `${node.arg}.hidden_size`, `${H} (the size of R)`, node.hiddenSize);
    }
    const lbr = node.resetAfter ? 1 : 0;
    shown.push({
      arg: `${node.arg}.linear_before_reset`,
      resetAfter: node.resetAfter,
      how: node.lbrGiven ? `linear_before_reset ${lbr}` : 'linear_before_reset 0 (absent: ONNX\'s default)',
    });
  });
  const resetAfter = resolveForm(shown, wanted, 'no node says');
  const bias = read.some((n) => n.B !== null);

  const directions: Direction[] = [];
  read.forEach((node, k) => {
    const input = k === 0 ? I : D * H;
    for (let d = 0; d < D; d++) {
      const dir: Direction = {
        wIh: new Float32Array(3 * H * input),
        wHh: new Float32Array(3 * H * H),
        bIh: bias ? new Float32Array(3 * H) : null,
        bHh: bias ? new Float32Array(3 * H) : null,
      };
      permuteGates(node.W.data, d * 3 * H * input, dir.wIh, 0, H, input);
      permuteGates(node.R.data, d * 3 * H * H, dir.wHh, 0, H, H);
      if (node.B && dir.bIh && dir.bHh) {
        permuteGates(node.B.data, d * 6 * H, dir.bIh, 0, H);
        permuteGates(node.B.data, d * 6 * H + 3 * H, dir.bHh, 0, H);
      }
      directions.push(dir);
    }
  });
  return {
    options: { inputSize: I, hiddenSize: H, numLayers: read.length, bidirectional: D === 2, bias, resetAfter },
    stateDict: buildStateDict(directions, D, { I, H }),
  };
}

/**
 * ONNX GRU nodes (one per layer) holding a state dict's weights: W, R, B (absent without biases)
 * and the attributes linear_before_reset (1 for resetAfter true, 0 for false), direction and
 * hidden_size. Exact both ways: ONNX's Rb_h is our b_hn in either form.
 *
 * @param stateDict - A GRU's parameters by PyTorch's names, as stateDict() gives them.
 * @param options - `resetAfter`: the form of the model they come from (required: a state dict does not show it).
 * @returns One node per layer, first first, every attribute set.
 * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has another key, or
 *   resetAfter is not a boolean.
 * @throws {@link StateDictError} (ERR_STATE_DICT) when the names and shapes are not a PyTorch GRU's,
 *   or a value is not a tensor.
 */
export function toOnnx(stateDict: StateDictLike, options: ToOptions): OnnxGruNode[] {
  const resetAfter = checkToOptions(options);
  const { shape, directions } = readStateDict(stateDict);
  const { inputSize: I, hiddenSize: H } = shape;
  const D = shape.bidirectional ? 2 : 1;
  const nodes: OnnxGruNode[] = [];
  for (let k = 0; k < shape.numLayers; k++) {
    const input = k === 0 ? I : D * H;
    const W = new Float32Array(D * 3 * H * input);
    const R = new Float32Array(D * 3 * H * H);
    const B = shape.bias ? new Float32Array(D * 6 * H) : null;
    for (let d = 0; d < D; d++) {
      const dir = directions[k * D + d];
      permuteGates(dir.wIh, 0, W, d * 3 * H * input, H, input);
      permuteGates(dir.wHh, 0, R, d * 3 * H * H, H, H);
      if (B && dir.bIh && dir.bHh) {
        permuteGates(dir.bIh, 0, B, d * 6 * H, H);
        permuteGates(dir.bHh, 0, B, d * 6 * H + 3 * H, H);
      }
    }
    nodes.push({
      W: { data: W, shape: Object.freeze([D, 3 * H, input]) },
      R: { data: R, shape: Object.freeze([D, 3 * H, H]) },
      ...(B ? { B: { data: B, shape: Object.freeze([D, 6 * H]) } } : {}),
      linear_before_reset: resetAfter ? 1 : 0,
      direction: D === 2 ? 'bidirectional' : 'forward',
      hidden_size: H,
    });
  }
  return nodes;
}
