// Run by test/native-addon.test.ts in a child process: bad calls straight into the addon (design §5:
// "the addon checks again (it can be called directly) and never crashes the process"). A crash
// here is this process's exit code or signal, not the end of vitest.
//
//   node addon-bad-calls.mjs args            every bad argument, one JSON line per case
//   node addon-bad-calls.mjs edges           valid but extreme calls (empty sizes, buffers moved away)
//   node addon-bad-calls.mjs confused <case>
//                                            a model where a tape is expected or the reverse
//   node addon-bad-calls.mjs huge <case>      results too big to allocate
//   node --expose-gc addon-bad-calls.mjs reentrant <case>
//                                            one argument whose getter moves another argument's
//                                            buffer away and frees it while the addon converts them
//
// A line is { case, arg, outcome: 'threw' | 'rejected' | 'returned' | 'resolved', ctor, code,
// message, fastGru } for an error, or { case, outcome, ok, detail } for a call that must succeed.
import { loadNative } from '../../dist/backend/native.js';
import { FastGruError } from '../../dist/errors.js';

const native = loadNative();
if (!native.addon) {
  process.stdout.write(JSON.stringify({ case: 'load', outcome: 'unavailable', message: native.reason }) + '\n');
  process.exit(0);
}
const { addon } = native;
const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// ------------------------------------------------------------------------------------------------
// Fixtures
// ------------------------------------------------------------------------------------------------

function fill(n, k = 1) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (((i * 7919 + k * 104729) % 2003) / 2003 - 0.5) * 0.8; // fast for big n
  return out;
}

/** A detached Float32Array (or other typed array) of n elements. */
function detached(Type = Float32Array, n = 4) {
  const a = new Type(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  if (a.buffer.byteLength !== 0) throw new Error('the buffer did not detach');
  return a;
}
const moveAway = (typed) => structuredClone(typed.buffer, { transfer: [typed.buffer] });

const I = 3;
const H = 4;
function config(overrides = {}) {
  return { inputSize: I, hiddenSize: H, numLayers: 2, numDirections: 1, resetAfter: true, bias: true, ...overrides };
}
function weights(c = config(), k = 1) {
  const list = [];
  for (let l = 0; l < c.numLayers; l++) {
    for (let d = 0; d < c.numDirections; d++) {
      const input = l === 0 ? c.inputSize : c.numDirections * c.hiddenSize;
      const w = { wIh: fill(3 * c.hiddenSize * input, k + l), wHh: fill(3 * c.hiddenSize * c.hiddenSize, k + l + 0.5) };
      if (c.bias) {
        w.bIh = fill(3 * c.hiddenSize, k + 2);
        w.bHh = fill(3 * c.hiddenSize, k + 3);
      }
      list.push(w);
    }
  }
  return list;
}

const model = new addon.Model(config(), weights());
const other = new addon.Model(config(), weights());
const otherShape = new addon.Model(config({ hiddenSize: 5, numLayers: 1 }), weights(config({ hiddenSize: 5, numLayers: 1 })));
const T = 3;
const B = 2;
const LD = 2;
const good = () => ({
  x: fill(T * B * I),
  steps: T,
  batch: B,
  batchFirst: false,
  h0: fill(LD * B * H, 2),
  lengths: new Int32Array([3, 1]),
  masks: [fill(T * B * H, 3).map((v) => (v > 0 ? 2 : 0))],
  threads: 1,
});

/** model[method] with the good arguments, some replaced. */
function call(method, overrides = {}, m = model) {
  const a = { ...good(), ...overrides };
  switch (method) {
    case 'forward':
      return m.forward(a.x, a.steps, a.batch, a.batchFirst, a.h0, a.lengths, a.threads);
    case 'forwardAsync':
      return m.forwardAsync(a.x, a.steps, a.batch, a.batchFirst, a.h0, a.lengths, a.threads);
    case 'forwardTrain':
      return m.forwardTrain(a.x, a.steps, a.batch, a.batchFirst, a.h0, a.lengths, a.masks, a.threads);
    default:
      throw new Error(`unknown method ${method}`);
  }
}

function errorFields(e) {
  return {
    ctor: e?.constructor?.name ?? typeof e,
    code: e?.code,
    message: String(e?.message ?? e),
    fastGru: e instanceof FastGruError,
    isError: e instanceof Error,
  };
}

/** Runs one bad call: prints how it failed (or that it did not). */
async function bad(name, arg, fn) {
  let result;
  try {
    result = fn();
  } catch (e) {
    print({ case: name, arg, outcome: 'threw', ...errorFields(e) });
    return;
  }
  if (result instanceof Promise) {
    try {
      await result;
      print({ case: name, arg, outcome: 'resolved' });
    } catch (e) {
      print({ case: name, arg, outcome: 'rejected', ...errorFields(e) });
    }
    return;
  }
  print({ case: name, arg, outcome: 'returned' });
}

/** Runs one call that must succeed; check returns [ok, detail]. */
async function must(name, fn, check) {
  try {
    const r = await fn();
    const [ok, detail] = check(r);
    print({ case: name, outcome: 'returned', ok, detail });
  } catch (e) {
    print({ case: name, outcome: 'threw', ok: false, ...errorFields(e) });
  }
}

const bits = (a) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
function sameBits(a, b) {
  if (a.length !== b.length) return false;
  const p = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const q = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < p.length; i++) if (p[i] !== q[i]) return false;
  return true;
}

