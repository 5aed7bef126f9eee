// Properties of the GRU facade: the constructor's options, forward / forwardAsync / forwardTrain /
// backward with valid and adversarial arguments, inputs moved away while forwardAsync is in flight,
// loadStateDict, and GRU.fromShared. The oracle for results is the other backend (native against
// js, to 1e-4) plus the README's shapes and packed-sequence semantics; for errors, the README's
// errors table and the argument names.
import fc from 'fast-check';
import {
  api, attempt, copyOf, count, detach, expectBits, expectClose, expectOutcome, expectShape, expectTensor, fail,
  floats, NATIVE, product, show, stored,
} from './harness.mjs';
import {
  avoidedCall, BAD_TENSOR_KINDS, FLOAT_STORAGES, gruConfigArb, gruOptions, junkArb, junkValue, LENGTH_KINDS, makeLengths, makeTensor,
  badTensor, nest, packedViolations, parameterSpecs, predictForward, predictGruOptions, randomLengths, readTensorLike,
} from './rules.mjs';

const { GRU } = api;
const TOL = 1e-4;

/** Both backends' models of one configuration: the same seed gives the same parameters. */
function models(cfg, extra = {}) {
  count(2);
  const native = new GRU(gruOptions(cfg, NATIVE, extra));
  const js = new GRU(gruOptions(cfg, 'js', extra));
  return { native, js };
}

// ------------------------------------------------------------------------------------------------
// Calls: a generated description, built into arguments
// ------------------------------------------------------------------------------------------------

const dimsArb = fc.record({
  T: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 5 }) }, { weight: 1, arbitrary: fc.constant(0) }),
  B: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.constant(0) }),
  unbatched: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});

const callArb = fc.record({
  cfg: gruConfigArb,
  dims: dimsArb,
  x: fc.record({ form: fc.constantFrom('tensor', 'tensor', 'tensor', 'nested'), storage: fc.constantFrom(...FLOAT_STORAGES), seed: fc.nat() }),
  h0: fc.record({ kind: fc.constantFrom('omit', 'undefined', 'null', 'tensor', 'tensor', 'nested'), storage: fc.constantFrom(...FLOAT_STORAGES), seed: fc.nat() }),
  lengths: fc.record({ kind: fc.constantFrom('none', 'none', 'null', ...LENGTH_KINDS), seed: fc.nat() }),
  options: fc.constantFrom('object', 'object', 'object', 'boxed', 'inherited', 'omit'),
});

const OMIT = Symbol('omit');

/**
 * The arguments of a valid call: { args, shape } where args is [x, h0?, options?] (omitted
 * trailing arguments are left out, as a caller would).
 */
function buildCall(cfg, dims, s, values = 'uniform') {
  const I = cfg.inputSize;
  const H = cfg.hiddenSize;
  const LD = cfg.numLayers * (cfg.bidirectional ? 2 : 1);
  const { T, B, unbatched } = dims;
  const batch = unbatched ? 1 : B;
  const xShape = unbatched ? [T, I] : cfg.batchFirst ? [B, T, I] : [T, B, I];
  const x = makeTensor(xShape, { form: product(xShape) === 0 ? 'tensor' : s.x.form, storage: s.x.storage, seed: s.x.seed, values });
  const hShape = unbatched ? [LD, H] : [LD, batch, H];
  let h0 = OMIT;
  if (s.h0.kind === 'undefined') h0 = undefined;
  else if (s.h0.kind === 'null') h0 = null;
  else if (s.h0.kind === 'tensor' || (s.h0.kind === 'nested' && product(hShape) === 0)) {
    h0 = makeTensor(hShape, { storage: s.h0.storage, seed: s.h0.seed, values }).arg;
  } else if (s.h0.kind === 'nested') h0 = makeTensor(hShape, { form: 'nested', seed: s.h0.seed, values }).arg;
  let lengths;
  if (s.lengths.kind === 'null') lengths = null;
  else if (s.lengths.kind !== 'none') lengths = makeLengths(s.lengths.kind, randomLengths(T, batch, s.lengths.seed));
  let options = OMIT;
  if (lengths !== undefined || s.options !== 'omit') {
    const o = lengths === undefined ? {} : { lengths };
    if (s.options === 'boxed') options = Object.assign(new Number(1), o);
    else if (s.options === 'inherited') options = Object.create(o);
    else options = o;
  }
  const args = [x.arg];
  if (h0 !== OMIT || options !== OMIT) args.push(h0 === OMIT ? undefined : h0);
  if (options !== OMIT) args.push(options);
  return { args, xShape, hShape };
}

function predictArgs(cfg, args, async) {
  const p = predictForward(cfg, args[0], args[1], args[2], { async });
  p.avoided = p.valid && avoidedCall(p.steps, p.batch, p.lengths);
  return p;
}

/** Checks a forward result's shapes and packed semantics; returns { output, hidden } data. */
function checkResult(cfg, p, r, what) {
  expectTensor(r.output, p.outputShape, `${what}: output`);
  expectTensor(r.hidden, p.hiddenShape, `${what}: hidden`);
  const v = packedViolations(cfg, p, r.output.data, r.hidden.data);
  if (v) fail('wrong-result', `${what}: ${v}`);
  return r;
}

/** Moves a typed array's buffer away (as postMessage with a transfer list does); shared ones stay. */
function transfer(typed) {
  if (ArrayBuffer.isView(typed) && !(typed.buffer instanceof SharedArrayBuffer) && typed.buffer.byteLength > 0) detach(typed.buffer);
}

function internal(message) {
  // The generator made a call it meant to be valid and the rules say it is not: a bug of the suite.
  throw new Error(`fuzz suite: ${message}`);
}

/**
 * A valid call (data of kind `values`) to `method` on a native and a js model: both results
 * checked against the rules and each other to TOL. Null where the rules avoid the call.
 */
