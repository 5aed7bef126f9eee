// Properties of training: Linear (forward and backward against a float64 reference, both backends),
// softmaxCrossEntropy, clipGradNorm and the optimizers (torch.optim's rules, recomputed here in
// float64), with adversarial arguments mixed in.
import fc from 'fast-check';
import { api, attempt, count, expectBits, expectClose, expectOutcome, expectTensor, fail, floats, NATIVE, product, show, stored } from './harness.mjs';
import { BAD_TENSOR_KINDS, badTensor, junkArb, junkValue, makeTensor, readTensorLike } from './rules.mjs';

const { Linear, SGD, Adam, AdamW, GRU, clipGradNorm, softmaxCrossEntropy } = api;

// ------------------------------------------------------------------------------------------------
// Linear
// ------------------------------------------------------------------------------------------------

function linearReference(x, n, w, b, I, O) {
  const y = new Float64Array(n * O);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < O; j++) {
      let s = b ? b[j] : 0;
      for (let p = 0; p < I; p++) s += x[r * I + p] * w[j * I + p];
      y[r * O + j] = s;
    }
  }
  return y;
}

const linearProperty = {
  id: 'train.linear',
  area: 'train',
  title: 'Linear forward / forwardTrain / backward on x [..., in] (zero-sized leading dimensions included) on both backends: y = x·Wᵀ + b and its gradients, to 1e-4 of a float64 reference; bad x or dOutput throw naming them',
  arbitrary: fc.record({
    inFeatures: fc.integer({ min: 1, max: 7 }),
    outFeatures: fc.integer({ min: 1, max: 7 }),
    bias: fc.boolean(),
    seed: fc.nat(),
    lead: fc.array(fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.constant(0) }), { maxLength: 3 }),
    x: fc.constantFrom('tensor', 'tensor', 'tensor', 'nested', 'shared', 'bad', 'wide', 'scalar'),
    dOutput: fc.constantFrom('tensor', 'tensor', 'nested', 'bad', 'wide'),
    bad: fc.constantFrom(...BAD_TENSOR_KINDS),
    junk: fc.nat(),
  }),
  async run(s) {
    const I = s.inFeatures;
    const O = s.outFeatures;
    const shape = [...s.lead, I];
    let x;
    if (s.x === 'tensor' || s.x === 'shared' || (s.x === 'nested' && product(shape) === 0)) x = makeTensor(shape, { seed: s.seed, storage: s.x === 'shared' ? 'shared' : 'plain' }).arg;
    else if (s.x === 'nested') x = makeTensor(shape, { form: 'nested', seed: s.seed }).arg;
    else if (s.x === 'wide') x = makeTensor([...s.lead, I + 1], { seed: s.seed }).arg;
    else if (s.x === 'scalar') x = { data: new Float32Array(1), shape: [] };
    else x = badTensor(s.bad, shape, s.seed, s.junk);
    const xt = readTensorLike(x);
    const xValid = xt.ok && xt.shape.length >= 1 && xt.shape[xt.shape.length - 1] === I;
    for (const backend of [NATIVE, 'js']) {
      count();
      const lin = new Linear({ inFeatures: I, outFeatures: O, bias: s.bias, seed: s.seed, backend });
      const { weight, bias } = lin.parameters();
      const w = Float32Array.from(weight.data);
      const b = bias ? Float32Array.from(bias.data) : null;
      const what = `${backend} Linear(${I}, ${O}).forward(${show(x)})`;
      const y = expectOutcome(await attempt(() => lin.forward(x)), xValid ? { valid: true } : { valid: false, roots: ['x'] }, what);
      const run = expectOutcome(await attempt(() => lin.forwardTrain(x)), xValid ? { valid: true } : { valid: false, roots: ['x'] }, what.replace('forward', 'forwardTrain'));
      if (!xValid) continue;
      const n = xt.data.length / I;
      const outShape = [...xt.shape.slice(0, -1), O];
      expectTensor(y, outShape, `${what}: output`);
      const ref = linearReference(xt.data, n, w, b, I, O);
      expectClose(y.data, ref, 1e-4, `${what}: output vs float64`);
      expectBits(run.output.data, y.data, `${what}: forwardTrain output vs forward`);
      let g;
      if (s.dOutput === 'tensor' || (s.dOutput === 'nested' && product(outShape) === 0)) g = makeTensor(outShape, { seed: s.seed + 1 }).arg;
      else if (s.dOutput === 'nested') g = makeTensor(outShape, { form: 'nested', seed: s.seed + 1 }).arg;
      else if (s.dOutput === 'wide') g = makeTensor([...outShape.slice(0, -1), O + 1], { seed: s.seed + 1 }).arg;
      else g = badTensor(s.bad, outShape, s.seed + 1, s.junk);
      const gt = readTensorLike(g);
      const gValid = gt.ok && gt.shape.length === outShape.length && gt.shape.every((d, i) => d === outShape[i]);
      const grads = expectOutcome(await attempt(() => run.backward(g)), gValid ? { valid: true } : { valid: false, roots: ['dOutput'] }, `${what}: backward(${show(g)})`);
      if (!grads) continue;
      const gy = gt.data;
      const dX = new Float64Array(n * I);
      const dW = new Float64Array(O * I);
      const dB = new Float64Array(O);
      for (let r = 0; r < n; r++) {
        for (let j = 0; j < O; j++) {
          dB[j] += gy[r * O + j];
          for (let p = 0; p < I; p++) {
            dX[r * I + p] += gy[r * O + j] * w[j * I + p];
            dW[j * I + p] += gy[r * O + j] * xt.data[r * I + p];
          }
        }
      }
      expectTensor(grads.dInput, xt.shape, `${what}: dInput`);
      expectClose(grads.dInput.data, dX, 1e-4, `${what}: dInput vs float64`);
      expectTensor(grads.grads.weight, [O, I], `${what}: grads.weight`);
      expectClose(grads.grads.weight.data, dW, 1e-4, `${what}: grads.weight vs float64`);
      if (s.bias) {
        expectTensor(grads.grads.bias, [O], `${what}: grads.bias`);
        expectClose(grads.grads.bias.data, dB, 1e-4, `${what}: grads.bias vs float64`);
      } else if ('bias' in grads.grads) fail('wrong-result', `${what}: a bias gradient without a bias`);
    }
  },
};