// ------------------------------------------------------------------------------------------------
// Bad arguments
// ------------------------------------------------------------------------------------------------

async function args() {
  // Model(config, weights)
  const ctor = (c, w) => () => new addon.Model(c, w);
  await bad('Model: config a number', 'config', ctor(5, weights()));
  await bad('Model: config null', 'config', ctor(null, weights()));
  await bad('Model: config missing', 'config', () => new addon.Model());
  for (const [key, value] of [
    ['inputSize', '3'], ['inputSize', NaN], ['inputSize', 0], ['inputSize', -3], ['inputSize', 1.5], ['inputSize', 2 ** 31],
    ['inputSize', undefined], ['hiddenSize', '4'], ['hiddenSize', 0], ['hiddenSize', Infinity], ['numLayers', 0],
    ['numLayers', '2'], ['numLayers', 2.5], ['numDirections', 3], ['numDirections', 0], ['numDirections', true],
    ['resetAfter', 1], ['resetAfter', 'true'], ['bias', 0], ['bias', undefined],
  ]) {
    await bad(`Model: config.${key} = ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`, `config.${key}`,
      ctor(config({ [key]: value }), weights()));
  }
  await bad('Model: sizes whose weights overflow (inputSize 2^30, hiddenSize 2^30)', 'hiddenSize',
    ctor(config({ inputSize: 2 ** 30, hiddenSize: 2 ** 30 }), []));
  await bad('Model: weights a number', 'weights', ctor(config(), 5));
  await bad('Model: weights an object', 'weights', ctor(config(), { 0: weights()[0] }));
  await bad('Model: weights too few', 'weights', ctor(config(), weights().slice(1)));
  await bad('Model: weights too many', 'weights', ctor(config(), [...weights(), weights()[0]]));
  await bad('Model: weights[1] a string', 'weights[1]', ctor(config(), [weights()[0], 'w']));
  await bad('Model: weights[0] null', 'weights[0]', ctor(config(), [null, weights()[1]]));
  for (const key of ['wIh', 'wHh', 'bIh', 'bHh']) {
    const w = weights();
    const n = w[0][key].length;
    const variants = [
      ['missing', undefined], ['a Float64Array', new Float64Array(n)], ['a plain array', Array.from(w[0][key])],
      ['too short', new Float32Array(n - 1)], ['too long', new Float32Array(n + 1)], ['detached', detached(Float32Array, n)],
      ['a string', 'weights'],
    ];
    for (const [what, value] of variants) {
      const list = weights();
      list[0] = { ...list[0], [key]: value };
      await bad(`Model: weights[0].${key} ${what}`, `weights[0].${key}`, ctor(config(), list));
    }
  }
  {
    const list = weights();
    list[1] = { ...list[1], wIh: new Float32Array(3 * H * I) }; // layer 1 takes D*H inputs, not I
    await bad('Model: weights[1].wIh shaped for layer 0', 'weights[1].wIh', ctor(config(), list));
  }

  // forward / forwardAsync / forwardTrain: the arguments they share
  for (const method of ['forward', 'forwardAsync', 'forwardTrain']) {
    const c = (name, arg, overrides) => bad(`${method}: ${name}`, arg, () => call(method, overrides));
    await c('x a string', 'x', { x: '1,2,3' });
    await c('x a plain array', 'x', { x: Array.from(fill(T * B * I)) });
    await c('x a Float64Array', 'x', { x: new Float64Array(T * B * I) });
    await c('x an Int32Array', 'x', { x: new Int32Array(T * B * I) });
    await c('x too short', 'x', { x: new Float32Array(T * B * I - 1) });
    await c('x too long', 'x', { x: new Float32Array(T * B * I + 1) });
    await c('x detached', 'x', { x: detached(Float32Array, T * B * I) });
    await c('x null', 'x', { x: null });
    await c('steps a string', 'steps', { steps: '3' });
    await c('steps NaN', 'steps', { steps: NaN });
    await c('steps negative', 'steps', { steps: -1 });
    await c('steps 1.5', 'steps', { steps: 1.5 });
    await c('steps Infinity', 'steps', { steps: Infinity });
    await c('steps undefined', 'steps', { steps: undefined });
    await c('steps a BigInt', 'steps', { steps: 3n });
    await c('steps 2^53', 'steps', { steps: 2 ** 53 });
    await c('batch a string', 'batch', { batch: '2' });
    await c('batch negative', 'batch', { batch: -2 });
    await c('batch NaN', 'batch', { batch: NaN });
    await c('batch 0.5', 'batch', { batch: 0.5 });
    // steps * batch * inputSize beyond 2^53 and beyond 2^64: named as x's size, with steps and batch
    await c('steps*batch*inputSize > 2^53', 'x', { steps: 2 ** 26, batch: 2 ** 26, lengths: null });
    await c('steps*batch*inputSize > 2^64', 'x', { steps: 2 ** 40, batch: 2 ** 40, lengths: null });
    await c('steps*batch*inputSize > 2^64 (one factor)', 'x', { steps: 2 ** 40, batch: 2 ** 30, lengths: null });
    await c('batchFirst a number', 'batchFirst', { batchFirst: 1 });
    await c('batchFirst a string', 'batchFirst', { batchFirst: 'false' });
    await c('batchFirst undefined', 'batchFirst', { batchFirst: undefined });
    await c('h0 a Float64Array', 'h0', { h0: new Float64Array(LD * B * H) });
    await c('h0 too short', 'h0', { h0: new Float32Array(LD * B * H - 1) });
    await c('h0 detached', 'h0', { h0: detached(Float32Array, LD * B * H) });
    await c('h0 a plain array', 'h0', { h0: Array.from(fill(LD * B * H)) });
    await c('h0 a number', 'h0', { h0: 0 });
    await c('lengths a plain array', 'lengths', { lengths: [3, 1] });
    await c('lengths a Float64Array', 'lengths', { lengths: new Float64Array([3, 1]) });
    await c('lengths a Uint32Array', 'lengths', { lengths: new Uint32Array([3, 1]) });
    await c('lengths too few', 'lengths', { lengths: new Int32Array([3]) });
    await c('lengths too many', 'lengths', { lengths: new Int32Array([3, 1, 2]) });
    await c('lengths[1] above steps', 'lengths[1]', { lengths: new Int32Array([3, 4]) });
    await c('lengths[0] negative', 'lengths[0]', { lengths: new Int32Array([-1, 1]) });
    await c('lengths[0] INT32_MIN', 'lengths[0]', { lengths: new Int32Array([-(2 ** 31), 1]) });
    await c('lengths detached', 'lengths', { lengths: detached(Int32Array, B) });
    const threadsArg = 'threads';
    await c('threads 0', threadsArg, { threads: 0 });
    await c('threads 2000', threadsArg, { threads: 2000 });
    await c('threads 1025', threadsArg, { threads: 1025 });
    await c('threads 1.5', threadsArg, { threads: 1.5 });
    await c('threads -1', threadsArg, { threads: -1 });
    await c('threads NaN', threadsArg, { threads: NaN });
    await c('threads a string', threadsArg, { threads: '2' });
    await c('threads undefined', threadsArg, { threads: undefined });
  }
  // forwardTrain's dropout masks (the model has 2 layers: one mask)
  for (const [what, value, arg] of [
    ['an object', { 0: good().masks[0] }, 'dropoutMasks'], ['a Float32Array', good().masks[0], 'dropoutMasks'],
    ['empty', [], 'dropoutMasks'], ['too many', [good().masks[0], good().masks[0]], 'dropoutMasks'],
    ['[0] a Float64Array', [new Float64Array(T * B * H)], 'dropoutMasks[0]'], ['[0] too short', [new Float32Array(T * B * H - 1)], 'dropoutMasks[0]'],
    ['[0] detached', [detached(Float32Array, T * B * H)], 'dropoutMasks[0]'], ['[0] null', [null], 'dropoutMasks[0]'],
    ['a string', 'masks', 'dropoutMasks'],
  ]) {
    await bad(`forwardTrain: dropoutMasks ${what}`, arg, () => call('forwardTrain', { masks: value }));
  }

  // backward(tape, dOutput, dHidden, threads)
  const run = call('forwardTrain');
  const dOut = fill(T * B * H, 5);
  const dHid = fill(LD * B * H, 6);
  const bw = (name, arg, tape, dO, dH, threads) => bad(`backward: ${name}`, arg, () => model.backward(tape, dO, dH, threads));
  await bw('tape an object', 'tape', { bytes: 10 }, dOut, dHid, 1);
  await bw('tape null', 'tape', null, dOut, dHid, 1);
  await bw('tape undefined', 'tape', undefined, dOut, dHid, 1);
  await bw('tape a number', 'tape', 5, dOut, dHid, 1);
  await bw('tape the model', 'tape', model, dOut, dHid, 1);
  await bw('tape a forwardTrain result', 'tape', run, dOut, dHid, 1);
  await bw('tape made by new Tape()', 'tape', new addon.Tape(), dOut, dHid, 1);
  await bw('tape an object whose prototype is Tape\'s', 'tape', Object.create(addon.Tape.prototype), dOut, dHid, 1);
  await bw('tape another model whose prototype was set to Tape\'s', 'tape',
    Object.setPrototypeOf(new addon.Model(config(), weights()), addon.Tape.prototype), dOut, dHid, 1);
  await bw('tape of another model of the same shape', 'tape', call('forwardTrain', {}, other).tape, dOut, dHid, 1);
  await bw('tape of another model of another shape', 'tape',
    otherShape.forwardTrain(fill(T * B * I), T, B, false, null, null, null, 1).tape, dOut, dHid, 1);
  await bw('dOutput a Float64Array', 'dOutput', run.tape, new Float64Array(T * B * H), dHid, 1);
  await bw('dOutput too short', 'dOutput', run.tape, new Float32Array(T * B * H - 1), dHid, 1);
  await bw('dOutput detached', 'dOutput', run.tape, detached(Float32Array, T * B * H), dHid, 1);
  await bw('dOutput a string', 'dOutput', run.tape, 'd', dHid, 1);
  await bw('dHidden a Float64Array', 'dHidden', run.tape, dOut, new Float64Array(LD * B * H), 1);
  await bw('dHidden too long', 'dHidden', run.tape, dOut, new Float32Array(LD * B * H + 1), 1);
  await bw('dHidden detached', 'dHidden', run.tape, dOut, detached(Float32Array, LD * B * H), 1);
  await bw('threads 0', 'threads', run.tape, dOut, dHid, 0);
  await bw('threads 2000', 'threads', run.tape, dOut, dHid, 2000);
  await bw('threads 1.5', 'threads', run.tape, dOut, dHid, 1.5);
  await bw('threads a string', 'threads', run.tape, dOut, dHid, '1');

  // Methods called on objects that are not models (V8 checks the receiver of a class method)
  await bad('Model.prototype.forward on a plain object', 'this', () => addon.Model.prototype.forward.call({}, ...Object.values(good()).slice(0, 7)));
  await bad('Model.prototype.backward on a tape', 'this', () => addon.Model.prototype.backward.call(run.tape, run.tape, dOut, dHid, 1));
  await bad('Model.prototype.isa on a plain object', 'this', () => Object.getOwnPropertyDescriptor(addon.Model.prototype, 'isa').get.call({}));
  await bad('Model without new', 'Model', () => addon.Model(config(), weights()));
  await bad('Tape without new', 'Tape', () => addon.Tape());

  // fmaPeak(threads, seconds)
  await bad('fmaPeak: threads a string', 'threads', () => addon.fmaPeak('1', 0.01));
  await bad('fmaPeak: threads 0', 'threads', () => addon.fmaPeak(0, 0.01));
  await bad('fmaPeak: threads 2000', 'threads', () => addon.fmaPeak(2000, 0.01));
  await bad('fmaPeak: seconds 0', 'seconds', () => addon.fmaPeak(1, 0));
  await bad('fmaPeak: seconds NaN', 'seconds', () => addon.fmaPeak(1, NaN));
  await bad('fmaPeak: seconds 61', 'seconds', () => addon.fmaPeak(1, 61));
  await bad('fmaPeak: seconds a string', 'seconds', () => addon.fmaPeak(1, '0.01'));

  // init(makeError) with a non-function: refused, and the error classes handed over before stay
  for (const [what, value] of [['a number', 5], ['a string', 'makeError'], ['null', null], ['an object', {}], ['undefined', undefined]]) {
    await bad(`init: makeError ${what}`, 'makeError', () => addon.init(value));
  }
  await bad('forward after the bad init calls: still the exported classes', 'steps', () => call('forward', { steps: -1 }));
  print({ case: 'end' });
}

