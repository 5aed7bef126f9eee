#!/usr/bin/env node
/**
 * fastgru's benchmark: forward and forward+backward on the four standard shapes, for every backend
 * that runs here, side by side in one run. Prints median ms and GFLOP/s and writes the figures to
 * bench/results/<name>.json.
 *
 *   npm run bench                      all shapes, both passes (node --expose-gc bench/bench.mjs)
 *   node bench/bench.mjs --shapes serve,d2l --passes forward --forms after --budget 2 --out my-run
 *
 * FLOPs: forward = 2·T·B·3H·(I + H) per layer and direction; forward+backward = 3× forward.
 */
import { fileURLToPath } from 'node:url';
import { GRU, backendInfo } from '../dist/index.js';
import { listOf, number, parseCli } from '../bin/args.mjs';
import { input, largeForwardShares, machineLine, median, runHeader, timedTurn, truncated, writeResult } from './common.mjs';

export const SHAPES = {
  stream: { T: 100, B: 1, I: 64, H: 256 },
  serve: { T: 50, B: 64, I: 128, H: 256 },
  large: { T: 100, B: 32, I: 256, H: 512 },
  d2l: { T: 35, B: 32, I: 28, H: 256 },
};

/**
 * The command line of `node bench/bench.mjs` and of `fastgru bench` (`prog` names which in the usage).
 * @param {string[]} argv
 */
function parseArgs(argv, prog) {
  return parseCli(argv, {
    usage: `usage: ${prog} [--shapes ${Object.keys(SHAPES).join(',')}] [--passes forward,train] [--forms after,before] ` +
      '[--budget s] [--min-runs n] [--out name]',
    options: {
      shapes: { type: 'string', value: listOf(Object.keys(SHAPES)), default: Object.keys(SHAPES) },
      passes: { type: 'string', value: listOf(['forward', 'train']), default: ['forward', 'train'] },
      // after: resetAfter true (PyTorch's form), before: resetAfter false.
      forms: { type: 'string', value: listOf(['after', 'before']), default: ['after', 'before'] },
      budget: { type: 'string', value: number({ min: 0 }), default: 2 },
      // timeInterleaved stops an engine at 200 runs, so more could not be kept.
      'min-runs': { type: 'string', value: number({ integer: true, min: 1, max: 200 }), default: 3 },
      out: { type: 'string', default: 'latest' },
    },
  });
}

/**
 * Times several functions side by side: one warm-up call each, then rounds in which each takes a
 * turn (timedTurn, common.mjs) until every one has minRuns timings and budget seconds of them.
 * Turns spread the machine's noise over every engine alike while each is timed in its steady
 * state. Returns the median and min per function.
 * @param {Array<() => void>} fns
 */
export async function timeInterleaved(fns, budget, minRuns, burstMs = 100) {
  const warm = fns.map((fn) => {
    const t0 = performance.now();
    fn();
    return performance.now() - t0;
  });
  const times = fns.map(() => []);
  const spent = fns.map(() => 0);
  const done = (i) => times[i].length >= 200 || (times[i].length >= minRuns && spent[i] >= budget * 1000);
  while (!fns.every((_, i) => done(i))) {
    for (const [i, fn] of fns.entries()) {
      if (done(i)) continue;
      // A collection now (with --expose-gc), so V8's concurrent marking of the previous engine's
      // garbage does not compete for the cores during this turn.
      globalThis.gc?.();
      const record = (ms) => {
        times[i].push(ms);
        spent[i] += ms;
      };
      await timedTurn(fn, warm[i], burstMs, record, () => done(i));
    }
  }
  return times.map((t) => ({ medianMs: median(t), minMs: Math.min(...t), runs: t.length }));
}

export function forwardFlops({ T, B, I, H }) {
  return 2 * T * B * 3 * H * (I + H);
}

/** The engines a run compares: js, and native with one thread and with all of them. */
function engines(info) {
  const list = [{ key: 'js', backend: 'js', threads: 1 }];
  if (info.backend === 'native') {
    list.push({ key: 'native-1', backend: 'native', threads: 1 });
    if (info.threads > 1) list.push({ key: `native-${info.threads}`, backend: 'native', threads: info.threads });
  }
  return list;
}