async function bothBackends(call, { values = 'uniform', method = 'forward', extra = {} } = {}) {
  const { cfg } = call;
  const { args } = buildCall(cfg, call.dims, call, values);
  const p = predictArgs(cfg, args, false);
  if (!p.valid) internal(`a valid call is invalid: ${p.why}`);
  if (p.avoided) return null;
  const { native, js } = models(cfg, extra);
  const rn = expectOutcome(await attempt(() => native[method](...args)), p, `native ${method}`);
  const rj = expectOutcome(await attempt(() => js[method](...args)), p, `js ${method}`);
  checkResult(cfg, p, rn, `native ${method}`);
  checkResult(cfg, p, rj, `js ${method}`);
  const prefix = method === 'forward' ? '' : `${method} `;
  expectClose(rn.output.data, rj.output.data, TOL, `${prefix}output, native vs js`);
  expectClose(rn.hidden.data, rj.hidden.data, TOL, `${prefix}hidden, native vs js`);
  return { cfg, args, p, native, js, rn, rj };
}

// ------------------------------------------------------------------------------------------------
// Properties
// ------------------------------------------------------------------------------------------------

const optionValue = {
  inputSize: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 6 }) },
    { weight: 1, arbitrary: fc.constantFrom(2 ** 15, 2 ** 16, 2 ** 20, 2 ** 29, 2 ** 30, 2 ** 31, 2 ** 53, 2 ** 53 - 1) }),
  hiddenSize: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 6 }) },
    { weight: 1, arbitrary: fc.constantFrom(2 ** 14, 2 ** 15, 2 ** 16, 2 ** 20, 2 ** 30, 2 ** 31) }),
  numLayers: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.constantFrom(2 ** 20, 2 ** 30, 2 ** 40) }),
  bidirectional: fc.boolean(),
  batchFirst: fc.boolean(),
  bias: fc.boolean(),
  resetAfter: fc.boolean(),
  dropout: fc.constantFrom(0, 0.5, 1, 0.999, 1e-9, -0.1, 1.0001),
  backend: fc.constantFrom('auto', 'native', 'js', 'Native', 'wasm'),
  threads: fc.constantFrom(1, 2, 3, 4, 1024, 1025),
  seed: fc.oneof(fc.nat(), fc.constantFrom(2 ** 53 - 1, 2 ** 53, -1, 0.5)),
};

const optionsSpecArb = fc.record({
  container: fc.constantFrom('object', 'object', 'object', 'object', 'null-proto', 'class', 'null', 'array', 'string', 'number', 'function', 'map'),
  values: fc.record(Object.fromEntries(Object.entries(optionValue).map(([k, arb]) => [k, fc.oneof(
    { weight: 6, arbitrary: arb.map((v) => ({ v })) },
    { weight: k === 'inputSize' || k === 'hiddenSize' ? 1 : 6, arbitrary: fc.constant({ absent: true }) },
    { weight: 1, arbitrary: junkArb },
  )]))),
  unknownKey: fc.option(fc.constantFrom('hidden_size', 'layers', '__proto__', 'constructor', 'inputsize', ''), { freq: 8 }),
});

function buildOptions(spec) {
  const own = {};
  for (const [k, s] of Object.entries(spec.values)) {
    if (s.absent) continue;
    own[k] = 'v' in s ? s.v : junkValue(s);
  }
  if (spec.unknownKey !== null) Object.defineProperty(own, spec.unknownKey, { value: 1, enumerable: true, configurable: true, writable: true });
  switch (spec.container) {
    case 'null-proto': return Object.assign(Object.create(null), own);
    case 'class': return Object.assign(new (class GruOptions {})(), own);
    case 'null': return null;
    case 'array': return Object.assign([], own);
    case 'string': return 'inputSize=3';
    case 'number': return 3;
    case 'function': return Object.assign(() => own, own);
    case 'map': return new Map(Object.entries(own));
    default: return own;
  }
}

const gruOptionsProperty = {
  id: 'gru.options',
  area: 'options',
  title: 'new GRU(options): valid options build the model they describe; others throw OptionError naming options',
  arbitrary: optionsSpecArb,
  async run(spec) {
    const options = buildOptions(spec);
    const p = predictGruOptions(options);
    // A valid but large model would allocate for real: those are not cheap calls, leave them out.
    if (p.valid && p.parameters > 50_000) return;
    const r = await attempt(() => new GRU(options), 'new GRU');
    const gru = expectOutcome(r, p.valid ? { valid: true } : { valid: false, roots: ['options'], why: p.why }, `new GRU(${show(options)})`);
    if (!gru) return;
    const get = (k, d) => (options[k] === undefined ? d : options[k]);
    for (const [k, d] of [['inputSize'], ['hiddenSize'], ['numLayers', 1], ['bidirectional', false], ['batchFirst', false], ['bias', true],
      ['resetAfter', true], ['dropout', 0]]) {
      if (gru[k] !== get(k, d)) fail('wrong-result', `new GRU: ${k} is ${show(gru[k])}, the options said ${show(get(k, d))}`);
    }
    const backend = get('backend', 'auto');
    const want = backend === 'js' ? 'js' : NATIVE;
    if (gru.backend !== want) fail('wrong-result', `new GRU: backend ${gru.backend} for backend option ${backend}`);
    count();
    const sd = gru.stateDict();
    const specs = parameterSpecs({ ...options, numLayers: get('numLayers', 1), bias: get('bias', true), bidirectional: get('bidirectional', false) });
    if (Object.keys(sd).join() !== specs.map((s) => s.name).join()) fail('wrong-result', `stateDict names ${Object.keys(sd)}`);
    const bound = 1 / Math.sqrt(options.hiddenSize);
    for (const s of specs) {
      expectTensor(sd[s.name], s.shape, `stateDict ${s.name}`);
      if (!sd[s.name].data.every((v) => Math.abs(v) <= bound * (1 + 1e-6))) fail('wrong-result', `${s.name}: a value outside U(-1/sqrt(H), 1/sqrt(H))`);
    }
    if (options.seed !== undefined) {
      count();
      const again = new GRU({ ...Object.fromEntries(Object.entries(options)), backend: 'js', threads: undefined });
      const sd2 = again.stateDict();
      for (const s of specs) expectBits(sd2[s.name].data, sd[s.name].data, `seed ${options.seed}: ${s.name} on the js backend`);
    }
  },
};

