// A worker_threads worker for test/native-workers.test.ts. workerData:
//   { mode: 'forward', config, seed, x, h0, lengths, reps, useAsync }
//       builds the model from the seed, runs forward `reps` times, posts
//       { backend, isa, results: [{ output, hidden }] } (Float32Arrays)
//   { mode: 'spin', config, seed, x }
//       posts 'started', then runs forward and forwardAsync forever (until terminated)
import { parentPort, workerData } from 'node:worker_threads';
import { GRU, backendInfo } from '../../dist/index.js';

const { mode, config, seed, x, h0, lengths } = workerData;
const gru = new GRU({ ...config, backend: 'native', seed });
const opts = lengths ? { lengths } : undefined;

if (mode === 'forward') {
  const results = [];
  for (let i = 0; i < workerData.reps; i++) {
    const r = workerData.useAsync && i % 2 === 1 ? await gru.forwardAsync(x, h0, opts) : gru.forward(x, h0, opts);
    results.push({ output: r.output.data, hidden: r.hidden.data });
  }
  const info = backendInfo();
  parentPort.postMessage({ backend: gru.backend, isa: info.isa, results });
} else if (mode === 'spin') {
  parentPort.postMessage('started');
  for (;;) {
    // Keep async work in flight on the libuv pool while the sync calls run here.
    const pending = [gru.forwardAsync(x, h0, opts), gru.forwardAsync(x, h0, opts)];
    gru.forward(x, h0, opts);
    const run = gru.forwardTrain(x, h0, opts);
    run.backward(null, null);
    await Promise.all(pending);
  }
} else {
  throw new Error(`forward-worker.mjs: unknown mode ${mode}`);
}
