// Independent statements of the API's rules (README: API, Shapes, Errors), used to predict whether a
// fuzzed call is valid and which argument an error must name. They are written from the README,
// not from src/, so that a disagreement is a finding about one or the other.
import fc from 'fast-check';
import { AVOID, detachedBuffer, floats, product, prng, stored } from './harness.mjs';

/**
 * Where tensor data live. Views of resizable ArrayBuffers and growable SharedArrayBuffers are left
 * out unless FASTGRU_FUZZ_RESIZABLE=1 (`--resizable`): once optimised code has seen such views,
 * Node 20's V8 reports a detached Float32Array's old length (a V8 bug, not fastgru's), so detached
 * buffers would pass JavaScript checks and the run would report V8's fault as fastgru's.
 */
export const RESIZABLE = process.env.FASTGRU_FUZZ_RESIZABLE === '1';
export const FLOAT_STORAGES = ['plain', 'plain', 'plain', 'offset', 'shared', ...(RESIZABLE ? ['resizable', 'growable'] : [])];

/** Values that are not what any option or size wants, whatever it wants (made fresh for each use). */
const JUNK = [
  () => null, () => undefined, () => NaN, () => Infinity, () => -Infinity, () => -1, () => 0, () => -0, () => 1.5, () => 2 ** 31,
  () => 2 ** 32, () => 2 ** 33, () => 2 ** 53, () => 2 ** 53 + 2, () => 1e308, () => '3', () => '', () => true, () => false,
  () => 3n, () => [], () => [3], () => ({}), () => () => 3, () => new Number(3), () => Symbol('s'), () => new Float32Array(3),
  () => new Map(), () => new Float64Array(2), () => Object.create(null),
];
export const JUNK_COUNT = JUNK.length;

/** A choice among JUNK (fast-check shows the index, which is stable). */
export const junkArb = fc.nat({ max: JUNK.length - 1 }).map((i) => ({ junk: i }));
export const junkValue = (j) => JUNK[(typeof j === 'number' ? j : j.junk) % JUNK.length]();

// ------------------------------------------------------------------------------------------------
// Tensors
// ------------------------------------------------------------------------------------------------

/**
 * What the API makes of a tensor argument (README: "A tensor is { data: Float32Array, shape }",
 * "arguments also accept nested number arrays directly"; typed arrays other than Float32Array are
 * DTypeErrors). Returns { ok: true, shape, data } or { ok: false, why }.
 */
export function readTensorLike(value) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'data' in value && 'shape' in value &&
    Array.isArray(value.shape)) {
    if (!(value.data instanceof Float32Array)) return { ok: false, why: 'data is not a Float32Array' };
    const shape = [...value.shape];
    if (!shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) return { ok: false, why: `bad dims ${shape}` };
    // The running count must stay below 2^53 (so [2^30, 2^30, 0] is refused, as safetensors readers would overflow).
    let running = 1;
    for (const d of shape) {
      if (d !== 0 && running > Number.MAX_SAFE_INTEGER / d) return { ok: false, why: 'element count not safe' };
      running *= d;
    }
    const n = product(shape);
    const length = detachedBuffer(value.data.buffer) ? 0 : value.data.length;
    if (n !== length) return { ok: false, why: `shape [${shape}] for ${length} elements` };
    return { ok: true, shape, data: value.data };
  }
  if (Array.isArray(value)) {
    const shape = [];
    for (let level = value; Array.isArray(level); level = level[0]) {
      shape.push(level.length);
      if (level.length === 0) break;
    }
    const data = new Float32Array(product(shape));
    let at = 0;
    const walk = (v, depth) => {
      if (depth === shape.length) {
        if (typeof v !== 'number') return false;
        data[at++] = v;
        return true;
      }
      if (!Array.isArray(v) || v.length !== shape[depth]) return false;
      for (let i = 0; i < v.length; i++) if (!walk(v[i], depth + 1)) return false;
      return true;
    };
    return walk(value, 0) ? { ok: true, shape, data } : { ok: false, why: 'not a rectangular array of numbers' };
  }
  return { ok: false, why: `not a tensor (${typeof value})` };
}

/** Nested arrays of `values` in `shape` (a 0-d shape gives the one value). */
export function nest(values, shape) {
  let at = 0;
  const build = (depth) => {
    if (depth === shape.length) return values[at++];
    return Array.from({ length: shape[depth] }, () => build(depth + 1));
  };
  return build(0);
}

/**
 * A tensor argument of a given shape in one of several forms: 'tensor' (Float32Array data in some
 * storage) or 'nested' (nested number arrays). Returns { arg, data } where data are the values.
 */
export function makeTensor(shape, { form = 'tensor', storage = 'plain', seed = 1, values = 'uniform', scale = 1 } = {}) {
  const data = floats(product(shape), seed, values, scale);
  if (form === 'nested') return { arg: nest(Array.from(data), shape), data };
  return { arg: { data: stored(data, storage), shape: [...shape] }, data };
}

