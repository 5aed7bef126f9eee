// Properties of serving: batcher.run under concurrency (with bad requests, aborts, a full queue and
// close() mixed in) and streaming sessions (step, feed, state). The oracle is the README's promise:
// each request gets the bits of gru.forward on its sequence alone, and a session the bits of one
// forward over everything it was fed.
import fc from 'fast-check';
import { api, attempt, count, expectBits, expectOutcome, expectShape, fail, NATIVE, show, within } from './harness.mjs';
import { avoidedCall, BAD_TENSOR_KINDS, badTensor, gruConfigArb, gruOptions, junkArb, junkValue, makeTensor, readTensorLike } from './rules.mjs';

const { GRU } = api;

const requestArb = fc.record({
  T: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.constant(0) }),
  seed: fc.nat(),
  form: fc.constantFrom('tensor', 'tensor', 'nested'),
  h0: fc.constantFrom('omit', 'null', 'tensor', 'tensor', 'bad'),
  x: fc.constantFrom('good', 'good', 'good', 'good', 'bad', 'batched'),
  bad: fc.constantFrom(...BAD_TENSOR_KINDS),
  options: fc.constantFrom('omit', 'omit', 'null', 'signal', 'aborted', 'abort-later', 'junk-signal', 'unknown-key', 'array', 'number'),
  junk: fc.nat(),
});

/** One batcher request's arguments and what the rules say of them. */
function buildRequest(cfg, q) {
  const I = cfg.inputSize;
  const H = cfg.hiddenSize;
  const LD = cfg.numLayers * (cfg.bidirectional ? 2 : 1);
  const roots = new Set();
  let x;
  if (q.x === 'good') x = makeTensor([q.T, I], { form: q.T ? q.form : 'tensor', seed: q.seed }).arg;
  else if (q.x === 'batched') x = makeTensor([q.T, 1, I], { seed: q.seed }).arg;
  else x = badTensor(q.bad, [q.T, I], q.seed, q.junk);
  const xt = readTensorLike(x);
  if (!xt.ok || xt.shape.length !== 2 || xt.shape[1] !== I) roots.add('x');
  let h0;
  if (q.h0 === 'null') h0 = null;
  else if (q.h0 === 'tensor') h0 = makeTensor([LD, H], { seed: q.seed + 1 }).arg;
  else if (q.h0 === 'bad') {
    h0 = badTensor(q.bad, [LD, H], q.seed, q.junk);
    const ht = readTensorLike(h0);
    if (!ht.ok || ht.shape.length !== 2 || ht.shape[0] !== LD || ht.shape[1] !== H) roots.add('h0');
  }
  let options;
  const ctl = {};
  switch (q.options) {
    case 'null': options = null; break;
    case 'signal': options = { signal: new AbortController().signal }; break;
    case 'aborted': options = { signal: AbortSignal.abort() }; ctl.aborted = true; break;
    case 'abort-later': {
      const c = new AbortController();
      options = { signal: c.signal };
      ctl.abortLater = c;
      break;
    }
    case 'junk-signal': options = { signal: junkValue(q.junk) }; if (options.signal !== undefined) roots.add('options'); break;
    case 'unknown-key': options = { signal: undefined, lengths: [q.T] }; roots.add('options'); break;
    case 'array': options = []; roots.add('options'); break;
    case 'number': options = 3; roots.add('options'); break;
    default:
  }
  const args = options !== undefined ? [x, h0, options] : q.h0 !== 'omit' ? [x, h0] : [x];
  return { args, roots: [...roots], ctl, x: xt.ok ? xt : null, h0: h0 && readTensorLike(h0).ok ? readTensorLike(h0).data : null };
}

