/**
 * Optimizers over the parameters of named modules, with PyTorch's update rules (torch.optim.SGD,
 * Adam, AdamW): `new SGD({ gru, head }, { lr: 1 })`, then `opt.step({ gru: gruGrads, head: headGrads })`
 * after each backward. A step changes the parameter arrays in place and tells each module.
 */
import { argError, ArgumentError, OptionError, ShapeError } from '../errors.js';
import { checkKnownKeys, numberOption, optionsObject, type Options } from '../check.js';
import { gradData, type ModuleGrads, type Modules } from './module.js';

/** A finite number option, at least 0 when `nonNegative`. */
function num(options: Options, name: string, fallback: number, nonNegative: boolean): number {
  return nonNegative
    ? numberOption(options, name, fallback, 'a non-negative number', (v) => v >= 0 && Number.isFinite(v))
    : numberOption(options, name, fallback, 'a finite number', (v) => Number.isFinite(v));
}

/** The options object (undefined is none) with only the `known` keys. */
function checkOptions(options: unknown, known: string[]): Options {
  if (options === undefined) return {};
  const o = optionsObject(options, `an object with ${known.join(', ')}`);
  checkKnownKeys(o, known);
  return o;
}

/** What SGD, Adam and AdamW share: the modules, the learning rate, the step count and step(). */
export abstract class Optimizer {
  /** The learning rate; change it between steps for a schedule. */
  lr: number;
  /** Steps taken. */
  steps = 0;
  private readonly modules: Modules;
  /** Each parameter's state buffers (momentum, Adam's moments), by `module.parameter` key. */
  protected readonly state = new Map<string, Float64Array[]>();

  /**
   * For subclasses: an optimizer of these modules' parameters at this learning rate.
   *
   * @param modules - The modules to train, by name (`{ gru, head }`); the names are the keys of step's gradients.
   * @param lr - The learning rate, checked by the subclass.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when `modules` is not a non-empty object of modules
   *   (each with parameters() and parametersChanged()).
   */
  protected constructor(modules: Modules, lr: number) {
    if (typeof modules !== 'object' || modules === null || Array.isArray(modules) || Object.keys(modules).length === 0) {
      throw argError(ArgumentError, 'modules', 'an object of named modules, such as { gru, head }', modules);
    }
    for (const [name, m] of Object.entries(modules)) {
      if (!m || typeof m.parameters !== 'function' || typeof m.parametersChanged !== 'function') {
        throw argError(ArgumentError, `modules.${name}`, 'a module (a GRU, a Linear, or anything with parameters() and parametersChanged())', m);
      }
    }
    this.modules = modules;
    this.lr = lr;
  }

  /**
   * One update from the gradients of some or all modules (a parameter without a gradient is left
   * alone, as PyTorch does for a None grad). Every gradient is checked before anything changes.
   * Then each parameter is updated in place and each module given gradients is told
   * (parametersChanged). PyTorch's `optimizer.step()`, with the gradients passed rather than read
   * from `.grad`.
   *
   * @param grads - Gradients by module name, then by parameter name: `{ gru: run.backward(...).grads }`;
   *   each a Tensor or Float32Array with as many elements as its parameter.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when `grads` is not an object, names a module or
   *   parameter this optimizer does not have, or holds a gradient that is not a Tensor or Float32Array.
   * @throws {@link ShapeError} (ERR_SHAPE) when a gradient's element count is not its parameter's.
   *
   * @example
   * ```ts
   * import { GRU, Linear, Adam, softmaxCrossEntropy } from 'fastgru';
   *
   * const gru = new GRU({ inputSize: 8, hiddenSize: 16, seed: 1 });
   * const head = new Linear({ inFeatures: 16, outFeatures: 4, seed: 2 });
   * const opt = new Adam({ gru, head }, { lr: 1e-3 });
   * const x = new Array(5).fill(new Array(8).fill(0.5)); // [T = 5, I = 8]
   * const targets = [0, 1, 2, 3, 0];
   * for (let i = 0; i < 10; i++) {
   *   const run = gru.forwardTrain(x);
   *   const out = head.forwardTrain(run.output); // logits [5, 4]
   *   const { loss, dLogits } = softmaxCrossEntropy(out.output, targets);
   *   const h = out.backward(dLogits);
   *   const g = run.backward(h.dInput);
   *   opt.step({ gru: g.grads, head: h.grads });
   *   console.log(loss);
   * }
   * ```
   */
  step(grads: ModuleGrads): void {
    if (typeof grads !== 'object' || grads === null || Array.isArray(grads)) {
      throw argError(ArgumentError, 'grads', `gradients by module name (${Object.keys(this.modules).join(', ')})`, grads);
    }
    const work: Array<{ key: string; p: Float32Array; g: Float32Array }> = [];
    const touched = new Set<string>();
    for (const [name, moduleGrads] of Object.entries(grads)) {
      const module = this.modules[name];
      if (!module) throw argError(ArgumentError, 'grads', `only the modules ${Object.keys(this.modules).join(', ')}`, `"${name}"`, { gotIsText: true });
      if (typeof moduleGrads !== 'object' || moduleGrads === null) throw argError(ArgumentError, `grads.${name}`, 'gradients by parameter name', moduleGrads);
      const params = module.parameters();
      for (const [pname, g] of Object.entries(moduleGrads)) {
        const p = params[pname];
        if (!p) throw argError(ArgumentError, `grads.${name}`, `only parameters of ${name} (${Object.keys(params).join(', ')})`, `"${pname}"`, { gotIsText: true });
        const data = g instanceof Float32Array || (g && (g as { data?: unknown }).data instanceof Float32Array) ? gradData(g) : null;
        if (!data) throw argError(ArgumentError, `grads.${name}.${pname}`, 'a Tensor or Float32Array', g);
        if (data.length !== p.data.length) {
          throw argError(ShapeError, `grads.${name}.${pname}`, `${p.data.length} elements (the parameter's)`, `${data.length}`, { gotIsText: true });
        }
        work.push({ key: `${name}.${pname}`, p: p.data, g: data });
      }
      touched.add(name);
    }
    this.steps++;
    for (const { key, p, g } of work) this.update(key, p, g);
    for (const name of touched) this.modules[name].parametersChanged();
  }