// ------------------------------------------------------------------------------------------------
// Valid but extreme calls
// ------------------------------------------------------------------------------------------------

async function edges() {
  const g = good();
  const reference = model.forward(g.x, g.steps, g.batch, false, g.h0, g.lengths, 1);

  await must('forwardAsync: x, h0 and lengths moved away right after the call', async () => {
    const a = good();
    const pending = model.forwardAsync(a.x, a.steps, a.batch, false, a.h0, a.lengths, 1, null);
    moveAway(a.x);
    moveAway(a.h0);
    moveAway(a.lengths);
    return pending;
  }, (r) => [sameBits(r.output, reference.output) && sameBits(r.hidden, reference.hidden), 'the copied inputs']);

  await must('forwardAsync: abort() on a call still queued behind a busy thread pool rejects with ERR_ABORTED', async () => {
    // libuv runs UV_THREADPOOL_SIZE jobs at once (4 by default): twice as many long ones keep the
    // queued call from starting. Long means tens of ms each (2,000 steps of H = 256, 1.6 GFLOP),
    // not steps of the tiny model (4,000 of them took well under a millisecond): a main thread
    // descheduled for that long by other work on the machine saw them all finish, and the queued
    // call ran before its abort.
    const a = good();
    const big = config({ inputSize: 256, hiddenSize: 256, numLayers: 1 });
    const busyModel = new addon.Model(big, weights(big));
    const longX = new Float32Array(2000 * 256).fill(0.1);
    const jobs = 2 * (Number(process.env.UV_THREADPOOL_SIZE) || 4);
    const busy = Array.from({ length: jobs }, () => busyModel.forwardAsync(longX, 2000, 1, false, null, null, 1));
    const pending = model.forwardAsync(a.x, a.steps, a.batch, false, a.h0, a.lengths, 1);
    pending.abort();
    const outcome = await pending.then(() => 'resolved', (e) => e);
    await Promise.all(busy);
    return outcome;
  }, (e) => [e instanceof FastGruError && e.code === 'ERR_ABORTED', String(e?.message ?? e)]);

  await must('forwardAsync: abort() right after the call either skips the work or lets it finish correctly', async () => {
    const a = good();
    const pending = model.forwardAsync(a.x, a.steps, a.batch, false, a.h0, a.lengths, 1);
    pending.abort();
    return pending.then((r) => r, (e) => e);
  }, (r) => (r instanceof Error ? [r.code === 'ERR_ABORTED', `rejected: ${r.code} ${r.message}`]
    : [sameBits(r.output, reference.output), 'resolved']));

  await must('forwardAsync: abort() after the promise settled changes nothing', async () => {
    const a = good();
    const pending = model.forwardAsync(a.x, a.steps, a.batch, false, a.h0, a.lengths, 2);
    const r = await pending;
    pending.abort();
    return r;
  }, (r) => [sameBits(r.output, reference.output), 'resolved']);

  await must('forward: x a view at an offset into a larger buffer', () => {
    const backing = new Float32Array(T * B * I + 7);
    backing.set(good().x, 5);
    return model.forward(backing.subarray(5, 5 + T * B * I), T, B, false, g.h0, g.lengths, 1);
  }, (r) => [sameBits(r.output, reference.output), 'subarray']);

  await must('forwardTrain then backward with x moved away in between (the tape keeps a copy)', () => {
    const a = good();
    const r1 = model.forwardTrain(a.x, a.steps, a.batch, false, a.h0, a.lengths, a.masks, 1);
    const g1 = model.backward(r1.tape, fill(T * B * H, 5), fill(LD * B * H, 6), 1);
    const b = good();
    const r2 = model.forwardTrain(b.x, b.steps, b.batch, false, b.h0, b.lengths, b.masks, 1);
    moveAway(b.x);
    moveAway(b.h0);
    moveAway(b.masks[0]);
    const g2 = model.backward(r2.tape, fill(T * B * H, 5), fill(LD * B * H, 6), 1);
    return [g1, g2];
  }, ([g1, g2]) => [sameBits(g1.dInput, g2.dInput) && g1.grads.every((w, k) => sameBits(w.wIh, g2.grads[k].wIh)), 'gradients']);

  await must('backward after the model object is gone from JS (the tape keeps the model)', () => {
    let m = new addon.Model(config(), weights());
    const r = m.forwardTrain(g.x, T, B, false, null, null, null, 1);
    const backward = m.backward.bind(m);
    m = null;
    return backward(r.tape, null, null, 1);
  }, (r) => [r.dInput.length === T * B * I && r.dInput.every((v) => v === 0), 'zeros for zero upstream gradients']);

  await must('forward: steps 0', () => model.forward(new Float32Array(0), 0, B, false, g.h0, null, 1),
    (r) => [r.output.length === 0 && sameBits(r.hidden, g.h0), `output ${r.output.length}, hidden = h0`]);
  await must('forward: batch 0', () => model.forward(new Float32Array(0), T, 0, false, null, new Int32Array(0), 1),
    (r) => [r.output.length === 0 && r.hidden.length === 0, 'empty']);
  await must('forward: every length 0', () => model.forward(g.x, T, B, false, g.h0, new Int32Array([0, 0]), 1),
    (r) => [r.output.every((v) => v === 0) && sameBits(r.hidden, g.h0), 'zeros, hidden = h0']);
  await must('forwardTrain + backward: steps 0', () => {
    const r = model.forwardTrain(new Float32Array(0), 0, B, false, g.h0, null, [new Float32Array(0)], 2);
    return model.backward(r.tape, new Float32Array(0), fill(LD * B * H, 6), 2);
  }, (r) => [r.dInput.length === 0 && sameBits(r.dH0, fill(LD * B * H, 6)) && r.grads.every((w) => w.wIh.every((v) => v === 0)),
    'dH0 = dHidden, zero parameter gradients']);
  await must('forwardAsync: batch 0', () => model.forwardAsync(new Float32Array(0), T, 0, true, null, null, 3, null),
    (r) => [r.output.length === 0 && r.hidden.length === 0, 'empty']);
  await must('fmaPeak(1, 0.01) is a positive number', () => addon.fmaPeak(1, 0.01), (r) => [typeof r === 'number' && r > 0, String(r)]);
  print({ case: 'end' });
}

