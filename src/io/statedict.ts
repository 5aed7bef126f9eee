/**
 * A GRU's state dict as it arrives from a file: the options its names and shapes imply, the part
 * of a checkpoint under a prefix, and the GRU form recorded in a safetensors file's metadata.
 */
import { argError, ArgumentError, describe, formatShape, OptionError, StateDictError } from '../errors.js';
import { booleanOption, checkKnownKeys, optionsObject } from '../check.js';
import { ALL_KINDS, PARAMETER_NAME, parameterName, parameterShape, WEIGHT_KINDS, type ParameterKind } from '../pytorch.js';
import type { Tensor } from '../tensor.js';
import {
  readSafetensors,
  readSafetensorsFile,
  readSafetensorsFileSync,
  type SafetensorsContents,
} from './safetensors.js';

/** The options of a GRU that its parameters determine (the form, resetAfter, they do not). */
export interface GruShapeOptions {
  /** I, from weight_ih_l0 [3H, I]. */
  inputSize: number;
  /** H, from weight_hh_l0 [3H, H]. */
  hiddenSize: number;
  /** One more than the highest layer index k of the names (weight_ih_l{k}). */
  numLayers: number;
  /** Whether the names have `_reverse` entries. */
  bidirectional: boolean;
  /** Whether the names have bias_ih and bias_hh entries. */
  bias: boolean;
}

/** GruShapeOptions plus the form: enough to build the GRU a set of weights belongs to. */
export interface GruLayoutOptions extends GruShapeOptions {
  /** The form the weights are for (see GRUOptions.resetAfter): from the file or layout, else the caller's. */
  resetAfter: boolean;
}

/** The shape of a state-dict value: a Tensor's, or a nested array's (by its first elements). */
function shapeOf(value: unknown, arg: string): readonly number[] {
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Array.isArray((value as Tensor).shape)) {
    const shape = (value as Tensor).shape;
    if (shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return shape;
    throw argError(StateDictError, `${arg}.shape`, 'an array of non-negative integers', formatShape(shape), { gotIsText: true });
  }
  if (Array.isArray(value)) {
    const shape: number[] = [];
    for (let level: unknown = value; Array.isArray(level); level = level[0]) {
      shape.push(level.length);
      if (level.length === 0) break;
    }
    return shape;
  }
  throw argError(StateDictError, arg, 'a Tensor { data, shape } or a nested number array (the sizes are read from its shape)', value);
}

function entriesOf(stateDict: unknown, arg: string): Array<[string, unknown]> {
  if (stateDict instanceof Map) return [...stateDict.entries()] as Array<[string, unknown]>;
  if (typeof stateDict !== 'object' || stateDict === null || Array.isArray(stateDict) || ArrayBuffer.isView(stateDict)) {
    throw argError(StateDictError, arg, 'an object mapping parameter names to tensors', stateDict);
  }
  return Object.entries(stateDict);
}

/**
 * The options (inputSize, hiddenSize, numLayers, bidirectional, bias) a PyTorch-layout GRU state
 * dict implies, with every name and shape checked against them: unknown names, missing layers or
 * directions, biases on some layers only, and shapes that disagree are StateDictErrors that name
 * the entry.
 *
 * @param stateDict - A GRU's parameters by PyTorch's names (weight_ih_l0, ..., `_reverse` when
 *   bidirectional), in an object or Map; only the values' shapes are read (a Tensor's shape, or a
 *   nested array's nesting).
 * @param arg - The name the error messages give the state dict (default 'stateDict').
 * @returns The options that build a GRU these parameters load into (with the form, resetAfter, of
 *   the caller's choosing).
 * @throws {@link StateDictError} (ERR_STATE_DICT) when `stateDict` is not an object or Map, has no
 *   entries, a name that is not a GRU parameter's, a missing layer, direction or bias, or a shape
 *   that disagrees with the others.
 *
 * @example
 * ```ts
 * import { GRU, inferGruOptions } from 'fastgru';
 *
 * const sd = new GRU({ inputSize: 3, hiddenSize: 5, numLayers: 2 }).stateDict();
 * console.log(inferGruOptions(sd)); // { inputSize: 3, hiddenSize: 5, numLayers: 2, bidirectional: false, bias: true }
 * ```
 */