const LINEAR_VALUES = ['tensor', 'nested', 'f32', 'f64', 'wrong-shape', 'flat', 'missing', 'junk'];

const linearOptions = {
  id: 'train.linear-options',
  area: 'options',
  title: 'new Linear(options) and linear.loadStateDict(sd): valid ones work (and load exactly), others throw a FastGruError naming options / stateDict and change nothing',
  arbitrary: fc.record({
    inFeatures: fc.oneof(fc.integer({ min: 1, max: 5 }).map((v) => ({ v })), fc.constantFrom(0, 2 ** 15, 2 ** 16, 2 ** 31, 1.5).map((v) => ({ v })), junkArb),
    outFeatures: fc.oneof(fc.integer({ min: 1, max: 5 }).map((v) => ({ v })), fc.constantFrom(2 ** 15, 2 ** 16, 2 ** 30).map((v) => ({ v })), junkArb),
    bias: fc.oneof(fc.boolean().map((v) => ({ v })), fc.constant({ absent: true }), junkArb),
    backend: fc.oneof(fc.constantFrom('auto', 'native', 'js', 'gpu').map((v) => ({ v })), fc.constant({ absent: true })),
    seed: fc.oneof(fc.nat().map((v) => ({ v })), fc.constant({ absent: true }), fc.constantFrom(-1, 2 ** 53).map((v) => ({ v }))),
    unknown: fc.boolean(),
    weight: fc.constantFrom(...LINEAR_VALUES),
    biasValue: fc.constantFrom(...LINEAR_VALUES),
    extra: fc.constantFrom(null, null, 'running_mean', 'constructor', 'toString', '__proto__'),
    junk: fc.nat(),
  }),
  async run(s) {
    const o = {};
    for (const k of ['inFeatures', 'outFeatures', 'bias', 'backend', 'seed']) {
      const v = s[k];
      if (!v.absent) o[k] = 'v' in v ? v.v : junkValue(v);
    }
    if (s.unknown) o.in_features = 3;
    const pos = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= 2 ** 30;
    let valid = !s.unknown && pos(o.inFeatures) && pos(o.outFeatures) && o.inFeatures * o.outFeatures <= 2 ** 30 &&
      (o.bias === undefined || typeof o.bias === 'boolean') && (o.backend === undefined || ['auto', 'native', 'js'].includes(o.backend)) &&
      (o.seed === undefined || (Number.isSafeInteger(o.seed) && o.seed >= 0));
    if (valid && o.inFeatures * o.outFeatures > 100_000) return; // a real allocation: not a cheap call
    const lin = expectOutcome(await attempt(() => new Linear(o)), valid ? { valid: true } : { valid: false, roots: ['options'] }, `new Linear(${JSON.stringify(o, (k, v) => (typeof v === 'bigint' ? String(v) : v))})`);
    if (!lin) return;
    const I = o.inFeatures;
    const O = o.outFeatures;
    const hasBias = o.bias !== false;
    const value = (form, shape, seed) => {
      const data = floats(product(shape), seed);
      let v;
      switch (form) {
        case 'tensor': v = { data, shape }; break;
        case 'nested': v = makeTensor(shape, { form: 'nested', seed }).arg; break;
        case 'f32': v = data; break; // Linear takes Tensors and nested arrays (toTensor), not bare arrays
        case 'f64': v = { data: Float64Array.from(data), shape }; break;
        case 'wrong-shape': v = { data: new Float32Array(product(shape) + 1), shape: [...shape.slice(0, -1), shape[shape.length - 1] + 1] }; break;
        case 'flat': v = { data, shape: [data.length] }; break;
        case 'missing': return { absent: true, ok: false };
        default: v = junkValue(s.junk);
      }
      const t = readTensorLike(v);
      const ok = t.ok && t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
      return { v, ok, data: ok ? t.data : null };
    };
    const wv = value(s.weight, [O, I], 1);
    const bv = value(s.biasValue, [O], 2);
    const sd = {};
    if (!wv.absent) sd.weight = wv.v;
    if (hasBias && !bv.absent) sd.bias = bv.v;
    if (s.extra) Object.defineProperty(sd, s.extra, { value: { data: new Float32Array(O), shape: [O] }, enumerable: true, configurable: true, writable: true });
    // README (Training) and linear.ts: a missing, unexpected or wrongly shaped entry changes nothing.
    valid = wv.ok && (!hasBias || bv.ok) && !s.extra;
    const before = lin.stateDict();
    const r = await attempt(() => lin.loadStateDict(sd));
    expectOutcome(r, valid ? { valid: true } : { valid: false, roots: ['stateDict'] }, `linear.loadStateDict({${Object.entries(sd).map(([k, v]) => `${k}: ${show(v)}`).join(', ')}})`);
    const after = lin.stateDict();
    if (!valid) {
      for (const k of Object.keys(before)) expectBits(after[k].data, before[k].data, `${k} after a failed loadStateDict`);
      return;
    }
    expectBits(after.weight.data, Float32Array.from(wv.data), 'weight after loadStateDict');
    if (hasBias) expectBits(after.bias.data, Float32Array.from(bv.data), 'bias after loadStateDict');
  },
};