/**
 * A bad tensor argument, by kind; `shape` is the shape a good one would have. Every kind is
 * invalid whatever shape is wanted: the README's tensor rules reject it.
 */
export const BAD_TENSOR_KINDS = [
  'typed', 'f64-data', 'i32-data', 'array-data', 'shape-mismatch', 'shape-negative', 'shape-fraction', 'shape-nan',
  'shape-string', 'shape-holes', 'shape-not-array', 'no-shape', 'no-data', 'detached', 'ragged', 'string-leaf',
  'null-leaf', 'boxed-leaf', 'junk',
];

export function badTensor(kind, shape, seed = 1, junk = 0) {
  const n = product(shape);
  const data = floats(n, seed);
  const nonEmpty = shape.length > 0 && n > 0;
  switch (kind) {
    case 'typed': return data;
    case 'f64-data': return { data: Float64Array.from(data), shape };
    case 'i32-data': return { data: new Int32Array(n), shape };
    case 'array-data': return { data: Array.from(data), shape };
    case 'shape-mismatch': return { data: new Float32Array(n + 1), shape };
    case 'shape-negative': return { data, shape: [...shape.slice(0, -1), -1] };
    case 'shape-fraction': return { data, shape: [...shape, 0.5] };
    case 'shape-nan': return { data, shape: [NaN, ...shape] };
    case 'shape-string': return { data, shape: shape.map(String).concat(['1']) };
    case 'shape-holes': {
      const holes = [...shape, 1];
      holes.length += 1; // a hole at the end
      return { data, shape: holes };
    }
    case 'shape-not-array': return { data, shape: Int32Array.from(shape) };
    case 'no-shape': return { data };
    case 'no-data': return { shape };
    case 'detached': {
      // A detached buffer has no elements: valid only for a shape of none, so give it one element.
      const d = stored(data.length ? data : new Float32Array(1), 'detached');
      return { data: d, shape: n ? shape : [1] };
    }
    case 'ragged': {
      // a number where the other elements are arrays: not rectangular, whatever the shape
      if (!nonEmpty || shape.length < 2) return [[1, 2], [3]];
      return [...nest(Array.from(data), shape), 0];
    }
    case 'string-leaf': return nonEmpty ? replaceFirstLeaf(nest(Array.from(data), shape), '1') : ['1'];
    case 'null-leaf': return nonEmpty ? replaceFirstLeaf(nest(Array.from(data), shape), null) : [null];
    case 'boxed-leaf': return nonEmpty ? replaceFirstLeaf(nest(Array.from(data), shape), new Number(1)) : [new Number(1)];
    default: {
      const j = junkValue(junk);
      // Arrays of JUNK ([] and [3]) are tensors; swap them for values that are not.
      return Array.isArray(j) || j === null || j === undefined ? 'junk' : j;
    }
  }
}

function replaceFirstLeaf(nested, leaf) {
  let level = nested;
  while (Array.isArray(level[0])) level = level[0];
  level[0] = leaf;
  return nested;
}

// ------------------------------------------------------------------------------------------------
// GRU options
// ------------------------------------------------------------------------------------------------

const GRU_OPTION_NAMES = ['inputSize', 'hiddenSize', 'numLayers', 'bidirectional', 'batchFirst', 'bias', 'resetAfter', 'dropout',
  'backend', 'threads', 'seed'];

const positiveInt = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;

/**
 * The README's rules for `new GRU(options)`: a plain object of known keys; inputSize and
 * hiddenSize positive integers; numLayers too (default 1); booleans; dropout in [0, 1]; backend one
 * of three; threads 1..1024; seed a non-negative integer; and (src/gru.ts documents these limits,
 * which keep allocations sane) no weight above 2^30 elements and no more than 2^31 in all.
 * Returns { valid, parameters } or { valid: false, why }.
 */
export function predictGruOptions(o) {
  const bad = (why) => ({ valid: false, why, roots: ['options'] });
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return bad('options is not an object');
  for (const key of Object.keys(o)) if (!GRU_OPTION_NAMES.includes(key)) return bad(`unknown key ${key}`);
  const get = (k, d) => (o[k] === undefined ? d : o[k]);
  const I = o.inputSize;
  const H = o.hiddenSize;
  const L = get('numLayers', 1);
  if (!positiveInt(I) || !positiveInt(H) || !positiveInt(L)) return bad('a size is not a positive integer');
  for (const k of ['bidirectional', 'batchFirst', 'bias', 'resetAfter']) if (typeof get(k, false) !== 'boolean') return bad(`${k} not boolean`);
  const dropout = get('dropout', 0);
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout <= 1)) return bad('dropout');
  if (!['auto', 'native', 'js'].includes(get('backend', 'auto'))) return bad('backend');
  const threads = o.threads;
  if (threads !== undefined && (!positiveInt(threads) || threads > 1024)) return bad('threads');
  const seed = o.seed;
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0)) return bad('seed');
  const D = get('bidirectional', false) ? 2 : 1;
  const bias = get('bias', true);
  if (3 * H * Math.max(I, D * H) > 2 ** 30) return bad('a weight above 2^30 elements');
  const layer = (input) => D * (3 * H * input + 3 * H * H + (bias ? 6 * H : 0));
  const parameters = layer(I) + (L - 1) * layer(D * H);
  if (parameters > 2 ** 31) return bad('more than 2^31 parameters');
  return { valid: true, parameters };
}