// ------------------------------------------------------------------------------------------------
// Reentrancy: a getter that moves another argument's buffer away and frees it
// ------------------------------------------------------------------------------------------------

/** Detaches `typed` and collects the buffer it moved to, so its memory is freed. */
function moveAndFree(typed) {
  structuredClone(typed.buffer, { transfer: [typed.buffer] });
  for (let i = 0; i < 3; i++) globalThis.gc();
}

// ------------------------------------------------------------------------------------------------
// Objects of one wrapped class passed where the other is expected (each in its own process)
// ------------------------------------------------------------------------------------------------

async function confused(which) {
  const run = call('forwardTrain');
  if (which === 'bytes-on-model') {
    await bad('Tape.prototype.bytes read on a model', 'this', () => Object.getOwnPropertyDescriptor(addon.Tape.prototype, 'bytes').get.call(model));
  } else if (which === 'isa-on-tape') {
    await bad('Model.prototype.isa read on a tape', 'this', () => Object.getOwnPropertyDescriptor(addon.Model.prototype, 'isa').get.call(run.tape));
  } else if (which === 'forward-on-tape') {
    const x = new Float32Array(2 * 1 * 3);
    await bad('Model.prototype.forward called on a tape', 'this', () => addon.Model.prototype.forward.call(run.tape, x, 2, 1, false, null, null, 1));
  } else if (which === 'self-as-tape') {
    // The model itself, dressed as a tape, passed to its own backward.
    const backward = addon.Model.prototype.backward;
    const m = new addon.Model(config(), weights());
    Object.setPrototypeOf(m, addon.Tape.prototype);
    await bad('backward: the model itself, its prototype set to Tape\'s, as the tape', 'tape', () => backward.call(m, m, null, null, 1));
  } else {
    throw new Error(`unknown confused case ${which}`);
  }
  print({ case: 'end' });
}

