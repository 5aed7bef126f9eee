/** Training: optimizers, gradient clipping, Linear and Embedding layers and softmax cross-entropy. */
export { Adam, AdamW, clipGradNorm, Optimizer, SGD } from './optim.js';
export type { AdamOptions, SGDOptions } from './optim.js';
export { Linear } from './linear.js';
export { Embedding } from './embedding.js';
export type { EmbeddingIds, EmbeddingOptions, EmbeddingRun, IdTensor, IntegerArray } from './embedding.js';
export type { LinearOptions, LinearRun } from './linear.js';
export { softmaxCrossEntropy } from './loss.js';
export type { CrossEntropy } from './loss.js';
export { detach } from './module.js';
export type { Grads, Module, ModuleGrads, Modules } from './module.js';
