/**
 * What the optimizers train: a module with named parameter arrays that they change in place. GRU
 * and Linear are modules. Gradients come as backward returns them: a record of Tensors by the same
 * names (or bare Float32Arrays).
 */
import type { Tensor } from '../tensor.js';

/**
 * What an optimizer can train: GRU and Linear are modules, and so is any object of yours with these
 * two methods (PyTorch's nn.Module, as far as an optimizer sees it).
 */
export interface Module {
  /**
   * The live parameters by name: Tensors over the module's own arrays (no copies).
   *
   * @returns The parameters by name; an optimizer writes into their data in place.
   */
  parameters(): Record<string, Tensor>;
  /** Called after the arrays of parameters() were changed in place (a GRU then repacks its weights). */
  parametersChanged(): void;
}

/** One module's gradients, by parameter name. */
export type Grads = Record<string, Tensor | Float32Array>;

/** Several modules by name, and their gradients under the same names: { gru: grads, head: grads }. */
export type Modules = Record<string, Module>;
/** Gradients of several modules, under the names the optimizer was given them by: `{ gru: grads, head: grads }`. */
export type ModuleGrads = Record<string, Grads>;

/** The array of a gradient entry. */
export function gradData(g: Tensor | Float32Array): Float32Array {
  return g instanceof Float32Array ? g : g.data;
}

/**
 * Truncated backpropagation through time: the state that carries into the next chunk as a plain
 * copy. Passing it as h0 continues the sequence forward (the next chunk's outputs are those of one
 * long run), while the next chunk's backward stops at it (its dH0 is simply not propagated further).
 * PyTorch's `h.detach()`, except that the values are copied.
 *
 * @param state - The state to carry over, such as a run's `hidden` [numLayers·D, B, H].
 * @returns A new Tensor of the same shape with a copy of the values.
 * @throws TypeError (not a fastgru error) when `state` has no `data` array: detach does not check
 *   its argument, so pass it the Tensor a forward returned, not a nested array.
 *
 * @example
 * ```ts
 * import { GRU, detach, tensor } from 'fastgru';
 *
 * const gru = new GRU({ inputSize: 4, hiddenSize: 8 });
 * let h = null;
 * for (let chunk = 0; chunk < 3; chunk++) {
 *   const x = tensor(new Float32Array(20 * 4), [20, 1, 4]); // the next 20 steps of one stream
 *   const run = gru.forwardTrain(x, h);
 *   run.backward(run.output); // gradients of this chunk only
 *   h = detach(run.hidden);   // the state goes on, the gradient stops
 * }
 * ```
 */
export function detach(state: Tensor): Tensor {
  return { data: state.data.slice(), shape: [...state.shape] };
}