// ------------------------------------------------------------------------------------------------
// Results too big to allocate (each in its own process): an error, not V8's fatal out-of-memory
// ------------------------------------------------------------------------------------------------

async function huge(which) {
  if (which === 'hidden') {
    // steps 0: x is empty, but hidden is [L*D, B, H] = 2^39 floats (2 TiB).
    await bad('forward: steps 0, batch 2^36: hidden of 2^39 floats', 'batch', () => model.forward(new Float32Array(0), 0, 2 ** 36, false, null, null, 1));
  } else if (which === 'output') {
    // 64 MiB of x (I = 1), 2^35 floats (128 GiB) of output (D*H = 2048).
    const c = config({ inputSize: 1, hiddenSize: 1024, numLayers: 1, numDirections: 2, bias: false });
    const m = new addon.Model(c, weights(c));
    await bad('forward: output of 2^35 floats', 'steps', () => m.forward(new Float32Array(2 ** 24), 2 ** 24, 1, false, null, null, 1));
  } else if (which === 'facade-hidden') {
    const { GRU } = await import('../../dist/index.js');
    const gru = new GRU({ inputSize: 3, hiddenSize: 4, backend: 'native' });
    await bad('GRU.forward: x of shape [0, 2^36, 3]: hidden of 2^38 floats', 'x', () => gru.forward({ data: new Float32Array(0), shape: [0, 2 ** 36, 3] }));
  } else {
    throw new Error(`unknown huge case ${which}`);
  }
  print({ case: 'end' });
}