  /**
   * Per-parameter state buffers (float64), created zeroed on first use.
   *
   * @param key - The parameter's key, as update receives it.
   * @param count - How many buffers the parameter needs (1 for momentum, 2 for Adam's moments).
   * @param length - The parameter's element count, each buffer's length.
   * @returns The parameter's buffers, the same arrays at every step.
   */
  protected buffers(key: string, count: number, length: number): Float64Array[] {
    let s = this.state.get(key);
    if (!s) {
      s = Array.from({ length: count }, () => new Float64Array(length));
      this.state.set(key, s);
    }
    return s;
  }

  /**
   * A subclass's update rule: changes one parameter in place from its gradient. step calls it for
   * each parameter given a gradient, after checking them all and counting the step in `steps`.
   *
   * @param key - `module.parameter`, unique per parameter: the key of its state buffers.
   * @param p - The parameter's values, written in place.
   * @param g - Its gradient, as many elements as p.
   */
  protected abstract update(key: string, p: Float32Array, g: Float32Array): void;
}

/** The options of SGD, as torch.optim.SGD's (lr required). */
export interface SGDOptions {
  /** The learning rate, a non-negative number (required, as in torch.optim.SGD). */
  lr: number;
  /** Default 0. */
  momentum?: number;
  /** Default 0. */
  dampening?: number;
  /** L2 penalty added to the gradient; default 0. */
  weightDecay?: number;
  /** Default false. */
  nesterov?: boolean;
}

/** torch.optim.SGD: d = g + wd·p; with momentum b = μ·b + (1−dampening)·d (b = d at first), d = nesterov ? d + μ·b : b; p −= lr·d. */
export class SGD extends Optimizer {
  /** The momentum factor μ (0: none). */
  readonly momentum: number;
  /** The dampening of momentum: the new gradient enters the buffer scaled by 1 − dampening. */
  readonly dampening: number;
  /** The L2 penalty wd: wd·p is added to each gradient. */
  readonly weightDecay: number;
  /** Whether the step uses Nesterov momentum. */
  readonly nesterov: boolean;
  private readonly started = new Set<string>();