export function inferGruOptions(stateDict: Record<string, unknown> | Map<string, unknown>, arg = 'stateDict'): GruShapeOptions {
  return inferNamed(stateDict, arg, (name) => `${arg}.${name}`);
}

/** inferGruOptions, naming the dict `arg` and each entry `entryArg(name)` in its messages. */
function inferNamed(stateDict: unknown, arg: string, entryArg: (name: string) => string): GruShapeOptions {
  const entries = entriesOf(stateDict, arg);
  const shapes = new Map<string, readonly number[]>();
  const unknown: string[] = [];
  let layers = 0;
  let reverse = false;
  let bias = false;
  for (const [name, value] of entries) {
    const match = typeof name === 'string' ? PARAMETER_NAME.exec(name) : null;
    if (!match) {
      unknown.push(describe(name));
      continue;
    }
    shapes.set(name, shapeOf(value, entryArg(name)));
    layers = Math.max(layers, Number(match[3]) + 1);
    reverse ||= match[4] !== undefined;
    bias ||= match[1] === 'bias';
  }
  if (unknown.length > 0) {
    throw argError(StateDictError, arg,
      'only GRU parameter names (weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, each also with _reverse)',
      `${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}`, { gotIsText: true });
  }
  if (shapes.size === 0) {
    throw argError(StateDictError, arg, 'the parameters of a GRU (weight_ih_l0, weight_hh_l0, ...)', 'no entries', { gotIsText: true });
  }

  const D = reverse ? 2 : 1;
  const kinds = bias ? ALL_KINDS : WEIGHT_KINDS;
  const missing: string[] = [];
  // A hostile name (weight_ih_l999999) implies a million layers: stop at the first few missing.
  for (let k = 0; k < layers && missing.length <= 6; k++) {
    for (let d = 0; d < D; d++) {
      for (const kind of kinds) {
        const name = parameterName(kind, k, d);
        if (!shapes.has(name)) missing.push(name);
      }
    }
  }
  if (missing.length > 0) {
    const implied = `${layers} layer${layers > 1 ? 's' : ''}, ${reverse ? 'bidirectional' : 'unidirectional'}, ` +
      `${bias ? 'with' : 'without'} biases`;
    throw argError(StateDictError, arg, `every parameter of the GRU its names imply (${implied})`,
      `no ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ', ...' : ''}`, { gotIsText: true });
  }

  const hh = shapes.get('weight_hh_l0')!;
  if (hh.length !== 2 || hh[1] < 1 || hh[0] !== 3 * hh[1]) {
    const hint = hh.length === 2 && hh[1] > 0 && hh[0] === 4 * hh[1] ? ' (4 gates: an LSTM\'s?)' : '';
    throw argError(StateDictError, entryArg('weight_hh_l0'), 'shape [3·hiddenSize, hiddenSize] (rows r, z, n)',
      `${formatShape(hh)}${hint}`, { gotIsText: true });
  }
  const H = hh[1];
  const ih = shapes.get('weight_ih_l0')!;
  if (ih.length !== 2 || ih[0] !== 3 * H || ih[1] < 1) {
    throw argError(StateDictError, entryArg('weight_ih_l0'), `shape [${3 * H}, inputSize] (hiddenSize ${H} from weight_hh_l0)`,
      formatShape(ih), { gotIsText: true });
  }
  const I = ih[1];
  for (const [name, shape] of shapes) {
    const match = PARAMETER_NAME.exec(name)!;
    const k = Number(match[3]);
    const expected = parameterShape(`${match[1]}_${match[2]}` as ParameterKind, k, { inputSize: I, hiddenSize: H, directions: D });
    let why: string;
    if (name.startsWith('bias')) {
      why = `3·hiddenSize, hiddenSize ${H}`;
    } else if (name.startsWith('weight_hh')) {
      why = `hiddenSize ${H}`;
    } else if (k === 0) {
      why = `hiddenSize ${H}, inputSize ${I}`;
    } else {
      why = `hiddenSize ${H}; layer ${k} reads the ${D * H} features of layer ${k - 1}${reverse ? "'s two directions" : ''}`;
    }
    if (shape.length !== expected.length || shape.some((d, i) => d !== expected[i])) {
      throw argError(StateDictError, entryArg(name), `shape ${formatShape(expected)} (${why})`, formatShape(shape), {
        gotIsText: true,
      });
    }
  }
  return { inputSize: I, hiddenSize: H, numLayers: layers, bidirectional: reverse, bias };
}