const batcherRun = {
  id: 'serve.batcher',
  area: 'serve',
  title: 'batcher.run, many at once, with bad requests, aborts, a full queue and close(): each valid request gets the bits of gru.forward on its sequence alone; every other one a FastGruError of its own',
  arbitrary: fc.record({
    cfg: gruConfigArb,
    options: fc.record({
      maxBatch: fc.integer({ min: 1, max: 5 }),
      maxDelayMs: fc.constantFrom(0, 0, 1),
      maxQueue: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constant(4096)),
      maxInFlight: fc.integer({ min: 1, max: 2 }),
    }),
    requests: fc.array(requestArb, { minLength: 1, maxLength: 7 }),
    close: fc.option(fc.record({ at: fc.nat(), drain: fc.boolean() }), { freq: 3 }),
  }),
  async run({ cfg, options, requests, close }) {
    if (requests.some((q) => q.T === 0) && avoidedCall(0, 1, null)) return;
    count();
    const gru = new GRU(gruOptions({ ...cfg, batchFirst: false }, NATIVE));
    count();
    const batcher = gru.batcher(options);
    const built = requests.map((q) => buildRequest(cfg, q));
    const closeAt = close ? close.at % (requests.length + 1) : -1;
    let closed = null;
    const pending = [];
    built.forEach((b, k) => {
      if (k === closeAt) closed = batcher.close({ drain: close.drain });
      count();
      const p = batcher.run(...b.args);
      b.ctl.abortLater?.abort();
      pending.push({ p, b, k, afterClose: closed !== null });
    });
    if (closeAt === requests.length) closed = batcher.close({ drain: close.drain });
    const settled = await within(Promise.allSettled(pending.map((q) => q.p)), 'the batcher\'s requests');
    if (closed) await within(closed, 'batcher.close()');
    for (let k = 0; k < pending.length; k++) {
      const { b, afterClose } = pending[k];
      const s = settled[k];
      const what = `request ${k} run(${b.args.map(show).join(', ')})`;
      const outcome = s.status === 'fulfilled' ? { ok: true, value: s.value } : { ok: false, error: s.reason };
      if (b.roots.length) {
        expectOutcome(outcome, { valid: false, roots: b.roots }, what);
        continue;
      }
      if (!outcome.ok) {
        expectOutcome(outcome, { valid: false, roots: [] }, what);
        const code = outcome.error.code;
        const allowed = (code === 'ERR_ABORTED' && (b.ctl.aborted || b.ctl.abortLater)) ||
          (code === 'ERR_CLOSED' && (afterClose || (close && !close.drain))) ||
          (code === 'ERR_QUEUE_FULL' && options.maxQueue < requests.length);
        if (!allowed) fail('wrong-acceptance', `${what}: rejected with ${show(outcome.error)}`);
        continue;
      }
      if (b.ctl.aborted) fail('wrong-acceptance', `${what}: resolved although its signal was aborted before the call`);
      if (afterClose) fail('wrong-acceptance', `${what}: resolved although it came after close()`);
      const r = outcome.value;
      const D = cfg.bidirectional ? 2 : 1;
      expectShape(r.output.shape, [b.x.shape[0], D * cfg.hiddenSize], `${what}: output`);
      expectShape(r.hidden.shape, [cfg.numLayers * D, cfg.hiddenSize], `${what}: hidden`);
      const alone = expectOutcome(await attempt(() => gru.forward({ data: b.x.data, shape: b.x.shape }, b.h0 ? { data: b.h0, shape: [cfg.numLayers * D, cfg.hiddenSize] } : null)),
        { valid: true }, `${what}: gru.forward alone`);
      expectBits(r.output.data, alone.output.data, `${what}: output vs gru.forward alone`);
      expectBits(r.hidden.data, alone.hidden.data, `${what}: hidden vs gru.forward alone`);
    }
    if (!closed) await within(batcher.close(), 'batcher.close()');
    count();
    const after = await attempt(() => batcher.run(makeTensor([1, cfg.inputSize]).arg));
    if (after.ok || after.error?.code !== 'ERR_CLOSED') fail('wrong-acceptance', `run after close(): ${after.ok ? 'resolved' : show(after.error)}, expected ERR_CLOSED`);
    const st = batcher.stats();
    if (st.queued !== 0 || st.inFlight !== 0) fail('wrong-result', `stats after close: queued ${st.queued}, inFlight ${st.inFlight}`);
    // Nothing lost: every accepted request resolved, failed, was aborted or was rejected by close.
    if (st.requests !== st.completed + st.failed + st.aborted + st.closed) {
      fail('wrong-result', `stats after close: ${st.requests} requests, but ${st.completed} completed + ${st.failed} failed + ` +
        `${st.aborted} aborted + ${st.closed} closed`);
    }
  },
};

