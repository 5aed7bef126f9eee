// Properties of the addon called directly (design §5: "the addon checks again (it can be called
// directly) and never crashes the process: a bad call throws a JS error"): the Model constructor,
// forward / forwardAsync / forwardTrain / backward with raw arguments (wrong types and lengths,
// detached, shared and resizable buffers, steps and batches whose products overflow 32 and 64 bits,
// zero sizes, buffers moved away while forwardAsync is in flight), matmul, and methods called on
// the wrong objects. Results are checked against the js backend given the same arrays; errors must
// be FastGruErrors (made through init's makeError) with one of the addon's codes, naming the
// argument.
import fc from 'fast-check';
import { addon, attempt, AVOID, checkAddonError, count, detach, detachedBuffer, expectBits, expectClose, expectOutcome, fail, Failure, floats, jsBackend, prng, show, stored } from './harness.mjs';
import { junkArb, junkValue } from './rules.mjs';

const TOL = 1e-4;
/** Above this many elements a valid call would allocate for real: such calls are left out. */
const CHEAP = 2 ** 16;
/** The addon's own limit on a result it allocates (native/addon: new_floats). */
const ALLOC_LIMIT = 2 ** 34;

const rawConfigArb = fc.record({
  inputSize: fc.integer({ min: 1, max: 5 }),
  hiddenSize: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 6 }) }, { weight: 1, arbitrary: fc.constantFrom(16, 17) }),
  numLayers: fc.integer({ min: 1, max: 3 }),
  numDirections: fc.constantFrom(1, 2),
  resetAfter: fc.boolean(),
  bias: fc.boolean(),
  seed: fc.nat(),
});

const configOf = (c) => ({ inputSize: c.inputSize, hiddenSize: c.hiddenSize, numLayers: c.numLayers, numDirections: c.numDirections, resetAfter: c.resetAfter, bias: c.bias });

function weightsFor(c, seed = c.seed, storage = 'plain') {
  const list = [];
  const H = c.hiddenSize;
  for (let k = 0; k < c.numLayers * c.numDirections; k++) {
    const I = k < c.numDirections ? c.inputSize : c.numDirections * H;
    const w = { wIh: stored(floats(3 * H * I, seed + 4 * k, 'uniform', 0.5), storage), wHh: stored(floats(3 * H * H, seed + 4 * k + 1, 'uniform', 0.5), storage) };
    w.bIh = c.bias ? stored(floats(3 * H, seed + 4 * k + 2, 'uniform', 0.5), storage) : null;
    w.bHh = c.bias ? stored(floats(3 * H, seed + 4 * k + 3, 'uniform', 0.5), storage) : null;
    list.push(w);
  }
  return list;
}

/** The js backend's copy of a model: the reference for every result. */
function reference(c, weights) {
  const copy = weights.map((w) => ({ wIh: Float32Array.from(w.wIh), wHh: Float32Array.from(w.wHh), bIh: c.bias ? Float32Array.from(w.bIh) : null, bHh: c.bias ? Float32Array.from(w.bHh) : null }));
  return jsBackend.createModel(configOf(c), copy);
}

const isInt = (v, lo, hi) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
const isF32 = (v) => v instanceof Float32Array;
const isDetached = (v) => detachedBuffer(v.buffer);

// ------------------------------------------------------------------------------------------------
// The Model constructor
// ------------------------------------------------------------------------------------------------

const CONFIG_VALUES = {
  inputSize: [0, -3, 1.5, 2 ** 30 + 1, 2 ** 31, NaN, Infinity, '3', 3n, true, null, 2 ** 30, 2 ** 20, 4],
  hiddenSize: [0, 1.5, 2 ** 30, 2 ** 15, 2 ** 14, 2 ** 31, NaN, '4', 7],
  numLayers: [0, 2.5, '2', 2 ** 20, 2 ** 20 + 1, 2 ** 31, 4],
  numDirections: [0, 3, true, 1.5, 2, 1],
  resetAfter: [1, 'true', null, undefined],
  bias: [0, undefined, 'false'],
};
const WEIGHT_FAULTS = ['missing', 'f64', 'array', 'short', 'long', 'detached', 'string', 'null-item', 'junk-item', 'shared', 'offset',
  'resizable', 'growable', 'extra-key', 'getter-detach', 'i32'];