// ------------------------------------------------------------------------------------------------
// softmaxCrossEntropy
// ------------------------------------------------------------------------------------------------

const crossEntropy = {
  id: 'train.cross-entropy',
  area: 'train',
  title: 'softmaxCrossEntropy on logits [..., C] (zero sizes, huge C with no rows, extreme values) and fuzzed targets: the float64 loss and gradient (finite for finite logits), or a FastGruError naming logits / targets',
  arbitrary: fc.record({
    lead: fc.array(fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.constant(0) }), { maxLength: 2 }),
    C: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 6 }) }, { weight: 1, arbitrary: fc.constantFrom(0, 2 ** 33, 2 ** 40, 2 ** 52) }),
    values: fc.constantFrom('uniform', 'uniform', 'large', 'special'),
    seed: fc.nat(),
    logits: fc.constantFrom('tensor', 'tensor', 'nested', 'bad'),
    bad: fc.constantFrom(...BAD_TENSOR_KINDS),
    targets: fc.constantFrom('array', 'array', 'int32', 'float64', 'uint8', 'short', 'long', 'element', 'string', 'object', 'null', 'number', 'array-like'),
    element: fc.constantFrom(-1, 'C', 1.5, NaN, Infinity, '0', null, undefined, -0, 2 ** 53),
    at: fc.nat(),
    junk: fc.nat(),
  }),
  async run(s) {
    const C = s.C;
    const shape = [...s.lead, C];
    const n = product(shape);
    if (n > 100_000) return;
    const N = C > 0 ? n / C : 0;
    let logits;
    if (s.logits === 'bad') logits = badTensor(s.bad, shape, s.seed, s.junk);
    else {
      const scale = s.values === 'large' ? 3e38 : 4;
      logits = makeTensor(shape, { form: s.logits === 'nested' && n > 0 ? 'nested' : 'tensor', seed: s.seed, values: s.values === 'special' ? 'special' : 'uniform', scale }).arg;
    }
    const lt = readTensorLike(logits);
    // README: C from 1 to 2^30.
    const lValid = lt.ok && lt.shape.length >= 1 && lt.shape[lt.shape.length - 1] >= 1 && lt.shape[lt.shape.length - 1] <= 2 ** 30;
    if (lValid && (lt.shape[lt.shape.length - 1] !== C || lt.data.length !== n)) throw new Error('fuzz suite: logits not of the shape drawn');
    const rand = floats(Math.max(N, 1), s.seed + 1);
    const good = Array.from({ length: N }, (_, i) => Math.floor(((rand[i] + 1) / 2) * C) % Math.max(C, 1));
    let targets;
    switch (s.targets) {
      case 'int32': targets = Int32Array.from(good); break;
      case 'float64': targets = Float64Array.from(good); break;
      case 'uint8': targets = C <= 256 ? Uint8Array.from(good) : good; break;
      case 'short': targets = good.slice(1); break;
      case 'long': targets = [...good, 0]; break;
      case 'element': targets = [...good]; if (N > 0) targets[s.at % N] = s.element === 'C' ? C : s.element; break;
      case 'string': targets = '0'.repeat(N); break;
      case 'object': targets = { ...good }; break;
      case 'null': targets = null; break;
      case 'number': targets = N; break;
      case 'array-like': targets = { length: N, ...good }; break;
      default: targets = good;
    }
    // README: logits [N, C] (or [..., C]) and N class ids.
    let tValid = targets !== null && typeof targets === 'object' && typeof targets.length === 'number' && targets.length === N;
    if (tValid) for (let i = 0; i < N; i++) if (!(Number.isInteger(targets[i]) && targets[i] >= 0 && targets[i] < C)) tValid = false;
    const roots = [];
    if (!lValid) roots.push('logits');
    if (!tValid) roots.push('targets');
    const what = `softmaxCrossEntropy(${show(logits)} [${lt.ok ? lt.shape : '?'}], ${show(targets)})`;
    const r = expectOutcome(await attempt(() => softmaxCrossEntropy(logits, targets)), roots.length ? { valid: false, roots } : { valid: true }, what);
    if (!r) return;
    const x = lt.data;
    const grad = new Float64Array(x.length);
    let total = 0;
    let finite = true;
    for (let i = 0; i < N; i++) {
      let max = -Infinity;
      for (let j = 0; j < C; j++) max = Math.max(max, x[i * C + j]);
      let sum = 0;
      for (let j = 0; j < C; j++) sum += Math.exp(x[i * C + j] - max);
      total += Math.log(sum) + max - x[i * C + targets[i]];
      for (let j = 0; j < C; j++) grad[i * C + j] = (Math.exp(x[i * C + j] - max) / sum - (j === targets[i] ? 1 : 0)) / N;
      for (let j = 0; j < C; j++) finite &&= Number.isFinite(x[i * C + j]);
    }
    const loss = N > 0 ? total / N : 0;
    if (typeof r.loss !== 'number') fail('wrong-result', `${what}: loss ${show(r.loss)}`);
    if (finite && !Number.isFinite(r.loss)) fail('wrong-result', `${what}: loss ${r.loss} for finite logits`);
    expectClose([r.loss], [loss], 1e-9, `${what}: loss vs float64`);
    expectTensor(r.dLogits, lt.shape, `${what}: dLogits`);
    expectClose(r.dLogits.data, grad, 1e-6, `${what}: dLogits vs float64`);
  },
};