  /**
   * torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov) over the parameters of
   * these modules.
   *
   * @param modules - The modules to train, by name (`{ gru, head }`).
   * @param options - lr (required), momentum, dampening, weightDecay and nesterov; see {@link SGDOptions}.
   * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has an unknown key,
   *   lacks lr, has a negative or non-finite number (dampening may be negative), nesterov is not a
   *   boolean, or nesterov is set without momentum or with dampening.
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when `modules` is not a non-empty object of modules.
   *
   * @example
   * ```ts
   * import { GRU, SGD } from 'fastgru';
   *
   * const gru = new GRU({ inputSize: 8, hiddenSize: 16 });
   * const opt = new SGD({ gru }, { lr: 0.1, momentum: 0.9 });
   * const run = gru.forwardTrain(new Array(5).fill(new Array(8).fill(1))); // [T = 5, I = 8]
   * opt.step({ gru: run.backward(run.output).grads });
   * ```
   */
  constructor(modules: Modules, options: SGDOptions) {
    const o = checkOptions(options, ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov']);
    if (o.lr === undefined) throw argError(OptionError, 'options.lr', 'a non-negative number', undefined);
    super(modules, num(o, 'lr', 0, true));
    this.momentum = num(o, 'momentum', 0, true);
    this.dampening = num(o, 'dampening', 0, false);
    this.weightDecay = num(o, 'weightDecay', 0, true);
    const nesterov = o.nesterov === undefined ? false : o.nesterov;
    if (typeof nesterov !== 'boolean') throw argError(OptionError, 'options.nesterov', 'a boolean', nesterov);
    if (nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw argError(OptionError, 'options.nesterov', 'momentum > 0 and dampening 0 with nesterov', `momentum ${this.momentum}, dampening ${this.dampening}`, { gotIsText: true });
    }
    this.nesterov = nesterov;
  }

  protected update(key: string, p: Float32Array, g: Float32Array): void {
    const { lr, momentum: mu, dampening, weightDecay: wd, nesterov } = this;
    const buf = mu !== 0 ? this.buffers(key, 1, p.length)[0] : null;
    const first = buf !== null && !this.started.has(key);
    if (buf) this.started.add(key);
    for (let i = 0; i < p.length; i++) {
      let d = g[i] + wd * p[i];
      if (buf) {
        buf[i] = first ? d : mu * buf[i] + (1 - dampening) * d;
        d = nesterov ? d + mu * buf[i] : buf[i];
      }
      p[i] = p[i] - lr * d;
    }
  }
}

/** The options of Adam and AdamW, as torch.optim's. */
export interface AdamOptions {
  /** Default 1e-3. */
  lr?: number;
  /** Default [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Adam: an L2 penalty added to the gradient; AdamW: decoupled decay. Default 0 (Adam), 0.01 (AdamW). */
  weightDecay?: number;
}

/** torch.optim.Adam (and AdamW, with decoupled weight decay). */
export class Adam extends Optimizer {
  /** β1, the decay of the first moment (the gradients' running mean). */
  readonly beta1: number;
  /** β2, the decay of the second moment (the squared gradients' running mean). */
  readonly beta2: number;
  /** ε, added to the denominator for numerical stability. */
  readonly eps: number;
  /** The weight decay: an L2 penalty (Adam) or a decoupled decay of the parameters (AdamW). */
  readonly weightDecay: number;
  /** Whether the weight decay is decoupled (AdamW) rather than added to the gradient (Adam). */
  protected readonly decoupled: boolean;

  /**
   * torch.optim.Adam(params, lr, betas, eps, weight_decay) over the parameters of these modules.
   *
   * @param modules - The modules to train, by name (`{ gru, head }`).
   * @param options - lr (default 1e-3), betas, eps and weightDecay; see {@link AdamOptions}. Omitted for the defaults.
   * @param decoupled - For AdamW, which passes true: decay the parameters directly rather than add an
   *   L2 penalty to the gradient, and default weightDecay to 0.01. Use AdamW rather than passing it.
   * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has an unknown key, a
   *   negative or non-finite lr, eps or weightDecay, or betas that are not two numbers in [0, 1).
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when `modules` is not a non-empty object of modules.
   *
   * @example
   * ```ts
   * import { GRU, Adam } from 'fastgru';
   *
   * const gru = new GRU({ inputSize: 8, hiddenSize: 16 });
   * const opt = new Adam({ gru }, { lr: 1e-3, betas: [0.9, 0.999] });
   * const run = gru.forwardTrain(new Array(5).fill(new Array(8).fill(1))); // [T = 5, I = 8]
   * opt.step({ gru: run.backward(run.output).grads });
   * ```
   */
  constructor(modules: Modules, options?: AdamOptions, decoupled = false) {
    const o = checkOptions(options, ['lr', 'betas', 'eps', 'weightDecay']);
    super(modules, num(o, 'lr', 1e-3, true));
    const betas = o.betas === undefined ? [0.9, 0.999] : o.betas;
    if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number' && b >= 0 && b < 1)) {
      throw argError(OptionError, 'options.betas', 'two numbers in [0, 1)', betas);
    }
    [this.beta1, this.beta2] = betas as [number, number];
    this.eps = num(o, 'eps', 1e-8, true);
    this.weightDecay = num(o, 'weightDecay', decoupled ? 0.01 : 0, true);
    this.decoupled = decoupled;
  }

