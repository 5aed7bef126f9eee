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
 * Phase 3 (issue 15): a mixed-length batcher load, rounds of one long request (--long-steps steps)
 * among 63 short ones in one turn, with maxBatchBytes 4 MiB and maxQueueBytes 64 MiB. Its peak
 * anonymous memory (RssAnon, sampled every millisecond) above the phase's baseline must stay within
 * maxQueueBytes + 2·max(maxBatchBytes, the long request alone) + 64 MiB of slack for uncollected
 * array buffers.
 * Phase 4 (issue 15): long, thin sequences (--thin-steps steps of one input, batch 1, H 8) through
 * forward, forwardAsync and a session, for --thin-rounds rounds; its peak above the baseline must
 * stay within 4 times one call's input and output plus 64 MiB.
 * Exits non-zero when a phase grows more than 5% or is over its limit. Writes bench/results/soak.json.
 */
import os from 'node:os';
import { GRU, Linear, SGD, backendInfo, clipGradNorm, softmaxCrossEntropy } from '../dist/index.js';
import { number, parseCli } from '../bin/args.mjs';
import { anonBytes } from '../test/helpers/memory.mjs';
import { input, writeResult } from './common.mjs';

function parseArgs(argv) {
  const a = parseCli(argv, {
    usage: 'usage: node --expose-gc bench/soak.mjs [--forward-calls N] [--mixed-seconds S] [--every S] [--batcher-rounds N] [--long-steps N]\n' +
      '                                        [--thin-rounds N] [--thin-steps N] [--no-out]',
    options: {
      'forward-calls': { type: 'string', value: number({ integer: true, min: 0 }), default: 1_000_000 },
      // 0 leaves the mixed phase out.
      'mixed-seconds': { type: 'string', value: number({ min: 0 }), default: 60 },
      // The mixed phase reports every S seconds: 0 would report on every loop.
      every: { type: 'string', value: number({ above: 0 }), default: 10 },
      // 0 leaves the batcher phase out; each round is one long request among 63 short ones.
      'batcher-rounds': { type: 'string', value: number({ integer: true, min: 0 }), default: 50 },
      'long-steps': { type: 'string', value: number({ integer: true, min: 1 }), default: 40_000 },
      // 0 leaves the thin phase out.
      'thin-rounds': { type: 'string', value: number({ integer: true, min: 0 }), default: 20 },
      'thin-steps': { type: 'string', value: number({ integer: true, min: 1 }), default: 1_000_000 },
      'no-out': { type: 'boolean' },
    },
  });
  return { forwardCalls: a.forwardCalls, mixedSeconds: a.mixedSeconds, every: a.every, batcherRounds: a.batcherRounds, longSteps: a.longSteps,
    thinRounds: a.thinRounds, thinSteps: a.thinSteps, limit: 0.05, out: !a.noOut };
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

/** Resident anonymous memory (RssAnon, Linux), or RSS where /proc is missing. */
const anon = () => anonBytes() ?? process.memoryUsage().rss;

/** Runs fn while sampling anonymous memory every millisecond: the peak above the baseline before it. */
async function peakDuring(fn) {
  globalThis.gc?.();
  const base = anon();
  let peak = base;
  const timer = setInterval(() => { peak = Math.max(peak, anon()); }, 1);
  try {
    await fn((extra) => { peak = Math.max(peak, anon()); return extra; });
  } finally {
    clearInterval(timer);
  }
  return { base, peak: Math.max(peak, anon()) - base };
}

/** Array buffers V8 has not collected yet, the heap and the allocator's arenas (see the header). */
const SLACK = 64 * 2 ** 20;

async function batcherPhase(args) {
  const I = 64, H = 64;
  const maxBatchBytes = 4 * 2 ** 20, maxQueueBytes = 64 * 2 ** 20;
  const gru = new GRU({ inputSize: I, hiddenSize: H, seed: 4 });
  const batcher = gru.batcher({ maxBatch: 64, maxBatchBytes, maxQueueBytes });
  const long = { data: input(args.longSteps * I, 6), shape: [args.longSteps, I] };
  const shorts = Array.from({ length: 63 }, (_, k) => ({ data: input((1 + (k % 16)) * I, 7 + k), shape: [1 + (k % 16), I] }));
  const alone = 4 * (args.longSteps * (I + H) + 2 * H);
  const limit = maxQueueBytes + 2 * Math.max(maxBatchBytes, alone) + SLACK;
  await Promise.all(shorts.map((x) => batcher.run(x)));
  const t0 = performance.now();
  let requests = 0;
  const { peak } = await peakDuring(async () => {
    for (let r = 0; r < args.batcherRounds; r++) {
      const at = r % 64;
      await Promise.all([...shorts.slice(0, at), long, ...shorts.slice(at)].map((x) => batcher.run(x)));
      requests += 64;
      // The results and the engine's working memory are array buffers that V8 frees only when it
      // collects; collecting each round measures what the batcher holds, not V8's pacing.
      globalThis.gc?.();
    }
  });
  await batcher.close();
  const secs = (performance.now() - t0) / 1000;
  console.log(`batcher: ${requests.toLocaleString('en-US')} requests (${args.batcherRounds} rounds, one of ${args.longSteps} steps among 63 of 1-16) ` +
    `in ${secs.toFixed(1)} s; peak ${mib(peak).toFixed(1)} MiB above the baseline, limit ${mib(limit).toFixed(1)} MiB`);
  return { rounds: args.batcherRounds, requests, seconds: secs, peak, limit, ok: peak <= limit };
}

async function thinPhase(args) {
  const H = 8;
  const gru = new GRU({ inputSize: 1, hiddenSize: H, seed: 5 });
  const x = { data: input(args.thinSteps, 8), shape: [args.thinSteps, 1] };
  const chunk = 4096;
  const one = 4 * args.thinSteps * (1 + H);
  const limit = 4 * one + SLACK;
  gru.forward(x);
  const t0 = performance.now();
  let checksum = 0;
  const { peak } = await peakDuring(async () => {
    for (let r = 0; r < args.thinRounds; r++) {
      checksum += gru.forward(x).hidden.data[0];
      checksum += (await gru.forwardAsync(x)).hidden.data[0];
      // A session fed the same sequence in chunks: its state carries over, its outputs are dropped.
      const session = gru.session();
      for (let t = 0; t < args.thinSteps; t += chunk) {
        await session.feed({ data: x.data.subarray(t, Math.min(args.thinSteps, t + chunk)), shape: [Math.min(chunk, args.thinSteps - t), 1] });
      }
      checksum += session.state().data[0];
    }
  });
  const secs = (performance.now() - t0) / 1000;
  console.log(`thin: ${args.thinRounds} rounds of ${args.thinSteps.toLocaleString('en-US')} steps (forward, forwardAsync, a session) in ${secs.toFixed(1)} s; ` +
    `peak ${mib(peak).toFixed(1)} MiB above the baseline, limit ${mib(limit).toFixed(1)} MiB` + (Number.isFinite(checksum) ? '' : ' (non-finite results!)'));
  return { rounds: args.thinRounds, steps: args.thinSteps, seconds: secs, peak, limit, ok: peak <= limit && Number.isFinite(checksum) };
}

const args = parseArgs(process.argv.slice(2));
console.log(`soak · ${os.cpus()[0]?.model} · node ${process.version} · ${JSON.stringify(backendInfo())}`);
const forward = forwardPhase(args);
const mixed = args.mixedSeconds > 0 ? await mixedPhase(args) : null;
if (mixed) console.log(`mixed: RSS ${(100 * mixed.growth).toFixed(2)}% from the second report to the last`);
const batcherLoad = args.batcherRounds > 0 ? await batcherPhase(args) : null;
const thin = args.thinRounds > 0 ? await thinPhase(args) : null;
const result = { date: new Date().toISOString(), command: 'npm run soak', cpu: os.cpus()[0]?.model, node: process.version,
  backendInfo: backendInfo(), options: args, forward, mixed, batcher: batcherLoad, thin };
if (args.out) writeResult('soak', result, 1);
const ok = forward.ok && (!mixed || mixed.ok) && (!batcherLoad || batcherLoad.ok) && (!thin || thin.ok);
console.log(ok ? 'soak: memory flat (under 5% growth) and within every phase\'s limit' : 'soak: memory grew more than 5% or a phase went over its limit');
process.exit(ok ? 0 : 1);
