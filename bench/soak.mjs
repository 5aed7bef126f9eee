/**
 * Soak: runs the library's calls in a loop and watches the process's memory, to show that nothing
 * accumulates.
 *
 *   npm run soak                                   1,000,000 forward calls, then every kind of call
 *   node --expose-gc bench/soak.mjs --forward-calls 1000000 --mixed-seconds 60 --every 10
 *
 * Phase 1: forward calls on a small model (synchronous, back to back: the case where memory that
 * waits for the event loop would pile up). RSS is read after a warm-up of 5% of the calls and at the
 * end; the growth between them must stay under 5%.
 * Phase 2: forward, forwardAsync, training steps (forwardTrain, backward, an optimizer step),
 * sessions and the batcher, mixed, for a given time; RSS and heap are printed every few seconds and
 * the same 5% rule applies from the second report (the first interval is a warm-up) to the last.
 * Exits non-zero when a phase grows more than 5%. Writes bench/results/soak.json.
 */
import os from 'node:os';
import { GRU, Linear, SGD, backendInfo, clipGradNorm, softmaxCrossEntropy } from '../dist/index.js';
import { number, parseCli } from '../bin/args.mjs';
import { input, writeResult } from './common.mjs';

function parseArgs(argv) {
  const a = parseCli(argv, {
    usage: 'usage: node --expose-gc bench/soak.mjs [--forward-calls N] [--mixed-seconds S] [--every S] [--no-out]',
    options: {
      'forward-calls': { type: 'string', value: number({ integer: true, min: 0 }), default: 1_000_000 },
      // 0 leaves the mixed phase out.
      'mixed-seconds': { type: 'string', value: number({ min: 0 }), default: 60 },
      // The mixed phase reports every S seconds: 0 would report on every loop.
      every: { type: 'string', value: number({ above: 0 }), default: 10 },
      'no-out': { type: 'boolean' },
    },
  });
  return { forwardCalls: a.forwardCalls, mixedSeconds: a.mixedSeconds, every: a.every, limit: 0.05, out: !a.noOut };
}

const mib = (b) => b / 2 ** 20;
function memory() {
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

function forwardPhase(args) {
  const gru = new GRU({ inputSize: 8, hiddenSize: 16, numLayers: 2, seed: 1 });
  const x = { data: input(5 * 2 * 8, 1), shape: [5, 2, 8] };
  const warm = Math.max(1, Math.floor(args.forwardCalls * 0.05));
  const t0 = performance.now();
  for (let i = 0; i < warm; i++) gru.forward(x);
  const start = memory();
  let checksum = 0;
  for (let i = warm; i < args.forwardCalls; i++) checksum += gru.forward(x).hidden.data[0];
  const end = memory();
  const secs = (performance.now() - t0) / 1000;
  const growth = (end.rss - start.rss) / start.rss;
  console.log(`forward: ${args.forwardCalls.toLocaleString('en-US')} calls in ${secs.toFixed(1)} s; RSS after warm-up ` +
    `${mib(start.rss).toFixed(1)} MiB, at the end ${mib(end.rss).toFixed(1)} MiB (${(100 * growth).toFixed(2)}%)` +
    (Number.isFinite(checksum) ? '' : ' (non-finite results!)'));
  return { calls: args.forwardCalls, seconds: secs, start, end, growth, ok: growth < args.limit && Number.isFinite(checksum) };
}

async function mixedPhase(args) {
  const V = 12, H = 32;
  const gru = new GRU({ inputSize: V, hiddenSize: H, seed: 2 });
  const head = new Linear({ inFeatures: H, outFeatures: V, seed: 3 });
  const opt = new SGD({ gru, head }, { lr: 0.1, momentum: 0.9 });
  const batcher = gru.batcher({ maxBatch: 16 });
  const x = { data: input(10 * 4 * V, 4), shape: [10, 4, V] };
  const seq = { data: input(7 * V, 5), shape: [7, V] };
  const targets = Array.from({ length: 40 }, (_, i) => i % V);
  const counts = { forward: 0, forwardAsync: 0, train: 0, session: 0, batcher: 0 };
  const reports = [];
  const t0 = performance.now();
  let next = args.every;
  while (performance.now() - t0 < args.mixedSeconds * 1000) {
    for (let i = 0; i < 20; i++) {
      gru.forward(x);
      counts.forward++;
    }
    const run = gru.forwardTrain(x);
    const out = head.forwardTrain(run.output);
    const { dLogits } = softmaxCrossEntropy(out.output, targets);
    const hb = out.backward(dLogits);
    const grads = { gru: run.backward(hb.dInput).grads, head: hb.grads };
    clipGradNorm(grads, 1);
    opt.step(grads);
    counts.train++;
    const session = gru.session();
    const pending = [gru.forwardAsync(x), ...Array.from({ length: 8 }, () => batcher.run(seq))];
    for (let t = 0; t < 3; t++) await session.step({ data: seq.data.subarray(t * V, (t + 1) * V), shape: [V] });
    await Promise.all(pending);
    counts.forwardAsync++;
    counts.batcher += 8;
    counts.session += 3;
    const secs = (performance.now() - t0) / 1000;
    if (secs >= next) {
      const m = memory();
      reports.push({ seconds: secs, ...m });
      console.log(`mixed ${secs.toFixed(0).padStart(4)} s: RSS ${mib(m.rss).toFixed(1)} MiB, heap ${mib(m.heapUsed).toFixed(1)} MiB, ` +
        `array buffers ${mib(m.arrayBuffers).toFixed(1)} MiB · ${JSON.stringify(counts)}`);
      next += args.every;
    }
  }
  await batcher.close();
  // The first interval is the warm-up (the process's heaps and the allocator's arenas still grow
  // into their working size): the growth is measured from the second report to the last.
  const first = reports[Math.min(1, reports.length - 1)];
  const last = reports[reports.length - 1];
  const growth = first && last ? (last.rss - first.rss) / first.rss : 0;
  return { counts, reports, growth, ok: growth < args.limit };
}

const args = parseArgs(process.argv.slice(2));
console.log(`soak · ${os.cpus()[0]?.model} · node ${process.version} · ${JSON.stringify(backendInfo())}`);
const forward = forwardPhase(args);
const mixed = args.mixedSeconds > 0 ? await mixedPhase(args) : null;
if (mixed) console.log(`mixed: RSS ${(100 * mixed.growth).toFixed(2)}% from the second report to the last`);
const result = { date: new Date().toISOString(), command: 'npm run soak', cpu: os.cpus()[0]?.model, node: process.version,
  backendInfo: backendInfo(), options: args, forward, mixed };
if (args.out) writeResult('soak', result, 1);
const ok = forward.ok && (!mixed || mixed.ok);
console.log(ok ? 'soak: memory flat (under 5% growth)' : 'soak: memory grew more than 5%');
process.exit(ok ? 0 : 1);