const forwardValid = {
  id: 'forward.valid',
  area: 'forward',
  title: 'forward / forwardAsync with valid arguments: native = js to 1e-4, shapes as documented, zero past lengths, h0 kept at length 0, forwardAsync = forward bit for bit, any thread count the same bits',
  arbitrary: fc.record({ call: callArb, otherThreads: fc.option(fc.integer({ min: 1, max: 4 }), { freq: 3 }) }),
  async run({ call, otherThreads }) {
    const both = await bothBackends(call);
    if (!both) return;
    const { cfg, args, p, native, js, rn, rj } = both;
    for (const [gru, sync, name] of [[native, rn, 'native'], [js, rj, 'js']]) {
      const ra = expectOutcome(await attempt(() => gru.forwardAsync(...args), `${name} forwardAsync`), p, `${name} forwardAsync`);
      expectShape(ra.output.shape, p.outputShape, `${name} forwardAsync output`);
      expectBits(ra.output.data, sync.output.data, `${name} forwardAsync output vs forward`);
      expectBits(ra.hidden.data, sync.hidden.data, `${name} forwardAsync hidden vs forward`);
    }
    if (otherThreads !== null && NATIVE === 'native') {
      count();
      const other = new GRU(gruOptions({ ...cfg, threads: otherThreads }, 'native'));
      const ro = expectOutcome(await attempt(() => other.forward(...args)), p, `native forward, ${otherThreads} threads`);
      expectBits(ro.output.data, rn.output.data, `output with ${otherThreads} threads vs ${cfg.threads ?? 'default'}`);
      expectBits(ro.hidden.data, rn.hidden.data, `hidden with ${otherThreads} threads vs ${cfg.threads ?? 'default'}`);
    }
  },
};

const forwardSpecial = {
  id: 'forward.special',
  area: 'forward',
  title: 'forward with NaN, ±Infinity, -0 and subnormals in x and h0: the backends agree (NaN where the other has NaN)',
  arbitrary: callArb,
  async run(call) {
    await bothBackends(call, { values: 'special' });
  },
};

// Mutations: each makes one argument adversarial (the rules decide whether the call stays valid).
const mutationArb = fc.oneof(
  fc.record({ target: fc.constant('x'), kind: fc.constantFrom(...BAD_TENSOR_KINDS, 'wrong-I', 'rank1', 'rank4', 'huge-steps', 'huge-batch'), junk: fc.nat() }),
  fc.record({ target: fc.constant('h0'), kind: fc.constantFrom(...BAD_TENSOR_KINDS, 'wrong-shape', 'flat', 'other-rank', 'zero-number'), junk: fc.nat() }),
  fc.record({
    target: fc.constant('lengths'),
    kind: fc.constantFrom('element', 'element', 'element', 'count-minus', 'count-plus', 'string', 'array-like', 'bigint', 'dataview', 'number', 'set'),
    element: fc.constantFrom('above', -1, 1.5, NaN, Infinity, -Infinity, '1', null, undefined, 2 ** 31, -(2 ** 31), 2 ** 32, -0, true, 'hole'),
    at: fc.nat(),
  }),
  fc.record({
    target: fc.constant('options'),
    kind: fc.constantFrom('array', 'string', 'number', 'function', 'unknown-key', 'signal-junk', 'signal-aborted', 'signal-abort-later', 'boxed', 'symbol-key'),
  }),
);

const HUGE = [2 ** 31, 2 ** 31 - 1, 2 ** 32, 2 ** 33, 2 ** 40, 2 ** 53];

