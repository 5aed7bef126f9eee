// Properties of issue 15 ("Hardening II"): arguments that change while fastgru reads them, and
// memory that must stay bounded. Four generators:
//   hardening.getters        getters that change, shrink, grow or detach arrays mid-read (GRU.forward's
//                            lengths and nested x; the addon's dropoutMasks and weights)
//   hardening.shared         SharedArrayBuffer inputs (lengths, x) that a worker changes during a call
//   hardening.batcher-rss    a mixed-length batcher load whose sampled anonymous memory stays within a
//                            budget derived from maxBatchBytes and maxQueueBytes
//   hardening.file-writes    safetensors files swapped (file, directory, link, FIFO, removed) or tensors
//                            detached while a writer writes
// The oracle is design §5 again: a call ends in a correct result for some state its arguments had
// (before or after the change) or in a fastgru error naming the argument; never a crash or a hang.
import { execFileSync } from 'node:child_process';
import {
  existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import {
  addon, api, attempt, checkAddonError, checkApiError, count, detach, expectBits, expectOutcome, fail, floats, NATIVE, show, within,
} from './harness.mjs';
import { anonSampler } from '../helpers/memory.mjs';
import { nest } from './rules.mjs';

const { GRU, readSafetensorsFile, writeSafetensors, writeSafetensorsFile, writeSafetensorsFileSync } = api;

/** Whether a result's output and hidden are bit for bit those of one of the candidates. */
function matchesOne(r, candidates) {
  const same = (a, b) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
  return candidates.some((c) => same(r.output.data ?? r.output, c.output.data ?? c.output) && same(r.hidden.data ?? r.hidden, c.hidden.data ?? c.hidden));
}

// ------------------------------------------------------------------------------------------------
// Getters that change arrays mid-read
// ------------------------------------------------------------------------------------------------

/**
 * An array whose element `at` is a getter that, when read, does `change` to the array (or to
 * something else) and returns the element's own value. Reading it once, in order, sees the array
 * as it was (change behind the reader) or as it is after (change ahead of it): the candidates.
 */
function withGetter(values, at, change) {
  const arr = [...values];
  const own = arr[at];
  let fired = false;
  Object.defineProperty(arr, at, {
    enumerable: true,
    configurable: true,
    get() {
      if (!fired) {
        fired = true;
        change(arr);
      }
      return own;
    },
  });
  return arr;
}

/** An index of n other than `at`, or -1 when there is none. */
const otherIndex = (n, at, k) => (n < 2 ? -1 : (at + 1 + (k % (n - 1))) % n);

const GETTER_TARGETS = ['lengths', 'lengths', 'nested-x', 'masks', 'weights'];
const GETTER_CHANGES = ['other', 'other', 'shrink', 'empty', 'grow', 'detach-x'];

const getters = {
  id: 'hardening.getters',
  area: 'hardening',
  title: 'getters that change another element, shrink, empty or grow the array, or detach x while fastgru reads it (GRU.forward lengths and nested x; the addon\'s dropoutMasks and weights): the result for the array before or after the change, bit for bit, or a FastGruError naming it',
  arbitrary: fc.record({
    target: fc.constantFrom(...GETTER_TARGETS),
    change: fc.constantFrom(...GETTER_CHANGES),
    T: fc.integer({ min: 1, max: 6 }),
    B: fc.integer({ min: 2, max: 6 }),
    H: fc.integer({ min: 1, max: 17 }),
    layers: fc.integer({ min: 2, max: 4 }),
    at: fc.nat(),
    other: fc.nat(),
    seed: fc.nat(),
  }),
  async run(s) {
    if ((s.target === 'masks' || s.target === 'weights') && !addon) return;
    const I = 3;
    const { T, B, H } = s;
    if (s.target === 'lengths' || s.target === 'nested-x') {
      count();
      const gru = new GRU({ inputSize: I, hiddenSize: H, numLayers: s.layers, backend: NATIVE, seed: s.seed });
      const xData = floats(T * B * I, s.seed);
      const lengths = Array.from({ length: B }, (_, b) => 1 + ((s.seed + b) % T));
      if (s.target === 'lengths') {
        const at = s.at % B;
        const j = otherIndex(B, at, s.other);
        const after = [...lengths];
        const change = (arr) => {
          if (s.change === 'other') arr[j] = after[j] = 1 + ((lengths[j]) % T);
          else if (s.change === 'shrink') arr.length = at + 1;
          else if (s.change === 'empty') arr.length = 0;
          else if (s.change === 'grow') arr.push(1);
          else detach(xData.buffer);
        };
        const xArg = { data: s.change === 'detach-x' ? xData : Float32Array.from(xData), shape: [T, B, I] };
        const xCopy = Float32Array.from(xData);
        const arg = withGetter(lengths, at, change);
        const what = `GRU.forward(x, null, { lengths: a getter at ${at} that does ${s.change} })`;
        const r = await attempt(() => gru.forward(xArg, null, { lengths: arg }), what);
        const candidates = [gru.forward({ data: xCopy, shape: [T, B, I] }, null, { lengths })];
        if (s.change === 'other') candidates.push(gru.forward({ data: xCopy, shape: [T, B, I] }, null, { lengths: after }));
        if (!r.ok) return checkApiError(r.error, ['options', 'x'], what);
        if (!matchesOne(r.value, candidates)) fail('wrong-result', `${what}: a result of neither the lengths before the change nor after`);
        return;
      }
      // nested x: rows [t] are arrays of B rows of I numbers; the getter of x[at] replaces row other.
      const at = s.at % T;
      const j = otherIndex(T, at, s.other);
      const nested = nest(Array.from(xData), [T, B, I]);
      const replacement = nest(Array.from(floats(B * I, s.seed + 1)), [B, I]);
      const after = nested.map((row, t) => (t === j ? replacement : row));
      const change = (arr) => {
        if (s.change === 'other' || s.change === 'detach-x') { if (j >= 0) arr[j] = replacement; }
        else if (s.change === 'shrink') arr.length = at + 1;
        else if (s.change === 'empty') arr.length = 0;
        else arr.push(replacement);
      };
      const before = nested.map((row) => row);
      const arg = withGetter(nested, at, change);
      const what = `GRU.forward(nested x: a getter at x[${at}] that does ${s.change})`;
      const r = await attempt(() => gru.forward(arg), what);
      const candidates = [gru.forward(before)];
      if (s.change === 'other' || s.change === 'detach-x') candidates.push(gru.forward(after));
      if (!r.ok) return checkApiError(r.error, ['x'], what);
      if (!matchesOne(r.value, candidates)) fail('wrong-result', `${what}: a result of neither x before the change nor after`);
      return;
    }
    // The addon, called directly.
    const L = s.layers;
    const c = { inputSize: I, hiddenSize: H, numLayers: L, numDirections: 1, resetAfter: true, bias: true };
    const weightsOf = (seed) => Array.from({ length: L }, (_, l) => ({
      wIh: floats(3 * H * (l === 0 ? I : H), seed + 4 * l, 'uniform', 0.5), wHh: floats(3 * H * H, seed + 4 * l + 1, 'uniform', 0.5),
      bIh: floats(3 * H, seed + 4 * l + 2, 'uniform', 0.5), bHh: floats(3 * H, seed + 4 * l + 3, 'uniform', 0.5),
    }));
    const x = floats(T * B * I, s.seed);
    const xCopy = Float32Array.from(x);
    const copyOf = (list) => list.map((w) => ({ wIh: Float32Array.from(w.wIh), wHh: Float32Array.from(w.wHh), bIh: Float32Array.from(w.bIh), bHh: Float32Array.from(w.bHh) }));
    if (s.target === 'masks') {
      count();
      const model = new addon.Model(c, weightsOf(s.seed));
      const masks = Array.from({ length: L - 1 }, (_, l) => floats(T * B * H, s.seed + 9 + l).map((v) => (v > 0 ? 2 : 0)));
      const at = s.at % (L - 1);
      const j = otherIndex(L - 1, at, s.other);
      const after = [...masks];
      const swapped = masks[Math.max(j, 0)].map((v) => 2 - v);
      const change = (arr) => {
        if (s.change === 'other') { if (j >= 0) arr[j] = after[j] = swapped; }
        else if (s.change === 'shrink') arr.length = at + 1;
        else if (s.change === 'empty') arr.length = 0;
        else if (s.change === 'grow') arr.push(swapped);
        else detach(x.buffer);
      };
      const arg = withGetter(masks, at, change);
      const what = `model.forwardTrain(x, ${T}, ${B}, false, null, null, dropoutMasks: a getter at ${at} that does ${s.change}, 1)`;
      const r = await attempt(() => model.forwardTrain(s.change === 'detach-x' ? x : xCopy.slice(), T, B, false, null, null, arg, 1), what);
      const candidates = [model.forwardTrain(xCopy.slice(), T, B, false, null, null, masks, 1)];
      if (s.change === 'other' && at !== j) candidates.push(model.forwardTrain(xCopy.slice(), T, B, false, null, null, after, 1));
      if (!r.ok) return checkAddonError(r.error, ['dropoutMasks', 'x'], what);
      if (!matchesOne(r.value, candidates)) fail('wrong-result', `${what}: a result of neither the masks before the change nor after`);
      return;
    }
    // weights: the getter of weights[at] replaces weights[other] (or shrinks, grows the list, or detaches weights[other].wIh).
    count();
    const ws = weightsOf(s.seed);
    const before = copyOf(ws);
    const at = s.at % L;
    const j = otherIndex(L, at, s.other);
    const other = weightsOf(s.seed + 100)[j];
    const after = copyOf(ws).map((w, k) => (k === j ? other : w));
    const change = (arr) => {
      if (s.change === 'other') arr[j] = other;
      else if (s.change === 'shrink') arr.length = at + 1;
      else if (s.change === 'empty') arr.length = 0;
      else if (s.change === 'grow') arr.push(other);
      else detach(ws[j].wIh.buffer);
    };
    const arg = withGetter(ws, at, change);
    const what = `new addon.Model(config, weights: a getter at ${at} that does ${s.change}).forward(...)`;
    const r = await attempt(() => new addon.Model(c, arg).forward(xCopy.slice(), T, B, false, null, null, 1), what);
    const candidates = [new addon.Model(c, before).forward(xCopy.slice(), T, B, false, null, null, 1)];
    if (s.change === 'other' && at !== j) candidates.push(new addon.Model(c, after).forward(xCopy.slice(), T, B, false, null, null, 1));
    if (!r.ok) return checkAddonError(r.error, ['weights'], what);
    if (!matchesOne(r.value, candidates)) fail('wrong-result', `${what}: a result of neither the weights before the change nor after`);
  },
};

// ------------------------------------------------------------------------------------------------
// SharedArrayBuffer inputs changed by a worker during a call
// ------------------------------------------------------------------------------------------------

// One worker for the whole child: starting one a run would cost more than the runs. It waits for a
// job (an Int32Array or Float32Array over a SharedArrayBuffer, an index and values), writes the
// values in turn at that index until told to stop, then acknowledges. ctl: [stop, changes, stopped].
const FLIPPER = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ target, at, values, ctl }) => {
  for (let i = 0; Atomics.load(ctl, 0) === 0; i++) {
    target[at[i % at.length]] = values[i % values.length];
    Atomics.add(ctl, 1, 1);
    Atomics.notify(ctl, 1);
    const until = performance.now() + 0.05;
    while (performance.now() < until);
  }
  Atomics.store(ctl, 2, 1);
  Atomics.notify(ctl, 2);
});
`;
let flipper = null;
function flip(target, at, values) {
  flipper ??= new Worker(FLIPPER, { eval: true });
  flipper.unref();
  const ctl = new Int32Array(new SharedArrayBuffer(12));
  flipper.postMessage({ target, at, values, ctl });
  // Wait for the first change, so that the call meets a changing array (bounded: a stalled worker
  // only makes the call meet fewer changes).
  Atomics.wait(ctl, 1, 0, 1000);
  return () => {
    Atomics.store(ctl, 0, 1);
    Atomics.wait(ctl, 2, 0, 5000);
  };
}

const shared = {
  id: 'hardening.shared',
  area: 'hardening',
  title: 'lengths and x over a SharedArrayBuffer that a worker changes during GRU.forward / forwardAsync / the addon\'s forward, forwardTrain, forwardAsync: lengths give the result of one of the valid values, bit for bit, or an error naming them; x gives outputs in [-1, 1] of the right shape',
  arbitrary: fc.record({
    api: fc.constantFrom('gru', 'gru', 'addon'),
    method: fc.constantFrom('forward', 'forward', 'forwardAsync', 'forwardTrain'),
    what: fc.constantFrom('lengths', 'lengths', 'x'),
    B: fc.integer({ min: 64, max: 2048 }),
    T: fc.integer({ min: 2, max: 4 }),
    H: fc.integer({ min: 1, max: 8 }),
    k: fc.nat(),
    seed: fc.nat(),
  }),
  async run(s) {
    if (s.api === 'addon' && !addon) return;
    if (s.api === 'gru' && s.method === 'forwardTrain') s = { ...s, method: 'forward' };
    const I = 2;
    const { T, B, H } = s;
    const k = s.k % B;
    const x = floats(T * B * I, s.seed);
    const sharedX = new Float32Array(new SharedArrayBuffer(4 * x.length));
    sharedX.set(x);
    const valid = Int32Array.from({ length: B }, (_, b) => 1 + ((b + s.seed) % T));
    const lengths = new Int32Array(new SharedArrayBuffer(4 * B));
    lengths.set(valid);
    count();
    let call;
    if (s.api === 'gru') {
      const gru = new GRU({ inputSize: I, hiddenSize: H, backend: NATIVE, seed: s.seed });
      call = (xs, ls) => gru[s.method]({ data: xs, shape: [T, B, I] }, null, { lengths: ls });
    } else {
      const c = { inputSize: I, hiddenSize: H, numLayers: 1, numDirections: 1, resetAfter: true, bias: true };
      const model = new addon.Model(c, [{
        wIh: floats(3 * H * I, s.seed, 'uniform', 0.5), wHh: floats(3 * H * H, s.seed + 1, 'uniform', 0.5), bIh: floats(3 * H, s.seed + 2), bHh: floats(3 * H, s.seed + 3),
      }]);
      call = (xs, ls) => (s.method === 'forwardTrain' ? model.forwardTrain(xs, T, B, false, null, ls, null, 1) : model[s.method](xs, T, B, false, null, ls, 1));
    }
    const what = `${s.api === 'gru' ? 'GRU' : 'model'}.${s.method}(x ${s.what === 'x' ? 'shared and changing' : 'plain'}, lengths ${s.what === 'lengths' ? `shared, [${k}] changing` : 'shared'}) B=${B}`;
    if (s.what === 'lengths') {
      // lengths[k] goes through a valid value, another valid one, one past steps by thousands, a negative one.
      const alt = 1 + (valid[k] % T);
      const candidates = [];
      for (const v of [valid[k], alt]) {
        const l = Int32Array.from(valid);
        l[k] = v;
        candidates.push(await call(Float32Array.from(x), l));
      }
      const stop = flip(lengths, [k], [valid[k], alt, T + 5000, -5000]);
      let r;
      try {
        r = await attempt(() => call(sharedX, lengths), what);
      } finally {
        stop();
      }
      if (!r.ok) return s.api === 'gru' ? checkApiError(r.error, ['options'], what) : checkAddonError(r.error, ['lengths'], what);
      if (!matchesOne(r.value, candidates)) fail('wrong-result', `${what}: a result of none of lengths[${k}]'s valid values (${valid[k]}, ${alt})`);
      return;
    }
    // x changes under the call: the result is some mix of the values, but every value stays in
    // (-1, 1), so every output (a convex mix of tanh and the previous state, from h0 = 0) is in [-1, 1].
    const at = Array.from({ length: 8 }, (_, i) => (k * I + i * 97) % x.length);
    const stop = flip(sharedX, at, [0.9, -0.9, 0, 0.5]);
    let r;
    try {
      r = await attempt(() => call(sharedX, lengths), what);
    } finally {
      stop();
    }
    const got = expectOutcome(r, { valid: true }, what, { addonCall: s.api === 'addon' });
    const out = got.output.data ?? got.output;
    const hid = got.hidden.data ?? got.hidden;
    if (out.length !== T * B * H || hid.length !== B * H) fail('wrong-result', `${what}: ${out.length} outputs, ${hid.length} hidden for T=${T} B=${B} H=${H}`);
    for (const a of [out, hid]) {
      for (let i = 0; i < a.length; i++) if (!(a[i] >= -1 && a[i] <= 1)) fail('wrong-result', `${what}: element ${i} is ${a[i]}, outside [-1, 1]`);
    }
  },
};

