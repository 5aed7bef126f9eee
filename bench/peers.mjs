#!/usr/bin/env node
/**
 * fastgru beside its peers, in one process, on the four standard shapes and both GRU forms:
 * onnxruntime-node's GRU operator, TensorFlow.js's tf.layers.gru, and (as a subprocess, when
 * /usr/bin/python3 has torch) PyTorch. Every library gets the same weights, taken from one fastgru
 * model's state dict and converted; each shape and form first checks that ORT's and tfjs's outputs
 * match fastgru's. Timed runs come in bursts interleaved round-robin (A, B, C, A, B, C, ...), so
 * machine noise hits every library alike while each is timed in its steady state (a burst's first
 * run, which pays for waking the library's threads after another library ran, is not timed); the
 * median is reported.
 *
 *   npm run bench:peers                           builds, installs bench/peers if needed, runs all
 *   npm run bench:peers -- --budget 0.5 --shapes d2l --forms before
 *   node bench/peers.mjs --help
 *
 * Writes bench/results/peers.json and (through bench/chart.mjs) bench/results/peers.svg.
 * FLOPs: forward = 2·T·B·3H·(I + H); forward+backward = 3× forward.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { GRU, backendInfo } from '../dist/index.js';
import { listOf, number, parseCli, UsageError } from '../bin/args.mjs';
import { SHAPES, forwardFlops } from './bench.mjs';
import { RESULTS, input, median, timedTurn, truncated, writeResult } from './common.mjs';
import { writeChart } from './chart.mjs';
import { ensurePeers } from './peers/install.mjs';
import { gruModel, onnxWeights } from './peers/onnx.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const TOLERANCE = 1e-4;

const USAGE = `usage: node bench/peers.mjs [options]
  --budget S          seconds of timed runs per library per shape and form (default 3)
  --min-runs N        timed runs at least, budget or not (default 1: the slow peers take seconds a run;
                      the fast libraries make dozens to hundreds of runs within the budget)
  --max-runs N        timed runs at most (default 300)
  --slow S            a library whose warm-up run takes longer than S seconds is not run again: that run
                      is its one timing, marked † (default 8; tfjs takes 10-80 s a run on the larger shapes)
  --threads N         threads for fastgru, ORT's intra-op pool and PyTorch (default 2)
  --shapes a,b        of ${Object.keys(SHAPES).join(', ')} (default all)
  --forms a,b         after (resetAfter true), before (default both)
  --no-ort | --no-tfjs | --no-pytorch | --no-train      leave a library or the forward+backward pass out
  --ort-1t | --no-ort-1t   time ORT with one intra-op thread too (default: when fastgru is native, beside
                      fastgru's one-thread column)
  --burst-ms MS       a fast library runs back to back for about this long per turn, after one untimed run
                      (default 100)
  --ort-cooldown MS   untimed pause after each multi-threaded ORT run (default 60): ORT's idle intra-op
                      workers spin for about 50 ms after run() returns, which would slow whatever runs next
  --python PATH       the python with torch (default /usr/bin/python3)
  --pytorch-blas DIR  put DIR first on the PyTorch subprocess's LD_LIBRARY_PATH (a folder holding an
                      optimised libblas.so.3, e.g. OpenBLAS's; Debian's torch calls the system's libblas.so.3)
  --out NAME          bench/results/NAME.json and NAME.svg (default peers)`;

function parseArgs(argv) {
  const a = parseCli(argv, {
    usage: USAGE,
    options: {
      budget: { type: 'string', value: number({ min: 0 }), default: 3 },
      'min-runs': { type: 'string', value: number({ integer: true, min: 1 }), default: 1 },
      'max-runs': { type: 'string', value: number({ integer: true, min: 1 }), default: 300 },
      slow: { type: 'string', value: number({ min: 0 }), default: 8 },
      threads: { type: 'string', value: number({ integer: true, min: 1 }), default: 2 },
      shapes: { type: 'string', value: listOf(Object.keys(SHAPES)), default: Object.keys(SHAPES) },
      forms: { type: 'string', value: listOf(['after', 'before']), default: ['after', 'before'] },
      'no-ort': { type: 'boolean' },
      'no-tfjs': { type: 'boolean' },
      'no-pytorch': { type: 'boolean' },
      'no-train': { type: 'boolean' },
      'ort-1t': { type: 'boolean' },
      'no-ort-1t': { type: 'boolean' },
      'burst-ms': { type: 'string', value: number({ min: 0 }), default: 100 },
      'ort-cooldown': { type: 'string', value: number({ min: 0 }), default: 60 },
      python: { type: 'string', default: '/usr/bin/python3' },
      'pytorch-blas': { type: 'string', default: null },
      out: { type: 'string', default: 'peers' },
    },
    check(v) {
      if (v.ort1t && v.noOrt1t) throw new UsageError('--ort-1t and --no-ort-1t: give one of them');
    },
  });
  return {
    budget: a.budget, minRuns: a.minRuns, maxRuns: a.maxRuns, slow: a.slow, threads: a.threads,
    shapes: a.shapes, forms: a.forms,
    ort: !a.noOrt, tfjs: !a.noTfjs, pytorch: !a.noPytorch, train: !a.noTrain,
    // Neither flag: decided once the backend is known (runPeers).
    ort1t: a.ort1t ? true : a.noOrt1t ? false : undefined,
    python: a.python, pytorchBlas: a.pytorchBlas, out: a.out, ortCooldown: a.ortCooldown, burstMs: a.burstMs,
  };
}

function maxAbsDiff(a, b) {
  if (a.length !== b.length) throw new Error(`compared arrays differ in length: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** [P, Q, R] -> [Q, P, R] (time-major <-> batch-major). */
