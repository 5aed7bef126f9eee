// A worker_threads worker for test/shared.test.ts. workerData: { shared, backend, x }: builds
// GRU.fromShared(shared, { backend }), runs forward on x and posts { output, hidden, backend }.
import { parentPort, workerData } from 'node:worker_threads';
import { GRU } from '../../dist/index.js';

const { shared, backend, x } = workerData;
const gru = GRU.fromShared(shared, { backend });
const r = gru.forward(x);
parentPort.postMessage({ output: r.output.data, hidden: r.hidden.data, backend: gru.backend });