const modelProperty = {
  id: 'addon.model',
  area: 'addon',
  needsAddon: true,
  title: 'new addon.Model(config, weights, shared?) with fuzzed configs (sizes whose weights overflow included) and weights (wrong types, lengths, detached, shared, resizable, getters that detach another weight): a model computing what the js backend computes, or a FastGruError naming the argument',
  arbitrary: fc.record({
    cfg: rawConfigArb,
    config: fc.option(fc.record({ key: fc.constantFrom(...Object.keys(CONFIG_VALUES)), at: fc.nat() }), { freq: 2 }),
    container: fc.constantFrom('object', 'object', 'object', 'object', 'null', 'number', 'string', 'array-like', 'missing'),
    list: fc.constantFrom('array', 'array', 'array', 'array', 'object', 'typed', 'fewer', 'more', 'junk'),
    faults: fc.array(fc.record({ fault: fc.constantFrom(...WEIGHT_FAULTS), at: fc.nat(), key: fc.constantFrom('wIh', 'wHh', 'bIh', 'bHh'), junk: fc.nat() }), { maxLength: 2 }),
    shared: fc.oneof(fc.constantFrom('omit', 'omit', true, false).map((v) => ({ v })), junkArb),
    x: fc.nat(),
  }),
  async run(s) {
    const c = { ...s.cfg };
    const roots = new Set();
    let configValue;
    if (s.config) {
      const values = CONFIG_VALUES[s.config.key];
      c[s.config.key] = values[s.config.at % values.length];
    }
    // The addon's rules for a config (native/addon, ModelWrap; core check_config).
    const ranges = { inputSize: 2 ** 30, hiddenSize: 2 ** 30, numLayers: 2 ** 20, numDirections: 2 };
    let configValid = true;
    for (const [k, hi] of Object.entries(ranges)) if (!isInt(c[k], 1, hi)) configValid = false;
    if (typeof c.resetAfter !== 'boolean' || typeof c.bias !== 'boolean') configValid = false;
    if (configValid && 3 * c.hiddenSize * Math.max(c.inputSize, c.numDirections * c.hiddenSize) > 2 ** 30) {
      configValid = false;
      roots.add('hiddenSize');
    }
    switch (s.container) {
      case 'null': configValue = null; configValid = false; break;
      case 'number': configValue = 5; configValid = false; break;
      case 'string': configValue = 'config'; configValid = false; break;
      case 'missing': configValue = undefined; configValid = false; break;
      case 'array-like': configValue = Object.assign([], configOf(c)); break;
      default: configValue = configOf(c);
    }
    if (!configValid) roots.add('config');
    // Weights for the final config when it is a small one; else for the original (so they do not fit).
    const small = configValid && c.numLayers <= 3 && c.hiddenSize <= 17 && c.inputSize <= 5;
    const base = small ? c : s.cfg;
    const weights = weightsFor(base, base.seed ?? s.cfg.seed);
    const list = weights.map((w) => ({ ...w }));
    const directions = base.numLayers * base.numDirections;
    for (const f of s.faults) {
      const k = f.at % directions;
      const w = list[k] && typeof list[k] === 'object' ? list[k] : (list[k] = { ...weights[k] });
      if (w.getterDetached) continue; // its getter stays as it is
      const n = weights[k][f.key]?.length ?? 0;
      switch (f.fault) {
        case 'missing': delete w[f.key]; break;
        case 'f64': w[f.key] = new Float64Array(n); break;
        case 'i32': w[f.key] = new Int32Array(n); break;
        case 'array': w[f.key] = Array.from(weights[k][f.key] ?? []); break;
        case 'short': w[f.key] = new Float32Array(Math.max(0, n - 1)); break;
        case 'long': w[f.key] = new Float32Array(n + 1); break;
        case 'detached': w[f.key] = stored(new Float32Array(Math.max(n, 1)), 'detached'); break;
        case 'string': w[f.key] = 'weights'; break;
        case 'null-item': list[k] = null; break;
        case 'junk-item': list[k] = junkValue(f.junk); break;
        case 'shared': case 'offset': case 'resizable': case 'growable':
          if (weights[k][f.key]) w[f.key] = stored(weights[k][f.key], f.fault);
          break;
        case 'extra-key': w.bias = new Float32Array(1); break;
        case 'getter-detach': {
          // the getter of one weight moves another's buffer away, after the addon may have read it
          const other = f.key === 'wIh' ? 'wHh' : 'wIh';
          const victim = Float32Array.from(weights[k][other]);
          const value = weights[k][f.key];
          w[other] = victim;
          Object.defineProperty(w, f.key, { enumerable: true, get: () => { if (victim.buffer.byteLength) detach(victim.buffer); return value; } });
          w.getterDetached = other;
          break;
        }
        default:
      }
    }
    let listValue = list;
    switch (s.list) {
      case 'object': listValue = { ...list }; break;
      case 'typed': listValue = new Float32Array(3); break;
      case 'fewer': listValue = list.slice(1); break;
      case 'more': listValue = [...list, list[0]]; break;
      case 'junk': listValue = junkValue(s.x); break;
      default:
    }
    // The addon's rules for the weights (ModelWrap): one object per layer and direction, each with
    // Float32Arrays of PyTorch's sizes (biases only read with bias). A getter is left to the special case.
    const validItem = (w, k) => {
      if (w === null || (typeof w !== 'object' && typeof w !== 'function')) return false;
      const H = base.hiddenSize;
      const I = k < base.numDirections ? base.inputSize : base.numDirections * H;
      const want = { wIh: 3 * H * I, wHh: 3 * H * H, ...(base.bias ? { bIh: 3 * H, bHh: 3 * H } : {}) };
      return Object.entries(want).every(([key, n]) => {
        const d = Object.getOwnPropertyDescriptor(w, key);
        if (d && d.get) return true;
        const v = w[key];
        return v instanceof Float32Array && !isDetached(v) && v.length === n;
      });
    };
    const weightsValid = small && Array.isArray(listValue) && listValue.length === directions && listValue.every(validItem);
    if (!weightsValid) roots.add('weights');
    const shared = s.shared.v ?? junkValue(s.shared);
    const sharedValid = s.shared.v === 'omit' || shared === undefined || typeof shared === 'boolean';
    if (!sharedValid) roots.add('shared');
    const getterDetached = Array.isArray(listValue) && listValue.some((w) => w && w.getterDetached);
    // Refusing the weight a getter detached, by name, is as good as using its earlier values.
    if (getterDetached) roots.add('weights');
    const valid = configValid && weightsValid && sharedValid;
    const what = `new addon.Model(${show(configValue)} ${JSON.stringify(configOf(c), (k, v) => (typeof v === 'bigint' ? `${v}n` : v))}, ${show(listValue)}${s.shared.v === 'omit' ? '' : `, ${show(shared)}`})`;
    const r = await attempt(() => (s.shared.v === 'omit' ? new addon.Model(configValue, listValue) : new addon.Model(configValue, listValue, shared)));
    if (valid && getterDetached && !r.ok) {
      // Refusing the weight the getter detached, by name, is as good as using its earlier values.
      checkAddonError(r.error, ['weights'], what);
      return;
    }
    const model = expectOutcome(r, valid ? { valid: true } : { valid: false, roots: [...roots] }, what, { addonCall: true });
    if (!model) return;
    if (typeof model.isa !== 'string') fail('wrong-result', `${what}: isa ${show(model.isa)}`);
    // The model computes what the js backend computes from the same values.
    const plain = weights.map((w) => ({ ...w }));
    const T = 2;
    const B = 2;
    const x = floats(T * B * c.inputSize, s.x);
    const got = expectOutcome(await attempt(() => model.forward(x, T, B, false, null, null, 1)), { valid: true }, `${what}: forward`, { addonCall: true });
    const want = reference(c, plain).forward({ x, steps: T, batch: B, batchFirst: false, h0: null, lengths: null });
    expectClose(got.output, want.output, TOL, `${what}: output vs js`);
    expectClose(got.hidden, want.hidden, TOL, `${what}: hidden vs js`);
  },
};