function swap01(data, P, Q, R) {
  const out = new Float32Array(data.length);
  for (let p = 0; p < P; p++) for (let q = 0; q < Q; q++) out.set(data.subarray((p * Q + q) * R, (p * Q + q + 1) * R), (q * P + p) * R);
  return out;
}

/**
 * PyTorch's gate rows (r, z, n) of a [3H, K] matrix as a Keras kernel [K, 3H] with gate columns
 * z, r, h: kernel[k, g·H + j] = W_g[j, k].
 */
function kerasKernel(m, H, K) {
  const out = new Float32Array(K * 3 * H);
  const rowOf = [H, 0, 2 * H]; // Keras gate g = z, r, h -> first PyTorch row
  for (let g = 0; g < 3; g++) {
    for (let j = 0; j < H; j++) {
      const row = (rowOf[g] + j) * K;
      for (let k = 0; k < K; k++) out[k * 3 * H + g * H + j] = m[row + k];
    }
  }
  return out;
}

function kerasBias(b, H) {
  const out = new Float32Array(3 * H);
  out.set(b.subarray(H, 2 * H), 0);
  out.set(b.subarray(0, H), H);
  out.set(b.subarray(2 * H, 3 * H), 2 * H);
  return out;
}

function cpuModel() {
  return os.cpus()[0]?.model?.trim() ?? 'unknown cpu';
}

/** Loads the peers from bench/peers/node_modules (they are not dependencies of fastgru). */
async function loadPeers(args) {
  const peers = {};
  const require = createRequire(`${HERE}peers/package.json`);
  if (args.ort) peers.ort = require('onnxruntime-node');
  if (args.tfjs) {
    peers.tf = require('@tensorflow/tfjs');
    await peers.tf.setBackend('cpu');
    await peers.tf.ready();
    // The cpu backend greets its first tensor in Node with advice to install tfjs-node; the notes
    // below say why it is not used.
    peers.tf.backend().firstUse = false;
  }
  return peers;
}

function versionOf(name) {
  try {
    return JSON.parse(readFileSync(`${HERE}peers/node_modules/${name}/package.json`, 'utf8')).version;
  } catch {
    return undefined;
  }
}

/**
 * PyTorch in a subprocess, before the Node libraries run (never beside them: it would share the
 * cores). Returns its report, or null with the reason printed.
 */