function mutate(cfg, call, args, m, ctl) {
  const I = cfg.inputSize;
  const { T, B, unbatched } = call.dims;
  const batch = unbatched ? 1 : B;
  const a = [...args];
  while (a.length < 3) a.push(undefined);
  const xShape = unbatched ? [T, I] : cfg.batchFirst ? [B, T, I] : [T, B, I];
  const LD = cfg.numLayers * (cfg.bidirectional ? 2 : 1);
  const hShape = unbatched ? [LD, cfg.hiddenSize] : [LD, batch, cfg.hiddenSize];
  if (m.target === 'x') {
    switch (m.kind) {
      case 'wrong-I': a[0] = makeTensor([...xShape.slice(0, -1), I + 1]).arg; break;
      case 'rank1': a[0] = makeTensor([product(xShape)]).arg; break;
      case 'rank4': a[0] = makeTensor([1, ...xShape]).arg; break;
      case 'huge-steps': {
        // batch 0: no element to allocate, whatever the number of steps
        const steps = HUGE[m.junk % HUGE.length];
        a[0] = { data: new Float32Array(0), shape: cfg.batchFirst ? [0, steps, I] : [steps, 0, I] };
        break;
      }
      case 'huge-batch': {
        // steps 0: the hidden state alone is beyond 2^32 elements for any batch of 2^33 or more
        const b = [2 ** 33, 2 ** 40, 2 ** 52][m.junk % 3];
        a[0] = { data: new Float32Array(0), shape: cfg.batchFirst ? [b, 0, I] : [0, b, I] };
        break;
      }
      default: a[0] = badTensor(m.kind, xShape, 7, m.junk);
    }
  } else if (m.target === 'h0') {
    switch (m.kind) {
      case 'wrong-shape': {
        const s = [...hShape];
        s[m.junk % s.length] += 1;
        a[1] = makeTensor(s).arg;
        break;
      }
      case 'flat': a[1] = makeTensor([product(hShape)]).arg; break;
      case 'other-rank': a[1] = makeTensor(unbatched ? [LD, 1, cfg.hiddenSize] : [LD, cfg.hiddenSize]).arg; break;
      case 'zero-number': a[1] = [0, false, ''][m.junk % 3]; break;
      default: a[1] = badTensor(m.kind, hShape, 9, m.junk);
    }
  } else if (m.target === 'lengths') {
    const base = randomLengths(T, batch, 5);
    let lengths;
    switch (m.kind) {
      case 'element': {
        if (batch === 0) {
          lengths = [m.element === 'above' ? T + 1 : m.element];
          break;
        }
        lengths = [...base];
        const at = m.at % batch;
        if (m.element === 'hole') delete lengths[at];
        else lengths[at] = m.element === 'above' ? T + 1 : m.element;
        break;
      }
      case 'count-minus': lengths = base.slice(1); if (batch === 0) lengths = [0]; break;
      case 'count-plus': lengths = [...base, 0]; break;
      case 'string': lengths = '1'.repeat(batch); break;
      case 'array-like': lengths = { length: batch, ...base }; break;
      case 'bigint': lengths = BigInt64Array.from(base.map(BigInt)); break;
      case 'dataview': lengths = new DataView(new ArrayBuffer(4 * batch)); break;
      case 'number': lengths = batch; break;
      default: lengths = new Set(base);
    }
    a[2] = { ...(typeof a[2] === 'object' && a[2] !== null ? a[2] : {}), lengths };
  } else {
    const keep = typeof a[2] === 'object' && a[2] !== null ? { ...a[2] } : {};
    switch (m.kind) {
      case 'array': a[2] = Object.assign([], keep); break;
      case 'string': a[2] = 'lengths'; break;
      case 'number': a[2] = 5; break;
      case 'function': a[2] = Object.assign(() => keep, keep); break;
      case 'unknown-key': a[2] = { ...keep, lenghts: keep.lengths ?? [] }; break;
      case 'signal-junk': a[2] = { ...keep, signal: { aborted: false, addEventListener() {} } }; ctl.aborted = false; ctl.abortLater = false; break;
      case 'signal-aborted': a[2] = { ...keep, signal: AbortSignal.abort(new Error('fuzz')) }; ctl.aborted = true; ctl.abortLater = false; break;
      case 'signal-abort-later': {
        // each backend's call gets its own controller (see forwardAdversarial), aborted right after it
        a[2] = { ...keep, signal: new AbortController().signal };
        ctl.abortLater = true;
        ctl.aborted = false;
        break;
      }
      case 'symbol-key': a[2] = { ...keep, [Symbol('lengths')]: [] }; break;
      default: a[2] = Object.assign(new Number(0), keep);
    }
  }
  return a;
}

const forwardAdversarial = {
  id: 'forward.adversarial',
  area: 'forward',
  title: 'forward / forwardAsync / forwardTrain with adversarial x, h0, lengths and options: a result as forward.valid, or the same FastGruError on both backends naming the bad argument',
  arbitrary: fc.record({
    call: callArb,
    method: fc.constantFrom('forward', 'forwardAsync', 'forwardTrain'),
    mutations: fc.array(mutationArb, { minLength: 1, maxLength: 2 }),
  }),
  async run({ call, method, mutations }) {
    const { cfg } = call;
    let { args } = buildCall(cfg, call.dims, call);
    const ctl = {};
    for (const m of mutations) args = mutate(cfg, call, args, m, ctl);
    const async = method === 'forwardAsync';
    const p = predictArgs(cfg, args, async);
    if (p.avoided) return;
    const { native, js } = models(cfg);
    const outcomes = [];
    for (const [gru, name] of [[native, 'native'], [js, 'js']]) {
      let controller = null;
      if (ctl.abortLater && args[2] && Object.getPrototypeOf(args[2]) === Object.prototype && 'signal' in args[2]) {
        controller = new AbortController();
        args[2] = { ...args[2], signal: controller.signal };
      }
      const o = await attempt(() => {
        const r = gru[method](...args);
        controller?.abort(new Error('fuzz: aborted after the call'));
        return r;
      }, `${name} ${method}`);
      const what = `${name} ${method}(${args.map(show).join(', ')})`;
      if (p.valid && (ctl.aborted || (ctl.abortLater && async)) && !o.ok) {
        expectOutcome(o, { valid: false, roots: [] }, what);
        if (o.error.code !== 'ERR_ABORTED') fail('wrong-acceptance', `${what}: rejected with ${show(o.error)}, expected ERR_ABORTED or a result`);
      } else if (p.valid && ctl.aborted && async && o.ok) {
        fail('wrong-acceptance', `${what}: resolved although its signal was aborted before the call`);
      } else {
        expectOutcome(o, p.valid ? { valid: true } : { valid: false, roots: p.roots, why: p.why }, what);
      }
      outcomes.push(o);
    }
    const [on, oj] = outcomes;
    // Aborted right after the call: whether the work had started is a matter of timing on each backend.
    const aborted = (o) => !o.ok && o.error?.code === 'ERR_ABORTED';
    if (ctl.abortLater && (aborted(on) || aborted(oj))) return;
    if (on.ok !== oj.ok) {
      fail('disagreement', `${method}(${args.map(show).join(', ')}): native ${on.ok ? 'returned' : `threw ${show(on.error)}`}, js ${oj.ok ? 'returned' : `threw ${show(oj.error)}`}`);
    }
    if (!on.ok && on.error.code !== oj.error.code) {
      fail('disagreement', `${method}: native threw ${show(on.error)}, js threw ${show(oj.error)}`);
    }
    if (on.ok) {
      checkResult(cfg, p, on.value, `native ${method}`);
      checkResult(cfg, p, oj.value, `js ${method}`);
      expectClose(on.value.output.data, oj.value.output.data, TOL, `${method} output, native vs js`);
      expectClose(on.value.hidden.data, oj.value.hidden.data, TOL, `${method} hidden, native vs js`);
    }
  },
};

