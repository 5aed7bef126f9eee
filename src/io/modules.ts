/**
 * Whole models from one file: the modules of a PyTorch model, each loaded from the entries under its
 * name in the file `safetensors.torch.save_file(model.state_dict(), path)` writes, as
 * `model.load_state_dict(...)` loads them in Python, with one error for whatever does not fit.
 */
import { argError, ArgumentError, formatShape, StateDictError } from '../errors.js';
import { booleanOption, checkKnownKeys, optionsObject } from '../check.js';
import { GRU } from '../gru.js';
import { sameShape, toTensor, type Tensor, type TensorLike } from '../tensor.js';
import { readSafetensors, readSafetensorsFile, readSafetensorsFileSync, type SafetensorsContents } from './safetensors.js';
import { recordedResetAfter, resetAfterKey } from './statedict.js';

/**
 * What loadModules loads: a module with a state dict, such as a GRU, a Linear or an Embedding, or
 * any object of yours with these two methods.
 */
export interface StatefulModule {
  /**
   * The module's parameters by name, as copies: their names and shapes are what the file must hold.
   *
   * @returns Tensors by PyTorch's names for this module.
   */
  stateDict(): Record<string, Tensor>;
  /**
   * Replaces the parameters with these.
   *
   * @param stateDict - Every parameter, by the names stateDict() gives, with its shapes.
   * @returns Anything (the module, for chaining, as fastgru's do).
   * @throws Whatever the module throws for a state dict it refuses (fastgru's modules: a
   *   {@link StateDictError}, ERR_STATE_DICT); loadModules then puts back the modules it loaded before.
   */
  loadStateDict(stateDict: Record<string, Tensor>): unknown;
}

/** The options of loadModules and its file readers. */
export interface LoadModulesOptions {
  /**
   * As load_state_dict's `strict`: true (the default) refuses a file with entries that no module
   * takes; false leaves them alone and lists them in the result's `unused`. Every module must find all
   * of its own parameters either way.
   */
  strict?: boolean;
}

/** What loadModules reports once every module is loaded. */
export interface LoadedModules {
  /** The names of the entries no module took, in the file's order (only when `strict` is false). */
  unused: string[];
  /** The file's `__metadata__` (`{}` for a state dict given as an object). */
  metadata: Record<string, string>;
}

/** The module names as prefixes: 'gru' takes 'gru.weight_ih_l0'; '' takes every name. */
function prefixesOf(modules: unknown): Array<[string, string, StatefulModule]> {
  if (typeof modules !== 'object' || modules === null || Array.isArray(modules) || Object.keys(modules).length === 0) {
    throw argError(ArgumentError, 'modules', 'an object of modules by their names in the model, such as { embed, gru, head }', modules);
  }
  const out: Array<[string, string, StatefulModule]> = [];
  for (const [name, m] of Object.entries(modules)) {
    if (name.endsWith('.')) {
      throw argError(ArgumentError, 'modules', `module names as PyTorch gives them, without the dot ("${name.slice(0, -1)}")`, `"${name}"`, { gotIsText: true });
    }
    const candidate = m as Partial<StatefulModule> | null;
    if (!candidate || typeof candidate.stateDict !== 'function' || typeof candidate.loadStateDict !== 'function') {
      throw argError(ArgumentError, `modules[${JSON.stringify(name)}]`,
        'a module (a GRU, a Linear, an Embedding, or anything with stateDict() and loadStateDict())', m);
    }
    out.push([name, name === '' ? '' : `${name}.`, m as StatefulModule]);
  }
  for (const [a, pa] of out) {
    for (const [b, pb] of out) {
      if (a !== b && pb.startsWith(pa)) {
        throw argError(ArgumentError, 'modules', 'names of which none holds another\'s entries',
          `"${a}" and "${b}" (give the inner module, or the outer one, not both)`, { gotIsText: true });
      }
    }
  }
  return out;
}

function strictOption(options: unknown): boolean {
  const o = optionsObject(options, 'an object such as { strict }', 'options', true);
  checkKnownKeys(o, ['strict']);
  return booleanOption(o, 'strict', true);
}

const quoteList = (names: string[], most = 10): string =>
  names.slice(0, most).map((n) => JSON.stringify(n)).join(', ') + (names.length > most ? ` and ${names.length - most} more` : '');

/**
 * Checks everything, then loads each module; if a module's own loadStateDict throws, the modules
 * loaded before it get their old parameters back, so a failed load changes nothing.
 */
