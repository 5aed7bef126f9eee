/**
 * Memory of one model served from several worker_threads: built from one share (gru.share() →
 * GRU.fromShared in each worker: the weights stay in one SharedArrayBuffer and the native backend
 * packs them once per process) against each worker loading its own copy of the state dict.
 *
 *   npm run bench:workers                          4 workers, hiddenSize 768, 2 layers; writes
 *                                                  bench/results/workers.json (for docs/benchmarks.md)
 *   node bench/shared-workers.mjs --workers 4 --hidden 768 --layers 2 [--json]   (--json: print, write nothing)
 *
 * Each mode runs in a fresh child process, so the resident set sizes (RSS) do not mix. Reported:
 * the RSS growth from before the workers start to when each of them has built its model and run a
 * forward, against the size of the parameters.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import { number, oneOf, parseCli } from '../bin/args.mjs';
import { writeResult } from './common.mjs';

const HERE = fileURLToPath(import.meta.url);
const DIST = new URL('../dist/index.js', import.meta.url).href;

function parseArgs(argv) {
  return parseCli(argv, {
    usage: 'usage: node bench/shared-workers.mjs [--workers N] [--hidden H] [--layers L] [--json]',
    options: {
      workers: { type: 'string', value: number({ integer: true, min: 1 }), default: 4 },
      hidden: { type: 'string', value: number({ integer: true, min: 1 }), default: 768 },
      layers: { type: 'string', value: number({ integer: true, min: 1 }), default: 2 },
      json: { type: 'boolean' },
      // The mode a child process measures: main() runs this script once per mode with --child.
      child: { type: 'string', value: oneOf(['shared', 'copies']), default: null },
    },
  });
}

// The worker: builds its model (from the share, or from its own copy of the state dict), runs one
// forward, reports, and waits to be told to exit, so every worker's memory is live at the reading.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.dist).then(async ({ GRU }) => {
  const { mode, shared, stateDict, options } = workerData;
  let gru;
  if (mode === 'shared') gru = GRU.fromShared(shared);
  else gru = new GRU(options).loadStateDict(stateDict);
  const T = 8, I = options.inputSize;
  const x = { data: new Float32Array(T * I).fill(0.5), shape: [T, I] };
  const r = gru.forward(x);
  parentPort.postMessage({ checksum: r.hidden.data.reduce((a, b) => a + b, 0) });
  parentPort.once('message', () => process.exit(0));
});
`;

async function child(mode, args) {
  const { GRU, backendInfo } = await import(DIST);
  const H = args.hidden;
  const options = { inputSize: H, hiddenSize: H, numLayers: args.layers, seed: 1 };
  const gru = new GRU(options);
  let paramBytes = 0;
  const sd = gru.stateDict();
  for (const t of Object.values(sd)) paramBytes += t.data.byteLength;
  // What each mode hands its workers: one share, or a plain copy of the state dict per worker.
  const shared = mode === 'shared' ? gru.share() : null;
  const plain = mode === 'copies' ? Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, { data: t.data, shape: [...t.shape] }])) : null;
  globalThis.gc?.();
  const before = process.memoryUsage().rss;
  const workers = [];
  const checks = [];
  for (let w = 0; w < args.workers; w++) {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { dist: DIST, mode, shared, stateDict: plain, options } });
    workers.push(worker);
    checks.push(new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    }));
  }
  const replies = await Promise.all(checks);
  globalThis.gc?.();
  const after = process.memoryUsage().rss;
  for (const worker of workers) worker.postMessage('exit');
  await Promise.all(workers.map((worker) => new Promise((resolve) => worker.once('exit', resolve))));
  return {
    mode,
    backend: backendInfo().backend,
    workers: args.workers,
    paramBytes,
    rssGrowthBytes: after - before,
    sameResults: replies.every((r) => r.checksum === replies[0].checksum),
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.child) {
    process.stdout.write(JSON.stringify(await child(args.child, args)));
    return;
  }
  const rows = [];
  for (const mode of ['shared', 'copies']) {
    const r = spawnSync(process.execPath, ['--expose-gc', HERE, '--child', mode, '--workers', String(args.workers),
      '--hidden', String(args.hidden), '--layers', String(args.layers)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the ${mode} run failed (${r.status}): ${r.stderr}`);
    rows.push(JSON.parse(r.stdout));
  }
  const { json, child: _child, ...options } = args;
  const result = { date: new Date().toISOString(), command: 'npm run bench:workers', cpu: os.cpus()[0]?.model, node: process.version, ...options, rows };
  if (json) {
    process.stdout.write(JSON.stringify(result));
    return;
  }
  writeResult('workers', result, 1);
  const mb = (b) => (b / 2 ** 20).toFixed(0);
  console.log(`${args.workers} workers, hiddenSize ${args.hidden}, ${args.layers} layers: parameters ${mb(rows[0].paramBytes)} MiB, backend ${rows[0].backend}`);
  for (const r of rows) {
    console.log(`${r.mode.padEnd(7)} RSS growth ${mb(r.rssGrowthBytes)} MiB (${(r.rssGrowthBytes / r.paramBytes).toFixed(1)}× the parameters)` +
      `${r.sameResults ? '' : '  (workers disagree!)'}`);
  }
  console.log('wrote bench/results/workers.json');
}

await main();