const AFTER_CALL = ['transfer-x', 'transfer-h0', 'scribble-x', 'scribble-h0', 'scribble-lengths', 'transfer-lengths', 'transfer-all',
  'load-state-dict', 'parameters-changed', 'abort'];

const forwardAsyncInFlight = {
  id: 'forwardAsync.inflight',
  area: 'forwardAsync',
  title: 'forwardAsync with its inputs transferred, overwritten or the weights replaced right after the call: the result of the inputs and weights at the call (README: it copies its inputs when called)',
  arbitrary: fc.record({
    call: callArb,
    after: fc.array(fc.constantFrom(...AFTER_CALL), { minLength: 1, maxLength: 3 }),
    inFlight: fc.integer({ min: 1, max: 3 }),
  }),
  async run({ call, after, inFlight }) {
    const { cfg } = call;
    const spec = { ...call, x: { ...call.x, form: 'tensor', storage: call.x.storage === 'shared' || call.x.storage === 'growable' ? 'plain' : call.x.storage } };
    if (predictArgs(cfg, buildCall(cfg, call.dims, spec).args, true).avoided) return;
    for (const backend of [NATIVE, 'js']) {
      count();
      const gru = new GRU(gruOptions(cfg, backend));
      const other = new GRU(gruOptions({ ...cfg, seed: cfg.seed + 1 }, 'js')).stateDict();
      count();
      // Each call gets its own arguments; the expected result comes from a forward on copies.
      const calls = [];
      for (let k = 0; k < inFlight; k++) {
        const { args } = buildCall(cfg, call.dims, { ...spec, x: { ...spec.x, seed: spec.x.seed + k } });
        const p = predictArgs(cfg, args, true);
        if (!p.valid) internal(`a valid call is invalid: ${p.why}`);
        const copies = [{ data: copyOf(args[0].data), shape: args[0].shape }, args[1] && args[1].data ? { data: copyOf(args[1].data), shape: args[1].shape } : args[1]];
        if (args[2] !== undefined) copies.push(args[2]?.lengths ? { lengths: Array.from(args[2].lengths) } : args[2]);
        const expected = expectOutcome(await attempt(() => gru.forward(...copies)), p, `${backend} forward`);
        calls.push({ args, expected, p });
      }
      const controller = new AbortController();
      const pending = calls.map(({ args }) => {
        count();
        const a = [...args];
        if (after.includes('abort')) {
          while (a.length < 3) a.push(undefined);
          // Own keys and prototype both kept: the options may carry lengths by inheritance.
          const base = a[2] ?? {};
          a[2] = Object.assign(Object.create(Object.getPrototypeOf(base)), base, { signal: controller.signal });
          if (a[2].lengths === undefined) delete a[2].lengths;
        }
        let promise;
        try {
          promise = gru.forwardAsync(...a);
        } catch (error) {
          promise = Promise.reject(error);
        }
        promise.catch(() => undefined);
        return promise;
      });
      // Everything the caller may do at once after the calls (README: forwardAsync copies its inputs).
      for (const { args } of calls) {
        const [x, h0, options] = args;
        for (const step of after) {
          const lengths = options?.lengths;
          if (step === 'transfer-x' || step === 'transfer-all') transfer(x.data);
          if (step === 'transfer-h0' || step === 'transfer-all') transfer(h0?.data);
          if (step === 'scribble-x' && x.data.length) x.data.fill(NaN);
          if (step === 'scribble-h0' && h0?.data?.length) h0.data.fill(1e30);
          if (step === 'scribble-lengths' && lengths) for (let i = 0; i < lengths.length; i++) lengths[i] = Array.isArray(lengths) ? -1 : 0;
          if (step === 'transfer-lengths' || step === 'transfer-all') transfer(lengths);
        }
      }
      if (after.includes('load-state-dict')) {
        count();
        gru.loadStateDict(other);
      }
      if (after.includes('parameters-changed')) {
        count();
        for (const t of Object.values(gru.parameters())) t.data.fill(0.5);
        gru.parametersChanged();
      }
      if (after.includes('abort')) controller.abort(new Error('fuzz: aborted in flight'));
      for (let k = 0; k < calls.length; k++) {
        const { expected, p } = calls[k];
        let r;
        try {
          r = { ok: true, value: await pending[k] };
        } catch (error) {
          r = { ok: false, error };
        }
        const what = `${backend} forwardAsync #${k} then ${after.join(', ')}`;
        if (!r.ok && after.includes('abort')) {
          expectOutcome(r, { valid: false, roots: [] }, what);
          if (r.error.code !== 'ERR_ABORTED') fail('wrong-acceptance', `${what}: rejected with ${show(r.error)}`);
          continue;
        }
        const value = expectOutcome(r, { valid: true }, what);
        expectShape(value.output.shape, p.outputShape, `${what}: output`);
        expectBits(value.output.data, expected.output.data, `${what}: output vs forward on the inputs at the call`);
        expectBits(value.hidden.data, expected.hidden.data, `${what}: hidden vs forward on the inputs at the call`);
      }
    }
  },
};

const GRAD_KINDS = ['omit', 'null', 'undefined', 'tensor', 'tensor', 'nested', 'wrong-shape', 'flat', ...BAD_TENSOR_KINDS];

