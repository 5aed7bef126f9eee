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
    /** Writes the parameters (names under `prefix`) and the form, in a file fromSafetensors and PyTorch read. */
    saveSafetensors(path: string, options?: { prefix?: string } | null): Promise<void>;
    /** Loads Keras GRU weights (one entry per layer; { forward, backward } for Bidirectional). */
    loadKeras(layers: KerasGruLayer | KerasGruLayer[]): this;
    /** The weights in Keras's layout, one entry per layer. */
    toKeras(): ReturnType<typeof toKeras>;
    /** Loads ONNX GRU initializers (W, R, B), one node per layer. */
    loadOnnx(nodes: OnnxGruWeights | OnnxGruWeights[]): this;
    /** The weights as ONNX GRU nodes' initializers, one node per layer. */
    toOnnx(): OnnxGruNode[];
  }
  namespace GRU {
    /**
     * A GRU from a safetensors file of a PyTorch state_dict (or one saveSafetensors wrote). Layers,
     * direction, sizes and bias come from the names and shapes; `prefix` picks the GRU's tensors out of
     * a larger model's file ('rnn.'); the form comes from the file's metadata when it records one, else
     * from `resetAfter` (default true, as nn.GRU). Other options (backend, threads, ...) pass through.
     */
    function fromSafetensors(path: string, options?: ReadGruOptions & Omit<GRUOptions, 'inputSize' | 'hiddenSize' |
      'numLayers' | 'bidirectional' | 'bias'> | null): Promise<GRU>;
  }
}

attachMethods(GRU.prototype, {
  async saveSafetensors(this: GRU, path: string, options?: { prefix?: string } | null): Promise<void> {
    const prefix = options?.prefix ?? '';
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