// ------------------------------------------------------------------------------------------------
// clipGradNorm
// ------------------------------------------------------------------------------------------------

const leafArb = fc.oneof(
  { weight: 6, arbitrary: fc.record({ leaf: fc.constantFrom('f32', 'tensor', 'shared'), n: fc.integer({ min: 0, max: 5 }), seed: fc.nat(), values: fc.constantFrom('uniform', 'uniform', 'special', 'big') }) },
  { weight: 1, arbitrary: fc.record({ leaf: fc.constantFrom('junk', 'f64', 'array', 'reuse') , junk: fc.nat() }) },
);
const treeArb = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, { weight: 3, arbitrary: leafArb }, { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('gru', 'head', 'weight', 'bias', 'a', 'b'), tie('node'), { maxKeys: 3 }) }),
})).node;

const clipProperty = {
  id: 'train.clip',
  area: 'train',
  title: 'clipGradNorm over nested gradients (shared arrays, NaN, a cycle): the float64 global norm, every array scaled by maxNorm / (norm + 1e-6) when that is below 1; bad trees or maxNorm throw naming grads / maxNorm',
  arbitrary: fc.record({
    grads: fc.dictionary(fc.constantFrom('gru', 'head', 'w'), treeArb, { maxKeys: 3 }),
    maxNorm: fc.oneof(fc.constantFrom(0, 0.5, 1, 5, 1e-3, 1e30).map((v) => ({ v })), fc.constantFrom(-1, NaN, Infinity).map((v) => ({ v })), junkArb),
    cycle: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  }),
  async run({ grads, maxNorm, cycle }) {
    const arrays = [];
    let valid = true;
    const build = (node) => {
      if (node && 'leaf' in node) {
        switch (node.leaf) {
          case 'f32': case 'tensor': case 'shared': {
            const scale = node.values === 'big' ? 1e20 : 1;
            const data = stored(floats(node.n, node.seed, node.values === 'big' ? 'uniform' : node.values, scale), node.leaf === 'shared' ? 'shared' : 'plain');
            arrays.push(data);
            return node.leaf === 'tensor' ? { data, shape: [node.n] } : data;
          }
          case 'reuse':
            if (arrays.length) {
              arrays.push(arrays[0]);
              return arrays[0];
            }
            return {};
          case 'f64': valid = false; return new Float64Array(2);
          case 'array': valid = false; return [new Float32Array(1)];
          default: {
            const j = junkValue(node.junk);
            // what clipGradNorm may walk into: objects of entries; anything else is a bad leaf
            if (j instanceof Float32Array) { arrays.push(j); return j; }
            if (j === null || typeof j !== 'object' || Array.isArray(j)) valid = false;
            else if (ArrayBuffer.isView(j)) valid = j.length === 0;
            return j;
          }
        }
      }
      const out = {};
      for (const [k, v] of Object.entries(node)) out[k] = build(v);
      return out;
    };
    const tree = build(grads);
    if (cycle) tree.self = tree;
    const m = 'v' in maxNorm ? maxNorm.v : junkValue(maxNorm);
    const mValid = typeof m === 'number' && m >= 0 && Number.isFinite(m);
    const roots = [];
    if (!mValid) roots.push('maxNorm');
    if (!valid || cycle) roots.push('grads');
    const before = arrays.map((a) => Float64Array.from(a));
    const what = `clipGradNorm(${show(tree)}${cycle ? ' with a cycle' : ''}, ${show(m)})`;
    const r = expectOutcome(await attempt(() => clipGradNorm(tree, m)), roots.length ? { valid: false, roots } : { valid: true }, what);
    if (r === undefined) {
      arrays.forEach((a, k) => expectClose(a, before[k], 0, `${what}: array ${k} after a failed call`));
      return;
    }
    let sum = 0;
    for (const a of before) for (const v of a) sum += v * v;
    const norm = Math.sqrt(sum);
    expectClose([r], [norm], 1e-9, `${what}: the norm returned`);
    const coef = m / (norm + 1e-6);
    const times = new Map();
    for (const a of arrays) times.set(a, (times.get(a) ?? 0) + 1);
    const seen = new Set();
    arrays.forEach((a, k) => {
      if (seen.has(a)) return;
      seen.add(a);
      const want = Float32Array.from(before[k], (v) => {
        let x = v;
        if (coef < 1) for (let t = 0; t < times.get(a); t++) x = Math.fround(x * coef);
        return x;
      });
      expectClose(a, want, 1e-6, `${what}: array ${k} after clipping`);
    });
  },
};