async function reentrant(which) {
  if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');
  // Big enough that the freed memory goes back to the OS (a read of it faults).
  const bigI = 4096;
  const bigH = 1024;
  const c = config({ inputSize: bigI, hiddenSize: bigH, numLayers: 1 });
  const plain = () => weights(c, 1);
  const x1 = fill(bigI, 9);
  if (which === 'weights-getter') {
    // weights[0].wHh's getter frees weights[0].wIh, which the addon has already read.
    const expected = new addon.Model(c, plain()).forward(x1, 1, 1, false, null, null, 1).output;
    const w = plain()[0];
    const item = { bIh: w.bIh, bHh: w.bHh };
    Object.defineProperty(item, 'wIh', { enumerable: true, value: w.wIh });
    Object.defineProperty(item, 'wHh', { enumerable: true, get: () => (moveAndFree(w.wIh), w.wHh) });
    await must('Model: a getter of weights[0].wHh frees weights[0].wIh', () => new addon.Model(c, [item]).forward(x1, 1, 1, false, null, null, 1),
      (r) => [sameBits(r.output, expected), 'the model must use the values wIh held when it was passed (or refuse the detached wIh)']);
  } else if (which === 'weights-index-getter') {
    // weights[1]'s getter (an array index) frees weights[0].wIh.
    const c2 = config({ inputSize: bigI, hiddenSize: 64, numLayers: 2 });
    const expected = new addon.Model(c2, weights(c2)).forward(x1, 1, 1, false, null, null, 1).output;
    const list = weights(c2);
    const second = list[1];
    const first = list[0];
    const arr = [first];
    Object.defineProperty(arr, 1, { enumerable: true, get: () => (moveAndFree(first.wIh), second) });
    await must('Model: a getter of weights[1] frees weights[0].wIh', () => new addon.Model(c2, arr).forward(x1, 1, 1, false, null, null, 1),
      (r) => [sameBits(r.output, expected), 'the model must use the values wIh held when it was passed (or refuse the detached wIh)']);
  } else if (which === 'masks-getter') {
    // forwardTrain: dropoutMasks[0]'s getter frees x, which the addon has already read.
    const c3 = config({ inputSize: 1024, hiddenSize: 4, numLayers: 2, bias: false });
    const m = new addon.Model(c3, weights(c3));
    const bigT = 4096;
    const mask = new Float32Array(bigT * 4).fill(1);
    const expected = m.forwardTrain(fill(bigT * 1024, 4), bigT, 1, false, null, null, [mask], 1).output;
    const x = fill(bigT * 1024, 4);
    const masks = [];
    Object.defineProperty(masks, 0, { enumerable: true, get: () => (moveAndFree(x), mask) });
    await must('forwardTrain: a getter of dropoutMasks[0] frees x', () => m.forwardTrain(x, bigT, 1, false, null, null, masks, 1),
      (r) => [sameBits(r.output, expected), 'forwardTrain must use the values x held when it was passed (or refuse the detached x)']);
  } else if (which === 'second-init') {
    // init() again, with an allocator that keeps what it hands out: were it taken, a model's packed
    // weights would be an array user code holds, and moving it away would free what forward reads.
    const expected = new addon.Model(c, plain()).forward(x1, 1, 1, false, null, null, 1).output;
    const kept = [];
    const keeping = (n) => {
      const a = new Float32Array(n);
      kept.push(a);
      return a;
    };
    let refusal = null;
    try {
      addon.init((code, message) => Object.assign(new Error(message), { code }), keeping);
    } catch (e) {
      refusal = e;
    }
    await bad('init: a second call with another allocator', 'init', () => {
      if (refusal) throw refusal;
    });
    await must('init: after a second call, models still get memory from the first allocator', () => {
      const m = new addon.Model(c, plain());
      for (const a of kept) moveAndFree(a);
      return m.forward(x1, 1, 1, false, null, null, 1).output;
    }, (r) => [kept.length === 0 && sameBits(r, expected), `${kept.length} arrays from the second allocator`]);
  } else if (which === 'masks-shrink') {
    // forwardTrain: dropoutMasks[0]'s getter empties the array the addon is walking. Eight layers:
    // seven masks expected, one read; the rest must be refused by name, not read past the list.
    const c8 = config({ numLayers: 8 });
    const m = new addon.Model(c8, weights(c8));
    const n = T * B * H;
    const masks = Array.from({ length: 7 }, (_, l) => fill(n, l).map((v) => (v > 0 ? 2 : 0)));
    const first = masks[0];
    Object.defineProperty(masks, 0, { enumerable: true, configurable: true, get: () => ((masks.length = 0), first) });
    await bad('forwardTrain: a getter of dropoutMasks[0] empties dropoutMasks', 'dropoutMasks[1]',
      () => m.forwardTrain(good().x, T, B, false, null, null, masks, 1));
  } else if (which === 'grads-setter') {
    // backward: a setter on Object.prototype for the key the gradients are stored under receives
    // each fresh gradient buffer, moves it away and frees it; the addon must not write into it.
    const c4 = config({ inputSize: bigI, hiddenSize: bigH, numLayers: 1 });
    const m = new addon.Model(c4, weights(c4));
    const expected = m.backward(m.forwardTrain(x1, 1, 1, false, null, null, null, 1).tape, fill(bigH, 5), null, 1);
    const run = m.forwardTrain(x1, 1, 1, false, null, null, null, 1);
    Object.defineProperty(Object.prototype, 'wIh', {
      configurable: true,
      set(v) {
        moveAndFree(v);
        Object.defineProperty(this, 'wIh', { value: v, enumerable: true, writable: true, configurable: true });
      },
    });
    await must('backward: an Object.prototype setter for wIh frees each gradient as it is stored',
      () => m.backward(run.tape, fill(bigH, 5), null, 1),
      (r) => [r.grads[0].wIh.length === expected.grads[0].wIh.length && sameBits(r.grads[0].wIh, expected.grads[0].wIh) &&
        sameBits(r.dInput, expected.dInput), 'gradients of their full length, the same bits as without the setter']);
    delete Object.prototype.wIh;
  } else if (which === 'tape-setter') {
    // forwardTrain: a setter on Array.prototype index 0 sees whatever the addon stores at index 0 of
    // a fresh array; it must never receive the tape's memory (moving that away would free what
    // backward reads).
    // 512 steps: the tape's copy of x alone is 8 MB, memory that goes back to the OS when freed.
    const c5 = config({ inputSize: bigI, hiddenSize: 64, numLayers: 1 });
    const m = new addon.Model(c5, weights(c5));
    const steps = 512;
    const xs = fill(steps * bigI, 9);
    const dOut = fill(steps * 64, 5);
    const expected = m.backward(m.forwardTrain(xs, steps, 1, false, null, null, null, 1).tape, dOut, null, 1);
    Object.defineProperty(Array.prototype, 0, {
      configurable: true,
      set(v) {
        if (v instanceof Float32Array && v.buffer.byteLength > 0) moveAndFree(v);
        Object.defineProperty(this, 0, { value: v, enumerable: true, writable: true, configurable: true });
      },
    });
    const run = m.forwardTrain(xs, steps, 1, false, null, null, null, 1);
    delete Array.prototype[0];
    await must('forwardTrain: an Array.prototype[0] setter frees what is stored at index 0; backward after it',
      () => m.backward(run.tape, dOut, null, 1),
      (r) => [sameBits(r.dInput, expected.dInput) && sameBits(r.grads[0].wHh, expected.grads[0].wHh), 'the same bits as without the setter']);
  } else {
    throw new Error(`unknown reentrant case ${which}`);
  }
  print({ case: 'end' });
}

