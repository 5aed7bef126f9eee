// Run by test/threads.test.ts in a child process (under taskset, or with FASTGRU_THREADS set):
//   node threads-child.mjs info     -> one JSON line: { info } (backendInfo())
//   node threads-child.mjs fmaPeak  -> { info, added }: OS threads that addon.fmaPeak(64) added
//   node threads-child.mjs forward  -> { info, added }: OS threads that a forward with threads: 64 added
// The pool starts its workers on first use and keeps them, so the threads a call adds are the
// workers it ran on, less the caller: a count, read from /proc/self/status, not a time.
import { readFileSync } from 'node:fs';
import { GRU, backendInfo } from '../../dist/index.js';
import { loadNative } from '../../dist/backend/native.js';
import { prng, uniform } from '../helpers/prng.mjs';

const osThreads = () => Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
const mode = process.argv[2];
const info = backendInfo();
const out = { info };
if (mode === 'fmaPeak') {
  const { addon } = loadNative();
  const before = osThreads();
  addon.fmaPeak(64, 0.02);
  out.added = osThreads() - before;
} else if (mode === 'forward') {
  // 8 x 64 rows of a 256-wide layer: some 400 MFLOP, worth a hundred threads by threads_for's
  // measure, so only the cap keeps the count down.
  const gru = new GRU({ inputSize: 256, hiddenSize: 256, backend: 'native', threads: 64, seed: 1 });
  const x = { data: uniform(prng(2), 8 * 64 * 256, 1), shape: [8, 64, 256] };
  const before = osThreads();
  gru.forward(x);
  out.added = osThreads() - before;
}
console.log(JSON.stringify(out));
