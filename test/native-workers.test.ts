// The addon is context-aware (design §5): it loads in worker_threads, each worker's models give the
// main thread's bits while all of them share the process's thread pool, and a worker terminated in
// the middle of native work takes nothing down with it.
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { GRU, backendInfo, type GRUOptions } from '../src/index.js';
import { expectBitwise } from './helpers/compare.js';
import { distWarning, prng, runNode, uniform } from './helpers/native.js';

const native = backendInfo().backend === 'native';
const WORKER = new URL('./workers/forward-worker.mjs', import.meta.url);

const CONFIG: GRUOptions = { inputSize: 29, hiddenSize: 70, numLayers: 2, bidirectional: true, resetAfter: true };
const T = 16;
const B = 5;
const SEED = 4242;
const LENGTHS = [16, 3, 0, 11, 16];
const REPS = 6;

function inputs() {
  const rand = prng(99);
  return {
    x: { data: uniform(rand, T * B * CONFIG.inputSize, 2), shape: [T, B, CONFIG.inputSize] },
    h0: { data: uniform(rand, 4 * B * CONFIG.hiddenSize, 0.9), shape: [4, B, CONFIG.hiddenSize] },
  };
}

interface WorkerReply {
  backend: string;
  isa: string;
  results: Array<{ output: Float32Array; hidden: Float32Array }>;
}

/** Starts a worker and resolves with its first message; rejects on an error or an early exit. */
function runWorker(data: object): { worker: Worker; reply: Promise<unknown>; exit: Promise<number> } {
  const worker = new Worker(WORKER, { workerData: data });
  const exit = new Promise<number>((resolve) => worker.once('exit', resolve));
  const reply = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the worker exited with code ${code} before it replied`)));
  });
  return { worker, reply, exit };
}

describe.skipIf(!native)('native backend in worker_threads', () => {
  const { x, h0 } = inputs();
  let expected: { output: Float32Array; hidden: Float32Array };

  beforeAll(() => {
    const warning = distWarning();
    if (warning) console.warn(warning);
    const gru = new GRU({ ...CONFIG, backend: 'native', seed: SEED });
    const r = gru.forward(x, h0, { lengths: LENGTHS });
    expected = { output: r.output.data, hidden: r.hidden.data };
  });

  it('two workers running forward (and forwardAsync) concurrently give the main thread\'s bits', async () => {
    const data = { mode: 'forward', config: CONFIG, seed: SEED, x, h0, lengths: LENGTHS, reps: REPS };
    const workers = [runWorker({ ...data, useAsync: false }), runWorker({ ...data, useAsync: true })];
    // The main thread keeps the shared pool busy meanwhile.
    const gru = new GRU({ ...CONFIG, backend: 'native', seed: SEED });
    for (let i = 0; i < REPS; i++) {
      expectBitwise(gru.forward(x, h0, { lengths: LENGTHS }).output.data, expected.output, `main thread, call ${i}`);
    }
    const replies = (await Promise.all(workers.map((w) => w.reply))) as WorkerReply[];
    replies.forEach((reply, w) => {
      expect(reply.backend, `worker ${w}: backend`).toBe('native');
      expect(reply.isa, `worker ${w}: isa`).toBe(backendInfo().isa);
      expect(reply.results).toHaveLength(REPS);
      reply.results.forEach((r, i) => {
        expectBitwise(r.output, expected.output, `worker ${w}, call ${i}: output`);
        expectBitwise(r.hidden, expected.hidden, `worker ${w}, call ${i}: hidden`);
      });
    });
    expect(await Promise.all(workers.map((w) => w.exit))).toEqual([0, 0]);
  });

  // In a child process: a crash there is an exit code or a signal here, not the end of vitest.
  it('a worker terminated in the middle of native work crashes nothing, and the addon keeps working', async () => {
    const r = await runNode(['test/workers/terminate-main.mjs', '0,30,120']);
    const events = r.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
    expect(
      { code: r.code, signal: r.signal },
      `the process running and terminating the workers must exit cleanly; stderr: ${r.stderr.trim()}; events: ${r.stdout.trim()}`,
    ).toEqual({ code: 0, signal: null });
    expect(events).toEqual([
      { event: 'terminated', delay: 0, code: 1 },
      { event: 'main', ok: true },
      { event: 'terminated', delay: 30, code: 1 },
      { event: 'main', ok: true },
      { event: 'terminated', delay: 120, code: 1 },
      { event: 'main', ok: true },
      { event: 'fresh', backend: 'native', ok: true },
      { event: 'done' },
    ]);
  });
});
