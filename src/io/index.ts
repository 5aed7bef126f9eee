/**
 * The io room: weights in and out, safetensors files and the layouts of Keras and ONNX. It depends
 * on the GRU, never the GRU on it: loading this module attaches its entry points to the class,
 * `GRU.fromSafetensors()`, `gru.saveSafetensors()`, `gru.loadKeras()`, `gru.toKeras()`,
 * `gru.loadOnnx()` and `gru.toOnnx()`, and declares them on GRU's type. src/index.ts loads it, so
 * every entry point of the package has them.
 */
import { attachMethods } from '../attach.js';
import { GRU, type GRUOptions } from '../gru.js';
import { argError, OptionError } from '../errors.js';
import { checkKnownKeys, optionsObject } from '../check.js';
import { fromKeras, fromOnnx, toKeras, toOnnx, type KerasGruLayer, type OnnxGruNode, type OnnxGruWeights } from './convert.js';
import { writeSafetensorsFile } from './safetensors.js';
import { gruSafetensorsMetadata, readGruSafetensorsFile, type ReadGruOptions } from './statedict.js';

export {
  MAX_HEADER_BYTES,
  readSafetensors,
  readSafetensorsFile,
  readSafetensorsFileSync,
  writeSafetensors,
  writeSafetensorsFile,
  writeSafetensorsFileSync,
} from './safetensors.js';
export type { ReadSafetensorsOptions, SafetensorsContents, SafetensorsInput } from './safetensors.js';
export {
  gruSafetensorsMetadata,
  inferGruOptions,
  readGruSafetensors,
  readGruSafetensorsFile,
  readGruSafetensorsFileSync,
  resetAfterKey,
  stripPrefix,
} from './statedict.js';
export type { GruLayoutOptions, GruSafetensors, GruShapeOptions, ReadGruOptions } from './statedict.js';
export { fromKeras, fromOnnx, toKeras, toOnnx } from './convert.js';
export { loadModules, loadModulesFile, loadModulesFileSync } from './modules.js';
export type { LoadedModules, LoadModulesOptions, StatefulModule } from './modules.js';
export type {
  ConvertedGru,
  FromOptions,
  KerasBidirectionalWeights,
  KerasGruLayer,
  KerasGruWeights,
  OnnxGruNode,
  OnnxGruWeights,
  StateDictLike,
  ToOptions,
} from './convert.js';