// ------------------------------------------------------------------------------------------------
// Optimizers
// ------------------------------------------------------------------------------------------------

const optimizerProperty = {
  id: 'train.optimizer',
  area: 'train',
  title: 'SGD / Adam / AdamW: options checked (OptionError naming options), step() checks every gradient before changing anything (naming grads) and then applies torch.optim\'s rule (recomputed in float64) for two steps; the GRU then computes with the new weights',
  arbitrary: fc.record({
    kind: fc.constantFrom('SGD', 'Adam', 'AdamW'),
    lr: fc.oneof(fc.constantFrom(0.1, 0.01, 1, 0).map((v) => ({ v })), fc.constant({ absent: true }), fc.constantFrom(-1, NaN, Infinity).map((v) => ({ v })), junkArb),
    momentum: fc.oneof(fc.constant({ absent: true }), fc.constantFrom(0, 0.9).map((v) => ({ v })), fc.constantFrom(-0.5, Infinity).map((v) => ({ v }))),
    dampening: fc.oneof(fc.constant({ absent: true }), fc.constantFrom(0, 0.1).map((v) => ({ v })), fc.constant({ v: NaN })),
    nesterov: fc.oneof(fc.constant({ absent: true }), fc.boolean().map((v) => ({ v })), fc.constant({ v: 1 })),
    weightDecay: fc.oneof(fc.constant({ absent: true }), fc.constantFrom(0, 0.01).map((v) => ({ v })), fc.constant({ v: -1 })),
    betas: fc.oneof(fc.constant({ absent: true }), fc.constantFrom([0.9, 0.999], [0, 0.5]).map((v) => ({ v })), fc.constantFrom([1, 0.9], [0.9], [0.9, NaN], '0.9').map((v) => ({ v }))),
    eps: fc.oneof(fc.constant({ absent: true }), fc.constantFrom(1e-8, 0).map((v) => ({ v })), fc.constant({ v: -1 })),
    unknown: fc.oneof({ weight: 8, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    modules: fc.constantFrom('both', 'both', 'gru', 'head', 'empty', 'junk'),
    grads: fc.array(fc.record({
      op: fc.constantFrom('good', 'good', 'good', 'drop', 'unknown-module', 'unknown-param', 'short', 'f64', 'null', 'array', 'tensor', 'module-null', 'nan'),
      at: fc.nat(),
    }), { maxLength: 3 }),
    seed: fc.nat(),
  }),
  async run(s) {
    const isSGD = s.kind === 'SGD';
    const o = {};
    const names = isSGD ? ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov'] : ['lr', 'betas', 'eps', 'weightDecay'];
    for (const k of names) if (!s[k].absent) o[k] = 'v' in s[k] ? s[k].v : junkValue(s[k]);
    if (s.unknown) o.momentun = 0.9;
    const nonNeg = (v) => typeof v === 'number' && v >= 0 && Number.isFinite(v);
    let oValid = !s.unknown;
    if (isSGD) {
      oValid &&= o.lr !== undefined && nonNeg(o.lr) && (o.momentum === undefined || nonNeg(o.momentum)) &&
        (o.dampening === undefined || (typeof o.dampening === 'number' && Number.isFinite(o.dampening))) &&
        (o.weightDecay === undefined || nonNeg(o.weightDecay)) && (o.nesterov === undefined || typeof o.nesterov === 'boolean');
      if (oValid && o.nesterov && !((o.momentum ?? 0) > 0 && (o.dampening ?? 0) === 0)) oValid = false;
    } else {
      oValid &&= (o.lr === undefined || nonNeg(o.lr)) && (o.eps === undefined || nonNeg(o.eps)) && (o.weightDecay === undefined || nonNeg(o.weightDecay)) &&
        (o.betas === undefined || (Array.isArray(o.betas) && o.betas.length === 2 && o.betas.every((b) => typeof b === 'number' && b >= 0 && b < 1)));
    }
    count(2);
    const gru = new GRU({ inputSize: 2, hiddenSize: 3, seed: s.seed, backend: NATIVE });
    const head = new Linear({ inFeatures: 3, outFeatures: 2, seed: s.seed, backend: NATIVE });
    let modules;
    let mValid = true;
    switch (s.modules) {
      case 'gru': modules = { gru }; break;
      case 'head': modules = { head }; break;
      case 'empty': modules = {}; mValid = false; break;
      case 'junk': modules = { gru, head: { parameters: 3 } }; mValid = false; break;
      default: modules = { gru, head };
    }
    const Cls = { SGD, Adam, AdamW }[s.kind];
    const roots = [];
    if (!oValid) roots.push('options');
    if (!mValid) roots.push('modules');
    const opt = expectOutcome(await attempt(() => new Cls(modules, o)), roots.length ? { valid: false, roots } : { valid: true }, `new ${s.kind}(${Object.keys(modules)}, ${JSON.stringify(o, (k, v) => (typeof v === 'bigint' ? `${v}n` : typeof v === 'symbol' ? String(v) : v))})`);
    if (!opt) return;
    // Gradients: every parameter of every module, then the fuzzed changes.
    const make = (t, k) => ({ data: floats(t.data.length, s.seed + k, 'uniform'), shape: t.shape });
    const grads = {};
    for (const [name, m] of Object.entries(modules)) {
      grads[name] = {};
      Object.entries(m.parameters()).forEach(([p, t], k) => (grads[name][p] = make(t, k)));
    }
    const dataOf = (g) => (g instanceof Float32Array || ArrayBuffer.isView(g) ? g : g?.data ?? []);
    for (const g of s.grads) {
      const mods = Object.keys(grads);
      const mod = mods[g.at % mods.length];
      const params = grads[mod] && typeof grads[mod] === 'object' ? Object.keys(grads[mod]) : [];
      const p = params.length ? params[g.at % params.length] : null;
      switch (g.op) {
        case 'drop': if (p) delete grads[mod][p]; break;
        case 'unknown-module': grads.decoder = {}; break;
        case 'unknown-param': if (grads[mod]) grads[mod].weight_ih_l9 = new Float32Array(1); break;
        case 'short': if (p) grads[mod][p] = { data: new Float32Array(Math.max(0, dataOf(grads[mod][p]).length - 1)), shape: [1] }; break;
        case 'f64': if (p) grads[mod][p] = Float64Array.from(dataOf(grads[mod][p])); break;
        case 'null': if (p) grads[mod][p] = null; break;
        case 'array': if (p) grads[mod][p] = Array.from(dataOf(grads[mod][p])); break;
        case 'tensor': if (p) grads[mod][p] = dataOf(grads[mod][p]); break; // a bare Float32Array is fine
        case 'module-null': grads[mod] = null; break;
        case 'nan': if (p && dataOf(grads[mod][p]).length) dataOf(grads[mod][p])[0] = NaN; break;
        default:
      }
    }
    // README (Training): gradients by module and parameter name, Tensors or Float32Arrays of the
    // parameter's size; a parameter without one is left alone.
    let gValid = true;
    for (const [name, mg] of Object.entries(grads)) {
      if (!modules[name] || mg === null || typeof mg !== 'object') { gValid = false; continue; }
      const ps = modules[name].parameters();
      for (const [pname, g] of Object.entries(mg)) {
        const data = g instanceof Float32Array ? g : g && g.data instanceof Float32Array ? g.data : null;
        if (!ps[pname] || !data || data.length !== ps[pname].data.length) gValid = false;
      }
    }
    const params = () => Object.fromEntries(Object.entries(modules).flatMap(([name, m]) => Object.entries(m.parameters()).map(([p, t]) => [`${name}.${p}`, Float32Array.from(t.data)])));
    const before = params();
    const r = await attempt(() => opt.step(grads));
    const what = `${s.kind}.step(${Object.entries(grads).map(([k, v]) => `${k}: ${show(v)}`).join(', ')})`;
    expectOutcome(r, gValid ? { valid: true } : { valid: false, roots: ['grads'] }, what);
    const after = params();
    if (!gValid) {
      for (const k of Object.keys(before)) expectBits(after[k], before[k], `${what}: ${k} after a failed step`);
      if (opt.steps !== 0) fail('wrong-result', `${what}: steps is ${opt.steps} after a failed step`);
      return;
    }
    // The reference: torch.optim's rules in float64 (state kept per parameter), two steps.
    const state = new Map();
    const reference = (p, g, key, t) => {
      const out = new Float32Array(p.length);
      const st = state.get(key) ?? { buf: null, m: new Float64Array(p.length), v: new Float64Array(p.length) };
      state.set(key, st);
      if (isSGD) {
        const mu = o.momentum ?? 0;
        const damp = o.dampening ?? 0;
        const wd = o.weightDecay ?? 0;
        for (let i = 0; i < p.length; i++) {
          let d = g[i] + wd * p[i];
          if (mu !== 0) {
            st.buf ??= new Float64Array(p.length);
            st.buf[i] = t === 1 ? d : mu * st.buf[i] + (1 - damp) * d;
            d = o.nesterov ? d + mu * st.buf[i] : st.buf[i];
          }
          out[i] = p[i] - o.lr * d;
        }
      } else {
        const [b1, b2] = o.betas ?? [0.9, 0.999];
        const lr = o.lr ?? 1e-3;
        const eps = o.eps ?? 1e-8;
        const wd = o.weightDecay ?? (s.kind === 'AdamW' ? 0.01 : 0);
        for (let i = 0; i < p.length; i++) {
          let pi = p[i];
          let gi = g[i];
          if (s.kind === 'AdamW') pi *= 1 - lr * wd;
          else gi += wd * pi;
          st.m[i] = b1 * st.m[i] + (1 - b1) * gi;
          st.v[i] = b2 * st.v[i] + (1 - b2) * gi * gi;
          out[i] = pi - ((lr / (1 - b1 ** t)) * st.m[i]) / (Math.sqrt(st.v[i]) / Math.sqrt(1 - b2 ** t) + eps);
        }
      }
      return out;
    };
    const gradOf = (key) => {
      const [mod, p] = key.split('.');
      const g = grads[mod]?.[p];
      return g ? (g instanceof Float32Array ? g : g.data) : null;
    };
    const expect1 = {};
    for (const [key, p] of Object.entries(before)) expect1[key] = gradOf(key) ? reference(p, gradOf(key), key, 1) : p;
    for (const key of Object.keys(before)) expectClose(after[key], expect1[key], 1e-5, `${what}: ${key} after step 1`);
    expectOutcome(await attempt(() => opt.step(grads)), { valid: true }, `${what} (a second step)`);
    const after2 = params();
    for (const [key, p] of Object.entries(after)) {
      const want = gradOf(key) ? reference(p, gradOf(key), key, 2) : p;
      expectClose(after2[key], want, 1e-5, `${what}: ${key} after step 2`);
    }
    if (modules.gru) {
      // The native weights were repacked: the model computes with what its parameters now hold.
      count(2);
      const js = new GRU({ inputSize: 2, hiddenSize: 3, backend: 'js' });
      js.loadStateDict(gru.stateDict());
      const x = makeTensor([3, 2, 2], { seed: s.seed }).arg;
      const a = expectOutcome(await attempt(() => gru.forward(x)), { valid: true }, 'forward after the steps');
      const b = expectOutcome(await attempt(() => js.forward(x)), { valid: true }, 'js forward with the stepped weights');
      expectClose(a.output.data, b.output.data, 1e-4, 'output after optimizer steps, native vs js');
    }
  },
};

export default [linearProperty, linearOptions, crossEntropy, clipProperty, optimizerProperty];