/** PyTorch's state-dict names and shapes for a GRU configuration, in PyTorch's order. */
export function parameterSpecs(c) {
  const D = c.bidirectional ? 2 : 1;
  const H = c.hiddenSize;
  const specs = [];
  for (let l = 0; l < (c.numLayers ?? 1); l++) {
    const input = l === 0 ? c.inputSize : D * H;
    for (let d = 0; d < D; d++) {
      const sfx = `_l${l}${d === 1 ? '_reverse' : ''}`;
      specs.push({ name: `weight_ih${sfx}`, shape: [3 * H, input] }, { name: `weight_hh${sfx}`, shape: [3 * H, H] });
      if (c.bias !== false) specs.push({ name: `bias_ih${sfx}`, shape: [3 * H] }, { name: `bias_hh${sfx}`, shape: [3 * H] });
    }
  }
  return specs;
}

/** Small GRU configurations: sizes around the kernels' tails (16-unit gate blocks) included. */
export const gruConfigArb = fc.record({
  inputSize: fc.integer({ min: 1, max: 5 }),
  hiddenSize: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 6 }) }, { weight: 1, arbitrary: fc.constantFrom(15, 16, 17, 25) }),
  numLayers: fc.integer({ min: 1, max: 3 }),
  bidirectional: fc.boolean(),
  bias: fc.boolean(),
  resetAfter: fc.boolean(),
  batchFirst: fc.boolean(),
  threads: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  seed: fc.nat(),
});

/** A configuration's GRU options for a backend (threads only for native; the same seed on both). */
export function gruOptions(cfg, backend, extra = {}) {
  const o = {
    inputSize: cfg.inputSize, hiddenSize: cfg.hiddenSize, numLayers: cfg.numLayers, bidirectional: cfg.bidirectional,
    bias: cfg.bias, resetAfter: cfg.resetAfter, batchFirst: cfg.batchFirst, seed: cfg.seed, backend, ...extra,
  };
  if (cfg.threads !== undefined && backend !== 'js') o.threads = cfg.threads;
  return o;
}

// ------------------------------------------------------------------------------------------------
// forward's arguments
// ------------------------------------------------------------------------------------------------

const LENGTH_LISTS = {
  array: (v) => v, Int32Array: (v) => Int32Array.from(v), Int16Array: (v) => Int16Array.from(v), Uint8Array: (v) => Uint8Array.from(v),
  Uint32Array: (v) => Uint32Array.from(v), Float32Array: (v) => Float32Array.from(v), Float64Array: (v) => Float64Array.from(v),
  Uint8ClampedArray: (v) => Uint8ClampedArray.from(v), Int8Array: (v) => Int8Array.from(v),
};
export const LENGTH_KINDS = Object.keys(LENGTH_LISTS);
export const makeLengths = (kind, values) => LENGTH_LISTS[kind](values);

/**
 * The README's rules for forward(x, h0?, { lengths? }) (and forwardAsync's signal): x [T, B, I]
 * ([B, T, I] with batchFirst) or [T, I]; h0 [L·D, B, H] ([L·D, H]); lengths B integers in 0..T;
 * options an object of known keys; T and B at most 2^31−1; outputs and hidden states of at most 2^32
 * elements.
 * Returns { valid: true, steps, batch, batched, outputShape, hiddenShape, lengths, h0 } or
 * { valid: false, roots, why }.
 */