// ------------------------------------------------------------------------------------------------
// forward, forwardAsync, forwardTrain with raw arguments
// ------------------------------------------------------------------------------------------------

const SIZES = ['good', 'good', 'good', 'good', 0, 0, NaN, -1, 1.5, '3', 3n, Infinity, undefined, null, true, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 1,
  2 ** 33, 2 ** 40, 2 ** 40 + 1, 2 ** 53, 2 ** 64, new Number(2)];
const ARRAY_ARG = ['good', 'good', 'good', 'good', 'short', 'long', 'f64', 'i32', 'array', 'null', 'string', 'detached', 'shared', 'offset', 'resizable', 'growable', 'number'];
const LENGTHS_ARG = ['null', 'null', 'good', 'good', 'zeros', 'above', 'negative', 'int-min', 'count', 'f64', 'u32', 'array', 'detached', 'shared', 'undefined'];
const MASKS_ARG = ['null', 'good', 'good', 'empty', 'too-many', 'f64', 'short', 'detached', 'object', 'typed', 'holes'];
const THREADS = [1, 1, 2, 3, 4, 0, 1025, 1024, 1.5, NaN, '2', undefined, -1];
const AFTER = ['none', 'none', 'detach-x', 'detach-h0', 'detach-lengths', 'scribble', 'abort', 'detach-all'];

const rawCallArb = fc.record({
  cfg: rawConfigArb,
  method: fc.constantFrom('forward', 'forwardAsync', 'forwardTrain'),
  T: fc.integer({ min: 0, max: 4 }),
  B: fc.integer({ min: 0, max: 3 }),
  steps: fc.constantFrom(...SIZES.keys()),
  batch: fc.constantFrom(...SIZES.keys()),
  batchFirst: fc.constantFrom(false, true, false, true, 1, 'false', undefined),
  x: fc.constantFrom(...ARRAY_ARG),
  h0: fc.constantFrom('null', 'undefined', ...ARRAY_ARG),
  lengths: fc.constantFrom(...LENGTHS_ARG),
  masks: fc.constantFrom(...MASKS_ARG),
  threads: fc.constantFrom(...THREADS.keys()),
  after: fc.constantFrom(...AFTER),
  seed: fc.nat(),
  trailing: fc.boolean(),
});

function floatArg(kind, n, seed) {
  switch (kind) {
    case 'short': return new Float32Array(Math.max(0, n - 1)).fill(0.25);
    case 'long': return new Float32Array(n + 1);
    case 'f64': return new Float64Array(n);
    case 'i32': return new Int32Array(n);
    case 'array': return Array.from(floats(n, seed));
    case 'null': return null;
    case 'undefined': return undefined;
    case 'string': return 'x';
    case 'number': return 0;
    case 'detached': return stored(floats(Math.max(n, 1), seed), 'detached');
    case 'shared': case 'offset': case 'resizable': case 'growable': return stored(floats(n, seed), kind);
    default: return floats(n, seed);
  }
}

/** The addon's rules for forward's raw arguments (native/addon read_call, core check_batch). */
function predictRaw(c, a, method) {
  const roots = new Set();
  const H = c.hiddenSize;
  const D = c.numDirections;
  const LD = c.numLayers * D;
  const stepsOk = isInt(a.steps, 0, 2 ** 40);
  const batchOk = isInt(a.batch, 0, 2 ** 40);
  if (!stepsOk) roots.add('steps');
  if (!batchOk) roots.add('batch');
  if (typeof a.batchFirst !== 'boolean') roots.add('batchFirst');
  let sizes = null;
  if (stepsOk && batchOk) {
    const tb = a.steps * a.batch;
    sizes = { x: tb * c.inputSize, out: tb * D * H, h: LD * a.batch * H };
    const roundUp = Math.ceil(H / 64) * 64;
    if (a.steps > 2 ** 31 - 1 || a.batch > 2 ** 31 - 1 || sizes.x > 2 ** 40 || sizes.out > 2 ** 40 || sizes.h > 2 ** 40 || tb * 3 * roundUp > 2 ** 40) {
      roots.add('x');
      sizes = null;
    }
  }
  const l = a.lengths;
  if (l !== null && l !== undefined) {
    if (!(l instanceof Int32Array) || isDetached(l)) roots.add('lengths');
    else if (!batchOk || l.length !== a.batch) roots.add('lengths');
    else if (stepsOk && Array.from(l).some((v) => v < 0 || v > a.steps)) roots.add('lengths');
  }
  if (!isF32(a.x) || isDetached(a.x) || (sizes && a.x.length !== sizes.x)) roots.add('x');
  if (a.h0 !== null && a.h0 !== undefined && (!isF32(a.h0) || isDetached(a.h0) || (sizes && a.h0.length !== sizes.h))) roots.add('h0');
  if (!isInt(a.threads, 1, 1024)) roots.add('threads');
  if (method === 'forwardTrain' && a.masks !== null && a.masks !== undefined) {
    const m = a.masks;
    if (!Array.isArray(m) || m.length !== c.numLayers - 1) roots.add('dropoutMasks');
    else for (let i = 0; i < m.length; i++) if (!isF32(m[i]) || isDetached(m[i]) || (sizes && m[i].length !== sizes.out)) roots.add('dropoutMasks');
  }
  if (!sizes && roots.size === 0) roots.add('x');
  return { valid: roots.size === 0, roots: [...roots], sizes };
}