function loadInto(
  names: string[],
  tensors: Record<string, Tensor>,
  metadata: Record<string, string>,
  modules: Array<[string, string, StatefulModule]>,
  strict: boolean,
  source: string,
): LoadedModules {
  const taken = new Set<string>();
  const missing: string[] = [];
  const shapes: string[] = [];
  const plans: Array<[StatefulModule, Record<string, Tensor>, Record<string, Tensor>]> = [];
  for (const [name, prefix, m] of modules) {
    const want = m.stateDict();
    if (m instanceof GRU) {
      const recorded = recordedResetAfter(metadata, prefix, source);
      if (recorded !== undefined && recorded !== m.resetAfter) {
        throw argError(StateDictError, `${source} metadata[${JSON.stringify(resetAfterKey(prefix))}]`,
          `"${m.resetAfter}", the form of modules[${JSON.stringify(name)}] (resetAfter: ${m.resetAfter}); the two forms are ` +
          'different functions, so weights of one do not carry over to the other', String(recorded));
      }
    }
    const sd: Record<string, Tensor> = {};
    for (const [key, t] of Object.entries(want)) {
      const full = prefix + key;
      if (!Object.hasOwn(tensors, full)) {
        missing.push(full);
        continue;
      }
      taken.add(full);
      const v = tensors[full];
      if (!sameShape(v.shape, t.shape)) shapes.push(`"${full}" of shape ${formatShape(v.shape)}, not ${formatShape(t.shape)}`);
      sd[key] = v;
    }
    plans.push([m, sd, want]);
  }
  const unused = names.filter((n) => !taken.has(n));
  const problems: string[] = [];
  if (missing.length) problems.push(`no ${quoteList(missing)}`);
  if (shapes.length) problems.push(shapes.slice(0, 10).join(', ') + (shapes.length > 10 ? ` and ${shapes.length - 10} more` : ''));
  if (strict && unused.length) problems.push(`${unused.length} entr${unused.length === 1 ? 'y' : 'ies'} no module takes: ${quoteList(unused)}`);
  if (problems.length) {
    const given = modules.map(([name]) => (name === '' ? 'the whole file' : `"${name}."`)).join(', ');
    throw argError(StateDictError, source, `exactly the parameters of the modules under ${given}`, problems.join('; '), { gotIsText: true });
  }
  const done: Array<[StatefulModule, Record<string, Tensor>]> = [];
  try {
    for (const [m, sd, before] of plans) {
      m.loadStateDict(sd);
      done.push([m, before]);
    }
  } catch (error) {
    for (const [m, before] of done) m.loadStateDict(before);
    throw error;
  }
  return { unused: strict ? [] : unused, metadata };
}

function selector(modules: Array<[string, string, StatefulModule]>, names: string[]): (name: string) => boolean {
  return (name) => {
    names.push(name);
    return modules.some(([, prefix]) => name.startsWith(prefix));
  };
}

/**
 * Loads the modules of a PyTorch model from one state dict, each from the entries under its name:
 * `{ embed, gru, head }` takes `embed.weight`, `gru.weight_ih_l0`, ..., `head.bias`, as
 * `model.load_state_dict(sd)` does in Python. Every name and shape is checked before any module
 * changes, and one error lists every entry that is missing, of the wrong shape, or (with `strict`,
 * the default) that no module takes. A GRU whose file records its form (`<name>.fastgru.resetAfter`,
 * as saveSafetensors writes it) must be of that form; PyTorch's files record none.
 *
 * @param source - The bytes of a safetensors file (a Uint8Array or Buffer, such as
 *   `safetensors.torch.save_file(model.state_dict(), path)` wrote), or a state dict as an object or
 *   Map of Tensors or nested number arrays by full name ('gru.weight_ih_l0').
 * @param modules - The modules by their names in the PyTorch model, such as `{ embed, gru, head }`
 *   (a nested one as 'encoder.rnn'; '' for one module that is the whole file). Each is a GRU,
 *   Linear, Embedding or anything with stateDict() and loadStateDict(), built with the model's sizes.
 * @param options - `strict` (default true); see {@link LoadModulesOptions}.
 * @returns The entries left unused (none when strict) and the file's metadata.
 * @throws {@link StateDictError} (ERR_STATE_DICT) when a module's parameter is missing or of the wrong
 *   shape, an entry is under no module's name (strict), or a GRU's recorded form is not the module's;
 *   the message lists every such entry.
 * @throws {@link ArgumentError} (ERR_ARGUMENT) when `modules` is not a non-empty object of modules,
 *   a name ends with a dot or holds another's entries (`rnn` and `rnn.cell`), or `source` is neither form.
 * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has a key other than
 *   strict, or strict is not a boolean.
 * @throws {@link DTypeError} (ERR_DTYPE), {@link ShapeError} (ERR_SHAPE) and
 *   {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) as {@link readSafetensors} gives them for malformed
 *   bytes, or toTensor for a malformed value.
 *
 * @example
 * ```ts
 * import { Embedding, GRU, Linear, loadModules, writeSafetensors } from 'fastgru';
 *
 * const embed = new Embedding({ numEmbeddings: 20, embeddingDim: 6, paddingIdx: 0 });
 * const gru = new GRU({ inputSize: 6, hiddenSize: 5, batchFirst: true });
 * const head = new Linear({ inFeatures: 5, outFeatures: 3 });
 * // A file of the model's state dict, as PyTorch writes one (here from another copy).
 * const sd: Record<string, any> = {};
 * for (const [name, m] of Object.entries({ embed, gru, head })) {
 *   for (const [key, t] of Object.entries(m.stateDict())) sd[`${name}.${key}`] = t;
 * }
 * const bytes = writeSafetensors(sd);
 * loadModules(bytes, { embed, gru, head }); // embed.weight, gru.weight_ih_l0, ..., head.bias
 * ```
 */
