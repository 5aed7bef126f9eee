// Run by test/native-batch-buffers.test.ts in a child process (a crash is this process's exit code
// or signal, not the end of vitest): forwardAsync over the addon's batch buffers (its boundary rule
// 5), which it reads in place under a reference instead of copying, and everything JS can do to
// them meanwhile.
//
//   node --expose-gc batch-buffers.mjs <case>
//
// Prints one JSON line { case, ok, detail, ... } and exits 0, or exits non-zero.
import { Worker } from 'node:worker_threads';
import { loadNative } from '../../dist/backend/native.js';
import { prng, uniform } from '../helpers/prng.mjs';

const native = loadNative();
if (!native.addon) {
  process.stdout.write(JSON.stringify({ case: 'load', ok: false, detail: native.reason }) + '\n');
  process.exit(0);
}
const { addon } = native;
const which = process.argv[2];
const print = (o) => process.stdout.write(JSON.stringify({ case: which, ...o }) + '\n');
const tick = () => new Promise((resolve) => setImmediate(resolve));
const bits = (a) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const same = (a, b) => {
  if (a.length !== b.length) return false;
  const [u, v] = [bits(a), bits(b)];
  return u.every((x, i) => x === v[i]);
};

/** A model of the given sizes with seeded weights, and seeded inputs for it. */
function fixture({ T, B, I, H, L = 1, D = 1, seed = 1 }) {
  const rand = prng(seed);
  const config = { inputSize: I, hiddenSize: H, numLayers: L, numDirections: D, resetAfter: true, bias: true };
  const weights = [];
  for (let l = 0; l < L; l++) {
    for (let d = 0; d < D; d++) {
      const input = l === 0 ? I : D * H;
      weights.push({ wIh: uniform(rand, 3 * H * input, 0.3), wHh: uniform(rand, 3 * H * H, 0.3),
        bIh: uniform(rand, 3 * H, 0.3), bHh: uniform(rand, 3 * H, 0.3) });
    }
  }
  const model = new addon.Model(config, weights);
  const x = uniform(rand, T * B * I, 1);
  const h0 = uniform(rand, L * D * B * H, 1);
  const lengths = Int32Array.from({ length: B }, (_, b) => Math.max(1, T - (b % 3)));
  return { model, T, B, x, h0, lengths };
}

/** Copies `from` into a new batch buffer of `extra` more elements, at `offset`; returns the view. */
function owned(from, offset = 0, extra = 0) {
  const buffer = addon.batchBuffer(from.length + offset + extra);
  buffer.set(from, offset);
  return buffer.subarray(offset, offset + from.length);
}

