// Peak memory of one long request through the batcher, alone or among short ones (issue 15, row 4).
// A child process of its own, so that its peak RSS is this case's alone:
//
//   node test/workers/batch-rss.mjs alone|mixed [--backend native|js] [--mb 10] [--short 63] [--long-at 32]
//
// Builds a model (I = H = 64), a 10 MB long sequence and short ones (8 steps), warms the batcher
// up, then measures the peak memory above the warmed-up baseline while the long request runs alone
// or in the same turn as the short ones, two ways:
// - peakAboveBaseline: the peak RSS (process.resourceUsage().maxRSS, the kernel's high-water mark)
//   after the run less the one before it. File-backed pages (node's code) that the kernel drops
//   under memory pressure after the baseline make it read low.
// - anonAboveBaseline: the most anonymous memory (RssAnon of /proc/self/status, Linux) sampled every
//   millisecond while the native forward runs off the event loop (the padded batch is alive all
//   along), less the same before: immune to the page cache. null where /proc is missing.
// Prints one JSON line with both, in bytes, and the batcher's stats.
import { GRU } from '../../dist/index.js';
import { anonSampler } from '../helpers/memory.mjs';

const args = process.argv.slice(2);
const mode = args[0];
if (mode !== 'alone' && mode !== 'mixed') throw new Error(`expected the mode alone or mixed, got ${mode}`);
const opt = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at < 0 ? fallback : args[at + 1];
};
const backend = opt('backend', 'native');
const mb = Number(opt('mb', '10'));
const shortCount = Number(opt('short', '63'));
// Where the long request comes among the short ones. The first request of a turn starts alone at
// once, so at 1 the long one heads the next batch, which then picks its companions: the worst case.
const longAt = Number(opt('long-at', String(shortCount >> 1)));
if (!(mb > 0) || !Number.isInteger(shortCount) || shortCount < 0 || !Number.isInteger(longAt) || longAt < 0 || longAt > shortCount) {
  throw new Error('--mb: a positive number; --short: an integer >= 0; --long-at: an integer from 0 to --short');
}

const I = 64;
const H = 64;
const gru = new GRU({ inputSize: I, hiddenSize: H, backend, seed: 1 });
const batcher = gru.batcher({ maxBatch: shortCount + 1 });

/** A deterministic sequence of T steps (no randomness: the same bytes every run). */
function sequence(T, salt) {
  const data = new Float32Array(T * I);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37 + salt) * 0.5;
  return { data, shape: [T, I] };
}

const longT = Math.round((mb * 2 ** 20) / (I * 4));
const long = sequence(longT, 0);
const shorts = Array.from({ length: shortCount }, (_, k) => sequence(8, k + 1));

// Warm-up: the engine's buffers for short batches, the code paths, the heap.
for (let r = 0; r < 3; r++) await Promise.all(shorts.map((x) => batcher.run(x)));
globalThis.gc?.();
const baseline = process.resourceUsage().maxRSS * 1024;
const sampler = anonSampler();
const batchesBefore = batcher.stats().batches;

let results;
if (mode === 'alone') results = [await batcher.run(long)];
else {
  // The long request arrives among the short ones, all in one turn of the event loop.
  results = await Promise.all([...shorts.slice(0, longAt), long, ...shorts.slice(longAt)].map((x) => batcher.run(x)));
}
const peak = process.resourceUsage().maxRSS * 1024;
const { base: anonBaseline, peak: anonPeak } = sampler.stop();
let checksum = 0;
for (const r of results) checksum += r.hidden.data[0];
const stats = batcher.stats();
await batcher.close();
console.log(JSON.stringify({
  mode, backend, longAt: mode === 'mixed' ? longAt : null, longBytes: long.data.byteLength, longSteps: longT, shortRequests: mode === 'mixed' ? shortCount : 0,
  baseline, peak, peakAboveBaseline: peak - baseline, anonBaseline, anonAboveBaseline: anonBaseline === null ? null : anonPeak - anonBaseline,
  checksum,
  batches: stats.batches - batchesBefore, stats,
}));
