#!/usr/bin/env node
/**
 * The example server (examples/server/server.mjs) under load, with batching on and off: for each
 * setting it starts the server in a child process (the load generator and the server never share an
 * event loop), warms it up, then runs autocannon at 1, 16 and 64 connections. Every request is one
 * sequence, T = 50 steps of I = 128 (H = 256), the same body for both settings. Prints a markdown
 * table and writes bench/results/serve.json.
 *
 *   npm run bench:serve
 *   node bench/serve.mjs --duration 5 --warmup 2 --connections 1,16,64 --body binary|json --max-requests 200000
 *
 * Each run stops after --duration seconds or --max-requests requests, whichever comes first. Both
 * settings run with the same environment (UV_THREADPOOL_SIZE, FASTGRU_THREADS), one server process each.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { number, numbers, oneOf, parseCli, UsageError } from '../bin/args.mjs';
import { machineLine, median, runHeader, truncated, writeResult } from './common.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SERVER = `${ROOT}examples/server/server.mjs`;
const T = 50;
const I = 128;
const H = 256;
const SEED = 1;

function parseArgs(argv) {
  return parseCli(argv, {
    usage: 'usage: node bench/serve.mjs [--duration s] [--warmup s] [--connections 1,16,64] [--body binary|json] [--max-requests n]',
    options: {
      duration: { type: 'string', value: number({ above: 0, max: 600 }), default: 5 },
      warmup: { type: 'string', value: number({ min: 0, max: 600 }), default: 2 },
      connections: { type: 'string', value: numbers({ integer: true, min: 1 }), default: [1, 16, 64] },
      body: { type: 'string', value: oneOf(['binary', 'json']), default: 'binary' },
      'max-requests': { type: 'string', value: number({ integer: true, min: 1 }), default: 200_000 },
    },
    check(args) {
      // Fewer requests than connections would leave connections without a request to make.
      const most = Math.max(...args.connections);
      if (args.maxRequests < most) throw new UsageError(`--max-requests: expected at least the most connections (${most}), got ${args.maxRequests}`);
    },
  });
}

/** mulberry32, as the tests use. */
function uniform(seed, n) {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = 2 * (((t ^ (t >>> 14)) >>> 0) / 4294967296) - 1;
  }
  return out;
}

/** The request both settings get: one sequence [T, I], as binary or JSON. */
function requestBody(x, kind) {
  if (kind === 'binary') return { type: 'application/octet-stream', body: Buffer.from(x.buffer, x.byteOffset, x.byteLength) };
  const rows = Array.from({ length: T }, (_, t) => Array.from(x.subarray(t * I, (t + 1) * I)));
  return { type: 'application/json', body: Buffer.from(JSON.stringify({ x: rows })) };
}

/** Starts `node server.mjs --port 0 --batching on|off`; resolves with its URL once it listens. */
function startServer(batching) {
  const child = spawn(process.execPath, [SERVER, '--port', '0', '--batching', batching ? 'on' : 'off'],
    { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not start within 30 s; it printed: ${out}`));
    }, 30_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1] });
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}) before it listened; it printed: ${out}`));
    });
  });
}

function stopServer(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** CPU seconds (user + system) a process has used, from /proc; null where there is none. */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return null;
  }
}

/** CPU seconds the whole machine has been busy (all cores), from /proc/stat; null where there is none. */
function machineBusySeconds() {
  try {
    const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return null;
  }
}

const getJson = async (url) => (await fetch(url)).json();

function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/** One autocannon run; latencies are kept at full resolution (autocannon's histogram rounds to 1 ms). */
async function load(autocannon, url, request, connections, duration, maxRequests) {
  const latencies = [];
  const instance = autocannon({
    url: `${url}/predict`,
    method: 'POST',
    headers: { 'content-type': request.type },
    body: request.body,
    connections,
    duration,
    maxOverallRequests: maxRequests,
  });
  instance.on('response', (client, status, bytes, ms) => {
    if (status >= 200 && status < 300) latencies.push(ms);
  });
  // autocannon stops by itself at the duration or the request count; this is the backstop.
  const backstop = setTimeout(() => instance.stop(), (duration + 30) * 1000);
  const result = await instance;
  clearTimeout(backstop);
  latencies.sort((a, b) => a - b);
  return { result, latencies };
}

