// Run by test/native-workers.test.ts in a child process, so that a crash while a worker is being
// terminated shows up as this process's exit code or signal instead of killing vitest.
// Prints one JSON line per event:
//   { event: 'terminated', delay, code }   a worker running native work was terminated
//   { event: 'main', ok }                  the main thread's forward / forwardAsync gave the expected bits
//   { event: 'fresh', ok, backend }        a new worker, started afterwards, gave the expected bits
//   { event: 'done' }
import { Worker } from 'node:worker_threads';
import { GRU } from '../../dist/index.js';

const WORKER = new URL('./forward-worker.mjs', import.meta.url);
const config = { inputSize: 29, hiddenSize: 70, numLayers: 2, bidirectional: true, resetAfter: true };
const seed = 4242;
const B = 5;
const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');

function fill(n, k) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(i * 0.37 + k);
  return out;
}
const small = { data: fill(16 * B * 29, 1), shape: [16, B, 29] };
const big = { data: fill(400 * B * 29, 2), shape: [400, B, 29] };

const gru = new GRU({ ...config, backend: 'native', seed });
const expected = gru.forward(small).output.data;
const same = (a) => a.length === expected.length && a.every((v, i) => Object.is(v, expected[i]));

function start(data) {
  const worker = new Worker(WORKER, { workerData: data });
  const first = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { worker, first };
}

const delays = (process.argv[2] ?? '0,30,120').split(',').map(Number);
for (const delay of delays) {
  const { worker, first } = start({ mode: 'spin', config, seed, x: big, h0: null, lengths: null });
  await first;
  await new Promise((resolve) => setTimeout(resolve, delay));
  const code = await worker.terminate();
  print({ event: 'terminated', delay, code });
  print({ event: 'main', ok: same(gru.forward(small).output.data) && same((await gru.forwardAsync(small)).output.data) });
}
const { worker, first } = start({ mode: 'forward', config, seed, x: small, h0: null, lengths: null, reps: 2, useAsync: true });
const reply = await first;
print({ event: 'fresh', backend: reply.backend, ok: reply.results.every((r) => same(r.output)) });
await new Promise((resolve) => worker.once('exit', resolve));
print({ event: 'done' });