/**
 * The entries whose names start with `prefix`, with the prefix taken off; the others are left out.
 * `prefix` '' keeps everything.
 *
 * @param tensors - Entries by name, such as the tensors of a checkpoint.
 * @param prefix - The start of the names to keep, such as 'rnn.' (a module's name and a dot).
 * @returns A new object of the kept entries under their shortened names; the values are not copied.
 * @throws {@link ArgumentError} (ERR_ARGUMENT) when `prefix` is not a string or `tensors` is not an object.
 */
export function stripPrefix<T>(tensors: Record<string, T>, prefix: string): Record<string, T> {
  if (typeof prefix !== 'string') throw argError(ArgumentError, 'prefix', 'a string such as "rnn."', prefix);
  if (typeof tensors !== 'object' || tensors === null) throw argError(ArgumentError, 'tensors', 'an object of tensors by name', tensors);
  return Object.fromEntries(
    Object.entries(tensors).filter(([name]) => name.startsWith(prefix)).map(([name, t]) => [name.slice(prefix.length), t]),
  );
}

/** The metadata key that records a GRU's form: `fastgru.resetAfter`, after the GRU's prefix. */
export function resetAfterKey(prefix = ''): string {
  return `${prefix}fastgru.resetAfter`;
}

/**
 * The GRU form a file recorded for the GRU under `prefix` (metadata `<prefix>fastgru.resetAfter`,
 * written by saveSafetensors), or undefined when it recorded none.
 *
 * @param metadata - The file's `__metadata__`.
 * @param prefix - The GRU's prefix in the file ('' for none).
 * @param source - What the metadata came from, for errors.
 * @returns true or false as recorded, or undefined.
 * @throws {@link StateDictError} (ERR_STATE_DICT) when the entry is neither "true" nor "false".
 */
export function recordedResetAfter(metadata: Record<string, string>, prefix: string, source: string): boolean | undefined {
  const key = resetAfterKey(prefix);
  const recorded = metadata[key];
  if (recorded === undefined) return undefined;
  if (recorded !== 'true' && recorded !== 'false') {
    throw argError(StateDictError, `${source} metadata[${JSON.stringify(key)}]`, '"true" or "false"', recorded);
  }
  return recorded === 'true';
}

/**
 * The metadata to write beside a GRU's state dict: `format: "pt"` (PyTorch's layout, as
 * safetensors' torch writer records it) and the GRU's form, which its weights cannot show.
 *
 * @param options - `resetAfter`: the GRU's form; `prefix`: the prefix of its tensors' names in the
 *   file (default ''), which the metadata key carries, so several GRUs in one file keep theirs apart.
 * @returns `{ format: 'pt', '<prefix>fastgru.resetAfter': 'true' | 'false' }`, for writeSafetensors.
 * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, resetAfter is not a
 *   boolean, or prefix is not a string.
 */
