/** Training: optimizers, gradient clipping, a Linear layer and softmax cross-entropy. */
export { Adam, AdamW, clipGradNorm, Optimizer, SGD } from './optim.js';
export type { AdamOptions, SGDOptions } from './optim.js';
export { Linear } from './linear.js';
export type { LinearOptions, LinearRun } from './linear.js';
export { softmaxCrossEntropy } from './loss.js';
export type { CrossEntropy } from './loss.js';
export { detach } from './module.js';
export type { Grads, Module, ModuleGrads, Modules } from './module.js';