function buildRaw(s) {
  const c = s.cfg;
  const H = c.hiddenSize;
  const LD = c.numLayers * c.numDirections;
  const steps = SIZES[s.steps] === 'good' ? s.T : SIZES[s.steps];
  const batch = SIZES[s.batch] === 'good' ? s.B : SIZES[s.batch];
  const num = (v, d) => (typeof v === 'number' && Number.isFinite(v) ? v : d);
  // Arrays sized for the steps and batch declared when that is small; else for T and B (so they do not fit).
  const declared = num(steps, s.T) * num(batch, s.B);
  const tb = declared * Math.max(c.inputSize, c.numDirections * H) <= CHEAP && Number.isInteger(declared) && declared >= 0 ? declared : s.T * s.B;
  const rows = Number.isInteger(num(batch, s.B)) && num(batch, s.B) >= 0 && LD * num(batch, s.B) * H <= CHEAP ? num(batch, s.B) : s.B;
  const x = floatArg(s.x, tb * c.inputSize, s.seed);
  const h0 = floatArg(s.h0, LD * rows * H, s.seed + 1);
  const r = prng(s.seed + 2);
  const T = Number.isInteger(num(steps, s.T)) ? Math.min(num(steps, s.T), 2 ** 31 - 1) : s.T;
  const good = Array.from({ length: rows }, () => Math.floor(r() * (Math.min(T, 1000) + 1)));
  let lengths;
  switch (s.lengths) {
    case 'null': lengths = null; break;
    case 'undefined': lengths = undefined; break;
    case 'good': lengths = Int32Array.from(good); break;
    case 'zeros': lengths = new Int32Array(rows); break;
    case 'above': lengths = Int32Array.from(good.map((v, i) => (i === 0 ? T + 1 : v))); if (rows === 0) lengths = Int32Array.of(T + 1); break;
    case 'negative': lengths = Int32Array.from(good.map((v, i) => (i === 0 ? -1 : v))); if (rows === 0) lengths = Int32Array.of(-1); break;
    case 'int-min': lengths = Int32Array.from(good.map((v, i) => (i === 0 ? -(2 ** 31) : v))); if (rows === 0) lengths = Int32Array.of(0); break;
    case 'count': lengths = Int32Array.from([...good, 0]); break;
    case 'f64': lengths = Float64Array.from(good); break;
    case 'u32': lengths = Uint32Array.from(good); break;
    case 'array': lengths = good; break;
    case 'detached': lengths = stored(Int32Array.from(good.length ? good : [0]), 'detached', Int32Array); break;
    default: lengths = stored(Int32Array.from(good), 'shared', Int32Array);
  }
  const outN = tb * c.numDirections * H;
  const mask = () => {
    const m = floats(outN, s.seed + 3);
    for (let i = 0; i < m.length; i++) m[i] = m[i] > 0 ? 2 : 0;
    return m;
  };
  let masks;
  switch (s.masks) {
    case 'null': masks = null; break;
    case 'good': masks = Array.from({ length: c.numLayers - 1 }, mask); break;
    case 'empty': masks = []; break;
    case 'too-many': masks = Array.from({ length: c.numLayers }, mask); break;
    case 'f64': masks = Array.from({ length: c.numLayers - 1 }, () => new Float64Array(outN)); break;
    case 'short': masks = Array.from({ length: c.numLayers - 1 }, () => new Float32Array(Math.max(0, outN - 1))); break;
    case 'detached': masks = Array.from({ length: c.numLayers - 1 }, () => stored(new Float32Array(Math.max(outN, 1)), 'detached')); break;
    case 'object': masks = { 0: mask() }; break;
    case 'typed': masks = mask(); break;
    default: masks = new Array(c.numLayers - 1);
  }
  return { steps, batch, batchFirst: s.batchFirst, x, h0, lengths, masks, threads: THREADS[s.threads] };
}

function invoke(model, method, a) {
  if (method === 'forwardTrain') return model.forwardTrain(a.x, a.steps, a.batch, a.batchFirst, a.h0, a.lengths, a.masks, a.threads);
  return model[method](a.x, a.steps, a.batch, a.batchFirst, a.h0, a.lengths, a.threads);
}

/** `--avoid empty`: leave out calls in which no sequence has a step (a known crash). */
const avoided = (c, a) => AVOID.has('empty') &&
  (a.steps === 0 || a.batch === 0 || (a.lengths instanceof Int32Array && Array.from(a.lengths).every((v) => v === 0)));

