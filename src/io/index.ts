/** Weights in and out: safetensors files, and the layouts of Keras and ONNX. */
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