async function runSetting(autocannon, batching, request, args) {
  const { child, url } = await startServer(batching);
  try {
    const health = await getJson(`${url}/health`);
    const reply = await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': request.type }, body: request.body });
    if (reply.status !== 200) throw new Error(`the server answered ${reply.status}: ${await reply.text()}`);
    const hidden = request.type === 'application/json'
      ? Float32Array.from((await reply.json()).hidden[0])
      : new Float32Array(await reply.arrayBuffer());
    if (args.warmup > 0) await load(autocannon, url, request, Math.max(...args.connections), args.warmup, args.maxRequests);
    const rows = [];
    for (const connections of args.connections) {
      const before = await getJson(`${url}/stats`);
      const serverCpu0 = cpuSeconds(child.pid);
      const machine0 = machineBusySeconds();
      const ownCpu0 = process.cpuUsage();
      const { result, latencies } = await load(autocannon, url, request, connections, args.duration, args.maxRequests);
      const ownCpu = process.cpuUsage(ownCpu0);
      const serverCpu1 = cpuSeconds(child.pid);
      const machine1 = machineBusySeconds();
      const after = await getJson(`${url}/stats`);
      const ok = result['2xx'];
      const row = {
        batching,
        connections,
        seconds: result.duration,
        requests: ok,
        requestsPerSec: ok / result.duration,
        p50Ms: percentile(latencies, 0.5),
        p99Ms: percentile(latencies, 0.99),
        maxMs: latencies[latencies.length - 1] ?? NaN,
        errors: result.errors,
        timeouts: result.timeouts,
        non2xx: result.non2xx,
        meanBatch: batching ? (after.completed - before.completed) / Math.max(1, after.batches - before.batches) : 1,
        serverCpuPercent: serverCpu0 === null || serverCpu1 === null ? null : (100 * (serverCpu1 - serverCpu0)) / result.duration,
        loadGeneratorCpuPercent: (100 * (ownCpu.user + ownCpu.system)) / 1e6 / result.duration,
        machineCpuPercent: machine0 === null || machine1 === null ? null : (100 * (machine1 - machine0)) / result.duration,
      };
      // What the rest of the machine took meanwhile: a noisy neighbour shows here.
      row.otherCpuPercent = row.machineCpuPercent === null || row.serverCpuPercent === null ? null
        : Math.max(0, row.machineCpuPercent - row.serverCpuPercent - row.loadGeneratorCpuPercent);
      rows.push(row);
      console.error(`  batching ${batching ? 'on' : 'off'}, ${connections} connections: ${row.requestsPerSec.toFixed(0)} req/s, ` +
        `p50 ${row.p50Ms.toFixed(2)} ms, p99 ${row.p99Ms.toFixed(2)} ms, mean batch ${row.meanBatch.toFixed(1)}, ` +
        `CPU: server ${row.serverCpuPercent?.toFixed(0)}%, autocannon ${row.loadGeneratorCpuPercent.toFixed(0)}%, ` +
        `other processes ${row.otherCpuPercent?.toFixed(0)}% (of ${100 * os.availableParallelism()}%)`);
    }
    return { health, hidden, rows };
  } finally {
    await stopServer(child);
  }
}

const num = (v, d) => (Number.isFinite(v) ? v.toFixed(d) : '–');
const ratio = (v, d) => (Number.isFinite(v) ? truncated(v, d) : '–');