const rawForward = {
  id: 'addon.forward',
  area: 'addon',
  needsAddon: true,
  title: 'model.forward / forwardAsync / forwardTrain with raw arguments (types, lengths, detached / shared / resizable buffers, steps and batch up to 2^64, zero sizes, lengths out of range) and inputs moved away while forwardAsync runs: the js backend\'s result (forwardAsync: forward\'s bits), or a FastGruError naming the argument',
  arbitrary: rawCallArb,
  async run(s) {
    const c = s.cfg;
    const a = buildRaw(s);
    const p = predictRaw(c, a, s.method);
    if (p.valid && (p.sizes.out > ALLOC_LIMIT || p.sizes.h > ALLOC_LIMIT)) {
      // beyond what the addon allocates: an out-of-memory error, before any allocation
      p.valid = false;
      p.roots = ['x', 'batch', 'steps'];
      p.oom = true;
    } else if (p.valid && (p.sizes.out > CHEAP || p.sizes.h > CHEAP || p.sizes.x > CHEAP)) return;
    if (p.valid && avoided(c, a)) return;
    count();
    const weights = weightsFor(c);
    const model = new addon.Model(configOf(c), weights);
    const what = `model.${s.method}(${[a.x, a.steps, a.batch, a.batchFirst, a.h0, a.lengths, ...(s.method === 'forwardTrain' ? [a.masks] : []), a.threads].map(show).join(', ')})`;
    // The expected result, from copies of the arguments (taken before anything is moved away).
    const want = p.valid ? reference(c, weights)[s.method === 'forwardTrain' ? 'forwardTrain' : 'forward']({
      x: Float32Array.from(a.x), steps: a.steps, batch: a.batch, batchFirst: a.batchFirst, h0: a.h0 ? Float32Array.from(a.h0) : null,
      lengths: a.lengths ? Int32Array.from(a.lengths) : null,
    }, ...(s.method === 'forwardTrain' ? [a.masks?.length ? a.masks.map((m) => Float32Array.from(m)) : null] : [])) : null;
    const sync = p.valid && s.method === 'forwardAsync' ? invoke(model, 'forward', a) : null;
    const r = await attempt(() => {
      const result = invoke(model, s.method, a);
      if (s.method === 'forwardAsync') {
        const moveAway = (t) => { if (ArrayBuffer.isView(t) && !(t.buffer instanceof SharedArrayBuffer) && t.buffer.byteLength) detach(t.buffer); };
        if (s.after === 'detach-x' || s.after === 'detach-all') moveAway(a.x);
        if (s.after === 'detach-h0' || s.after === 'detach-all') moveAway(a.h0);
        if (s.after === 'detach-lengths' || s.after === 'detach-all') moveAway(a.lengths);
        if (s.after === 'scribble') {
          if (a.x instanceof Float32Array) a.x.fill(NaN);
          if (a.h0 instanceof Float32Array) a.h0.fill(NaN);
          if (a.lengths instanceof Int32Array) a.lengths.fill(-1);
        }
        if (s.after === 'abort' && result && typeof result.abort === 'function') result.abort();
      }
      return result;
    }, what);
    if (p.valid && s.after === 'abort' && s.method === 'forwardAsync' && !r.ok) {
      checkAddonError(r.error, [], what);
      if (r.error.code !== 'ERR_ABORTED') fail('wrong-acceptance', `${what}: aborted, rejected with ${show(r.error)}`);
      return;
    }
    if (p.oom) {
      if (r.ok) fail('wrong-acceptance', `${what}: returned a result of more than 2^34 elements`);
      checkAddonError(r.error, p.roots, what);
      return;
    }
    const got = expectOutcome(r, p.valid ? { valid: true } : { valid: false, roots: p.roots }, what, { addonCall: true });
    if (!got) return;
    expectClose(got.output, want.output, TOL, `${what}: output vs js`);
    expectClose(got.hidden, want.hidden, TOL, `${what}: hidden vs js`);
    if (sync) {
      expectBits(got.output, sync.output, `${what}: forwardAsync output vs forward`);
      expectBits(got.hidden, sync.hidden, `${what}: forwardAsync hidden vs forward`);
    }
    if (s.method === 'forwardTrain') {
      if (!got.tape || typeof got.tape.bytes !== 'number') fail('wrong-result', `${what}: tape ${show(got.tape)}`);
      const dOut = floats(got.output.length, s.seed + 7);
      const dHid = floats(got.hidden.length, s.seed + 8);
      const g = expectOutcome(await attempt(() => model.backward(got.tape, dOut, dHid, 1)), { valid: true }, `${what}: backward`, { addonCall: true });
      const gw = want.backward(dOut, dHid);
      expectClose(g.dInput, gw.dInput, TOL, `${what}: dInput vs js`);
      expectClose(g.dH0, gw.dH0, TOL, `${what}: dH0 vs js`);
      g.grads.forEach((d, k) => {
        for (const key of ['wIh', 'wHh', 'bIh', 'bHh']) {
          if (gw.weights[k][key]) expectClose(d[key], gw.weights[k][key], TOL, `${what}: grads[${k}].${key} vs js`);
        }
      });
    }
  },
};

// ------------------------------------------------------------------------------------------------
// backward with raw arguments
// ------------------------------------------------------------------------------------------------