// ------------------------------------------------------------------------------------------------
// A mixed-length batcher load with a memory budget
// ------------------------------------------------------------------------------------------------

/** A full collection before the baseline, so that earlier runs' garbage is not this load's. */
let collect = null;
function gc() {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc');
  }
  collect();
}
const MiB = 2 ** 20;
/**
 * What the process may take besides the batches and the queue: V8 collects array buffers (the
 * engine's working memory comes from them, see init's allocator) only once some tens of MiB of
 * them are garbage, and the heap and the allocator's arenas move by a few MiB.
 */
const SLACK = 64 * MiB;

const batcherRss = {
  id: 'hardening.batcher-rss',
  area: 'hardening',
  title: 'a mixed-length load through the batcher (one to four long requests among short ones, byte limits small and large, in one turn): each request gets gru.forward\'s bits on its own or ERR_QUEUE_FULL / an error naming x, and the sampled anonymous memory above the baseline stays within maxQueueBytes + 2·maxInFlight·max(maxBatchBytes, the largest request) + the results + 64 MiB',
  arbitrary: fc.record({
    H: fc.constantFrom(8, 16, 32),
    longT: fc.integer({ min: 2000, max: addon ? 40000 : 3000 }),
    longs: fc.integer({ min: 1, max: 4 }),
    shorts: fc.integer({ min: 8, max: 63 }),
    shortT: fc.integer({ min: 1, max: 16 }),
    longAt: fc.nat(),
    maxBatchBytes: fc.constantFrom(64 * 1024, MiB, 4 * MiB, 16 * MiB),
    maxQueueBytes: fc.constantFrom(MiB, 8 * MiB, 64 * MiB),
    maxPadding: fc.constantFrom(1, 2, 4),
    maxInFlight: fc.integer({ min: 1, max: 2 }),
    seed: fc.nat(),
  }),
  async run(s) {
    const I = s.H;
    const H = s.H;
    count();
    const gru = new GRU({ inputSize: I, hiddenSize: H, backend: NATIVE, seed: s.seed });
    const options = { maxBatch: 64, maxBatchBytes: s.maxBatchBytes, maxQueueBytes: s.maxQueueBytes, maxPadding: s.maxPadding, maxInFlight: s.maxInFlight };
    count();
    const batcher = gru.batcher(options);
    const seq = (T, k) => ({ data: floats(T * I, s.seed + k), shape: [T, I] });
    const requests = Array.from({ length: s.shorts }, (_, k) => seq(1 + ((s.shortT + k) % 16), k + 1));
    for (let l = 0; l < s.longs; l++) requests.splice((s.longAt + l * 7) % (requests.length + 1), 0, seq(s.longT - 100 * l, 1000 + l));
    // The padded bytes of one request alone, as maxBatchBytes counts them (one layer, one direction).
    const alone = (T) => 4 * (T * (I + H) + 2 * H);
    const largest = Math.max(...requests.map((q) => alone(q.shape[0])));
    const results = requests.reduce((a, q) => a + 4 * (q.shape[0] * H + H), 0);
    const budget = s.maxQueueBytes + 2 * s.maxInFlight * Math.max(s.maxBatchBytes, largest) + results + SLACK;
    // Warm the batcher up on short requests, then measure from a collected baseline.
    await within(Promise.all(requests.slice(0, 4).filter((q) => q.shape[0] <= 16).map((q) => batcher.run(q))), 'the warm-up');
    gc();
    const sampler = anonSampler();
    const settled = await within(Promise.allSettled(requests.map((q) => { count(); return batcher.run(q); })), 'the batcher\'s load');
    const { base, peak } = sampler.stop();
    await within(batcher.close(), 'batcher.close()');
    const what = `batcher(${JSON.stringify(options)}): ${s.longs} of ${s.longT} steps among ${s.shorts} short, H=${H}`;
    settled.forEach((o, k) => {
      const q = requests[k];
      const outcome = o.status === 'fulfilled' ? { ok: true, value: o.value } : { ok: false, error: o.reason };
      if (!outcome.ok) {
        checkApiError(outcome.error, ['x'], `${what}: request ${k}`);
        const tooBig = 4 * q.data.length > s.maxQueueBytes;
        if (!(outcome.error.code === 'ERR_QUEUE_FULL' || (tooBig && outcome.error.code === 'ERR_ARGUMENT'))) {
          fail('wrong-acceptance', `${what}: request ${k} (${q.shape[0]} steps) rejected with ${show(outcome.error)}`);
        }
        return;
      }
      const want = gru.forward(q);
      expectBits(outcome.value.output.data, want.output.data, `${what}: request ${k} output vs gru.forward alone`);
      expectBits(outcome.value.hidden.data, want.hidden.data, `${what}: request ${k} hidden vs gru.forward alone`);
    });
    if (base !== null && peak - base > budget) {
      fail('wrong-result', `${what}: anonymous memory rose ${((peak - base) / MiB).toFixed(1)} MiB above the baseline, over the budget of ${(budget / MiB).toFixed(1)} MiB`);
    }
  },
};

