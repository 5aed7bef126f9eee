// Run by test/native-memory.test.ts in a child process: the peak resident memory of one forward of
// a long, thin batch (x of T·B·I floats) on one backend, from /proc/self/status (Linux).
//   node peak-rss.mjs <native|js> T B I H   -> one JSON line: { backend, before, peak } in MiB
// `before` is VmHWM after the model, the input and a tiny warm-up call exist; `peak` after the call.
import { readFileSync } from 'node:fs';
import { GRU, tensor } from '../../dist/index.js';

const [backend, T, B, I, H] = [process.argv[2], ...process.argv.slice(3, 7).map(Number)];
const hwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
const gru = new GRU({ inputSize: I, hiddenSize: H, backend, seed: 1 });
const x = new Float32Array(T * B * I);
for (let k = 0; k < x.length; k++) x[k] = ((k * 7919) % 2003) / 2003 - 0.5;
gru.forward(tensor(new Float32Array(2 * I), [2, 1, I]));
const before = hwm();
const { output } = gru.forward(tensor(x, [T, B, I]));
const peak = hwm();
process.stdout.write(JSON.stringify({ backend: gru.backend, before, peak, outputLength: output.data.length }) + '\n');