/** The bench; `prog` is the command the usage names (`fastgru bench` when bin/fastgru.mjs runs it). */
export async function runBench(argv = process.argv.slice(2), prog = 'node bench/bench.mjs') {
  const args = parseArgs(argv, prog);
  const info = backendInfo();
  const list = engines(info);
  const rows = [];
  console.log(`fastgru bench · ${machineLine()}`);
  console.log(`backend info: ${JSON.stringify(info)}`);
  let peak = null;
  if (info.backend === 'native') {
    const { loadNative } = await import('../dist/backend/native.js');
    const addon = loadNative().addon;
    // The best of five quarter-second samples: the machine's peak, not a sample that another
    // process on this shared machine happened to slow (which would flatter the ratio below).
    const best = (threads) => Math.max(...Array.from({ length: 5 }, () => addon.fmaPeak(threads, 0.25)));
    peak = { 1: best(1), [info.threads]: best(info.threads) };
    console.log(`FMA peak (${info.isa}, best of 5 samples): ${peak[1].toFixed(1)} GFLOP/s on 1 thread, ` +
      `${peak[info.threads].toFixed(1)} on ${info.threads}`);
  }
  console.log('');
  const best = list[list.length - 1].key;
  const header = ['shape', '(T,B,I,H)', 'form', 'pass', ...list.flatMap((e) => [`${e.key} ms`, `${e.key} GFLOP/s`])];
  if (list.length > 1) header.push(`${best}/js`);
  console.log(header.join('\t'));
  for (const name of args.shapes) {
    const shape = SHAPES[name];
    const { T, B, I, H } = shape;
    const x = { data: input(T * B * I, 1), shape: [T, B, I] };
    const dOut = { data: input(T * B * H, 2), shape: [T, B, H] };
    for (const form of args.forms) {
      for (const pass of args.passes) {
        const flops = forwardFlops(shape) * (pass === 'train' ? 3 : 1);
        const fns = list.map((e) => {
          const gru = new GRU({ inputSize: I, hiddenSize: H, backend: e.backend, threads: e.threads, seed: 7, resetAfter: form === 'after' });
          return pass === 'train' ? () => gru.forwardTrain(x).backward(dOut) : () => gru.forward(x);
        });
        const timed = await timeInterleaved(fns, args.budget, args.minRuns);
        const row = { shape: name, T, B, I, H, resetAfter: form === 'after', pass, flops, results: {} };
        list.forEach((e, i) => {
          row.results[e.key] = { ...timed[i], threads: e.threads, gflops: flops / timed[i].medianMs / 1e6 };
        });
        rows.push(row);
        const cells = [name, `(${T},${B},${I},${H})`, form, pass === 'train' ? 'fwd+bwd' : 'forward'];
        for (const e of list) cells.push(row.results[e.key].medianMs.toFixed(2), row.results[e.key].gflops.toFixed(2));
        if (list.length > 1) cells.push(truncated(row.results.js.medianMs / row.results[best].medianMs, 1) + '×');
        console.log(cells.join('\t'));
      }
    }
  }
  if (peak) {
    const shares = largeForwardShares(rows, best, peak[info.threads]);
    if (shares.length) {
      const parts = shares.map((s) => `${s.gflops.toFixed(1)} GFLOP/s = ${s.percent}% (${s.form})`);
      const fastest = shares.map((s) => `${s.bestGflops.toFixed(1)} GFLOP/s = ${s.bestPercent}% (${s.form})`);
      console.log(`\nlarge forward on ${info.threads} threads, of the FMA peak: ${parts.join(', ')}`);
      console.log(`  its fastest samples: ${fastest.join(', ')}`);
    }
  }
  const report = { ...runHeader(`node bench/bench.mjs ${argv.join(' ')}`.trim()), backendInfo: info, fmaPeakGflops: peak, rows };
  const file = writeResult(args.out, report);
  console.log(`\nwrote ${file}`);
  return report;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) runBench();
