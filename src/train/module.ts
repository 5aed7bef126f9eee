/**
 * What the optimizers train: a module with named parameter arrays that they change in place. GRU
 * and Linear are modules. Gradients come as backward returns them: a record of Tensors by the same
 * names (or bare Float32Arrays).
 */
import type { Tensor } from '../tensor.js';

export interface Module {
  /** The live parameters by name: Tensors over the module's own arrays (no copies). */
  parameters(): Record<string, Tensor>;
  /** Called after the arrays of parameters() were changed in place (a GRU then repacks its weights). */
  parametersChanged(): void;
}

/** One module's gradients, by parameter name. */
export type Grads = Record<string, Tensor | Float32Array>;

/** Several modules by name, and their gradients under the same names: { gru: grads, head: grads }. */
export type Modules = Record<string, Module>;
export type ModuleGrads = Record<string, Grads>;

/** The array of a gradient entry. */
export function gradData(g: Tensor | Float32Array): Float32Array {
  return g instanceof Float32Array ? g : g.data;
}

/**
 * Truncated backpropagation through time: the state that carries into the next chunk as a plain
 * copy. Passing it as h0 continues the sequence forward (the next chunk's outputs are those of one
 * long run), while the next chunk's backward stops at it (its dH0 is simply not propagated further).
 */
export function detach(state: Tensor): Tensor {
  return { data: state.data.slice(), shape: [...state.shape] };
}
