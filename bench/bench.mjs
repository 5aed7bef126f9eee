#!/usr/bin/env node
/**
 * fastgru's benchmark: forward and forward+backward on the four standard shapes, for every backend
 * that runs here, side by side in one run. Prints median ms and GFLOP/s and writes the figures to
 * bench/results/<name>.json.
 *
 *   npm run bench                      all shapes, both passes
 *   node bench/bench.mjs --shapes serve,d2l --passes forward --forms after --budget 2 --out my-run
 *
 * FLOPs: forward = 2·T·B·3H·(I + H) per layer and direction; forward+backward = 3× forward.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { GRU, backendInfo } from '../dist/index.js';

export const SHAPES = {
  stream: { T: 100, B: 1, I: 64, H: 256 },
  serve: { T: 50, B: 64, I: 128, H: 256 },
  large: { T: 100, B: 32, I: 256, H: 512 },
  d2l: { T: 35, B: 32, I: 28, H: 256 },
};

/** @param {string[]} argv */
function parseArgs(argv) {
  const args = { shapes: Object.keys(SHAPES), passes: ['forward', 'train'], budget: 3, minRuns: 3, out: 'latest', forms: ['after', 'before'] };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    const value = argv[i + 1];
    if (key === '--shapes') args.shapes = value.split(',');
    else if (key === '--passes') args.passes = value.split(',');
    else if (key === '--budget') args.budget = Number(value);
    else if (key === '--min-runs') args.minRuns = Number(value);
    else if (key === '--out') args.out = value;
    else if (key === '--forms') args.forms = value.split(',');
    else if (key === '--help') { console.log('usage: bench.mjs [--shapes a,b] [--passes forward,train] [--budget s] [--min-runs n] [--out name] [--forms after,before]'); process.exit(0); }
    else throw new Error(`unknown argument ${key}`);
    i++;
  }
  for (const f of args.forms) if (f !== 'after' && f !== 'before') throw new Error(`unknown form ${f}; known: after (resetAfter true), before`);
  for (const s of args.shapes) if (!(s in SHAPES)) throw new Error(`unknown shape ${s}; known: ${Object.keys(SHAPES).join(', ')}`);
  return args;
}

/** @param {number[]} xs */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A deterministic input, so every run and backend sees the same numbers. */
function input(n, seed) {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s / 2 ** 32) * 2 - 1;
  }
  return x;
}

/**
 * Times fn: one warm-up call, then at least minRuns calls and until budget seconds have passed.
 * @param {() => void} fn
 */
function time(fn, budget, minRuns) {
  fn();
  const times = [];
  const start = performance.now();
  while (times.length < minRuns || (performance.now() - start) / 1000 < budget) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
    if (times.length >= 200) break;
  }
  return { medianMs: median(times), runs: times.length, minMs: Math.min(...times) };
}

export function forwardFlops({ T, B, I, H }) {
  return 2 * T * B * 3 * H * (I + H);
}

export function runBench(argv = process.argv.slice(2)) {
  const args = parseArgs(argv);
  const info = backendInfo();
  const backends = info.backend === 'native' ? ['js', 'native'] : ['js'];
  const rows = [];
  console.log(`fastgru bench · ${os.cpus()[0]?.model ?? 'cpu'} · node ${process.version}`);
  console.log(`backend info: ${JSON.stringify(info)}`);
  console.log('');
  const header = ['shape', '(T,B,I,H)', 'form', 'pass', ...backends.flatMap((b) => [`${b} ms`, `${b} GFLOP/s`])];
  if (backends.length > 1) header.push('native/js');
  console.log(header.join('\t'));
  for (const name of args.shapes) {
    const shape = SHAPES[name];
    const { T, B, I, H } = shape;
    const x = { data: input(T * B * I, 1), shape: [T, B, I] };
    const dOut = { data: input(T * B * H, 2), shape: [T, B, H] };
    for (const form of args.forms) {
      for (const pass of args.passes) {
        const flops = forwardFlops(shape) * (pass === 'train' ? 3 : 1);
        const row = { shape: name, T, B, I, H, resetAfter: form === 'after', pass, flops, results: {} };
        for (const backend of backends) {
          const gru = new GRU({ inputSize: I, hiddenSize: H, backend, seed: 7, resetAfter: form === 'after' });
          const fn = pass === 'train'
            ? () => gru.forwardTrain(x).backward(dOut)
            : () => gru.forward(x);
          const t = time(fn, args.budget, args.minRuns);
          row.results[backend] = { ...t, gflops: flops / t.medianMs / 1e6 };
        }
        rows.push(row);
        const cells = [name, `(${T},${B},${I},${H})`, form, pass === 'train' ? 'fwd+bwd' : 'forward'];
        for (const b of backends) cells.push(row.results[b].medianMs.toFixed(1), row.results[b].gflops.toFixed(2));
        if (backends.length > 1) cells.push((row.results.js.medianMs / row.results.native.medianMs).toFixed(1) + '×');
        console.log(cells.join('\t'));
      }
    }
  }
  const report = {
    date: new Date().toISOString(),
    command: `node bench/bench.mjs ${argv.join(' ')}`.trim(),
    cpu: os.cpus()[0]?.model,
    cores: os.availableParallelism(),
    node: process.version,
    backendInfo: info,
    rows,
  };
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}${args.out}.json`;
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nwrote ${file}`);
  return report;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) runBench();