const trainBackward = {
  id: 'train.backward',
  area: 'backward',
  title: 'forwardTrain + backward (dropout included): native = js to 1e-4 for output, dInput, dH0 and every gradient, gradient shapes as documented, backward repeatable; bad dOutput / dHidden throw naming them',
  arbitrary: fc.record({
    call: callArb,
    dropout: fc.constantFrom(0, 0, 0.25, 1),
    dOutput: fc.record({ kind: fc.constantFrom(...GRAD_KINDS), seed: fc.nat(), junk: fc.nat() }),
    dHidden: fc.record({ kind: fc.constantFrom(...GRAD_KINDS), seed: fc.nat(), junk: fc.nat() }),
  }),
  async run({ call, dropout, dOutput, dHidden }) {
    const both = await bothBackends(call, { method: 'forwardTrain', extra: dropout ? { dropout } : {} });
    if (!both) return;
    const { cfg, args, p, rn: tn, rj: tj } = both;
    const grad = (g, shape) => {
      switch (g.kind) {
        case 'omit': return OMIT;
        case 'null': return null;
        case 'undefined': return undefined;
        case 'tensor': return makeTensor(shape, { seed: g.seed }).arg;
        case 'nested': return product(shape) ? makeTensor(shape, { form: 'nested', seed: g.seed }).arg : makeTensor(shape, { seed: g.seed }).arg;
        case 'wrong-shape': return makeTensor(shape.length ? [...shape.slice(0, -1), shape[shape.length - 1] + 1] : [1], { seed: g.seed }).arg;
        case 'flat': return shape.length === 1 ? makeTensor([...shape, 1]).arg : makeTensor([product(shape)], { seed: g.seed }).arg;
        default: return badTensor(g.kind, shape, g.seed, g.junk);
      }
    };
    const dO = grad(dOutput, p.outputShape);
    const dH = grad(dHidden, p.hiddenShape);
    const bargs = dH === OMIT ? (dO === OMIT ? [] : [dO]) : [dO === OMIT ? undefined : dO, dH];
    const roots = [];
    const check = (v, shape, name) => {
      if (v === OMIT || v === undefined || v === null) return;
      const t = readTensorLike(v);
      if (!t.ok || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) roots.push(name);
    };
    check(dO, p.outputShape, 'dOutput');
    check(dH, p.hiddenShape, 'dHidden');
    const expected = roots.length ? { valid: false, roots } : { valid: true };
    const what = `backward(${bargs.map((b) => show(b)).join(', ')})`;
    const gn = expectOutcome(await attempt(() => tn.backward(...bargs)), expected, `native ${what}`);
    const gj = expectOutcome(await attempt(() => tj.backward(...bargs)), expected, `js ${what}`);
    if (!gn) return;
    const xShape = readTensorLike(args[0]).shape;
    for (const [g, name] of [[gn, 'native'], [gj, 'js']]) {
      expectTensor(g.dInput, xShape, `${name} dInput`);
      expectTensor(g.dH0, p.hiddenShape, `${name} dH0`);
      const specs = parameterSpecs(cfg);
      if (Object.keys(g.grads).sort().join() !== specs.map((s) => s.name).sort().join()) {
        fail('wrong-result', `${name} grads: names ${Object.keys(g.grads)}`);
      }
      for (const s of specs) expectTensor(g.grads[s.name], s.shape, `${name} grads.${s.name}`);
    }
    expectClose(gn.dInput.data, gj.dInput.data, TOL, 'dInput, native vs js');
    expectClose(gn.dH0.data, gj.dH0.data, TOL, 'dH0, native vs js');
    for (const name of Object.keys(gj.grads)) expectClose(gn.grads[name].data, gj.grads[name].data, TOL, `grads.${name}, native vs js`);
    const again = expectOutcome(await attempt(() => tn.backward(...bargs)), expected, `native ${what}, again`);
    expectBits(again.dInput.data, gn.dInput.data, 'dInput of a second backward');
    for (const name of Object.keys(gn.grads)) expectBits(again.grads[name].data, gn.grads[name].data, `grads.${name} of a second backward`);
  },
};

// ------------------------------------------------------------------------------------------------
// loadStateDict
// ------------------------------------------------------------------------------------------------

const VALUE_FORMS = ['tensor', 'f32', 'f64', 'numbers', 'nested', 'tensor-f64', 'shared', 'offset', 'tensor-flat', 'tensor-transposed',
  'short', 'long', 'i32', 'string', 'null', 'undefined', 'number', 'data-only', 'tensor-bad-shape', 'nested-ragged', 'nested-string',
  'detached', 'tensor-numbers', 'nested-extra-dim'];

const sdMutationArb = fc.oneof(
  fc.record({ op: fc.constant('delete'), at: fc.nat() }),
  fc.record({ op: fc.constant('extra'), name: fc.constantFrom('weight_ih_l9', 'weight_ih_l0_reverse', 'bias_ih_l0', '__proto__', 'constructor', '', 'weight_ih_l0 ', 'toString', 'weight_hh_l1') }),
  fc.record({ op: fc.constant('form'), at: fc.nat(), form: fc.constantFrom(...VALUE_FORMS) }),
  fc.record({ op: fc.constant('special'), at: fc.nat(), seed: fc.nat() }),
);

/** A parameter's value in a form; `valid` says whether loadStateDict must accept it for `shape`. */
function valueIn(form, data, shape) {
  const n = data.length;
  const matrix = shape.length === 2;
  switch (form) {
    case 'tensor': return { value: { data: Float32Array.from(data), shape: [...shape] }, valid: true };
    case 'f32': return { value: Float32Array.from(data), valid: true };
    case 'f64': return { value: Float64Array.from(data), valid: true };
    case 'numbers': return { value: Array.from(data), valid: true };
    case 'nested': return { value: nest(Array.from(data), shape), valid: true };
    case 'tensor-f64': return { value: { data: Float64Array.from(data), shape: [...shape] }, valid: true };
    case 'shared': return { value: stored(data, 'shared'), valid: true };
    case 'offset': return { value: stored(data, 'offset'), valid: true };
    case 'tensor-flat': return { value: { data: Float32Array.from(data), shape: [n] }, valid: !matrix };
    case 'tensor-transposed': return { value: { data: Float32Array.from(data), shape: [...shape].reverse() }, valid: !matrix || shape[0] === shape[1] };
    case 'short': return { value: Float32Array.from(data).subarray(1), valid: false };
    case 'long': return { value: Float32Array.from([...data, 0]), valid: false };
    case 'i32': return { value: new Int32Array(n), valid: false };
    case 'string': return { value: 'weights', valid: false };
    case 'null': return { value: null, valid: false };
    case 'undefined': return { value: undefined, valid: false };
    case 'number': return { value: 0.5, valid: false };
    case 'data-only': return { value: { data: Float32Array.from(data) }, valid: false };
    case 'tensor-bad-shape': return { value: { data: Float32Array.from(data), shape: [-shape[0], ...shape.slice(1)] }, valid: false };
    case 'nested-ragged': return { value: [...nest(Array.from(data), shape), 0], valid: false };
    case 'nested-string': return { value: ['1', ...Array.from(data).slice(1)], valid: false };
    case 'detached': return { value: stored(data, 'detached'), valid: false };
    case 'tensor-numbers': return { value: { data: Array.from(data), shape: [...shape] }, valid: false };
    default: return { value: [nest(Array.from(data), shape)], valid: false };
  }
}