// ------------------------------------------------------------------------------------------------
// Files swapped or detached mid-write
// ------------------------------------------------------------------------------------------------

const SWAPS = ['none', 'detach', 'detach', 'file', 'directory', 'link', 'fifo', 'remove', 'remove-temp', 'getter-detach'];

/** Turns of the event loop, or until the temporary file beside `path` holds `bytes` (bounded). */
async function waitFor(dir, wait, settledRef) {
  if (typeof wait === 'number') {
    for (let i = 0; i < wait; i++) await new Promise((resolve) => setImmediate(resolve));
    return;
  }
  for (let i = 0; i < 2000 && !settledRef.settled; i++) {
    const temp = readdirSync(dir).find((n) => n.endsWith('.tmp'));
    if (temp) {
      try {
        if (lstatSync(join(dir, temp)).size >= wait.bytes) return;
      } catch {
        // renamed meanwhile
      }
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const fileWrites = {
  id: 'hardening.file-writes',
  area: 'hardening',
  title: 'writeSafetensorsFile while its path is swapped (a file, a directory, a link, a FIFO, removed), its temporary file removed or a tensor detached, and the sync writer with a getter that detaches a tensor: resolved means the path holds the whole new file; rejected means a FastGruError naming tensors or path, the path as the swap left it, and no temporary file left',
  arbitrary: fc.record({
    swap: fc.constantFrom(...SWAPS),
    old: fc.constantFrom('none', 'file'),
    floats: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 1 << 19 }) }, { weight: 1, arbitrary: fc.constant(3 << 20) }),
    wait: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.double({ min: 0, max: 1.1, noNaN: true }).map((f) => ({ share: f }))),
    seed: fc.nat(),
  }),
  async run(s) {
    if ((s.swap === 'fifo') && process.platform === 'win32') return;
    const dir = mkdtempSync(join(tmpdir(), 'fastgru-fuzz-write-'));
    try {
      const path = join(dir, 'm.safetensors');
      const oldBytes = Buffer.from(writeSafetensors({ old: { data: Float32Array.of(7, 8), shape: [2] } }));
      if (s.old === 'file') writeFileSync(path, oldBytes);
      const big = floats(s.floats, s.seed);
      const small = floats(3, s.seed + 1);
      const expected = Buffer.from(writeSafetensors({ big: { data: big, shape: [big.length] }, small: { data: small, shape: [3] } }));
      if (s.swap === 'getter-detach') {
        // The sync writer: reading small's data detaches big's buffer after big's entry was made.
        const tensors = { big: { data: big, shape: [big.length] }, small: { shape: [3], get data() { detach(big.buffer); return small; } } };
        const what = `writeSafetensorsFileSync(path, { big (${big.length} floats), small: a data getter that detaches big })`;
        const r = await attempt(() => writeSafetensorsFileSync(path, tensors), what);
        if (r.ok) {
          if (big.length > 0) fail('wrong-acceptance', `${what}: wrote although big was detached`);
        } else checkApiError(r.error, ['tensors'], what);
        const now = existsSync(path) ? readFileSync(path) : null;
        if (!r.ok && (s.old === 'file' ? !now?.equals(oldBytes) : now !== null)) fail('wrong-result', `${what}: rejected, but the path changed`);
        if (readdirSync(dir).some((n) => n.endsWith('.tmp'))) fail('wrong-result', `${what}: a temporary file left behind`);
        return;
      }
      const tensors = { big: { data: big, shape: [big.length] }, small: { data: small, shape: [3] } };
      const what = `writeSafetensorsFile(path, ${expected.length} bytes) with ${s.swap} after ${JSON.stringify(s.wait)} (old: ${s.old})`;
      const ref = { settled: false };
      count();
      const writing = writeSafetensorsFile(path, tensors).finally(() => { ref.settled = true; });
      await waitFor(dir, typeof s.wait === 'number' ? s.wait : { bytes: Math.floor(s.wait.share * expected.length) }, ref);
      // A swap after the write settled says nothing of the writer: only the temporary files are checked.
      const late = ref.settled;
      // What stands at the path after the swap, to compare with on a rejection.
      let left = s.old === 'file' ? oldBytes : null;
      const aside = join(dir, 'aside');
      switch (s.swap) {
        case 'detach': detach(big.buffer); break;
        case 'file': left = Buffer.from('another file'); writeFileSync(path, left); break;
        case 'directory': rmSync(path, { force: true }); mkdirSync(path); left = 'directory'; break;
        case 'link': writeFileSync(aside, 'the link\'s target'); rmSync(path, { force: true }); symlinkSync(aside, path); left = 'link'; break;
        case 'fifo': rmSync(path, { force: true }); execFileSync('mkfifo', [path]); left = 'fifo'; break;
        case 'remove': rmSync(path, { force: true }); left = null; break;
        case 'remove-temp': for (const n of readdirSync(dir)) if (n.endsWith('.tmp')) unlinkSync(join(dir, n)); break;
        default:
      }
      let r;
      try {
        r = { ok: true, value: await within(writing, what) };
      } catch (error) {
        r = { ok: false, error };
      }
      if (r.ok && !late) {
        if (lstatSync(path).isSymbolicLink() || !lstatSync(path).isFile() || !readFileSync(path).equals(expected)) {
          fail('wrong-result', `${what}: resolved, but the path does not hold the whole new file`);
        }
        const back = await attempt(() => readSafetensorsFile(path), `${what}: readSafetensorsFile`);
        if (!back.ok) fail('wrong-result', `${what}: the file written does not read back: ${show(back.error)}`);
      } else if (!r.ok) {
        if (r.error?.kind) throw r.error;
        checkApiError(r.error, ['tensors', 'path'], what);
        if (s.swap === 'none' || s.swap === 'file' || s.swap === 'remove' || ((s.swap === 'link' || s.swap === 'fifo') && r.error.message.startsWith('tensors'))) {
          // Only a detached tensor, a removed temporary file, a directory in the way, or a link or
          // FIFO there before the writer's own lstat (the writers refuse them by design) may fail it.
          fail('wrong-acceptance', `${what}: rejected with ${show(r.error)}`);
        }
        const st = lstatSync(path, { throwIfNoEntry: false }) ?? null;
        const ok = left === null ? !st : left === 'directory' ? st?.isDirectory() : left === 'link' ? st?.isSymbolicLink()
          : left === 'fifo' ? st?.isFIFO() : st?.isFile() && readFileSync(path).equals(left);
        if (!ok) fail('wrong-result', `${what}: rejected, but the path no longer holds what the swap left there`);
      }
      if (readdirSync(dir).some((n) => n.endsWith('.tmp'))) fail('wrong-result', `${what}: a temporary file left behind`);
      // A detached tensor is refused unless it was detached after its last byte was copied.
      if (r.ok && s.swap === 'detach' && big.length > 0 && s.wait === 0) fail('wrong-acceptance', `${what}: resolved although big was detached before the first write`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default [getters, shared, batcherRss, fileWrites];