// ------------------------------------------------------------------------------------------------
// Lengths in a SharedArrayBuffer that another thread changes during the calls
// ------------------------------------------------------------------------------------------------

// The worker sets lengths[k] to each of `values` in turn, holding each for up to a millisecond
// (about the time between a call's check and its use), and counts the changes in sync[1] until
// sync[0] is set. The caller waits for a change before each call, so that calls meet every value
// and the changes between, however busy the machine. Every call must then either give the result
// of the valid lengths, bit for bit, or refuse lengths[k] by name: never use a value it did not
// check. (forwardAsync was safe before: the core checks again the copy its worker made.)
const FLIPPER = `
const { workerData } = require('node:worker_threads');
const { lengths, sync, k, values } = workerData;
for (let i = 0; Atomics.load(sync, 0) === 0; i++) {
  lengths[k] = values[i % values.length];
  Atomics.add(sync, 1, 1);
  Atomics.notify(sync, 1);
  const until = performance.now() + Math.random();
  while (performance.now() < until);
}
`;

async function sharedLengths(which) {
  const { Worker } = await import('node:worker_threads');
  // Many sequences: checking them all, then sorting them, takes long enough that the worker's
  // writes land in between. lengths[0] is checked first, and a changed value is one past steps by
  // thousands (read as such, x is read far past its end) or negative.
  const bigT = 2;
  const bigB = 1 << 16;
  // One layer, one direction: the calls stay cheap (under ASan too); the schedule is the same.
  const c = config({ numLayers: 1 });
  const m = new addon.Model(c, weights(c));
  const x = fill(bigT * bigB * I, 7);
  const valid = Int32Array.from({ length: bigB }, (_, i) => 1 + (i % bigT));
  const k = 0;
  const run = (lengths) => {
    if (which === 'forward') return m.forward(x, bigT, bigB, false, null, lengths, 1);
    if (which === 'forwardTrain') return m.forwardTrain(x, bigT, bigB, false, null, lengths, null, 1);
    return m.forwardAsync(x, bigT, bigB, false, null, lengths, 1);
  };
  const reference = await run(valid);
  const lengths = new Int32Array(new SharedArrayBuffer(4 * bigB));
  lengths.set(valid);
  const sync = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(FLIPPER, { eval: true, workerData: { lengths, sync, k, values: [valid[k], bigT + 5000, valid[k], -5000] } });
  // The next change (a stalled worker only makes the wait end at its timeout).
  const nextChange = () => Atomics.wait(sync, 1, Atomics.load(sync, 1), 100);
  let results = 0;
  let refused = 0;
  let wrong = null;
  const check = (r) => {
    if (sameBits(r.output, reference.output) && sameBits(r.hidden, reference.hidden)) results++;
    else wrong ??= 'a result that differs from the valid lengths\' result';
  };
  const refusedOk = (e) => {
    if (e instanceof FastGruError && e.code === 'ERR_ARGUMENT' && String(e.message).startsWith(`lengths[${k}]: expected `)) refused++;
    else wrong ??= `${e?.constructor?.name} ${e?.code} ${e?.message}`;
  };
  const rounds = which === 'forwardAsync' ? 25 : 100;
  for (let i = 0; i < rounds; i++) {
    if (which === 'forwardAsync') {
      const pending = [];
      for (let j = 0; j < 8; j++) {
        nextChange();
        try {
          pending.push(run(lengths).then(check, refusedOk));
        } catch (e) {
          refusedOk(e);
        }
      }
      await Promise.all(pending);
    } else {
      nextChange();
      try {
        check(run(lengths));
      } catch (e) {
        refusedOk(e);
      }
    }
  }
  Atomics.store(sync, 0, 1);
  await worker.terminate();
  print({ case: `${which}: lengths[${k}] flipped by a worker during the calls`, outcome: 'returned', ok: wrong === null,
    detail: wrong ?? `${results} results equal to the valid lengths' result, ${refused} refusals of lengths[${k}]` });
  print({ case: 'end' });
}

const mode = process.argv[2];
if (mode === 'args') await args();
else if (mode === 'edges') await edges();
else if (mode === 'reentrant') await reentrant(process.argv[3]);
else if (mode === 'confused') await confused(process.argv[3]);
else if (mode === 'huge') await huge(process.argv[3]);
else if (mode === 'shared-lengths') await sharedLengths(process.argv[3]);
else {
  process.stderr.write(`addon-bad-calls.mjs: expected args, edges or reentrant <case>, got ${mode}\n`);
  process.exit(2);
}
