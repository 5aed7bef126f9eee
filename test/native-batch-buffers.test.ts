// The addon's batch buffers (its boundary rule 5, native/addon/addon.cpp): forwardAsync reads x and
// h0 that lie in them in place, under a reference to their native block, instead of copying them;
// any other array is copied as before. Every case runs in a child process
// (test/workers/batch-buffers.mjs), so a crash fails a test here; under .ci/sanitized-addon.sh the
// child runs the sanitized addon, where a read of a freed block is a report that ends it.
import { describe, expect, it } from 'vitest';
import { backendInfo, GRU } from '../src/index.js';
import { distWarning, runNode } from './helpers/native.js';

const native = backendInfo().backend === 'native';

interface Reply {
  case: string;
  ok: boolean;
  [key: string]: unknown;
}

async function runCase(which: string): Promise<Reply> {
  // One libuv thread: drop-gc queues its call behind another, and the finalizers run meanwhile.
  const r = await runNode(['--expose-gc', 'test/workers/batch-buffers.mjs', which], { UV_THREADPOOL_SIZE: '1' }, 170_000);
  expect({ code: r.code, signal: r.signal }, `${which}: ${r.stderr.trim().split('\n').slice(0, 6).join(' | ')}`)
    .toEqual({ code: 0, signal: null });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  expect(line, `${which}: the child printed its result`).toBeDefined();
  return JSON.parse(line!) as Reply;
}

describe.skipIf(!native)('forwardAsync over the addon\'s batch buffers', () => {
  const warning = distWarning();
  if (warning) console.warn(warning);

  // Each case runs in a child process (test/workers/batch-buffers.mjs), so that a use-after-free
  // under ASan ends the child and fails the case.
  it.each([
    // copiedBytes is 0 for x and h0 in batch buffers (views inside larger blocks too) and counts
    // each plain array copied; every way gives the synchronous forward's bits.
    ['no-copy', 'reads owned x and h0 in place (no bytes copied), with the bits of the copying path'],
    // A SharedArrayBuffer or a view into a plain buffer is copied; a view of a block too short for
    // x is refused by name (ERR_SHAPE); JS cannot make a view past the block's end at all.
    ['not-owned', 'copies arrays the addon did not make and refuses views that do not fit'],
    ['detach', 'gives the same bits when the caller moves the buffers away mid-call'],
    // The JS arrays' finalizers run while the call waits for the one libuv thread (jsHeld falls
    // back, live stays up by two): the work's references keep the blocks, which it then reads, and
    // they are freed once it settles.
    ['drop-gc', 'keeps the blocks alive when their only arrays are dropped and collected before the call ran'],
    ['churn', 'frees every block once collected'],
    ['worker-terminate', 'survives a worker terminated while a call reads its batch buffers, and frees them'],
  ])('%s: %s', async (name) => {
    const reply = await runCase(name);
    expect(reply.ok, JSON.stringify(reply)).toBe(true);
  }, 180_000);
});

describe.skipIf(!native)('the batcher on the native backend', () => {
  // The batcher packs into batch buffers: a batch of several requests reaches the engine without a
  // second copy (before, forwardAsync copied x and h0 of every packed batch).
  it('hands its packed batch to the engine without copying it', async () => {
    const gru = new GRU({ inputSize: 8, hiddenSize: 16, numLayers: 2, backend: 'native', seed: 3 });
    const batcher = gru.batcher({ maxBatch: 4, maxDelayMs: 60_000 }); // one batch, when the fourth arrives
    const xs = [5, 3, 5, 1].map((T, k) => ({ data: new Float32Array(T * 8).map((_, i) => Math.sin(i + k)), shape: [T, 8] }));
    const h0 = { data: new Float32Array(2 * 16).fill(0.25), shape: [2, 16] };
    const results = await Promise.all(xs.map((x, k) => batcher.run(x, k % 2 ? h0 : null)));
    // The facade's private fields, read for this diagnostic only: GRU.model, NativeModel.handle.
    const handle = (gru as unknown as { model: { handle: { copiedBytes: number } } }).model.handle;
    expect(batcher.stats().batches).toBe(1);
    expect(handle.copiedBytes).toBe(0);
    results.forEach((r, k) => {
      const alone = gru.forward({ data: xs[k].data, shape: [xs[k].shape[0], 1, 8] }, k % 2 ? { data: h0.data, shape: [2, 1, 16] } : undefined);
      expect(new Uint32Array(r.output.data.buffer)).toEqual(new Uint32Array(alone.output.data.buffer));
      expect(new Uint32Array(r.hidden.data.buffer)).toEqual(new Uint32Array(alone.hidden.data.buffer));
    });
    await batcher.close();
  });
});