/** The markdown table of a report: both settings side by side for each connection count. */
export function serveTable(report) {
  const lines = [
    '| connections | on: req/s | on: p50 / p99 ms | on: mean batch | off: req/s | off: p50 / p99 ms | **on / off req/s** | errors + non-2xx (on, off) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const byKey = new Map(report.rows.map((r) => [`${r.batching}:${r.connections}`, r]));
  for (const c of report.options.connections) {
    const on = byKey.get(`true:${c}`);
    const off = byKey.get(`false:${c}`);
    if (!on || !off) continue;
    const bad = (r) => r.errors + r.timeouts + r.non2xx;
    lines.push(`| ${c} | ${num(on.requestsPerSec, 0)} | ${num(on.p50Ms, 2)} / ${num(on.p99Ms, 2)} | ${num(on.meanBatch, 1)} | ` +
      `${num(off.requestsPerSec, 0)} | ${num(off.p50Ms, 2)} / ${num(off.p99Ms, 2)} | **${ratio(on.requestsPerSec / off.requestsPerSec, 2)}×** | ` +
      `${bad(on)}, ${bad(off)} |`);
  }
  const other = report.rows.map((r) => r.otherCpuPercent).filter((v) => v !== null && v !== undefined);
  if (other.length > 0) {
    lines.push('');
    lines.push(`Other processes on the machine took up to ${num(Math.max(...other), 0)}% CPU (of ${100 * report.cores}%) during the runs.`);
  }
  return lines.join('\n');
}

/**
 * What batching can give the engine itself, with no HTTP: 64 sequences (the most connections) as one
 * forwardAsync call of B = 64 against 64 forwardAsync calls of one sequence each, all in flight at
 * once (what the server does with batching off). Medians of `rounds` alternating rounds.
 */
async function engineCeiling(GRU, rounds = 15) {
  const B = 64;
  const gru = new GRU({ inputSize: I, hiddenSize: H, seed: SEED });
  const one = Array.from({ length: B }, (_, b) => ({ data: uniform(SEED + b, T * I), shape: [T, I] }));
  const batch = new Float32Array(T * B * I);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) batch.set(one[b].data.subarray(t * I, (t + 1) * I), (t * B + b) * I);
  const batched = [];
  const separate = [];
  for (let r = 0; r < rounds + 2; r++) {
    let t0 = performance.now();
    await gru.forwardAsync({ data: batch, shape: [T, B, I] });
    const a = performance.now() - t0;
    t0 = performance.now();
    await Promise.all(one.map((x) => gru.forwardAsync(x)));
    const b = performance.now() - t0;
    if (r >= 2) {
      batched.push(a);
      separate.push(b);
    }
  }
  const batchedSeqPerSec = (1000 * B) / median(batched);
  const separateSeqPerSec = (1000 * B) / median(separate);
  return { sequences: B, rounds, batchedSeqPerSec, separateSeqPerSec, ratio: batchedSeqPerSec / separateSeqPerSec };
}

export async function runServeBench(argv = process.argv.slice(2)) {
  const args = parseArgs(argv);
  const { default: autocannon } = await import('autocannon');
  const { GRU } = await import('../dist/index.js');
  const x = uniform(SEED, T * I);
  const request = requestBody(x, args.body);
  const expected = new GRU({ inputSize: I, hiddenSize: H, seed: SEED }).forward({ data: x, shape: [T, I] }).hidden.data;
  console.error(`serve bench · ${machineLine()} · ` +
    `${args.body} bodies of ${request.body.length} bytes (T ${T}, I ${I}, H ${H})`);

  const engine = await engineCeiling(GRU);
  console.error(`engine alone (no HTTP): ${engine.sequences} sequences as one batch ${engine.batchedSeqPerSec.toFixed(0)}/s, ` +
    `as ${engine.sequences} separate forwardAsync calls ${engine.separateSeqPerSec.toFixed(0)}/s: ${truncated(engine.ratio, 2)}×`);
  const settings = {};
  for (const batching of [true, false]) {
    settings[batching ? 'on' : 'off'] = await runSetting(autocannon, batching, request, args);
  }
  // Both settings answer with gru.forward's bits, checked before the load.
  for (const [name, s] of Object.entries(settings)) {
    const same = s.hidden.length === H && s.hidden.every((v, k) => Object.is(v, expected[k]));
    if (!same) throw new Error(`batching ${name}: the server's hidden state differs from gru.forward's`);
  }
  const report = {
    ...runHeader(`node bench/serve.mjs ${argv.join(' ')}`.trim()),
    backendInfo: settings.on.health.backend,
    options: {
      ...args,
      T, I, H,
      bodyBytes: request.body.length,
      serverProcesses: 1,
      uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
      fastgruThreads: settings.on.health.backend.threads,
    },
    engine,
    rows: [...settings.on.rows, ...settings.off.rows],
  };
  const file = writeResult('serve', report);
  console.log(serveTable(report));
  console.log(`\nwrote ${file}`);
  return report;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) runServeBench();