  protected update(key: string, p: Float32Array, g: Float32Array): void {
    const { lr, beta1: b1, beta2: b2, eps, weightDecay: wd, decoupled } = this;
    const [m, v] = this.buffers(key, 2, p.length);
    const t = this.steps;
    const c1 = 1 - b1 ** t;
    const c2 = Math.sqrt(1 - b2 ** t);
    const stepSize = lr / c1;
    for (let i = 0; i < p.length; i++) {
      let pi = p[i];
      let gi = g[i];
      if (decoupled) pi *= 1 - lr * wd;
      else gi += wd * pi;
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      p[i] = pi - (stepSize * m[i]) / (Math.sqrt(v[i]) / c2 + eps);
    }
  }
}

/** torch.optim.AdamW: Adam with the weight decay applied to the parameters directly (p −= lr·wd·p). */
export class AdamW extends Adam {
  /**
   * torch.optim.AdamW(params, lr, betas, eps, weight_decay) over the parameters of these modules.
   *
   * @param modules - The modules to train, by name (`{ gru, head }`).
   * @param options - lr (default 1e-3), betas, eps and weightDecay (default 0.01); see {@link AdamOptions}.
   * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has an unknown key, a
   *   negative or non-finite lr, eps or weightDecay, or betas that are not two numbers in [0, 1).
   * @throws {@link ArgumentError} (ERR_ARGUMENT) when `modules` is not a non-empty object of modules.
   *
   * @example
   * ```ts
   * import { GRU, AdamW } from 'fastgru';
   *
   * const gru = new GRU({ inputSize: 8, hiddenSize: 16 });
   * const opt = new AdamW({ gru }, { lr: 1e-3, weightDecay: 0.01 });
   * ```
   */
  constructor(modules: Modules, options?: AdamOptions) {
    super(modules, options, true);
  }
}

/**
 * Scales every gradient in place so that their global L2 norm is at most maxNorm (as
 * torch.nn.utils.clip_grad_norm_ and the d2l chapter's grad_clipping), and returns the norm before.
 * grads: one module's gradients, or several modules' ({ gru: grads, head: grads }).
 *
 * @param grads - The gradients to scale in place: Tensors or Float32Arrays by name, nested to any
 *   depth (one module's grads, or several modules' by module name).
 * @param maxNorm - The largest global L2 norm to allow, a non-negative finite number.
 * @returns The global L2 norm of all the gradients before clipping.
 * @throws {@link ArgumentError} (ERR_ARGUMENT) when maxNorm is not a non-negative finite number, or
 *   an entry is neither a gradient nor an object of them, or an object contains itself.
 *
 * @example
 * ```ts
 * import { GRU, SGD, clipGradNorm } from 'fastgru';
 *
 * const gru = new GRU({ inputSize: 8, hiddenSize: 16 });
 * const opt = new SGD({ gru }, { lr: 1 });
 * const run = gru.forwardTrain(new Array(5).fill(new Array(8).fill(1)));
 * const { grads } = run.backward(run.output);
 * const norm = clipGradNorm(grads, 1); // torch.nn.utils.clip_grad_norm_(params, 1)
 * opt.step({ gru: grads });
 * ```
 */
export function clipGradNorm(grads: ModuleGrads | Record<string, unknown>, maxNorm: number): number {
  if (typeof maxNorm !== 'number' || !(maxNorm >= 0) || !Number.isFinite(maxNorm)) {
    throw argError(ArgumentError, 'maxNorm', 'a non-negative finite number', maxNorm);
  }
  // An array reached by two paths counts twice, as a tensor given twice to torch's clip_grad_norm_;
  // only an object inside itself (a cycle, which would never end) is refused.
  const arrays: Float32Array[] = [];
  const enclosing = new Set<object>();
  const collect = (value: unknown, path: string) => {
    if (value instanceof Float32Array) arrays.push(value);
    else if (value && typeof value === 'object' && (value as { data?: unknown }).data instanceof Float32Array) arrays.push((value as { data: Float32Array }).data);
    else if (value && typeof value === 'object' && !Array.isArray(value)) {
      if (enclosing.has(value)) {
        throw argError(ArgumentError, path, 'gradients: Tensors or Float32Arrays by name, without cycles', 'an object that contains itself', { gotIsText: true });
      }
      enclosing.add(value);
      for (const [k, v] of Object.entries(value)) collect(v, `${path}.${k}`);
      enclosing.delete(value);
    } else throw argError(ArgumentError, path, 'gradients: Tensors or Float32Arrays by name', value);
  };
  collect(grads, 'grads');
  let sum = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) sum += a[i] * a[i];
  const norm = Math.sqrt(sum);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (const a of arrays) for (let i = 0; i < a.length; i++) a[i] *= coef;
  return norm;
}