const backwardProperty = {
  id: 'addon.backward',
  area: 'addon',
  needsAddon: true,
  title: 'model.backward(tape, dOutput, dHidden, threads) with fuzzed tapes (another model\'s, an empty Tape, a model, plain objects) and gradients: the js backend\'s gradients, or a FastGruError naming the argument',
  arbitrary: fc.record({
    cfg: rawConfigArb,
    T: fc.integer({ min: 1, max: 3 }),
    B: fc.integer({ min: 1, max: 3 }),
    tape: fc.constantFrom('good', 'good', 'good', 'good', 'other-model', 'empty-tape', 'tape-proto', 'model', 'object', 'null', 'result', 'number'),
    dOutput: fc.constantFrom('good', 'good', 'null', 'undefined', 'short', 'long', 'f64', 'detached', 'shared', 'array', 'string'),
    dHidden: fc.constantFrom('good', 'good', 'null', 'undefined', 'short', 'f64', 'detached', 'shared', 'offset'),
    threads: fc.constantFrom(...THREADS.keys()),
    seed: fc.nat(),
    twice: fc.boolean(),
  }),
  async run(s) {
    const c = s.cfg;
    count(2);
    const weights = weightsFor(c);
    const model = new addon.Model(configOf(c), weights);
    const x = floats(s.T * s.B * c.inputSize, s.seed);
    const run = model.forwardTrain(x, s.T, s.B, false, null, null, null, 1);
    const ref = reference(c, weights).forwardTrain({ x, steps: s.T, batch: s.B, batchFirst: false, h0: null, lengths: null }, null);
    let tape;
    let tapeOk = false;
    switch (s.tape) {
      case 'good': tape = run.tape; tapeOk = true; break;
      case 'other-model': count(2); tape = new addon.Model(configOf(c), weights).forwardTrain(x, s.T, s.B, false, null, null, null, 1).tape; break;
      case 'empty-tape': tape = new addon.Tape(); break;
      case 'tape-proto': tape = Object.create(addon.Tape.prototype); break;
      case 'model': tape = model; break;
      case 'object': tape = { bytes: run.tape.bytes }; break;
      case 'null': tape = null; break;
      case 'result': tape = run; break;
      default: tape = 3;
    }
    const outN = run.output.length;
    const hN = run.hidden.length;
    const dO = floatArg(s.dOutput, outN, s.seed + 1);
    const dH = floatArg(s.dHidden, hN, s.seed + 2);
    const threads = THREADS[s.threads];
    const roots = [];
    if (!tapeOk) roots.push('tape');
    const okArray = (v, n) => v === null || v === undefined || (isF32(v) && !isDetached(v) && v.length === n);
    if (!okArray(dO, outN)) roots.push('dOutput');
    if (!okArray(dH, hN)) roots.push('dHidden');
    if (!isInt(threads, 1, 1024)) roots.push('threads');
    const what = `model.backward(${[tape, dO, dH, threads].map(show).join(', ')})`;
    const r = await attempt(() => model.backward(tape, dO, dH, threads));
    const g = expectOutcome(r, roots.length ? { valid: false, roots } : { valid: true }, what, { addonCall: true });
    if (!g) return;
    const gw = ref.backward(dO ? Float32Array.from(dO) : null, dH ? Float32Array.from(dH) : null);
    expectClose(g.dInput, gw.dInput, TOL, `${what}: dInput vs js`);
    expectClose(g.dH0, gw.dH0, TOL, `${what}: dH0 vs js`);
    g.grads.forEach((d, k) => {
      for (const key of ['wIh', 'wHh', 'bIh', 'bHh']) if (gw.weights[k][key]) expectClose(d[key], gw.weights[k][key], TOL, `${what}: grads[${k}].${key} vs js`);
    });
    if (s.twice) {
      const again = expectOutcome(await attempt(() => model.backward(tape, dO, dH, threads)), { valid: true }, `${what}, again`, { addonCall: true });
      expectBits(again.dInput, g.dInput, `${what}: dInput of a second backward`);
    }
  },
};

// ------------------------------------------------------------------------------------------------
// matmul
// ------------------------------------------------------------------------------------------------

const EXTENTS = ['small', 'small', 'small', 'small', 0, -1, 1.5, NaN, '2', 2 ** 31 - 1, 2 ** 31, 2 ** 40, undefined, 3n];
const STRIDES = ['natural', 'natural', 'natural', 'transposed', 'transposed', 'zero', 'padded', -1, 0.5, 2 ** 31 - 1, 2 ** 31, 2 ** 33, NaN, '1'];
const OPERANDS = ['exact', 'exact', 'exact', 'exact', 'short', 'long', 'f64', 'array', 'detached', 'shared', 'offset', 'null', 'alias-c'];

