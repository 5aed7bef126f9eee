export { GRU } from './gru.js';
export type {
  ForwardOptions,
  GRUGradients,
  GRUOptions,
  GRUOutput,
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
  ArgumentError,
  BackendUnavailableError,
  DTypeError,
  FastGruError,
  OptionError,
  ShapeError,
  StateDictError,
} from './errors.js';