export function gruSafetensorsMetadata(options: { resetAfter: boolean; prefix?: string }): Record<string, string> {
  const o = optionsObject(options, 'an object { resetAfter, prefix? }');
  if (typeof o.resetAfter !== 'boolean') throw argError(OptionError, 'options.resetAfter', 'a boolean', o.resetAfter);
  if (options.prefix !== undefined && typeof options.prefix !== 'string') {
    throw argError(OptionError, 'options.prefix', 'a string such as "rnn."', options.prefix);
  }
  return { format: 'pt', [resetAfterKey(options.prefix ?? '')]: String(options.resetAfter) };
}

/** The options of readGruSafetensors, its file readers and GRU.fromSafetensors. */
export interface ReadGruOptions {
  /** Only tensors whose names start with it are read, with it taken off (e.g. 'rnn.'). Default ''. */
  prefix?: string;
  /**
   * The form the caller expects. When the file records one (gruSafetensorsMetadata) they must agree;
   * when neither says, true (every PyTorch nn.GRU is of that form).
   */
  resetAfter?: boolean;
}

/** A GRU read from a safetensors file: its options (form included), state dict and the file's metadata. */
export interface GruSafetensors {
  /** The options its names and shapes imply, with the form from the metadata or the caller. */
  options: GruLayoutOptions;
  /** Its parameters by PyTorch's names, the prefix taken off: ready for loadStateDict. */
  stateDict: Record<string, Tensor>;
  /** The file's whole `__metadata__`. */
  metadata: Record<string, string>;
}

function gruReadOptions(options: unknown): { prefix: string; resetAfter: boolean | undefined } {
  if (options === undefined || options === null) return { prefix: '', resetAfter: undefined };
  const o = optionsObject(options, 'an object such as { prefix, resetAfter }');
  checkKnownKeys(o, ['prefix', 'resetAfter']);
  if (o.prefix !== undefined && typeof o.prefix !== 'string') throw argError(OptionError, 'options.prefix', 'a string such as "rnn."', o.prefix);
  const resetAfter = booleanOption(o, 'resetAfter');
  return { prefix: (o.prefix as string | undefined) ?? '', resetAfter };
}

function toGru(contents: SafetensorsContents, prefix: string, resetAfter: boolean | undefined, source: string): GruSafetensors {
  const stateDict = stripPrefix(contents.tensors, prefix);
  if (Object.keys(stateDict).length === 0) {
    const names = Object.keys(contents.tensors);
    throw argError(StateDictError, source, prefix ? `tensors under the prefix ${JSON.stringify(prefix)}` : 'the tensors of a GRU',
      names.length ? `only ${names.slice(0, 5).map((n) => JSON.stringify(n)).join(', ')}${names.length > 5 ? ', ...' : ''}` : 'no tensors',
      { gotIsText: true });
  }
  const shape = inferNamed(stateDict, prefix ? `${source} under ${JSON.stringify(prefix)}` : source,
    (name) => `${source} tensor ${JSON.stringify(prefix + name)}`);
  const key = resetAfterKey(prefix);
  const saved = recordedResetAfter(contents.metadata, prefix, source);
  let form = resetAfter ?? true;
  if (saved !== undefined) {
    if (resetAfter !== undefined && saved !== resetAfter) {
      throw argError(OptionError, 'options.resetAfter',
        `${saved} or nothing: the file's weights are of the resetAfter: ${saved} form (metadata ${key}), and the two forms ` +
        'are different functions, so weights of one do not carry over to the other', resetAfter);
    }
    form = saved;
  }
  return { options: { ...shape, resetAfter: form }, stateDict, metadata: contents.metadata };
}

function selectPrefix(prefix: string): { select: (name: string) => boolean } {
  return { select: (name) => name.startsWith(prefix) };
}