const matmulProperty = {
  id: 'addon.matmul',
  area: 'addon',
  needsAddon: true,
  title: 'addon.matmul(m, n, k, a, aRs, aCs, b, bRs, bCs, c, accumulate) with fuzzed extents, strides (zero, transposed, huge), operands (short, aliased with c, shared, detached): C = (acc ? C : 0) + A·B to 1e-4 of float64 with nothing past m·n touched, or a FastGruError naming the argument',
  arbitrary: fc.record({
    m: fc.constantFrom(...EXTENTS.keys()), n: fc.constantFrom(...EXTENTS.keys()), k: fc.constantFrom(...EXTENTS.keys()),
    dims: fc.record({ m: fc.integer({ min: 1, max: 7 }), n: fc.integer({ min: 1, max: 30 }), k: fc.integer({ min: 1, max: 9 }) }),
    aStride: fc.constantFrom(...STRIDES.keys()), bStride: fc.constantFrom(...STRIDES.keys()),
    a: fc.constantFrom(...OPERANDS), b: fc.constantFrom(...OPERANDS), c: fc.constantFrom('exact', 'exact', 'exact', 'long', 'short', 'f64', 'detached', 'shared', 'null'),
    accumulate: fc.constantFrom(true, false, true, false, 1, undefined),
    seed: fc.nat(),
  }),
  async run(s) {
    const ext = (i, d) => (EXTENTS[i] === 'small' ? d : EXTENTS[i]);
    const m = ext(s.m, s.dims.m);
    const n = ext(s.n, s.dims.n);
    const k = ext(s.k, s.dims.k);
    const num = (v, d) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 64 ? v : d);
    const mm = num(m, s.dims.m);
    const nn = num(n, s.dims.n);
    const kk = num(k, s.dims.k);
    // Strides: natural is row-major (rows of cols), transposed column-major, padded rows one longer.
    const strides = (i, rows, cols) => {
      const v = STRIDES[i];
      if (v === 'natural') return [cols, 1];
      if (v === 'transposed') return [1, rows];
      if (v === 'zero') return [0, 0];
      if (v === 'padded') return [cols + 1, 1];
      return [v, 1];
    };
    const [aRs, aCs] = strides(s.aStride, mm, kk);
    const [bRs, bCs] = strides(s.bStride, kk, nn);
    const reach = (rows, rs, cols, cs) => (rows === 0 || cols === 0 ? 0 : (rows - 1) * rs + (cols - 1) * cs + 1);
    const operand = (kind, need, seed) => {
      const safe = typeof need === 'number' && Number.isFinite(need) && need >= 0 && need <= CHEAP ? need : 4;
      switch (kind) {
        case 'short': return floats(Math.max(0, safe - 1), seed);
        case 'long': return floats(safe + 2, seed);
        case 'f64': return new Float64Array(safe);
        case 'array': return Array.from(floats(safe, seed));
        case 'detached': return stored(floats(Math.max(safe, 1), seed), 'detached');
        case 'shared': case 'offset': return stored(floats(safe, seed), kind);
        case 'null': return null;
        default: return floats(safe, seed);
      }
    };
    const aNeed = isInt(aRs, 0, 2 ** 31 - 1) ? reach(mm, aRs, kk, aCs) : 4;
    const bNeed = isInt(bRs, 0, 2 ** 31 - 1) ? reach(kk, bRs, nn, bCs) : 4;
    const cArr = operand(s.c, mm * nn, s.seed + 2);
    const aArr = s.a === 'alias-c' ? cArr : operand(s.a, aNeed, s.seed);
    const bArr = s.b === 'alias-c' ? cArr : operand(s.b, bNeed, s.seed + 1);
    // The addon's rules (native/addon JsMatmul): extents and strides integers in 0..2^31-1, Float32
    // operands holding their last element, c at least m·n, accumulate a boolean.
    const roots = [];
    const lim = 2 ** 31 - 1;
    for (const [v, name] of [[m, 'm'], [n, 'n'], [k, 'k'], [aRs, 'aRs'], [aCs, 'aCs'], [bRs, 'bRs'], [bCs, 'bCs']]) if (!isInt(v, 0, lim)) roots.push(name);
    const f32 = (v) => isF32(v) && !isDetached(v);
    const extentsOk = roots.length === 0;
    const big = (r, rs, cc, cs) => (r === 0 || cc === 0 ? -1 : (r - 1) * rs + (cc - 1) * cs);
    if (!f32(aArr) || (extentsOk && big(m, aRs, k, aCs) >= aArr.length)) roots.push('a');
    if (!f32(bArr) || (extentsOk && big(k, bRs, n, bCs) >= bArr.length)) roots.push('b');
    if (!f32(cArr) || (extentsOk && m * n > cArr.length)) roots.push('c');
    if (typeof s.accumulate !== 'boolean') roots.push('accumulate');
    const valid = roots.length === 0;
    // A valid call is cheap only when its extents are: a huge k with zero strides is valid (and slow).
    if (valid && m * n > 0 && (m > 64 || n > 64 || k > 64)) return;
    const what = `addon.matmul(${[m, n, k, show(aArr), aRs, aCs, show(bArr), bRs, bCs, show(cArr), s.accumulate].join(', ')})`;
    const a0 = valid ? Float64Array.from(aArr) : null;
    const b0 = valid ? Float64Array.from(bArr) : null;
    const c0 = valid ? Float32Array.from(cArr) : null;
    const r = await attempt(() => addon.matmul(m, n, k, aArr, aRs, aCs, bArr, bRs, bCs, cArr, s.accumulate));
    expectOutcome(r, valid ? { valid: true } : { valid: false, roots }, what, { addonCall: true });
    if (!valid) return;
    const want = new Float64Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = s.accumulate ? c0[i * n + j] : 0;
        for (let p = 0; p < k; p++) sum += a0[i * aRs + p * aCs] * b0[p * bRs + j * bCs];
        want[i * n + j] = sum;
      }
    }
    expectClose(cArr.subarray(0, m * n), want, TOL, `${what}: C vs float64`);
    expectBits(cArr.subarray(m * n), c0.subarray(m * n), `${what}: elements of c past m·n`);
  },
};

// ------------------------------------------------------------------------------------------------
// Wrong receivers and module functions
// ------------------------------------------------------------------------------------------------

const RECEIVER_CASES = ['forward-on-object', 'forward-on-tape', 'backward-on-tape', 'isa-on-object', 'isa-on-tape', 'bytes-on-model',
  'bytes-on-object', 'model-without-new', 'tape-called', 'forward-on-proto'];

