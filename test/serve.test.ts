// Serving (src/serve/): forwardAsync under load, the micro-batcher and streaming sessions, on every
// backend this machine has. Every batched or stepped result is compared bit for bit with a forward
// over the same sequence alone.
import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  ArgumentError,
  backendInfo,
  ClosedError,
  GRU,
  OptionError,
  QueueFullError,
  ShapeError,
  type GRUOptions,
  type Tensor,
} from '../src/index.js';
import { expectBitwise } from './helpers/compare.js';
import { expectResponsive } from './helpers/eventloop.js';
import { prng, uniform } from './helpers/native.js';

const backends = backendInfo().backend === 'native' ? (['native', 'js'] as const) : (['js'] as const);

function sequence(rand: () => number, T: number, I: number): Tensor {
  return { data: uniform(rand, T * I, 1.5), shape: [T, I] };
}

/** A forward over one sequence alone: the reference every batched result must equal. */
function alone(gru: GRU, x: Tensor, h0?: Tensor) {
  return gru.forward(x, h0 ?? null);
}

describe.each(backends)('serving on the %s backend', (backend) => {
  const base: GRUOptions = { inputSize: 13, hiddenSize: 21, numLayers: 2, backend, seed: 5 };

  describe('forwardAsync under load', () => {
    it('returns the bits of forward for 200 calls in flight at once', async () => {
      const gru = new GRU({ ...base, resetAfter: false });
      const rand = prng(1);
      const xs = Array.from({ length: 200 }, (_, i) => ({ data: uniform(rand, (1 + (i % 7)) * 3 * 13, 1), shape: [1 + (i % 7), 3, 13] }));
      const results = await Promise.all(xs.map((x) => gru.forwardAsync(x)));
      xs.forEach((x, i) => {
        const ref = gru.forward(x);
        expectBitwise(results[i].output.data, ref.output.data, `call ${i} output`);
        expectBitwise(results[i].hidden.data, ref.hidden.data, `call ${i} hidden`);
      });
    });

    it('rejects with ERR_ABORTED when aborted before it starts, and the others still run', async () => {
      const gru = new GRU(base);
      const rand = prng(2);
      // Calls of some milliseconds each: the last of 12 waits behind the others (libuv runs 4 at a
      // time; the js backend one at a time), so the abort reaches it before it starts.
      const x = { data: uniform(rand, 1500 * 16 * 13, 1), shape: [1500, 16, 13] };
      const controller = new AbortController();
      const calls = Array.from({ length: 12 }, (_, i) => gru.forwardAsync(x, null, i === 11 ? { signal: controller.signal } : {}));
      controller.abort(new Error('client went away'));
      const settled = await Promise.allSettled(calls);
      const last = settled[11];
      expect(last.status).toBe('rejected');
      expect((last as PromiseRejectedResult).reason).toBeInstanceOf(AbortedError);
      expect((last as PromiseRejectedResult).reason.code).toBe('ERR_ABORTED');
      expect((last as PromiseRejectedResult).reason.cause).toEqual(new Error('client went away'));
      for (const s of settled.slice(0, 11)) expect(s.status).toBe('fulfilled');
    });

    it('gives async errors the stack of the code that called it', async () => {
      const gru = new GRU(base);
      async function callerFunctionName() {
        return gru.forwardAsync({ data: new Float32Array(6), shape: [1, 6] });
      }
      const error = await callerFunctionName().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ShapeError);
      expect((error as Error).stack).toContain('callerFunctionName');
    });
  });

  describe('batcher', () => {
    it('packs 1,000 concurrent requests of random lengths and gives each exactly its own forward', async () => {
      const gru = new GRU(base);
      const batcher = gru.batcher({ maxBatch: 64, maxDelayMs: 1 });
      const rand = prng(3);
      const requests = Array.from({ length: 1000 }, () => {
        const T = 1 + Math.floor(rand() * 12);
        const withH0 = rand() < 0.5;
        return { x: sequence(rand, T, 13), h0: withH0 ? { data: uniform(rand, 2 * 21, 0.9), shape: [2, 21] } : undefined };
      });
      const results = await Promise.all(requests.map((r) => batcher.run(r.x, r.h0)));
      requests.forEach((r, i) => {
        const ref = alone(gru, r.x, r.h0);
        expect(results[i].output.shape).toEqual([r.x.shape[0], 21]);
        expect(results[i].hidden.shape).toEqual([2, 21]);
        expectBitwise(results[i].output.data, ref.output.data, `request ${i} output`);
        expectBitwise(results[i].hidden.data, ref.hidden.data, `request ${i} hidden`);
      });
      const stats = batcher.stats();
      expect(stats.completed).toBe(1000);
      expect(stats.requests).toBe(1000);
      expect(stats.queued).toBe(0);
      expect(stats.inFlight).toBe(0);
      // They were batched: far fewer batches than requests, none over maxBatch.
      expect(stats.batches).toBeLessThan(100);
      expect(stats.batchSize.max).toBeLessThanOrEqual(64);
      expect(stats.batchSize.mean).toBeGreaterThan(10);
      expect(stats.latencyMs.p99).toBeGreaterThanOrEqual(stats.latencyMs.p50);
      await batcher.close();
    });

    it('batches both forms and bidirectional models bitwise too, and takes sequences of length 0', async () => {
      for (const extra of [{ resetAfter: false }, { bidirectional: true }, { numLayers: 1, bias: false }] as const) {
        const gru = new GRU({ ...base, ...extra });
        const batcher = gru.batcher({ maxDelayMs: 0 });
        const rand = prng(4);
        const xs = [0, 3, 9, 1, 9].map((T) => sequence(rand, T, 13));
        const results = await Promise.all(xs.map((x) => batcher.run(x)));
        xs.forEach((x, i) => {
          const ref = alone(gru, x);
          expectBitwise(results[i].output.data, ref.output.data, `${JSON.stringify(extra)} request ${i} output`);
          expectBitwise(results[i].hidden.data, ref.hidden.data, `${JSON.stringify(extra)} request ${i} hidden`);
        });
      }
    });

    it('fails a bad request alone; the others in its batch succeed', async () => {
      const gru = new GRU(base);
      const batcher = gru.batcher({ maxDelayMs: 5 });
      const rand = prng(5);
      const good = [sequence(rand, 4, 13), sequence(rand, 7, 13)];
      const calls = [
        batcher.run(good[0]),
        batcher.run({ data: new Float32Array(4 * 12), shape: [4, 12] }),
        batcher.run(good[1], { data: new Float32Array(5), shape: [1, 5] }),
        batcher.run('not a tensor' as never),
        batcher.run(good[1]),
      ];
      const settled = await Promise.allSettled(calls);
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected', 'fulfilled']);
      expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(ShapeError);
      expect((settled[1] as PromiseRejectedResult).reason.message).toMatch(/^x: expected shape \[T, 13\]/);
      expect((settled[2] as PromiseRejectedResult).reason.message).toMatch(/^h0: expected shape \[2, 21\]/);
      expect((settled[3] as PromiseRejectedResult).reason).toBeInstanceOf(ArgumentError);
      expectBitwise((settled[0] as PromiseFulfilledResult<{ output: Tensor }>).value.output.data, alone(gru, good[0]).output.data, 'good 0');
      expectBitwise((settled[4] as PromiseFulfilledResult<{ output: Tensor }>).value.output.data, alone(gru, good[1]).output.data, 'good 1');
      // The bad ones are refused when run() checks them: never accepted, so neither failed nor aborted.
      expect(batcher.stats()).toMatchObject({ requests: 2, completed: 2, failed: 0, aborted: 0, closed: 0 });
    });

    it('rejects with ERR_QUEUE_FULL beyond maxQueue, and runs everything it accepted', async () => {
      const gru = new GRU(base);
      const batcher = gru.batcher({ maxBatch: 4, maxDelayMs: 0, maxQueue: 10 });
      const rand = prng(6);
      const x = sequence(rand, 5, 13);
      const calls = Array.from({ length: 30 }, () => batcher.run(x));
      const settled = await Promise.allSettled(calls);
      const full = settled.filter((s) => s.status === 'rejected');
      const ok = settled.filter((s) => s.status === 'fulfilled');
      // Up to 4 start at once (one batch), 10 wait: the rest are turned away, none is lost.
      expect(full.length).toBeGreaterThan(0);
      expect(ok.length + full.length).toBe(30);
      for (const s of full) {
        expect((s as PromiseRejectedResult).reason).toBeInstanceOf(QueueFullError);
        expect((s as PromiseRejectedResult).reason.code).toBe('ERR_QUEUE_FULL');
      }
      const ref = alone(gru, x);
      for (const s of ok) expectBitwise((s as PromiseFulfilledResult<{ output: Tensor }>).value.output.data, ref.output.data, 'accepted');
      expect(batcher.stats().rejectedQueueFull).toBe(full.length);
    });

    it('cancels a queued request through its AbortSignal', async () => {
      const gru = new GRU(base);
      const batcher = gru.batcher({ maxDelayMs: 50 });
      const controller = new AbortController();
      const x = sequence(prng(7), 3, 13);
      const kept = batcher.run(x);
      const cancelled = batcher.run(x, null, { signal: controller.signal });
      controller.abort();
      await expect(cancelled).rejects.toBeInstanceOf(AbortedError);
      expectBitwise((await kept).output.data, alone(gru, x).output.data, 'kept');
      const already = new AbortController();
      already.abort();
      await expect(batcher.run(x, null, { signal: already.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
      // Counted as aborted, not failed; the one aborted before the call was never accepted.
      expect(batcher.stats()).toMatchObject({ requests: 2, completed: 1, aborted: 1, failed: 0, closed: 0 });
    });

    it('close() drains by default, or rejects what waits with ERR_CLOSED; later runs are rejected', async () => {
      const gru = new GRU(base);
      const x = sequence(prng(8), 6, 13);
      const draining = gru.batcher({ maxDelayMs: 1000 });
      const waiting = [draining.run(x), draining.run(x)];
      await draining.close();
      for (const r of await Promise.all(waiting)) expectBitwise(r.output.data, alone(gru, x).output.data, 'drained');
      await expect(draining.run(x)).rejects.toBeInstanceOf(ClosedError);

      const dropping = gru.batcher({ maxDelayMs: 1000 });
      const dropped = [dropping.run(x), dropping.run(x)];
      await dropping.close({ drain: false });
      for (const s of await Promise.allSettled(dropped)) {
        expect(s.status).toBe('rejected');
        expect((s as PromiseRejectedResult).reason.code).toBe('ERR_CLOSED');
      }
      expect(dropping.stats()).toMatchObject({ closed: 2, failed: 0, aborted: 0 });
    });

    it('checks its options', () => {
      const gru = new GRU(base);
      expect(() => gru.batcher({ maxBatch: 0 })).toThrow(/^options.maxBatch: expected an integer of at least 1, got 0$/);
      expect(() => gru.batcher({ maxDelayMs: -1 })).toThrow(OptionError);
      expect(() => gru.batcher({ maxQueue: 1.5 })).toThrow(/options.maxQueue/);
      expect(() => gru.batcher({ maxDelay: 1 } as never)).toThrow(/unknown option "maxDelay"/);
      expect(() => gru.batcher(null as never)).not.toThrow();
    });

    it('keeps the event loop responsive while it serves a sustained load', async (ctx) => {
      const gru = new GRU({ inputSize: 32, hiddenSize: 128, backend, seed: 9 });
      const batcher = gru.batcher({ maxBatch: 32, maxDelayMs: 1 });
      const rand = prng(10);
      const xs = Array.from({ length: 16 }, () => sequence(rand, 20, 32));
      const expected = xs.map((x) => alone(gru, x).output.data);
      const load = async () => {
        const completed = batcher.stats().completed;
        const end = performance.now() + 1500;
        // 32 clients, each sending its next request when the last one returns.
        await Promise.all(Array.from({ length: 32 }, async (_, c) => {
          for (let k = 0; performance.now() < end; k++) {
            const i = (c + k) % xs.length;
            expectBitwise((await batcher.run(xs[i])).output.data, expected[i], 'served');
          }
        }));
        const served = batcher.stats().completed - completed;
        expect(served).toBeGreaterThan(32);
        return `${served} requests served`;
      };
      // The delay is a timing only on the native backend, whose forward runs off the event loop, and
      // not under a sanitizer's allocator (.ci/sanitized-addon.sh).
      const sanitized = /asan/.test(process.env.LD_PRELOAD ?? '');
      if (backend !== 'native' || sanitized) {
        await load();
        return;
      }
      // A timing on a machine that may be shared: test/helpers/eventloop.ts measures a control
      // around each attempt and skips, with the numbers, when the machine is too loaded to tell.
      const report = await expectResponsive({
        limitMs: 10,
        resolutionMs: 1,
        attempts: 3,
        controlThreads: backendInfo().threads,
        controlMs: 500,
        job: () => load,
      }, (note) => ctx.skip(note));
      console.log(report);
    });
  });

  describe('sessions', () => {
    it('stepping one step at a time gives the bits of one forward, for both forms', async () => {
      for (const resetAfter of [true, false]) {
        const gru = new GRU({ ...base, resetAfter });
        const rand = prng(11);
        const x = sequence(rand, 9, 13);
        const h0 = { data: uniform(rand, 2 * 21, 0.5), shape: [2, 21] };
        const ref = gru.forward(x, h0);
        const session = gru.session(h0);
        for (let t = 0; t < 9; t++) {
          const step = await session.step({ data: x.data.slice(t * 13, (t + 1) * 13), shape: [13] });
          expect(step.output.shape).toEqual([21]);
          expectBitwise(step.output.data, ref.output.data.subarray(t * 21, (t + 1) * 21), `resetAfter ${resetAfter} step ${t}`);
        }
        expectBitwise(session.state().data, ref.hidden.data, `resetAfter ${resetAfter} final state`);
        expect(session.steps).toBe(9);
      }
    });

    it('feeds chunks, exports its state and resumes from it in a new session', async () => {
      const gru = new GRU(base);
      const rand = prng(12);
      const x = sequence(rand, 12, 13);
      const ref = gru.forward(x);
      const first = gru.session();
      const a = await first.feed({ data: x.data.slice(0, 5 * 13), shape: [5, 13] });
      const saved = JSON.parse(JSON.stringify({ data: Array.from(first.state().data), shape: first.state().shape }));
      const resumed = gru.session({ data: new Float32Array(saved.data), shape: saved.shape });
      const b = await resumed.feed({ data: x.data.slice(5 * 13), shape: [7, 13] });
      expectBitwise(a.output.data, ref.output.data.subarray(0, 5 * 21), 'first chunk');
      expectBitwise(b.output.data, ref.output.data.subarray(5 * 21), 'resumed chunk');
      expectBitwise(b.hidden.data, ref.hidden.data, 'final state');
    });

    it('runs the steps of concurrent sessions as shared batches, each in its own order', async () => {
      const gru = new GRU(base);
      const rand = prng(13);
      const xs = Array.from({ length: 24 }, () => sequence(rand, 6, 13));
      const sessions = xs.map(() => gru.session());
      // Every session's six steps are issued at once, without awaiting: they run in order.
      const outputs = await Promise.all(sessions.map((s, i) =>
        Promise.all(Array.from({ length: 6 }, (_, t) => s.step({ data: xs[i].data.subarray(t * 13, (t + 1) * 13), shape: [13] })))));
      xs.forEach((x, i) => {
        const ref = gru.forward(x);
        outputs[i].forEach((o, t) => expectBitwise(o.output.data, ref.output.data.subarray(t * 21, (t + 1) * 21), `session ${i} step ${t}`));
      });
    });

    it('checks its arguments, refuses bidirectional models and rejects calls after close', async () => {
      const gru = new GRU(base);
      expect(() => gru.session({ data: new Float32Array(21), shape: [1, 21] })).toThrow(/^state: expected shape \[2, 21\]/);
      expect(() => new GRU({ ...base, bidirectional: true }).session()).toThrow(/bidirectional/);
      const session = gru.session();
      await expect(session.step({ data: new Float32Array(12), shape: [12] })).rejects.toThrow(/^x: expected shape \[13\]/);
      await expect(session.feed({ data: new Float32Array(26), shape: [13, 2] })).rejects.toThrow(/^chunk: expected shape \[T, 13\]/);
      // A failed call leaves the state as it was.
      expect(Array.from(session.state().data).every((v) => v === 0)).toBe(true);
      session.close();
      await expect(session.step({ data: new Float32Array(13), shape: [13] })).rejects.toBeInstanceOf(ClosedError);
    });
  });
});