const stateDictLoad = {
  id: 'stateDict.load',
  area: 'stateDict',
  title: 'loadStateDict with missing, extra, wrongly shaped and odd values (NaN allowed): loads exactly the values (and both backends then agree), or throws StateDictError naming stateDict and changes nothing',
  arbitrary: fc.record({
    cfg: gruConfigArb,
    container: fc.constantFrom('object', 'object', 'object', 'map', 'null-proto', 'class', 'null', 'array', 'string', 'number', 'float32array'),
    mutations: fc.array(sdMutationArb, { maxLength: 3 }),
    x: fc.nat(),
  }),
  async run({ cfg, container, mutations, x }) {
    const { native, js } = models(cfg);
    const specs = parameterSpecs(cfg);
    const source = new GRU(gruOptions({ ...cfg, seed: cfg.seed + 1 }, 'js')).stateDict();
    count();
    const entries = new Map(specs.map((s) => [s.name, { ...valueIn('tensor', source[s.name].data, s.shape), data: source[s.name].data }]));
    let valid = true;
    for (const m of mutations) {
      const names = [...entries.keys()];
      if (m.op === 'delete') {
        if (names.length) entries.delete(names[m.at % names.length]);
      } else if (m.op === 'extra') {
        if (!entries.has(m.name)) entries.set(m.name, { value: new Float32Array(3), valid: true, extra: true });
      } else if (names.length) {
        const name = names[m.at % names.length];
        const spec = specs.find((s) => s.name === name);
        if (!spec) continue;
        const data = m.op === 'special' ? floats(product(spec.shape), m.seed, 'special') : entries.get(name).data;
        entries.set(name, { ...valueIn(m.op === 'special' ? 'f32' : m.form, data, spec.shape), data });
      }
    }
    const keys = [...entries.keys()];
    if (keys.length !== specs.length || specs.some((s) => !entries.has(s.name))) valid = false;
    for (const e of entries.values()) if (!e.valid || e.extra) valid = false;
    let sd;
    const own = Object.fromEntries([...entries].map(([k, e]) => [k, e.value]));
    switch (container) {
      case 'map': sd = new Map([...entries].map(([k, e]) => [k, e.value])); break;
      case 'null-proto': sd = Object.assign(Object.create(null), own); break;
      case 'class': sd = Object.assign(new (class SavedState {})(), own); break;
      case 'null': sd = null; valid = false; break;
      case 'array': sd = Object.assign([], own); valid = false; break;
      case 'string': sd = 'weights'; valid = false; break;
      case 'number': sd = 3; valid = false; break;
      case 'float32array': sd = new Float32Array(3); valid = false; break;
      default: sd = own;
    }
    if (container === 'null-proto' || container === 'class') {
      // Object.assign skips an own __proto__ key's meaning: define each key instead.
      for (const [k, e] of entries) Object.defineProperty(sd, k, { value: e.value, enumerable: true, configurable: true, writable: true });
    }
    const before = native.stateDict();
    const expected = valid ? { valid: true } : { valid: false, roots: ['stateDict'] };
    const rn = await attempt(() => native.loadStateDict(sd));
    const rj = await attempt(() => js.loadStateDict(sd));
    const what = `loadStateDict(${show(sd)}: ${keys.map((k) => `${k}=${show(entries.get(k).value)}`).join(', ')})`;
    expectOutcome(rn, expected, `native ${what}`);
    expectOutcome(rj, expected, `js ${what}`);
    count();
    const after = native.stateDict();
    if (!valid) {
      for (const s of specs) expectBits(after[s.name].data, before[s.name].data, `${s.name} after a failed loadStateDict`);
      return;
    }
    if (rn.value !== native) fail('wrong-result', 'loadStateDict did not return the model');
    for (const s of specs) {
      const want = Float32Array.from(entries.get(s.name).data);
      expectTensor(after[s.name], s.shape, `stateDict().${s.name} after loading`);
      expectBits(after[s.name].data, want, `stateDict().${s.name} after loading`);
    }
    // Both backends now hold the same weights: they compute the same function.
    const I = cfg.inputSize;
    const input = makeTensor(cfg.batchFirst ? [2, 3, I] : [3, 2, I], { seed: x });
    const fn = expectOutcome(await attempt(() => native.forward(input.arg)), { valid: true }, 'native forward after loading');
    const fj = expectOutcome(await attempt(() => js.forward(input.arg)), { valid: true }, 'js forward after loading');
    expectClose(fn.output.data, fj.output.data, TOL, 'output after loading, native vs js');
    expectClose(fn.hidden.data, fj.hidden.data, TOL, 'hidden after loading, native vs js');
  },
};

// ------------------------------------------------------------------------------------------------
// GRU.fromShared: a share arrives from another thread, so it is untrusted input
// ------------------------------------------------------------------------------------------------