function runPyTorch(args, notes) {
  const probe = spawnSync(args.python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    const why = probe.error ? probe.error.message : (probe.stderr || '').trim().split('\n').pop();
    notes.push(`PyTorch skipped: ${args.python} -c 'import torch' failed (${why})`);
    console.log(`PyTorch: skipped (${args.python} cannot import torch: ${why})`);
    return null;
  }
  const out = `${RESULTS}pytorch.json`;
  const pyArgs = [`${HERE}pytorch_gru.py`, '--threads', String(args.threads), '--budget', String(args.budget),
    '--min-runs', String(args.minRuns), '--max-runs', String(args.maxRuns), '--slow', String(args.slow),
    '--shapes', args.shapes.join(','), '--forms', args.forms.join(','), '--out', out];
  if (!args.train) pyArgs.push('--no-train');
  console.log(`PyTorch: ${args.python} ${pyArgs.map((a) => a.replace(HERE, 'bench/')).join(' ')}`);
  const env = { ...process.env };
  if (args.pytorchBlas) env.LD_LIBRARY_PATH = [args.pytorchBlas, env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  const run = spawnSync(args.python, pyArgs, { stdio: 'inherit', env });
  if (run.status !== 0) {
    notes.push(`PyTorch failed (exit ${run.status ?? run.signal}); its columns are empty`);
    return null;
  }
  return JSON.parse(readFileSync(out, 'utf8'));
}

/**
 * Times the participants of one shape and form: one warm-up each (unless the participant was warmed
 * up already, by the run whose output was checked: warmupMs), then round-robin rounds, each
 * participant running once per round until it has spent the budget (and done minRuns) or reached
 * the run cap, in turns as `npm run bench` takes them (timedTurn, common.mjs: an untimed first run
 * under PRIME_BELOW_MS, bursts of about --burst-ms for fast participants). A participant
 * whose warm-up took longer than `slow` seconds runs no more: that run is its one timing (at tens of seconds a run, JIT warm-up is noise, and the whole stays in minutes).
 * A participant with cooldownMs is followed by that long an untimed pause after each of its runs.
 * @param {{ id: string, run: () => unknown, warmupMs?: number, cooldownMs?: number }[]} participants
 */
async function timeRoundRobin(participants, args) {
  const cool = async (s) => { if (s.p.cooldownMs) await new Promise((resolve) => setTimeout(resolve, s.p.cooldownMs)); };
  const state = participants.map((p) => ({ p, times: [], spent: 0, warmMs: p.warmupMs ?? 0, single: false }));
  for (const s of state) {
    if (s.p.warmupMs === undefined) {
      const t0 = performance.now();
      await s.p.run();
      s.warmMs = performance.now() - t0;
      await cool(s);
    }
    if (s.warmMs / 1000 > args.slow) {
      s.single = true;
      s.times.push(s.warmMs);
    }
  }
  const done = (s) => s.single || s.times.length >= args.maxRuns || (s.times.length >= args.minRuns && s.spent >= args.budget);
  let active = state.filter((s) => !done(s));
  while (active.length) {
    for (const s of active) {
      const record = (ms) => {
        s.times.push(ms);
        s.spent += ms / 1000;
      };
      await timedTurn(() => s.p.run(), s.warmMs, args.burstMs, record, () => done(s));
      await cool(s);
    }
    active = active.filter((s) => !done(s));
  }
  const out = {};
  for (const s of state) {
    out[s.p.id] = {
      medianMs: median(s.times), minMs: Math.min(...s.times), runs: s.times.length, warmupMs: s.warmMs,
      ...(s.single ? { note: `a single run, the first (warm-up) one: it took ${(s.warmMs / 1000).toFixed(1)} s (> --slow ${args.slow} s)` } : {}),
    };
  }
  return out;
}

/** A reset-after GRU from tf ops, written as tfjs's own GRUCell is but with Keras's reset_after. */
function tfjsResetAfterGru(tf, { kernel, recurrentKernel, biasIn, biasRec, B, H }) {
  return (x) => tf.tidy(() => {
    let h = tf.zeros([B, H]);
    const outputs = [];
    for (const xt of tf.unstack(x, 1)) {
      const [xz, xr, xh] = tf.split(tf.add(tf.matMul(xt, kernel), biasIn), 3, 1);
      const [hz, hr, hh] = tf.split(tf.add(tf.matMul(h, recurrentKernel), biasRec), 3, 1);
      const z = tf.sigmoid(tf.add(xz, hz));
      const r = tf.sigmoid(tf.add(xr, hr));
      const n = tf.tanh(tf.add(xh, tf.mul(r, hh)));
      h = tf.add(tf.mul(z, h), tf.mul(tf.sub(1, z), n));
      outputs.push(h);
    }
    return tf.stack(outputs, 1);
  });
}

function fmtMs(ms) {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

function cell(r) {
  return r ? `${fmtMs(r.medianMs)} ms · ${r.gflops.toFixed(2)}${r.note ? ' †' : ''}` : '–';
}

function markdownTable(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}

export async function runPeers(argv = process.argv.slice(2)) {
  const args = parseArgs(argv);
  const notes = [];
  if (args.ort || args.tfjs) ensurePeers();
  mkdirSync(RESULTS, { recursive: true });

  const info = backendInfo();
  const native = info.backend === 'native';
  if (args.ort1t === undefined) args.ort1t = native;
  const loadStart = os.loadavg();
  const started = performance.now();
  console.log(`fastgru peers · ${cpuModel()} · ${os.availableParallelism()} cores · node ${process.version}`);
  console.log(`fastgru backendInfo: ${JSON.stringify(info)}`);
  console.log(`load average at start: ${loadStart.map((l) => l.toFixed(2)).join(', ')}${loadStart[0] > 0.5 ? ' (something else is running: the figures will be noisier)' : ''}`);
  const pytorch = args.pytorch ? runPyTorch(args, notes) : null;
  if (pytorch) console.log(`PyTorch took ${((performance.now() - started) / 1000).toFixed(0)} s`);
  const peers = await loadPeers(args);

  const versions = {
    fastgru: JSON.parse(readFileSync(`${HERE}../package.json`, 'utf8')).version,
    'onnxruntime-node': args.ort ? versionOf('onnxruntime-node') : undefined,
    '@tensorflow/tfjs': args.tfjs ? versionOf('@tensorflow/tfjs') : undefined,
    torch: pytorch?.torch,
    pytorchBlas: pytorch?.blas,
  };
  /** Library ids, in table and chart order, with their labels. */
  const libraries = {};
  libraries.fastgru = { label: `fastgru (${info.backend}${native ? `, ${args.threads} threads` : ', 1 thread'})` };
  if (native) libraries['fastgru-1t'] = { label: 'fastgru (native, 1 thread)' };
  if (args.ort) {
    libraries.ort = { label: `onnxruntime-node ${versions['onnxruntime-node']} (${args.threads} intra-op threads)` };
    if (args.ort1t) libraries['ort-1t'] = { label: `onnxruntime-node ${versions['onnxruntime-node']} (1 intra-op thread)` };
  }
  if (args.tfjs) {
    libraries.tfjs = { label: `tfjs ${versions['@tensorflow/tfjs']} (cpu backend)` };
    notes.push('tfjs runs on @tensorflow/tfjs\'s pure-JS "cpu" backend (single-threaded); @tensorflow/tfjs-node is not used: its install downloads libtensorflow from outside the npm registry.');
    if (args.forms.includes('after')) {
      notes.push('tfjs, resetAfter true: tf.layers.gru throws "GRUCell does not support reset_after parameter set to true" (tfjs 4.x), so that column times a reset-after GRU written with tf ops in the way of tfjs\'s GRUCell (per-step matMul of input and state, split, sigmoid/tanh). resetAfter false uses tf.layers.gru itself.');
    }
    notes.push('tfjs takes batch-major input [B, T, I]; the input is transposed once, outside the timing.');
  }
  if (pytorch) {
    const blas = String(pytorch.blas ?? 'unknown BLAS').split(':')[0];
    libraries.pytorch = { label: `PyTorch ${pytorch.torch} (${pytorch.threads} threads, ${blas})` };
    if (blas.startsWith('reference')) {
      notes.push(`PyTorch's matmuls ran on the reference (netlib) BLAS that Debian's torch finds as libblas.so.3 here (${pytorch.blas}): its figures are far below what PyTorch does with an optimised BLAS. Install libopenblas0-pthread, or pass --pytorch-blas DIR.`);
    }
    notes.push(`PyTorch, resetAfter true: ${pytorch.impl.after}; resetAfter false: ${pytorch.impl.before}. Run in a subprocess before the Node libraries, with the same budget; forward under torch.no_grad().`);
  }
  if (args.ort) notes.push(`ORT: a one-node ONNX model (opset 14, GRU with W, R, B as initializers), intraOpNumThreads ${args.threads}, interOpNumThreads 1, graphOptimizationLevel 'all', sequential execution, spinning allowed (ORT's default); each run is await session.run({ X }). ORT's idle intra-op workers spin for about 50 ms after run() returns, so each multi-threaded ORT run is followed by an untimed ${args.ortCooldown} ms pause (--ort-cooldown) lest the spinning slow the next library's run.`);
  if (!native) notes.push(`fastgru ran on its js backend (${info.reason ?? 'native not loaded'}): single-threaded whatever 'threads' says.`);
  for (const n of notes) console.log(`note: ${n}`);
  console.log('');

  const cells = [];
  for (const name of args.shapes) {
    const shape = SHAPES[name];
    const { T, B, I, H } = shape;
    const flops = forwardFlops(shape);
    const xData = input(T * B * I, 1);
    const x = { data: xData, shape: [T, B, I] };
    const dOut = { data: input(T * B * H, 2), shape: [T, B, H] };
    for (const form of args.forms) {
      const resetAfter = form === 'after';
      const gru = new GRU({ inputSize: I, hiddenSize: H, resetAfter, backend: 'auto', threads: args.threads, seed: 7 });
      const sd = gru.stateDict();
      const participants = [{ id: 'fastgru', pass: 'forward', run: () => gru.forward(x) }];
      let gru1t = null;
      if (native) {
        gru1t = new GRU({ inputSize: I, hiddenSize: H, resetAfter, backend: 'auto', threads: 1 }).loadStateDict(sd);
        participants.push({ id: 'fastgru-1t', pass: 'forward', run: () => gru1t.forward(x) });
      }
      const reference = gru.forward(x);
      const check = {};
      const disposers = [];

      if (args.ort) {
        const { ort } = peers;
        const model = gruModel({ T, B, I, H, linearBeforeReset: resetAfter ? 1 : 0, ...onnxWeights(sd, H) });
        const session = async (threads) => ort.InferenceSession.create(model, {
          intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
        });
        const xTensor = new ort.Tensor('float32', xData, [T, B, I]);
        const s2 = await session(args.threads);
        disposers.push(() => s2.release());
        const y = await s2.run({ X: xTensor });
        check.ort = { maxDiffOutput: maxAbsDiff(y.Y.data, reference.output.data), maxDiffHidden: maxAbsDiff(y.Y_h.data, reference.hidden.data) };
        participants.push({ id: 'ort', pass: 'forward', run: () => s2.run({ X: xTensor }), cooldownMs: args.threads > 1 ? args.ortCooldown : 0 });
        if (args.ort1t) {
          const s1 = await session(1);
          disposers.push(() => s1.release());
          participants.push({ id: 'ort-1t', pass: 'forward', run: () => s1.run({ X: xTensor }) });
        }
      }

      if (args.tfjs) {
        const { tf } = peers;
        const xBatchMajor = tf.tensor3d(swap01(xData, T, B, I), [B, T, I]);
        const kernel = kerasKernel(sd.weight_ih_l0.data, H, I);
        const recurrent = kerasKernel(sd.weight_hh_l0.data, H, H);
        let forward;
        if (resetAfter) {
          const weights = {
            kernel: tf.tensor2d(kernel, [I, 3 * H]), recurrentKernel: tf.tensor2d(recurrent, [H, 3 * H]),
            biasIn: tf.tensor1d(kerasBias(sd.bias_ih_l0.data, H)), biasRec: tf.tensor1d(kerasBias(sd.bias_hh_l0.data, H)), B, H,
          };
          forward = tfjsResetAfterGru(tf, weights);
          disposers.push(() => tf.dispose([weights.kernel, weights.recurrentKernel, weights.biasIn, weights.biasRec]));
        } else {
          // Without reset_after, Keras has one bias per gate: b_ih + b_hh, exactly (every bias is additive).
          const bias = kerasBias(sd.bias_ih_l0.data.map((v, i) => v + sd.bias_hh_l0.data[i]), H);
          const layer = tf.layers.gru({
            units: H, returnSequences: true, resetAfter: false, useBias: true,
            activation: 'tanh', recurrentActivation: 'sigmoid', // tfjs's default recurrent activation is hardSigmoid
            kernelInitializer: 'zeros', recurrentInitializer: 'zeros', // replaced below; orthogonal init is slow
          });
          layer.apply(tf.input({ batchShape: [B, T, I] })); // builds the weights without running the layer
          layer.setWeights([tf.tensor2d(kernel, [I, 3 * H]), tf.tensor2d(recurrent, [H, 3 * H]), tf.tensor1d(bias)]);
          forward = (xt) => tf.tidy(() => layer.apply(xt));
          disposers.push(() => layer.dispose());
        }
        const runTf = () => {
          const y = forward(xBatchMajor);
          const data = y.dataSync();
          y.dispose();
          return data;
        };
        // The checked run is tfjs's warm-up too: on the larger shapes one run takes tens of seconds.
        const t0 = performance.now();
        const yTf = swap01(runTf(), B, T, H);
        const warmupMs = performance.now() - t0;
        check.tfjs = { maxDiffOutput: maxAbsDiff(yTf, reference.output.data), maxDiffHidden: maxAbsDiff(yTf.subarray((T - 1) * B * H), reference.hidden.data) };
        participants.push({ id: 'tfjs', pass: 'forward', run: runTf, warmupMs });
        disposers.push(() => xBatchMajor.dispose());
      }

      if (args.train) {
        participants.push({ id: 'fastgru', pass: 'train', run: () => gru.forwardTrain(x).backward(dOut) });
        if (native) participants.push({ id: 'fastgru-1t', pass: 'train', run: () => gru1t.forwardTrain(x).backward(dOut) });
      }

      const checks = Object.entries(check).map(([lib, c]) => `${lib} max|Δ| output ${c.maxDiffOutput.toExponential(2)}, hidden ${c.maxDiffHidden.toExponential(2)}`);
      console.log(`${name} (${T},${B},${I},${H}) ${form}: check vs fastgru: ${checks.join('; ') || 'none'}`);
      for (const [lib, c] of Object.entries(check)) {
        c.ok = c.maxDiffOutput <= TOLERANCE && c.maxDiffHidden <= TOLERANCE;
        if (!c.ok) {
          console.error(`MISMATCH: ${lib}'s output differs from fastgru's by more than ${TOLERANCE} on ${name}/${form}: the weight conversion is wrong`);
          process.exitCode = 1;
        }
      }

      const keyed = participants.map((p) => ({ ...p, id: `${p.id}:${p.pass}` }));
      const timed = await timeRoundRobin(keyed, args);
      const results = { forward: {}, train: {} };
      for (const p of participants) {
        const r = timed[`${p.id}:${p.pass}`];
        results[p.pass][p.id] = { ...r, gflops: (flops * (p.pass === 'train' ? 3 : 1)) / r.medianMs / 1e6 };
      }
      const torchRow = (pass) => pytorch?.rows.find((r) => r.shape === name && r.form === form && r.pass === pass);
      for (const pass of ['forward', 'train']) {
        const r = torchRow(pass);
        if (r) results[pass].pytorch = { medianMs: r.medianMs, minMs: r.minMs, runs: r.runs, gflops: r.gflops, impl: r.impl, ...(r.note ? { note: r.note } : {}) };
      }
      for (const d of disposers) await d();

      const c = { shape: name, T, B, I, H, form, resetAfter, forwardFlops: flops, check, results };
      cells.push(c);
      const f = results.forward;
      const parts = Object.keys(libraries).filter((id) => f[id]).map((id) => `${id} ${cell(f[id])}`);
      const t = results.train;
      parts.push(...Object.keys(t).map((id) => `${id} fwd+bwd ${cell(t[id])}`));
      console.log(`  ${parts.join(' | ')}`);
    }
  }

  // The tables, as Markdown.
  const fwdIds = Object.keys(libraries);
  const fwdHeader = ['shape (T,B,I,H)', 'form', ...fwdIds.map((id) => libraries[id].label)];
  if (args.ort) fwdHeader.push('fastgru/ORT speed');
  const fwdRows = cells.map((c) => {
    const f = c.results.forward;
    const row = [`${c.shape} (${c.T},${c.B},${c.I},${c.H})`, c.form, ...fwdIds.map((id) => cell(f[id]))];
    if (args.ort) row.push(f.ort ? `${truncated(f.ort.medianMs / f.fastgru.medianMs, 2)}×` : '–');
    return row;
  });
  console.log(`\nForward: median ms · GFLOP/s (forward FLOPs = 2·T·B·3H·(I+H))\n`);
  console.log(markdownTable(fwdHeader, fwdRows));
  if (args.train) {
    const trainIds = ['fastgru', ...(native ? ['fastgru-1t'] : []), ...(pytorch ? ['pytorch'] : [])];
    const header = ['shape (T,B,I,H)', 'form', ...trainIds.map((id) => `${libraries[id].label} fwd+bwd`)];
    if (pytorch) header.push('fastgru/PyTorch speed');
    const rows = cells.map((c) => {
      const t = c.results.train;
      const row = [`${c.shape} (${c.T},${c.B},${c.I},${c.H})`, c.form, ...trainIds.map((id) => cell(t[id]))];
      if (pytorch) row.push(t.pytorch ? `${truncated(t.pytorch.medianMs / t.fastgru.medianMs, 2)}×` : '–');
      return row;
    });
    console.log(`\nForward+backward: median ms · GFLOP/s (3× forward FLOPs)\n`);
    console.log(markdownTable(header, rows));
  }
  const capped = cells.flatMap((c) => Object.entries(c.results).flatMap(([pass, rs]) => Object.entries(rs)
    .filter(([, r]) => r.note).map(([id, r]) => `${c.shape}/${c.form} ${id} ${pass}: ${r.note}`)));
  if (capped.length) console.log(`\n† ${capped.join('\n† ')}`);
  notes.push(...capped.map((s) => `capped: ${s}`));
  const worst = (lib) => Math.max(...cells.map((c) => (c.check[lib] ? Math.max(c.check[lib].maxDiffOutput, c.check[lib].maxDiffHidden) : 0)));
  const checkSummary = ['ort', 'tfjs'].filter((l) => cells.some((c) => c.check[l])).map((l) => `${l} ${worst(l).toExponential(2)}`);
  if (checkSummary.length) console.log(`\nlargest |Δ| against fastgru over all shapes and forms: ${checkSummary.join(', ')} (tolerance ${TOLERANCE})`);

  const npmRun = process.env.npm_lifecycle_event === 'bench:peers';
  const report = {
    date: new Date().toISOString(),
    command: npmRun ? `npm run bench:peers${argv.length ? ` -- ${argv.join(' ')}` : ''}` : `node bench/peers.mjs ${argv.join(' ')}`.trim(),
    cpu: cpuModel(),
    cores: os.availableParallelism(),
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    loadAverage: { start: loadStart, end: os.loadavg() },
    elapsedSeconds: Math.round((performance.now() - started) / 1000),
    options: { budgetSeconds: args.budget, minRuns: args.minRuns, maxRuns: args.maxRuns, slowSeconds: args.slow, threads: args.threads, ortCooldownMs: args.ortCooldown },
    backendInfo: info,
    versions,
    libraries,
    notes,
    cells,
  };
  const file = writeResult(args.out, report);
  console.log(`\nwrote ${file} (the run took ${report.elapsedSeconds} s; load average at the end ${report.loadAverage.end.map((l) => l.toFixed(2)).join(', ')})`);
  const svg = writeChart(file, `${RESULTS}${args.out}.svg`);
  console.log(`wrote ${svg}`);
  return report;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runPeers().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