/**
 * A GRU's state dict from a safetensors file in memory: the tensors under `prefix` (others are
 * not decoded, whatever their dtype), the options they imply and the form (see ReadGruOptions).
 *
 * @param buffer - The whole file's bytes, a Uint8Array or Buffer.
 * @param options - `prefix` of the GRU's tensors (default ''), and the `resetAfter` expected.
 * @returns The GRU's options, state dict and the file's metadata.
 * @throws {@link StateDictError} (ERR_STATE_DICT) when no tensor is under `prefix`, the names and
 *   shapes are not those of a PyTorch GRU (an unknown name, a missing layer, direction or bias, a shape
 *   that disagrees), or the metadata's `fastgru.resetAfter` is not "true" or "false".
 * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has a key other than
 *   prefix and resetAfter, a value of the wrong type, or a resetAfter the file's metadata contradicts.
 * @throws {@link ArgumentError} (ERR_ARGUMENT), {@link DTypeError} (ERR_DTYPE), {@link ShapeError}
 *   (ERR_SHAPE) and {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) as {@link readSafetensors} does.
 */
export function readGruSafetensors(buffer: Uint8Array, options?: ReadGruOptions): GruSafetensors {
  const { prefix, resetAfter } = gruReadOptions(options);
  return toGru(readSafetensors(buffer, selectPrefix(prefix)), prefix, resetAfter, 'safetensors');
}

/**
 * readGruSafetensors for a file, reading only the header and the GRU's tensors.
 *
 * @param path - The file's path.
 * @param options - `prefix` of the GRU's tensors (default ''), and the `resetAfter` expected.
 * @returns The GRU's options, state dict and the file's metadata.
 * @throws {@link StateDictError} (ERR_STATE_DICT) when no tensor is under `prefix`, the names and
 *   shapes are not those of a PyTorch GRU (an unknown name, a missing layer, direction or bias, a shape
 *   that disagrees), or the metadata's `fastgru.resetAfter` is not "true" or "false".
 * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has a key other than
 *   prefix and resetAfter, a value of the wrong type, or a resetAfter the file's metadata contradicts.
 * @throws {@link ArgumentError} (ERR_ARGUMENT), {@link DTypeError} (ERR_DTYPE), {@link ShapeError}
 *   (ERR_SHAPE) and {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) as {@link readSafetensorsFileSync}
 *   does, for an unreadable file too.
 */
export function readGruSafetensorsFileSync(path: string, options?: ReadGruOptions): GruSafetensors {
  const { prefix, resetAfter } = gruReadOptions(options);
  return toGru(readSafetensorsFileSync(path, selectPrefix(prefix)), prefix, resetAfter, `safetensors file ${JSON.stringify(path)}`);
}

/**
 * readGruSafetensorsFileSync, asynchronously.
 *
 * @param path - The file's path.
 * @param options - `prefix` of the GRU's tensors (default ''), and the `resetAfter` expected.
 * @returns A promise of the GRU's options, state dict and the file's metadata.
 * @throws As readGruSafetensorsFileSync, as rejections: {@link StateDictError} (ERR_STATE_DICT),
 *   {@link OptionError} (ERR_OPTION), {@link ArgumentError} (ERR_ARGUMENT), {@link DTypeError}
 *   (ERR_DTYPE), {@link ShapeError} (ERR_SHAPE) and {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY).
 *
 * @example
 * ```ts
 * import { GRU, readGruSafetensorsFile } from 'fastgru';
 *
 * const { options, stateDict } = await readGruSafetensorsFile('model.safetensors', { prefix: 'rnn.' });
 * const gru = new GRU(options).loadStateDict(stateDict); // what GRU.fromSafetensors does
 * ```
 */
export async function readGruSafetensorsFile(path: string, options?: ReadGruOptions): Promise<GruSafetensors> {
  const { prefix, resetAfter } = gruReadOptions(options);
  return toGru(await readSafetensorsFile(path, selectPrefix(prefix)), prefix, resetAfter, `safetensors file ${JSON.stringify(path)}`);
}