const batcherOptions = {
  id: 'serve.options',
  area: 'options',
  title: 'gru.batcher(options) and batcher.close(options): valid options are kept, others throw (or reject with) OptionError naming options',
  arbitrary: fc.record({
    container: fc.constantFrom('object', 'object', 'object', 'null', 'array', 'number', 'undefined'),
    values: fc.record({
      maxBatch: fc.oneof(fc.constant({ absent: true }), fc.constantFrom(1, 64, Infinity, 0, 1.5, -1, 2 ** 53).map((v) => ({ v })), junkArb),
      maxDelayMs: fc.oneof(fc.constant({ absent: true }), fc.constantFrom(0, 0.5, 5, Infinity, -1, NaN).map((v) => ({ v })), junkArb),
      maxQueue: fc.oneof(fc.constant({ absent: true }), fc.constantFrom(1, 10, Infinity, 0, 2.5).map((v) => ({ v })), junkArb),
      maxInFlight: fc.oneof(fc.constant({ absent: true }), fc.constantFrom(1, 2, Infinity, 0, -Infinity).map((v) => ({ v })), junkArb),
      maxQueueBytes: fc.oneof(fc.constant({ absent: true }), fc.constantFrom(1, 2 ** 20, 2 ** 53 - 1, 2 ** 53, Infinity, 0, 0.5, NaN).map((v) => ({ v })), junkArb),
      maxBatchBytes: fc.oneof(fc.constant({ absent: true }), fc.constantFrom(1, 4096, Infinity, 0, -1, 1.5).map((v) => ({ v })), junkArb),
      maxPadding: fc.oneof(fc.constant({ absent: true }), fc.constantFrom(1, 1.5, 2, 1e9, Infinity, 0.99, 0, NaN).map((v) => ({ v })), junkArb),
    }),
    unknown: fc.boolean(),
    close: fc.oneof(fc.constant({ absent: true }), fc.constantFrom({ drain: true }, { drain: false }, {}, null).map((v) => ({ v })), junkArb,
      fc.constant({ v: { drain: 'yes' } })),
  }),
  async run({ container, values, unknown, close }) {
    count();
    const gru = new GRU({ inputSize: 2, hiddenSize: 3, seed: 1, backend: NATIVE });
    const o = {};
    for (const [k, s] of Object.entries(values)) if (!s.absent) o[k] = 'v' in s ? s.v : junkValue(s);
    if (unknown) o.maxDelay = 1;
    const options = container === 'object' ? o : container === 'array' ? Object.assign([], o) : container === 'number' ? 3 : container === 'null' ? null : undefined;
    let valid = options === undefined || options === null || (typeof options === 'object' && !Array.isArray(options));
    if (valid && options) {
      if (unknown) valid = false;
      // Every limit is finite (README: Infinity would be no limit); counts are 32-bit, delays a Node timer's.
      const num = (k, d, min, max, integer) => {
        const v = options[k] === undefined ? d : options[k];
        return typeof v === 'number' && v >= min && v <= max && (integer ? Number.isInteger(v) : Number.isFinite(v));
      };
      const COUNT = 2 ** 31 - 1;
      valid &&= num('maxBatch', 64, 1, COUNT, true) && num('maxDelayMs', 0, 0, 2 ** 31 - 1, false) && num('maxQueue', 4096, 1, COUNT, true) &&
        num('maxInFlight', 1, 1, COUNT, true) && num('maxQueueBytes', 2 ** 28, 1, 2 ** 53 - 1, true) &&
        num('maxBatchBytes', 2 ** 26, 1, 2 ** 53 - 1, true) && num('maxPadding', 2, 1, Infinity, false);
    }
    // README: options are optional; null is "no options" for the facade's other calls too.
    const r = await attempt(() => gru.batcher(options));
    const batcher = expectOutcome(r, valid ? { valid: true } : { valid: false, roots: ['options'] }, `gru.batcher(${show(options)})`);
    if (!batcher) return;
    for (const [k, d] of [['maxBatch', 64], ['maxDelayMs', 0], ['maxQueue', 4096], ['maxInFlight', 1], ['maxQueueBytes', 2 ** 28],
      ['maxBatchBytes', 2 ** 26], ['maxPadding', 2]]) {
      const want = options?.[k] === undefined ? d : options[k];
      if (batcher[k] !== want) fail('wrong-result', `batcher.${k} is ${batcher[k]}, expected ${want}`);
    }
    const c = close.absent ? undefined : 'v' in close ? close.v : junkValue(close);
    const closeValid = c === undefined || c === null || (typeof c === 'object' && !Array.isArray(c) && (c.drain === undefined || typeof c.drain === 'boolean'));
    const rc = await attempt(() => batcher.close(c));
    expectOutcome(rc, closeValid ? { valid: true } : { valid: false, roots: ['options'] }, `batcher.close(${show(c)})`);
    if (!closeValid) await batcher.close();
  },
};

