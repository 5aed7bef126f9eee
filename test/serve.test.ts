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
import { distWarning, prng, runNode, uniform } from './helpers/native.js';

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
      // Calls of tens of milliseconds each: the last of 12 waits behind the others (libuv runs 4 at
      // a time; the js backend one at a time), so the abort reaches it before it starts. Native
      // calls of 1,500 steps took a few ms: a main thread descheduled that long by other work on
      // the machine saw the pool free again, and the last call started before its abort.
      const T = backend === 'native' ? 6000 : 1500;
      const x = { data: uniform(rand, T * 16 * 13, 1), shape: [T, 16, 13] };
      // The signal fires before the 12th call is made: whether a queued call has started when its
      // abort arrives depends on the scheduler, and the addon's own test covers that case
      // (test/workers/addon-bad-calls.mjs, with jobs long enough to be sure).
      const controller = new AbortController();
      const calls = Array.from({ length: 11 }, () => gru.forwardAsync(x));
      controller.abort(new Error('client went away'));
      calls.push(gru.forwardAsync(x, null, { signal: controller.signal }));
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

    // The batcher packs into buffers it keeps for later batches: each batch here reuses what a
    // larger one before it left (longer sequences, states from h0), whose rows must not leak into
    // its padding or into the states of requests without h0.
    it('reuses its packing buffers without carrying one batch into the next', async () => {
      const gru = new GRU({ ...base, bidirectional: true });
      // Each round is one batch: it starts when its sixth request arrives, however slow the machine.
      const batcher = gru.batcher({ maxBatch: 6, maxDelayMs: 60_000 });
      const rand = prng(11);
      const rounds = [[12, 12, 12, 12, 12, 12], [2, 7, 1, 4, 3, 2], [9, 9, 1, 2, 9, 9], [3, 0, 5, 5, 1, 2], [12, 9, 8, 1, 10, 12]];
      for (const [round, lengths] of rounds.entries()) {
        const xs = lengths.map((T) => sequence(rand, T, 13));
        const h0s = lengths.map((_, i) => ((i + round) % 2 ? { data: uniform(rand, 4 * 21, 2), shape: [4, 21] } : undefined));
        const results = await Promise.all(xs.map((x, i) => batcher.run(x, h0s[i])));
        xs.forEach((x, i) => {
          const ref = alone(gru, x, h0s[i]);
          expectBitwise(results[i].output.data, ref.output.data, `round ${round} request ${i} output`);
          expectBitwise(results[i].hidden.data, ref.hidden.data, `round ${round} request ${i} hidden`);
        });
      }
      expect(batcher.stats().batches).toBe(rounds.length);
      await batcher.close();
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
      expect(() => gru.batcher({ maxBatch: 0 })).toThrow(/^options.maxBatch: expected an integer from 1 to \d+, got 0$/);
      expect(() => gru.batcher({ maxDelayMs: -1 })).toThrow(OptionError);
      expect(() => gru.batcher({ maxQueue: 1.5 })).toThrow(/options.maxQueue/);
      expect(() => gru.batcher({ maxDelay: 1 } as never)).toThrow(/unknown option "maxDelay"/);
      expect(() => gru.batcher(null as never)).not.toThrow();
      // A limit of Infinity (or NaN, or below its least) would be no limit: each is refused, named.
      const names = ['maxBatch', 'maxDelayMs', 'maxQueue', 'maxQueueBytes', 'maxBatchBytes', 'maxPadding', 'maxInFlight'];
      for (const name of names) {
        for (const bad of [Infinity, -Infinity, NaN, -1, 0.5, '8', null]) {
          if (name === 'maxDelayMs' && bad === 0.5) continue;
          let error: unknown;
          try {
            gru.batcher({ [name]: bad } as never);
          } catch (e) {
            error = e;
          }
          expect(error, `${name}: ${String(bad)}`).toBeInstanceOf(OptionError);
          expect((error as Error).message, `${name}: ${String(bad)}`).toMatch(new RegExp(`^options\\.${name}: expected `));
        }
      }
      expect(() => gru.batcher({ maxDelayMs: 2 ** 31 })).toThrow(/^options.maxDelayMs: expected a number of ms from 0 to 2147483647/);
      // The defaults are finite, and the batcher says them.
      expect(gru.batcher()).toMatchObject({
        maxBatch: 64, maxDelayMs: 0, maxQueue: 4096, maxQueueBytes: 256 * 2 ** 20, maxBatchBytes: 64 * 2 ** 20, maxPadding: 2, maxInFlight: 1,
      });
      const custom = gru.batcher({ maxQueueBytes: 1000, maxBatchBytes: 5000, maxPadding: 1.25 });
      expect(custom).toMatchObject({ maxQueueBytes: 1000, maxBatchBytes: 5000, maxPadding: 1.25 });
    });

    it('does not pad a long request into a batch of short ones', async () => {
      const gru = new GRU(base);
      // A long delay: nothing starts until close() below, so the queue holds all 41 at once.
      const batcher = gru.batcher({ maxBatch: 64, maxDelayMs: 60_000 });
      const rand = prng(21);
      const shorts = Array.from({ length: 40 }, () => sequence(rand, 2, 13));
      const long = sequence(rand, 400, 13);
      const xs = [...shorts.slice(0, 20), long, ...shorts.slice(20)];
      const pending = xs.map((x) => batcher.run(x));
      // What waits: 41 inputs of 4 bytes a float, no h0.
      expect(batcher.stats()).toMatchObject({ queued: 41, queuedBytes: 4 * 13 * (40 * 2 + 400) });
      await batcher.close();
      const results = await Promise.all(pending);
      xs.forEach((x, i) => expectBitwise(results[i].output.data, alone(gru, x).output.data, `request ${i}`));
      const stats = batcher.stats();
      // The 40 short ones share a batch; the long one, 20 times longer, runs apart rather than
      // padding 40 others to its 400 steps.
      expect(stats.batches).toBe(2);
      expect(stats.batchSize).toMatchObject({ count: 2, max: 40, p50: 1 });
      expect(stats.padding).toMatchObject({ count: 2, max: 1 });
      // A batch's padded bytes: its input and output rows, T_max · B · (I + H), and the states in and out.
      const own = (T: number, B: number) => 4 * B * (T * (13 + 21) + 2 * 2 * 21);
      expect(stats.batchBytes.max).toBe(own(400, 1));
      expect(stats.batchBytes.p50).toBe(own(2, 40));
      expect(stats.queuedBytes).toBe(0);
    });

    it('keeps a batch within maxBatchBytes, and runs a request larger than that alone', async () => {
      const gru = new GRU(base);
      const perRequest = 4 * (10 * (13 + 21) + 2 * 2 * 21);
      const batcher = gru.batcher({ maxBatch: 64, maxDelayMs: 60_000, maxBatchBytes: 5 * perRequest });
      const rand = prng(22);
      const xs = Array.from({ length: 23 }, () => sequence(rand, 10, 13));
      xs.push(sequence(rand, 100, 13));
      const pending = xs.map((x) => batcher.run(x));
      await batcher.close();
      const results = await Promise.all(pending);
      xs.forEach((x, i) => expectBitwise(results[i].output.data, alone(gru, x).output.data, `request ${i}`));
      const stats = batcher.stats();
      // 23 of 10 steps: batches of 5, 5, 5, 5, 3; the one of 100 steps alone.
      expect(stats.batches).toBe(6);
      expect(stats.batchSize.max).toBe(5);
      expect(stats.batchBytes.max).toBe(4 * (100 * (13 + 21) + 2 * 2 * 21));
      expect(stats.padding.max).toBe(1);
    });

    it('bounds its queue in bytes: ERR_QUEUE_FULL beyond maxQueueBytes; a request larger than that is refused', async () => {
      const gru = new GRU(base);
      const bytes = 4 * 5 * 13;
      const batcher = gru.batcher({ maxDelayMs: 60_000, maxQueueBytes: 3 * bytes + 100 });
      const rand = prng(23);
      const x = sequence(rand, 5, 13);
      const settled = Promise.allSettled(Array.from({ length: 5 }, () => batcher.run(x)));
      expect(batcher.stats()).toMatchObject({ queued: 3, queuedBytes: 3 * bytes, rejectedQueueFull: 2 });
      // An h0 counts too: 5·13 + 2·21 floats do not fit in the 100 bytes left.
      await expect(batcher.run(sequence(rand, 0, 13), { data: uniform(rand, 2 * 21, 0.5), shape: [2, 21] }))
        .rejects.toMatchObject({ code: 'ERR_QUEUE_FULL' });
      const tooBig = await batcher.run(sequence(rand, 20, 13)).catch((e: unknown) => e);
      expect(tooBig).toBeInstanceOf(ArgumentError);
      expect((tooBig as Error).message).toMatch(/^x: expected a sequence of at most 880 bytes \(with its h0; maxQueueBytes\), got 1040 bytes$/);
      await batcher.close();
      const outcomes = await settled;
      expect(outcomes.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
      const error = (outcomes[3] as PromiseRejectedResult).reason;
      expect(error).toBeInstanceOf(QueueFullError);
      expect(error.message).toMatch(/maxQueueBytes 880/);
      expect(batcher.stats()).toMatchObject({ requests: 3, completed: 3, rejectedQueueFull: 3, queuedBytes: 0 });
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

    it('counts a session\'s backlog against the batcher\'s maxQueue and maxQueueBytes', async () => {
      const gru = new GRU(base);
      const rand = prng(24);
      const x = sequence(rand, 5000, 13);
      const stepOf = (t: number) => ({ data: x.data.subarray(t * 13, (t + 1) * 13), shape: [13] });
      const batcher = gru.batcher({ maxQueue: 10 });
      const session = batcher.session();
      // 5,000 steps issued at once: 10 are accepted (the first runs, 9 wait behind it), 4,990 turned away.
      const settled = await Promise.allSettled(Array.from({ length: 5000 }, (_, t) => session.step(stepOf(t))));
      const accepted = settled.filter((s) => s.status === 'fulfilled').length;
      expect(accepted).toBe(10);
      for (const s of settled.slice(10)) expect((s as PromiseRejectedResult).reason).toBeInstanceOf(QueueFullError);
      const ref = gru.forward({ data: x.data.subarray(0, 10 * 13), shape: [10, 13] });
      expectBitwise(session.state().data, ref.hidden.data, 'state after the accepted steps');
      expect(session.steps).toBe(10);
      expect(batcher.stats()).toMatchObject({ requests: 10, completed: 10, rejectedQueueFull: 4990, queued: 0, queuedBytes: 0 });

      // In bytes: a step holds its input and the state it starts from, (13 + 2 · 21) floats.
      const perStep = 4 * (13 + 2 * 21);
      const small = gru.batcher({ maxQueueBytes: 3 * perStep });
      const a = small.session();
      const b = small.session();
      const calls = [a.step(stepOf(0)), a.step(stepOf(1)), b.step(stepOf(0)), b.step(stepOf(1)), a.feed({ data: x.data.subarray(0, 26), shape: [2, 13] })];
      expect(small.stats()).toMatchObject({ queued: 3, queuedBytes: 3 * perStep });
      const outcomes = await Promise.allSettled(calls);
      expect(outcomes.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
      expect((outcomes[3] as PromiseRejectedResult).reason.code).toBe('ERR_QUEUE_FULL');
      await small.close();
      expect(small.stats()).toMatchObject({ queued: 0, queuedBytes: 0, completed: 3 });
    });

    it('waits for a session\'s backlog when its batcher closes draining, and rejects it when not', async () => {
      const gru = new GRU(base);
      const rand = prng(25);
      const x = sequence(rand, 6, 13);
      const stepOf = (t: number) => ({ data: x.data.subarray(t * 13, (t + 1) * 13), shape: [13] });
      const draining = gru.batcher();
      const s1 = draining.session();
      const steps = Array.from({ length: 6 }, (_, t) => s1.step(stepOf(t)));
      // All six wait behind one another, none in the queue yet: close() runs them all before it settles.
      await draining.close();
      expect(draining.stats()).toMatchObject({ completed: 6, queued: 0, queuedBytes: 0 });
      await Promise.all(steps);
      expectBitwise(s1.state().data, gru.forward(x).hidden.data, 'drained state');
      await expect(s1.step(stepOf(0))).rejects.toBeInstanceOf(ClosedError);

      const dropping = gru.batcher();
      const s2 = dropping.session();
      const dropped = Array.from({ length: 6 }, (_, t) => s2.step(stepOf(t)));
      await dropping.close({ drain: false });
      const outcomes = await Promise.allSettled(dropped);
      // The steps waited behind one another when close() came: all six are rejected, none is lost.
      for (const s of outcomes) expect((s as PromiseRejectedResult).reason?.code).toBe('ERR_CLOSED');
      expect(dropping.stats()).toMatchObject({ queued: 0, queuedBytes: 0, completed: 0 });
      expect(s2.steps).toBe(0);
    });

    it('puts gru.session() on a batcher with finite limits', () => {
      const gru = new GRU(base);
      const session = gru.session();
      // The model's own session batcher is private (the session's); its limits are the documented
      // defaults, and every session of the model shares it.
      expect(gru.session()['batcher']).toBe(session['batcher']);
      expect(new GRU(base).session()['batcher']).not.toBe(session['batcher']);
      expect(session['batcher']).toMatchObject({
        maxBatch: 256, maxDelayMs: 0, maxQueue: 65536, maxQueueBytes: 256 * 2 ** 20, maxBatchBytes: 64 * 2 ** 20, maxPadding: 2, maxInFlight: 1,
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

// Issue 15, row 4: a 10 MB request among 63 short ones used to be padded into a batch of 63 (peak
// memory +1,474 MiB against +74 MiB alone). Each case runs in a child process of its own, on the
// native backend, through dist/. The figure compared is the anonymous memory the child samples while
// the batch runs (its peak RSS can read low when the kernel drops node's code pages under pressure).
describe.runIf(backendInfo().backend === 'native')('the batcher\'s peak memory', () => {
  type Peak = { peakAboveBaseline: number; anonAboveBaseline: number | null; batches: number; stats: { padding: { max: number } } };
  async function peak(args: string[]) {
    const r = await runNode(['--expose-gc', 'test/workers/batch-rss.mjs', ...args]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as Peak;
    return { ...result, bytes: result.anonAboveBaseline ?? result.peakAboveBaseline };
  }
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

  it('keeps a long request among short ones within 3x of its peak memory alone', async () => {
    const warning = distWarning();
    if (warning) console.warn(warning);
    const alone = await peak(['alone']);
    // The request alone holds at least its input twice (the caller's and the batcher's copy).
    expect(alone.bytes).toBeGreaterThan(20 * 2 ** 20);
    // Among the short ones; and heading a batch (the request after the first, which starts alone),
    // where it picks its companions: the worst case.
    for (const at of ['31', '1']) {
      const mixed = await peak(['mixed', '--long-at', at]);
      const ratio = mixed.bytes / alone.bytes;
      console.log(`long request at ${at}: +${mib(mixed.bytes)} (peak RSS +${mib(mixed.peakAboveBaseline)}), alone ` +
        `+${mib(alone.bytes)} (peak RSS +${mib(alone.peakAboveBaseline)}): ${ratio.toFixed(2)}x, ${mixed.batches} batches`);
      expect(ratio).toBeLessThan(3);
      expect(mixed.stats.padding.max).toBeLessThanOrEqual(2);
    }
  });
});