declare module '../gru.js' {
  interface GRU {
    /**
     * Writes the parameters (names under `prefix`) and the form, in a file fromSafetensors and PyTorch
     * read (`safetensors.torch.load_file`, then `nn.GRU.load_state_dict`). The file is written whole
     * or not at all, as {@link writeSafetensorsFile} writes it.
     *
     * @param path - Where to write the file; a regular file there is replaced.
     * @param options - `prefix`: put before every name (default ''), such as 'rnn.' for a GRU that is
     *   the `rnn` module of a larger model.
     * @throws Each as a rejection of the promise:
     * {@link OptionError} (ERR_OPTION) when options is not an object, names an option other than
     * prefix, or prefix is not a string;
     * {@link ArgumentError} (ERR_ARGUMENT) when `path` is not a non-empty string, is a symbolic link or a special file, or cannot be written
     * (the file system's error is the `cause`);
     * {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) when the file's bytes cannot be allocated.
     *
     * @example
     * ```ts
     * import { GRU } from 'fastgru';
     *
     * const gru = new GRU({ inputSize: 8, hiddenSize: 16 });
     * await gru.saveSafetensors('gru.safetensors');
     * const same = await GRU.fromSafetensors('gru.safetensors'); // the same weights and form
     * ```
     */
    saveSafetensors(path: string, options?: { prefix?: string } | null): Promise<void>;
    /**
     * Loads Keras GRU weights (one entry per layer; { forward, backward } for Bidirectional).
     *
     * @param layers - One layer's weights, or an array of them, first layer first, as
     *   {@link fromKeras} takes them; of this model's sizes and form.
     * @returns This model, for chaining.
     * @throws {@link StateDictError} (ERR_STATE_DICT) when the weights are malformed (as fromKeras
     *   says), of the other form than this model's resetAfter, or of other sizes or layers than this model's.
     */
    loadKeras(layers: KerasGruLayer | KerasGruLayer[]): this;
    /**
     * The weights in Keras's layout, one entry per layer.
     *
     * @returns As {@link toKeras} gives them for this model's parameters and form, for
     *   `layer.set_weights([kernel, recurrent_kernel, bias])` on Keras GRU layers with reset_after
     *   equal to this model's resetAfter.
     */
    toKeras(): ReturnType<typeof toKeras>;
    /**
     * Loads ONNX GRU initializers (W, R, B), one node per layer.
     *
     * @param nodes - One node's weights, or an array of them, first layer first, as {@link fromOnnx}
     *   takes them; of this model's sizes and form.
     * @returns This model, for chaining.
     * @throws {@link StateDictError} (ERR_STATE_DICT) when the nodes are malformed (as fromOnnx says),
     *   of the other form than this model's resetAfter, or of other sizes or layers than this model's.
     */
    loadOnnx(nodes: OnnxGruWeights | OnnxGruWeights[]): this;
    /**
     * The weights as ONNX GRU nodes' initializers, one node per layer.
     *
     * @returns As {@link toOnnx} gives them for this model's parameters and form: W, R, B and the
     *   attributes linear_before_reset, direction and hidden_size of each node.
     */
    toOnnx(): OnnxGruNode[];
  }
  namespace GRU {
    /**
     * A GRU from a safetensors file of a PyTorch state_dict (or one saveSafetensors wrote). Layers,
     * direction, sizes and bias come from the names and shapes; `prefix` picks the GRU's tensors out of
     * a larger model's file ('rnn.'); the form comes from the file's metadata when it records one, else
     * from `resetAfter` (default true, as nn.GRU). Other options (backend, threads, ...) pass through.
     *
     * @param path - The safetensors file, such as one `safetensors.torch.save_file(model.state_dict(), path)` wrote.
     * @param options - `prefix` and `resetAfter` (see {@link ReadGruOptions}), and the options of
     *   new GRU that the weights do not fix: batchFirst, dropout, backend, threads, seed.
     * @returns A promise of the model, its parameters loaded from the file.
     * @throws Each as a rejection of the promise:
     * {@link StateDictError} (ERR_STATE_DICT) when no tensor is under prefix or they are not a PyTorch GRU's;
     * {@link OptionError} (ERR_OPTION) when an option is unknown, of the wrong type or out of range, or
     * resetAfter contradicts the file's metadata;
     * {@link ArgumentError} (ERR_ARGUMENT), {@link DTypeError} (ERR_DTYPE), {@link ShapeError}
     * (ERR_SHAPE) and {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) as {@link readSafetensorsFile} gives
     * them for an unreadable or malformed file;
     * {@link BackendUnavailableError} (ERR_BACKEND_UNAVAILABLE) when backend is 'native' and the native
     * engine does not load here.
     *
     * @example
     * ```ts
     * import { GRU } from 'fastgru';
     *
     * // In Python: safetensors.torch.save_file(model.state_dict(), "model.safetensors"),
     * // where model.rnn is an nn.GRU.
     * const gru = await GRU.fromSafetensors('model.safetensors', { prefix: 'rnn.', batchFirst: true });
     * console.log(gru.inputSize, gru.hiddenSize, gru.numLayers);
     * ```
     */
    function fromSafetensors(path: string, options?: ReadGruOptions & Omit<GRUOptions, 'inputSize' | 'hiddenSize' |
      'numLayers' | 'bidirectional' | 'bias'> | null): Promise<GRU>;
  }
}

attachMethods(GRU.prototype, {
  async saveSafetensors(this: GRU, path: string, options?: { prefix?: string } | null): Promise<void> {
    const o = optionsObject(options, 'an object such as { prefix: "rnn." }', 'options', true);
    checkKnownKeys(o, ['prefix']);
    const prefix = o.prefix ?? '';
    if (typeof prefix !== 'string') throw argError(OptionError, 'options.prefix', 'a string', prefix);
    const sd = Object.fromEntries(Object.entries(this.stateDict()).map(([k, v]) => [prefix + k, v]));
    await writeSafetensorsFile(path, sd, gruSafetensorsMetadata({ resetAfter: this.resetAfter, prefix }));
  },

  loadKeras(this: GRU, layers: KerasGruLayer | KerasGruLayer[]): GRU {
    return this.loadStateDict(fromKeras(layers, { resetAfter: this.resetAfter }).stateDict);
  },

  toKeras(this: GRU): ReturnType<typeof toKeras> {
    return toKeras(this.stateDict(), { resetAfter: this.resetAfter });
  },

  loadOnnx(this: GRU, nodes: OnnxGruWeights | OnnxGruWeights[]): GRU {
    return this.loadStateDict(fromOnnx(nodes, { resetAfter: this.resetAfter }).stateDict);
  },

  toOnnx(this: GRU): OnnxGruNode[] {
    return toOnnx(this.stateDict(), { resetAfter: this.resetAfter });
  },
});

attachMethods(GRU, {
  async fromSafetensors(path: string, options?: ReadGruOptions & Omit<GRUOptions, 'inputSize' | 'hiddenSize' |
    'numLayers' | 'bidirectional' | 'bias'> | null): Promise<GRU> {
    const { prefix, resetAfter, ...rest } = options ?? {};
    const read = await readGruSafetensorsFile(path, { prefix, resetAfter });
    return new GRU({ ...rest, ...read.options }).loadStateDict(read.stateDict);
  },
});