const sessionArb = fc.record({
  cfg: gruConfigArb,
  state: fc.constantFrom('omit', 'null', 'tensor', 'nested', 'bad'),
  ops: fc.array(fc.record({
    op: fc.constantFrom('step', 'step', 'feed', 'feed', 'state', 'close'),
    T: fc.integer({ min: 0, max: 3 }),
    form: fc.constantFrom('tensor', 'nested', 'row', 'bad', 'wide'),
    bad: fc.constantFrom(...BAD_TENSOR_KINDS),
    seed: fc.nat(),
    junk: fc.nat(),
  }), { minLength: 1, maxLength: 8 }),
  awaitEach: fc.boolean(),
});

const session = {
  id: 'serve.session',
  area: 'serve',
  title: 'gru.session: steps and chunks (bad ones mixed in, concurrent or one by one) give the bits of one forward over the valid ones; state() resumes; a bidirectional model refuses sessions',
  arbitrary: sessionArb,
  async run({ cfg, state, ops, awaitEach }) {
    const I = cfg.inputSize;
    const H = cfg.hiddenSize;
    const L = cfg.numLayers;
    count();
    const gru = new GRU(gruOptions({ ...cfg, batchFirst: false }, NATIVE));
    let stateArg;
    let stateOk = true;
    let initial = new Float32Array(L * H);
    if (state === 'null') stateArg = null;
    else if (state === 'tensor' || state === 'nested') {
      const t = makeTensor([L * (cfg.bidirectional ? 2 : 1), H], { form: state === 'nested' && H ? 'nested' : 'tensor', seed: 3 });
      stateArg = t.arg;
      initial = t.data;
    } else if (state === 'bad') {
      stateArg = badTensor(ops[0].bad, [L, H], 3, ops[0].junk);
      const t = readTensorLike(stateArg);
      stateOk = t.ok && t.shape.length === 2 && t.shape[0] === L && t.shape[1] === H;
      if (stateOk) initial = t.data;
    }
    const r = await attempt(() => (state === 'omit' ? gru.session() : gru.session(stateArg)));
    if (cfg.bidirectional) {
      expectOutcome(r, { valid: false, roots: ['session', 'state'] }, 'gru.session on a bidirectional model');
      return;
    }
    const s = expectOutcome(r, stateOk ? { valid: true } : { valid: false, roots: ['state'] }, `gru.session(${show(stateArg)})`);
    if (!s) return;
    // Every valid step and chunk, in order: the sequence one forward must reproduce.
    const sequence = [];
    const calls = [];
    let closed = false;
    for (const o of ops) {
      if (o.op === 'close') {
        count();
        s.close();
        closed = true;
        continue;
      }
      if (o.op === 'state') {
        count();
        const st = s.state();
        expectShape(st.shape, [L, H], 'session.state()');
        continue;
      }
      let arg;
      let rows = null;
      if (o.op === 'step') {
        if (o.form === 'tensor') { const t = makeTensor([I], { seed: o.seed }); arg = t.arg; rows = [t.data]; }
        else if (o.form === 'nested') { const t = makeTensor([I], { form: 'nested', seed: o.seed }); arg = t.arg; rows = [t.data]; }
        else if (o.form === 'row') { const t = makeTensor([1, I], { seed: o.seed }); arg = t.arg; rows = [t.data]; }
        else if (o.form === 'wide') arg = makeTensor([2, I], { seed: o.seed }).arg;
        else arg = badTensor(o.bad, [I], o.seed, o.junk);
        const t = readTensorLike(arg);
        const ok = t.ok && ((t.shape.length === 1 && t.shape[0] === I) || (t.shape.length === 2 && t.shape[0] === 1 && t.shape[1] === I));
        if (ok && !rows) rows = [t.data];
        if (!ok) rows = null;
      } else {
        if (o.form === 'tensor' || o.form === 'row' || (o.form === 'nested' && o.T === 0)) { const t = makeTensor([o.T, I], { seed: o.seed }); arg = t.arg; }
        else if (o.form === 'nested') arg = makeTensor([o.T, I], { form: 'nested', seed: o.seed }).arg;
        else if (o.form === 'wide') arg = makeTensor([o.T, I + 1], { seed: o.seed }).arg;
        else arg = badTensor(o.bad, [o.T, I], o.seed, o.junk);
        const t = readTensorLike(arg);
        const ok = t.ok && t.shape.length === 2 && t.shape[1] === I;
        rows = ok ? Array.from({ length: t.shape[0] }, (_, k) => t.data.subarray(k * I, (k + 1) * I)) : null;
      }
      const start = sequence.length;
      if (rows && !closed) sequence.push(...rows.map((row) => Float32Array.from(row)));
      count();
      let p;
      try {
        p = s[o.op](arg);
      } catch (error) {
        p = Promise.reject(error);
      }
      p.catch(() => undefined);
      const call = { o, p, start, n: rows ? rows.length : 0, valid: rows !== null, closed, arg };
      calls.push(call);
      if (awaitEach) await within(p.catch(() => undefined), `session.${o.op}`);
    }
    const settled = await within(Promise.allSettled(calls.map((c) => c.p)), 'the session\'s calls');
    const T = sequence.length;
    const x = new Float32Array(T * I);
    sequence.forEach((row, t) => x.set(row, t * I));
    const whole = expectOutcome(await attempt(() => gru.forward({ data: x, shape: [T, I] }, { data: initial, shape: [L, H] })), { valid: true },
      'gru.forward over everything the session was fed');
    calls.forEach((c, k) => {
      const st = settled[k];
      const what = `session call ${k}: ${c.o.op}(${show(c.arg)})`;
      const outcome = st.status === 'fulfilled' ? { ok: true, value: st.value } : { ok: false, error: st.reason };
      if (c.closed) {
        // After close(): ClosedError, or (arguments are checked first) the bad argument's error.
        expectOutcome(outcome, { valid: false, roots: [c.o.op === 'step' ? 'x' : 'chunk'] }, what);
        if (c.valid && outcome.error.code !== 'ERR_CLOSED') fail('wrong-acceptance', `${what}: after close(): ${show(outcome.error)}`);
        return;
      }
      const out = expectOutcome(outcome, c.valid ? { valid: true } : { valid: false, roots: [c.o.op === 'step' ? 'x' : 'chunk'] }, what);
      if (!out) return;
      const want = whole.output.data.subarray(c.start * H, (c.start + c.n) * H);
      expectShape(out.output.shape, c.o.op === 'step' ? [H] : [c.n, H], `${what}: output`);
      expectBits(out.output.data, Float32Array.from(want), `${what}: output vs one forward over the whole sequence`);
    });
    count();
    const final = s.state();
    expectBits(final.data, whole.hidden.data, 'session.state() after every call vs the forward\'s hidden');
    // The state resumes the stream elsewhere: a new session from it steps as this one would.
    if (I > 0) {
      count(2);
      const resumed = gru.session(final);
      const next = makeTensor([I], { seed: 99 });
      const a = expectOutcome(await attempt(() => resumed.step(next.arg)), { valid: true }, 'a step of a resumed session');
      const b = expectOutcome(await attempt(() => gru.forward({ data: next.data, shape: [1, I] }, final)), { valid: true }, 'forward from the saved state');
      expectBits(a.output.data, b.output.data, 'a resumed session vs forward from its state');
    }
  },
};

export default [batcherRun, batcherOptions, session];