export function loadModules(source: Uint8Array | Record<string, TensorLike> | Map<string, TensorLike>, modules: Record<string, StatefulModule>,
  options?: LoadModulesOptions | null): LoadedModules {
  const list = prefixesOf(modules);
  const strict = strictOption(options);
  const names: string[] = [];
  if (source instanceof Uint8Array) {
    const contents = readSafetensors(source, { select: selector(list, names) });
    return loadInto(names, contents.tensors, contents.metadata, list, strict, 'safetensors');
  }
  if (typeof source !== 'object' || source === null || Array.isArray(source) || ArrayBuffer.isView(source)) {
    throw argError(ArgumentError, 'source', 'the bytes of a safetensors file (a Uint8Array) or a state dict object or Map', source);
  }
  const tensors: Record<string, Tensor> = {};
  for (const [name, value] of source instanceof Map ? source.entries() : Object.entries(source)) {
    names.push(name);
    if (list.some(([, prefix]) => name.startsWith(prefix))) tensors[name] = toTensor(value, `source[${JSON.stringify(name)}]`);
  }
  return loadInto(names, tensors, {}, list, strict, 'state dict');
}

/**
 * loadModules from a safetensors file, reading its header and only the tensors under the modules'
 * names (others, of any dtype, are only listed).
 *
 * @param path - The file's path: what `safetensors.torch.save_file(model.state_dict(), path)` wrote.
 * @param modules - The modules by their names in the PyTorch model, such as `{ embed, gru, head }`;
 *   see {@link loadModules}.
 * @param options - `strict` (default true); see {@link LoadModulesOptions}.
 * @returns The entries left unused (none when strict) and the file's metadata.
 * @throws {@link StateDictError} (ERR_STATE_DICT), {@link ArgumentError} (ERR_ARGUMENT) and
 *   {@link OptionError} (ERR_OPTION) as {@link loadModules} gives them; {@link ArgumentError},
 *   {@link DTypeError} (ERR_DTYPE), {@link ShapeError} (ERR_SHAPE) and {@link OutOfMemoryError}
 *   (ERR_OUT_OF_MEMORY) as {@link readSafetensorsFileSync} gives them for an unreadable or malformed file.
 */
export function loadModulesFileSync(path: string, modules: Record<string, StatefulModule>,
  options?: LoadModulesOptions | null): LoadedModules {
  const list = prefixesOf(modules);
  const strict = strictOption(options);
  const names: string[] = [];
  const contents: SafetensorsContents = readSafetensorsFileSync(path, { select: selector(list, names) });
  return loadInto(names, contents.tensors, contents.metadata, list, strict, `safetensors file ${JSON.stringify(path)}`);
}

/**
 * loadModulesFileSync, asynchronously: the file is read without blocking the event loop.
 *
 * @param path - The file's path: what `safetensors.torch.save_file(model.state_dict(), path)` wrote.
 * @param modules - The modules by their names in the PyTorch model, such as `{ embed, gru, head }`;
 *   see {@link loadModules}.
 * @param options - `strict` (default true); see {@link LoadModulesOptions}.
 * @returns A promise of the entries left unused (none when strict) and the file's metadata.
 * @throws As loadModulesFileSync, as rejections: {@link StateDictError} (ERR_STATE_DICT),
 *   {@link ArgumentError} (ERR_ARGUMENT), {@link OptionError} (ERR_OPTION), {@link DTypeError}
 *   (ERR_DTYPE), {@link ShapeError} (ERR_SHAPE) and {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY).
 *
 * @example
 * ```ts
 * import { Embedding, GRU, Linear, loadModulesFile } from 'fastgru';
 *
 * // In Python: safetensors.torch.save_file(model.state_dict(), "model.safetensors"), where the
 * // model has embed = nn.Embedding(20, 6), gru = nn.GRU(6, 5, batch_first=True), head = nn.Linear(5, 3).
 * const embed = new Embedding({ numEmbeddings: 20, embeddingDim: 6 });
 * const gru = new GRU({ inputSize: 6, hiddenSize: 5, batchFirst: true });
 * const head = new Linear({ inFeatures: 5, outFeatures: 3 });
 * await loadModulesFile('model.safetensors', { embed, gru, head });
 * ```
 */
export async function loadModulesFile(path: string, modules: Record<string, StatefulModule>,
  options?: LoadModulesOptions | null): Promise<LoadedModules> {
  const list = prefixesOf(modules);
  const strict = strictOption(options);
  const names: string[] = [];
  const contents = await readSafetensorsFile(path, { select: selector(list, names) });
  return loadInto(names, contents.tensors, contents.metadata, list, strict, `safetensors file ${JSON.stringify(path)}`);
}