const receivers = {
  id: 'addon.receivers',
  area: 'addon',
  needsAddon: true,
  title: 'the addon\'s methods and getters called on the wrong objects (a plain object, a Tape, a prototype), and its classes called without new: a FastGruError, not V8\'s or node-addon-api\'s TypeError (test/native-addon.test.ts accepts those; the brief does not)',
  arbitrary: fc.record({ which: fc.constantFrom(...RECEIVER_CASES), seed: fc.nat() }),
  async run({ which }) {
    count();
    const c = { inputSize: 2, hiddenSize: 3, numLayers: 1, numDirections: 1, resetAfter: true, bias: true };
    const model = new addon.Model(c, weightsFor({ ...c, seed: 1 }));
    const run = model.forwardTrain(new Float32Array(2), 1, 1, false, null, null, null, 1);
    const M = addon.Model.prototype;
    const getter = (proto, name) => Object.getOwnPropertyDescriptor(proto, name).get;
    const calls = {
      'forward-on-object': () => M.forward.call({}, new Float32Array(2), 1, 1, false, null, null, 1),
      'forward-on-tape': () => M.forward.call(run.tape, new Float32Array(2), 1, 1, false, null, null, 1),
      'backward-on-tape': () => M.backward.call(run.tape, run.tape, null, null, 1),
      'isa-on-object': () => getter(M, 'isa').call({}),
      'isa-on-tape': () => getter(M, 'isa').call(run.tape),
      'bytes-on-model': () => getter(addon.Tape.prototype, 'bytes').call(model),
      'bytes-on-object': () => getter(addon.Tape.prototype, 'bytes').call({}),
      'model-without-new': () => addon.Model(c, weightsFor({ ...c, seed: 1 })),
      'tape-called': () => addon.Tape(),
      'forward-on-proto': () => M.forward.call(Object.create(M), new Float32Array(2), 1, 1, false, null, null, 1),
    };
    // Every case, starting from the one drawn: one failure lists all that throw the wrong class.
    const order = [which, ...RECEIVER_CASES.filter((c) => c !== which)];
    const wrong = [];
    for (const name of order) {
      const r = await attempt(calls[name]);
      try {
        expectOutcome(r, { valid: false, roots: ['this', 'forward', 'backward', 'isa', 'bytes', 'Model', 'Tape'] }, `addon ${name}`, { addonCall: true });
      } catch (error) {
        if (!(error instanceof Failure)) throw error;
        wrong.push(`${name}: ${r.ok ? 'returned' : show(r.error)}`);
      }
    }
    if (wrong.length) fail('wrong-class', `the addon called on wrong receivers: ${wrong.sort().join('; ')}`);
  },
};

const moduleFunctions = {
  id: 'addon.functions',
  area: 'addon',
  needsAddon: true,
  title: 'addon.init / info / fmaPeak with fuzzed arguments: init refuses anything but functions (and changes nothing), fmaPeak gives a positive number for (1..1024 threads, (0, 60] s) and a FastGruError otherwise',
  arbitrary: fc.record({
    which: fc.constantFrom('init', 'init-allocate', 'info', 'fmaPeak', 'fmaPeak'),
    threads: fc.oneof(fc.constantFrom(1, 2).map((v) => ({ v })), fc.constantFrom(0, 1025, 1.5, -1, NaN).map((v) => ({ v })), junkArb),
    seconds: fc.oneof(fc.constantFrom(0.001, 0.002).map((v) => ({ v })), fc.constantFrom(0, -1, 61, NaN, Infinity, 1e-300).map((v) => ({ v })), junkArb, fc.constant({ absent: true })),
    junk: fc.nat(),
  }),
  async run(s) {
    if (s.which === 'init' || s.which === 'init-allocate') {
      // Only calls that must fail: a successful init would replace the error maker of this process.
      let j = junkValue(s.junk);
      if (typeof j === 'function') j = 'makeError';
      const r = s.which === 'init' ? await attempt(() => addon.init(j)) : await attempt(() => addon.init(3, j));
      expectOutcome(r, { valid: false, roots: ['makeError', 'allocate'] }, `addon.init(${show(j)})`, { addonCall: true });
      // The error maker is still fastgru's: a bad call still throws a FastGruError.
      const after = await attempt(() => addon.matmul(-1, 1, 1, null, 0, 0, null, 0, 0, null, false));
      expectOutcome(after, { valid: false, roots: ['m'] }, 'a bad matmul after a refused init', { addonCall: true });
      return;
    }
    if (s.which === 'info') {
      const r = await attempt(() => addon.info(s.junk));
      const info = expectOutcome(r, { valid: true }, 'addon.info()', { addonCall: true });
      if (typeof info.isa !== 'string' || !Array.isArray(info.isas) || !(info.defaultThreads >= 1)) fail('wrong-result', `addon.info(): ${JSON.stringify(info)}`);
      return;
    }
    const threads = 'v' in s.threads ? s.threads.v : junkValue(s.threads);
    const seconds = s.seconds.absent ? undefined : 'v' in s.seconds ? s.seconds.v : junkValue(s.seconds);
    if (s.seconds.absent && isInt(threads, 1, 1024)) return; // the default is half a second: not a cheap call
    const roots = [];
    if (!isInt(threads, 1, 1024)) roots.push('threads');
    if (!(seconds === undefined || (typeof seconds === 'number' && seconds > 0 && seconds <= 60))) roots.push('seconds');
    if (roots.length === 0 && seconds > 0.01) return;
    const what = `addon.fmaPeak(${show(threads)}, ${show(seconds)})`;
    const r = await attempt(() => (seconds === undefined ? addon.fmaPeak(threads) : addon.fmaPeak(threads, seconds)));
    const v = expectOutcome(r, roots.length ? { valid: false, roots } : { valid: true }, what, { addonCall: true });
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) fail('wrong-result', `${what}: ${show(v)}`);
  },
};

export default [modelProperty, rawForward, backwardProperty, matmulProperty, receivers, moduleFunctions];
