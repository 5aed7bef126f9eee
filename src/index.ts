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
export { GRUCell } from './gru-cell.js';
export type { CellFromGRUOptions, CellToGRUOptions, GRUCellGradients, GRUCellOptions, GRUCellRun } from './gru-cell.js';
// The serve and io rooms attach their entry points to GRU when they load (gru.batcher(), gru.session(),
// gru.share(), GRU.fromShared; GRU.fromSafetensors, gru.saveSafetensors(), the Keras and ONNX layouts):
// this entry loads both, so `import 'fastgru'` and `require('fastgru')` see every method.
export { Batcher, Session } from './serve/index.js';
export type { BatcherOptions, BatcherStats, CloseOptions, Percentiles, RunOptions, SharedGRU, SharedOptions } from './serve/index.js';
export { Adam, AdamW, clipGradNorm, detach, Linear, Optimizer, SGD, softmaxCrossEntropy } from './train/index.js';
export { Embedding } from './train/index.js';
export type { EmbeddingIds, EmbeddingOptions, EmbeddingRun, IdTensor, IntegerArray } from './train/index.js';
export type { AdamOptions, CrossEntropy, Grads, LinearOptions, LinearRun, Module, ModuleGrads, Modules, SGDOptions } from './train/index.js';
export {
  fromKeras, fromOnnx, gruSafetensorsMetadata, inferGruOptions, readGruSafetensors, readGruSafetensorsFile,
  readGruSafetensorsFileSync, readSafetensors, readSafetensorsFile, readSafetensorsFileSync, stripPrefix, toKeras, toOnnx,
  writeSafetensors, writeSafetensorsFile, writeSafetensorsFileSync,
} from './io/index.js';
export { loadModules, loadModulesFile, loadModulesFileSync } from './io/index.js';
export type { LoadedModules, LoadModulesOptions, StatefulModule } from './io/index.js';
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
