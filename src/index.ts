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
export { tensor } from './tensor.js';
export type { NestedNumberArray, Tensor, TensorData, TensorLike } from './tensor.js';
export { backendInfo } from './backend/index.js';
export type { BackendChoice, BackendInfo } from './backend/index.js';
export {
  AbortedError,
  ArgumentError,
  BackendUnavailableError,
  DTypeError,
  FastGruError,
  OptionError,
  OutOfMemoryError,
  ShapeError,
  StateDictError,
} from './errors.js';
