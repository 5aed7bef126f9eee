export { GRU } from './gru.js';
export type {
  ForwardAsyncOptions,
  ForwardOptions,
  GRUGradients,
  GRUOptions,
  GRUOutput,
  Lengths,
  StateDict,
  StateDictInput,
  StateDictValue,
  TrainingRun,
} from './gru.js';
export { Batcher } from './serve/batcher.js';
export type { BatcherOptions, CloseOptions, RunOptions } from './serve/batcher.js';
export { Session } from './serve/session.js';
export type { BatcherStats, Percentiles } from './serve/stats.js';
export type { SharedGRU, SharedOptions } from './serve/shared.js';
export { Adam, AdamW, clipGradNorm, detach, Linear, Optimizer, SGD, softmaxCrossEntropy } from './train/index.js';
export type { AdamOptions, CrossEntropy, Grads, LinearOptions, LinearRun, Module, ModuleGrads, Modules, SGDOptions } from './train/index.js';
export {
  fromKeras, fromOnnx, gruSafetensorsMetadata, inferGruOptions, readGruSafetensors, readGruSafetensorsFile,
  readGruSafetensorsFileSync, readSafetensors, readSafetensorsFile, readSafetensorsFileSync, stripPrefix, toKeras, toOnnx,
  writeSafetensors, writeSafetensorsFile, writeSafetensorsFileSync,
} from './io/index.js';
export type {
  ConvertedGru, FromOptions, GruLayoutOptions, GruSafetensors, GruShapeOptions, KerasBidirectionalWeights, KerasGruLayer,
  KerasGruWeights, OnnxGruNode, OnnxGruWeights, ReadGruOptions, ReadSafetensorsOptions, SafetensorsContents,
  SafetensorsInput, StateDictLike, ToOptions,
} from './io/index.js';
export { tensor } from './tensor.js';
export type { NestedNumberArray, Tensor, TensorData, TensorLike } from './tensor.js';
export { backendInfo } from './backend/index.js';
export type { BackendChoice, BackendInfo, ThreadsSource } from './backend/index.js';
export type { AddonSource } from './backend/locate.js';
export {
  AbortedError,
  ArgumentError,
  BackendUnavailableError,
  ClosedError,
  DTypeError,
  FastGruError,
  OptionError,
  OutOfMemoryError,
  QueueFullError,
  ShapeError,
  StateDictError,
} from './errors.js';