const cases = {
  // Owned x and h0 are not copied; plain ones are; each way gives the bits of the synchronous forward.
  async 'no-copy'() {
    const f = fixture({ T: 9, B: 5, I: 6, H: 7, L: 2, D: 2 });
    const { model, T, B, lengths } = f;
    const xBytes = 4 * f.x.length;
    const hBytes = 4 * f.h0.length;
    const expected = model.forward(f.x, T, B, false, f.h0, lengths, 1);
    const runs = [
      ['plain x and h0', f.x.slice(), f.h0.slice(), xBytes + hBytes],
      ['owned x and h0', owned(f.x), owned(f.h0), 0],
      ['owned x, plain h0', owned(f.x), f.h0.slice(), hBytes],
      ['plain x, owned h0', f.x.slice(), owned(f.h0), xBytes],
      ['owned x, no h0', owned(f.x), null, 0],
      // Views inside a larger block: the whole range lies in it, so it is held, not copied.
      ['views at offsets inside larger blocks', owned(f.x, 13, 7), owned(f.h0, 1, 100), 0],
      ['views at the start of larger blocks', owned(f.x, 0, 64), owned(f.h0, 0, 3), 0],
    ];
    const results = [];
    const expectedNoH0 = model.forward(f.x, T, B, false, null, lengths, 1);
    for (const [what, x, h0, copied] of runs) {
      const pending = model.forwardAsync(x, T, B, false, h0, lengths, 1);
      const got = model.copiedBytes;
      const r = await pending;
      const want = h0 ? expected : expectedNoH0;
      results.push({ what, copied: got, expectedCopied: copied,
        same: same(r.output, want.output) && same(r.hidden, want.hidden) });
    }
    print({ ok: results.every((r) => r.same && r.copied === r.expectedCopied), results, xBytes, hBytes });
  },

  // Arrays the addon did not make, or views that do not fit: copied, or refused by name, never read
  // past their end.
  async 'not-owned'() {
    const f = fixture({ T: 4, B: 3, I: 5, H: 6 });
    const { model, T, B, lengths } = f;
    const n = f.x.length;
    const expected = model.forward(f.x, T, B, false, f.h0, lengths, 1);
    const results = [];
    const check = async (what, x, h0) => {
      try {
        const pending = model.forwardAsync(x, T, B, false, h0, lengths, 1);
        const copied = model.copiedBytes;
        const r = await pending;
        results.push({ what, outcome: 'resolved', copied,
          same: same(r.output, expected.output) && same(r.hidden, expected.hidden) });
      } catch (e) {
        results.push({ what, outcome: 'rejected', code: e.code, message: e.message });
      }
    };
    const shared = new Float32Array(new SharedArrayBuffer(4 * n));
    shared.set(f.x);
    await check('a SharedArrayBuffer', shared, f.h0);
    const big = new Float32Array(n + 50);
    big.set(f.x, 50);
    await check('a view into a plain buffer', big.subarray(50), f.h0);
    // The block holds n + 2 floats: a view from element 3 holds n - 1, one short of x.
    const block = addon.batchBuffer(n + 2);
    block.set(f.x.subarray(0, n - 1), 3);
    await check('a view running one element past the block', block.subarray(3), f.h0);
    await check('a Float32Array over the block\'s ArrayBuffer, too short', new Float32Array(block.buffer, 12), f.h0);
    let constructed = 'no';
    try {
      new Float32Array(block.buffer, 12, n);
      constructed = 'yes';
    } catch (e) {
      constructed = e.constructor.name;
    }
    const byName = (what) => results.find((r) => r.what === what);
    const copiedAll = 4 * (n + f.h0.length);
    const ok = ['a SharedArrayBuffer', 'a view into a plain buffer'].every((w) =>
      byName(w).outcome === 'resolved' && byName(w).same && byName(w).copied === copiedAll) &&
      ['a view running one element past the block', 'a Float32Array over the block\'s ArrayBuffer, too short'].every((w) =>
        byName(w).outcome === 'rejected' && byName(w).code === 'ERR_SHAPE' && /^x: expected /.test(byName(w).message)) &&
      constructed === 'RangeError';
    print({ ok, results, constructed });
  },

  // The caller tries to move the buffers away (structuredClone and postMessage with a transfer list)
  // while a long call reads them: the runtime refuses, copies or detaches them; the call gives the
  // bits of the same inputs read before.
  async detach() {
    const f = fixture({ T: 600, B: 8, I: 64, H: 128, seed: 4 });
    const { model, T, B, lengths } = f;
    const expected = model.forward(f.x, T, B, false, f.h0, lengths, 1);
    const x = owned(f.x);
    const h0 = owned(f.h0);
    const pending = model.forwardAsync(x, T, B, false, h0, lengths, 1);
    const copied = model.copiedBytes;
    let settled = false;
    pending.then(() => (settled = true), () => (settled = true));
    const attempts = [];
    try {
      structuredClone(x.buffer, { transfer: [x.buffer] });
      attempts.push('structuredClone: returned');
    } catch (e) {
      attempts.push(`structuredClone: ${e.name}`);
    }
    const { port1, port2 } = new MessageChannel();
    try {
      port1.postMessage(h0, [h0.buffer]);
      attempts.push('postMessage: returned');
    } catch (e) {
      attempts.push(`postMessage: ${e.name}`);
    }
    port1.close();
    port2.close();
    const pendingAfter = !settled;
    for (let i = 0; i < 3; i++) globalThis.gc();
    const r = await pending;
    print({ ok: copied === 0 && pendingAfter && same(r.output, expected.output) && same(r.hidden, expected.hidden),
      copied, pendingAfter, attempts, xLength: x.length, h0Length: h0.length });
  },

  // The only arrays over the blocks are dropped and collected while the call waits behind a long
  // one (run with UV_THREADPOOL_SIZE=1): their finalizers run (jsHeld falls back) while the blocks
  // stay alive for the work, which then reads them and gives the expected bits; once it settles the
  // blocks are freed.
  async 'drop-gc'() {
    const f = fixture({ T: 600, B: 8, I: 64, H: 128, seed: 5 });
    const { model, T, B, lengths } = f;
    const expected = model.forward(f.x, T, B, false, f.h0, lengths, 1);
    const before = addon.batchBufferStats();
    const blocker = model.forwardAsync(f.x, 4 * T, B / 4, false, null, null, 1);
    const start = () => model.forwardAsync(owned(f.x), T, B, false, owned(f.h0), lengths, 1);
    const pending = start();
    const copied = model.copiedBytes;
    let settled = false;
    pending.then(() => (settled = true), () => (settled = true));
    let during = addon.batchBufferStats();
    for (let i = 0; i < 500 && during.jsHeld > before.jsHeld && !settled; i++) {
      globalThis.gc();
      await tick();
      during = addon.batchBufferStats();
    }
    const settledBeforeFinalizers = settled;
    const r = await pending;
    await blocker;
    await tick();
    const after = addon.batchBufferStats();
    print({
      ok: copied === 0 && !settledBeforeFinalizers && during.jsHeld === before.jsHeld && during.live === before.live + 2 &&
        after.live === before.live && same(r.output, expected.output) && same(r.hidden, expected.hidden),
      before, during, after, copied, settledBeforeFinalizers,
    });
  },

  // Many buffers made and dropped: every block is freed once collected (none leaks), and the bytes
  // reported to V8 follow.
  async churn() {
    const before = addon.batchBufferStats();
    const make = () => {
      const kept = [];
      let zeroed = true;
      for (let i = 0; i < 300; i++) {
        const b = addon.batchBuffer(16384 + i);
        zeroed &&= b[0] === 0 && b[b.length - 1] === 0;
        b[b.length - 1] = i; // writable to its last element
        kept.push(b);
      }
      return { zeroed, made: addon.batchBufferStats() };
    };
    const { zeroed, made } = make();
    let after = made;
    for (let i = 0; i < 200 && after.live > before.live; i++) {
      globalThis.gc();
      await tick();
      after = addon.batchBufferStats();
    }
    const zero = addon.batchBuffer(0);
    const fresh = addon.batchBuffer(1000);
    print({ ok: zeroed && made.live === before.live + 300 && after.live === before.live && after.jsHeld === before.jsHeld &&
      after.bytes === before.bytes && zero.length === 0 && fresh.every((v) => v === 0), before, made, after });
  },

  // A worker thread runs forwardAsync over its own batch buffers and is terminated mid-call: the
  // process lives, and every block is freed once the work is done.
  async 'worker-terminate'() {
    const url = new URL('../../dist/backend/native.js', import.meta.url).href;
    const prngUrl = new URL('../helpers/prng.mjs', import.meta.url).href;
    const source = `(async () => {
      const { parentPort } = await import('node:worker_threads');
      const { loadNative } = await import(${JSON.stringify(url)});
      const { prng, uniform } = await import(${JSON.stringify(prngUrl)});
      const { addon } = loadNative();
      const rand = prng(7);
      const T = 3000, B = 8, I = 64, H = 128;
      const model = new addon.Model({ inputSize: I, hiddenSize: H, numLayers: 1, numDirections: 1, resetAfter: true, bias: true },
        [{ wIh: uniform(rand, 3 * H * I, 0.3), wHh: uniform(rand, 3 * H * H, 0.3), bIh: uniform(rand, 3 * H, 0.3), bHh: uniform(rand, 3 * H, 0.3) }]);
      const x = addon.batchBuffer(T * B * I); x.set(uniform(rand, T * B * I, 1));
      const h0 = addon.batchBuffer(B * H); h0.set(uniform(rand, B * H, 1));
      model.forwardAsync(x, T, B, false, h0, null, 1);
      parentPort.postMessage({ copied: model.copiedBytes });
    })();`;
    const before = addon.batchBufferStats();
    const worker = new Worker(source, { eval: true });
    const started = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const during = addon.batchBufferStats();
    await worker.terminate();
    let after = addon.batchBufferStats();
    for (let i = 0; i < 600 && after.live > before.live; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      after = addon.batchBufferStats();
    }
    print({ ok: started.copied === 0 && during.live === before.live + 2 && after.live === before.live,
      started, before, during, after });
  },
};

if (!cases[which]) {
  print({ ok: false, detail: `no case ${which}` });
  process.exit(2);
}
await cases[which]();