const SHARE_MUTATIONS = ['none', 'none', 'kind', 'options-null', 'options-size', 'options-huge', 'options-unknown', 'options-dropout',
  'buffer-ab', 'buffer-small', 'buffer-typed', 'tensors-not-array', 'tensor-missing', 'tensor-shape', 'tensor-offset', 'tensor-null',
  'share-junk'];

const sharedProperty = {
  id: 'shared.fromShared',
  area: 'shared',
  title: 'GRU.fromShared with a genuine or corrupted share: the same bits as the model shared (read-only), or a FastGruError naming shared or options',
  arbitrary: fc.record({
    cfg: gruConfigArb,
    mutation: fc.constantFrom(...SHARE_MUTATIONS),
    offset: fc.constantFrom(-1, 0.5, NaN, 2 ** 53, 2 ** 31, '0', 1e9, null, 1),
    options: fc.constantFrom('omit', 'null', 'native', 'js', 'threads', 'unknown', 'array', 'string', 'bad-threads'),
    junk: fc.nat(),
  }),
  async run({ cfg, mutation, offset, options, junk }) {
    count();
    const source = new GRU(gruOptions(cfg, NATIVE));
    count();
    const share = source.share();
    let s = { ...share, options: { ...share.options }, tensors: share.tensors.map((t) => ({ ...t, shape: [...t.shape] })) };
    const roots = new Set();
    const t0 = s.tensors[junk % s.tensors.length];
    switch (mutation) {
      case 'kind': s.kind = 'fastgru.SharedGru'; roots.add('shared'); break;
      case 'options-null': s.options = null; roots.add('shared'); break;
      case 'options-size': s.options.hiddenSize += 1; roots.add('shared'); break;
      case 'options-huge': s.options.inputSize = 2 ** 30; s.options.hiddenSize = 2 ** 30; roots.add('options'); break;
      case 'options-unknown': s.options.units = 3; roots.add('options'); break;
      case 'options-dropout': s.options.dropout = 2; roots.add('options'); break;
      case 'buffer-ab': s.buffer = new ArrayBuffer(share.buffer.byteLength); roots.add('shared'); break;
      case 'buffer-small': s.buffer = new SharedArrayBuffer(Math.max(0, share.buffer.byteLength - 4)); roots.add('shared'); break;
      case 'buffer-typed': s.buffer = new Float32Array(share.buffer); roots.add('shared'); break;
      case 'tensors-not-array': s.tensors = Object.fromEntries(s.tensors.map((t) => [t.name, t])); roots.add('shared'); break;
      case 'tensor-missing': s.tensors.splice(junk % s.tensors.length, 1); roots.add('shared'); break;
      case 'tensor-shape': t0.shape = [...t0.shape].reverse().concat([1]); roots.add('shared'); break;
      case 'tensor-offset': {
        const floatsInBuffer = share.buffer.byteLength / 4;
        t0.offset = offset;
        const n = product(t0.shape);
        const ok = Number.isSafeInteger(offset) && offset >= 0 && offset + n <= floatsInBuffer;
        if (!ok) roots.add('shared');
        break;
      }
      case 'tensor-null': s.tensors[junk % s.tensors.length] = null; roots.add('shared'); break;
      case 'share-junk': s = junkValue(junk); roots.add('shared'); break;
      default:
    }
    let second;
    switch (options) {
      case 'omit': second = OMIT; break;
      case 'null': second = null; break;
      case 'native': second = { backend: 'native' }; break;
      case 'js': second = { backend: 'js' }; break;
      case 'threads': second = { threads: 1 + (junk % 3) }; break;
      case 'unknown': second = { hiddenSize: 3 }; roots.add('options'); break;
      case 'array': second = ['js']; roots.add('options'); break;
      case 'string': second = 'js'; roots.add('options'); break;
      default: second = { threads: 0 }; roots.add('options');
    }
    const r = await attempt(() => (second === OMIT ? GRU.fromShared(s) : GRU.fromShared(s, second)));
    const what = `GRU.fromShared(${mutation}, ${options})`;
    const shared = expectOutcome(r, roots.size ? { valid: false, roots: [...roots] } : { valid: true }, what);
    if (!shared) return;
    const input = makeTensor(cfg.batchFirst ? [2, 3, cfg.inputSize] : [3, 2, cfg.inputSize], { seed: junk }).arg;
    // What the shared model must compute: the source's function, with the tensor moved by a
    // corrupted (but in-bounds) offset read from where the offset points.
    let reference = source;
    if (mutation === 'tensor-offset') {
      count();
      reference = new GRU(gruOptions(cfg, 'js'));
      const sd = source.stateDict();
      sd[t0.name] = { data: new Float32Array(share.buffer, t0.offset * 4, product(t0.shape)).slice(), shape: t0.shape };
      reference.loadStateDict(sd);
    }
    const rs = expectOutcome(await attempt(() => shared.forward(input)), { valid: true }, `${what}: forward`);
    const rr = expectOutcome(await attempt(() => reference.forward(input)), { valid: true }, `${what}: the source's forward`);
    if (shared.backend === reference.backend) expectBits(rs.output.data, rr.output.data, `${what}: output vs the source model`);
    else expectClose(rs.output.data, rr.output.data, TOL, `${what}: output vs the source model`);
    expectOutcome(await attempt(() => shared.loadStateDict(source.stateDict())), { valid: false, roots: ['loadStateDict'] }, `${what}: loadStateDict on a shared model`);
    expectOutcome(await attempt(() => shared.parameters()), { valid: false, roots: ['parameters'] }, `${what}: parameters() of a shared model`);
    const again = expectOutcome(await attempt(() => shared.share()), { valid: true }, `${what}: share() of a shared model`);
    if (again !== s) fail('wrong-result', `${what}: share() of a shared model is not its share`);
  },
};

export default [gruOptionsProperty, forwardValid, forwardSpecial, forwardAdversarial, forwardAsyncInFlight, trainBackward, stateDictLoad, sharedProperty];