export function predictForward(cfg, x, h0, options, { async = false } = {}) {
  const roots = new Set();
  const whys = [];
  const bad = (root, why) => {
    roots.add(root);
    whys.push(`${root}: ${why}`);
  };
  const I = cfg.inputSize;
  const H = cfg.hiddenSize;
  const D = cfg.bidirectional ? 2 : 1;
  const LD = cfg.numLayers * D;
  const xt = readTensorLike(x);
  let steps = 0;
  let batch = 0;
  let batched = true;
  if (!xt.ok) bad('x', xt.why);
  else if ((xt.shape.length !== 2 && xt.shape.length !== 3) || xt.shape[xt.shape.length - 1] !== I) bad('x', `shape [${xt.shape}]`);
  else {
    batched = xt.shape.length === 3;
    steps = batched ? xt.shape[cfg.batchFirst ? 1 : 0] : xt.shape[0];
    batch = batched ? xt.shape[cfg.batchFirst ? 0 : 1] : 1;
    // README (Shapes): T and B at most 2^31−1, results of at most 2^32 elements, whatever else is 0.
    if (steps > 2 ** 31 - 1 || batch > 2 ** 31 - 1) bad('x', 'T or B above 2^31-1');
    else if (steps * batch * D * H > 2 ** 32 || LD * batch * H > 2 ** 32) bad('x', 'results above 2^32 elements');
  }
  const hiddenShape = batched ? [LD, batch, H] : [LD, H];
  let h0Data = null;
  if (h0 !== undefined && h0 !== null) {
    const ht = readTensorLike(h0);
    if (!ht.ok) bad('h0', ht.why);
    else if (xt.ok && (ht.shape.length !== hiddenShape.length || ht.shape.some((d, i) => d !== hiddenShape[i]))) bad('h0', `shape [${ht.shape}]`);
    else h0Data = ht.data;
  }
  let lengths = null;
  if (options !== undefined && options !== null) {
    if (typeof options !== 'object' || Array.isArray(options)) bad('options', 'not an object');
    else {
      const known = async ? ['lengths', 'signal'] : ['lengths'];
      if (Object.keys(options).some((k) => !known.includes(k))) bad('options', 'an unknown key');
      const l = options.lengths;
      if (l !== undefined && l !== null) {
        const list = Array.isArray(l) || (ArrayBuffer.isView(l) && !(l instanceof DataView) && !(l instanceof BigInt64Array) &&
          !(l instanceof BigUint64Array));
        if (!list) bad('options', 'lengths is not a list');
        else if (!xt.ok) roots.add('options');
        else if (l.length !== batch) bad('options', `${l.length} lengths for ${batch} sequences`);
        else {
          lengths = [];
          for (let b = 0; b < batch; b++) {
            const v = l[b];
            if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > steps) {
              bad('options', `lengths[${b}] = ${String(v)}`);
              break;
            }
            lengths.push(v);
          }
        }
      }
      if (async && options.signal !== undefined && !(options.signal instanceof AbortSignal)) bad('options', 'signal is not an AbortSignal');
    }
  }
  if (roots.size > 0) return { valid: false, roots: [...roots], why: whys.join('; ') };
  const outputShape = batched ? (cfg.batchFirst ? [batch, steps, D * H] : [steps, batch, D * H]) : [steps, D * H];
  return { valid: true, steps, batch, batched, outputShape, hiddenShape, lengths, h0: h0Data, x: xt.data };
}

/**
 * Packed-sequence semantics on a result (README, Shapes): a sequence's outputs past its length are
 * zero, and a sequence of length 0 keeps h0 (zeros without one) as its hidden state.
 */
export function packedViolations(cfg, p, output, hidden) {
  if (!p.lengths) return null;
  const H = cfg.hiddenSize;
  const D = cfg.bidirectional ? 2 : 1;
  const LD = cfg.numLayers * D;
  const { steps: T, batch: B } = p;
  for (let b = 0; b < B; b++) {
    const L = p.lengths[b];
    for (let t = L; t < T; t++) {
      for (let j = 0; j < D * H; j++) {
        const at = p.batched ? (cfg.batchFirst ? (b * T + t) * D * H + j : (t * B + b) * D * H + j) : t * D * H + j;
        if (!Object.is(output[at], 0) && output[at] !== 0) return `output of sequence ${b} at step ${t} (length ${L}) is ${output[at]}, not 0`;
      }
    }
    if (L === 0) {
      for (let l = 0; l < LD; l++) {
        for (let j = 0; j < H; j++) {
          const at = (l * B + b) * H + j;
          const want = p.h0 ? p.h0[at] : 0;
          const got = hidden[at];
          if (!(Object.is(got, want) || got === want || (Number.isNaN(got) && Number.isNaN(want)))) {
            return `hidden of sequence ${b} (length 0), row ${l} unit ${j} is ${got}, expected h0's ${want}`;
          }
        }
      }
    }
  }
  return null;
}

/** Whether a valid call is one `--avoid empty` leaves out: no sequence with a step to run. */
export function avoidedCall(steps, batch, lengths) {
  if (!AVOID.has('empty')) return false;
  return steps === 0 || batch === 0 || (lengths != null && Array.from(lengths).every((l) => l === 0));
}

/** A seeded choice of lengths: mostly 1..T, sometimes 0. */
export function randomLengths(T, B, seed) {
  const r = prng(seed);
  return Array.from({ length: B }, () => (r() < 0.15 ? 0 : Math.floor(r() * (T + 1))));
}
