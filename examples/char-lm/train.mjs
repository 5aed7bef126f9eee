/**
 * The experiment of the d2l GRU chapter, in Node: a character-level language model (GRU + Linear)
 * trained with d2l's settings (batch 32, 35 steps, hidden 256, SGD with lr 1, gradient clipping at
 * 1, sequential minibatches whose hidden state carries over: truncated backpropagation through time).
 *
 *   npm run example:char-lm                         both GRU forms, 10 epochs on 170,000 characters
 *   node examples/char-lm/train.mjs --form before --epochs 5 --chars 50000
 *
 * Prints a progress bar with loss, perplexity and tokens/s; at the end a sample generated from a
 * prefix. Writes examples/char-lm/results/fastgru.json and perplexity.svg (beside PyTorch's curve
 * when pytorch_char_lm.py has written results/pytorch.json), and saves the model as safetensors,
 * reloads it and checks the reloaded model gives the same perplexity.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  GRU, Linear, SGD, backendInfo, clipGradNorm, detach, gruSafetensorsMetadata, readSafetensorsFile,
  softmaxCrossEntropy, stripPrefix, writeSafetensorsFile,
} from '../../dist/index.js';
import { number, oneOf, parseCli, UsageError } from '../../bin/args.mjs';
import { VOCAB, loadCorpus, prng, sequentialBatches } from './corpus.mjs';
import { compareRuns } from './compare.mjs';
import { writeCurve } from './curve.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const RESULTS = `${HERE}results/`;
const V = VOCAB.length;

function parseArgs(argv) {
  const a = parseCli(argv, {
    usage: 'usage: node examples/char-lm/train.mjs [--form after|before|both] [--epochs N] [--chars N] [--batch B] [--steps T] ' +
      '[--hidden H] [--lr x] [--clip x] [--seed s] [--prefix text]',
    options: {
      form: { type: 'string', value: oneOf(['after', 'before', 'both']), default: 'both' },
      epochs: { type: 'string', value: number({ integer: true, min: 1 }), default: 10 },
      chars: { type: 'string', value: number({ integer: true, min: 1 }), default: 170000 },
      batch: { type: 'string', value: number({ integer: true, min: 1 }), default: 32 },
      steps: { type: 'string', value: number({ integer: true, min: 1 }), default: 35 },
      hidden: { type: 'string', value: number({ integer: true, min: 1 }), default: 256 },
      lr: { type: 'string', value: number({ above: 0 }), default: 1 },
      clip: { type: 'string', value: number({ above: 0 }), default: 1 },
      seed: { type: 'string', value: number({ integer: true, min: 0, max: 2 ** 32 - 2 }), default: 1 },
      // The characters the sample starts from; those outside a..z and space read as a space.
      prefix: { type: 'string', default: 'the people of the united states' },
    },
    check(v) {
      // sequentialBatches starts up to `steps` tokens in, then cuts `batch` streams that must each hold
      // `steps` inputs (and the last one's next token): fewer characters give no minibatch at all.
      const least = v.batch * v.steps + v.steps + 1;
      if (v.chars < least) throw new UsageError(`--chars: expected at least ${least} for --batch ${v.batch} and --steps ${v.steps}, got ${v.chars}`);
    },
  });
  const { form, ...rest } = a;
  return { forms: form === 'both' ? ['after', 'before'] : [form], ...rest };
}

/** Token ids [batch, steps] (batch-major, as the iterator gives them) to one-hot [steps, batch, V]. */
function oneHot(X, batch, steps) {
  const x = new Float32Array(steps * batch * V);
  for (let b = 0; b < batch; b++) for (let t = 0; t < steps; t++) x[(t * batch + b) * V + X[b * steps + t]] = 1;
  return { data: x, shape: [steps, batch, V] };
}

/** Targets in the time-first row order of the logits. */
function timeFirst(Y, batch, steps) {
  const y = new Int32Array(steps * batch);
  for (let b = 0; b < batch; b++) for (let t = 0; t < steps; t++) y[t * batch + b] = Y[b * steps + t];
  return y;
}

function progress(line, done) {
  if (process.stderr.isTTY) process.stderr.write(`\r${line}${done ? '\n' : ''}`);
  else if (done) process.stderr.write(`${line}\n`);
}

/** One epoch of training; returns its perplexity and tokens per second. */
function trainEpoch(gru, head, opt, tokens, args, rand, label) {
  let lossSum = 0;
  let count = 0;
  let state = null;
  const start = performance.now();
  const perStream = Math.floor((tokens.length - 1) / args.batch);
  const total = Math.floor(perStream / args.steps);
  let i = 0;
  for (const { X, Y } of sequentialBatches(tokens, args.batch, args.steps, rand)) {
    const run = gru.forwardTrain(oneHot(X, args.batch, args.steps), state);
    const out = head.forwardTrain(run.output);
    const { loss, dLogits } = softmaxCrossEntropy(out.output, timeFirst(Y, args.batch, args.steps));
    const headBack = out.backward(dLogits);
    const gruBack = run.backward(headBack.dInput);
    const grads = { gru: gruBack.grads, head: headBack.grads };
    clipGradNorm(grads, args.clip);
    opt.step(grads);
    // Truncated BPTT: the next minibatch continues from this state, without a gradient through it.
    state = detach(run.hidden);
    lossSum += loss * Y.length;
    count += Y.length;
    i++;
    if (i % 10 === 0 || i === total) {
      const secs = (performance.now() - start) / 1000;
      const bar = '#'.repeat(Math.round((20 * i) / total)).padEnd(20, '.');
      progress(`${label} [${bar}] loss ${(lossSum / count).toFixed(3)} perplexity ${Math.exp(lossSum / count).toFixed(2)} ${Math.round(count / secs).toLocaleString('en-US')} tokens/s`, false);
    }
  }
  const secs = (performance.now() - start) / 1000;
  return { perplexity: Math.exp(lossSum / count), tokensPerSecond: count / secs, tokens: count, seconds: secs };
}

/** Perplexity of the whole corpus in order (no training), for checking a reloaded model. */
function evaluate(gru, head, tokens, args) {
  let lossSum = 0;
  let count = 0;
  let state = null;
  for (const { X, Y } of sequentialBatches(tokens, args.batch, args.steps, () => 0)) {
    const r = gru.forward(oneHot(X, args.batch, args.steps), state);
    const { loss } = softmaxCrossEntropy(head.forward(r.output), timeFirst(Y, args.batch, args.steps));
    state = r.hidden;
    lossSum += loss * Y.length;
    count += Y.length;
  }
  return Math.exp(lossSum / count);
}

/** d2l's predict_ch8: warm up on the prefix, then the most likely next character, n times. */
function generate(gru, head, prefix, n) {
  const ids = [...prefix].map((c) => Math.max(1, VOCAB.indexOf(c)));
  let state = null;
  let logits = null;
  const step = (id) => {
    const x = new Float32Array(V);
    x[id] = 1;
    const r = gru.forward({ data: x, shape: [1, 1, V] }, state);
    state = r.hidden;
    logits = head.forward(r.output).data;
  };
  for (const id of ids) step(id);
  let out = prefix;
  for (let k = 0; k < n; k++) {
    let best = 1;
    for (let j = 2; j < V; j++) if (logits[j] > logits[best]) best = j;
    out += VOCAB[best];
    step(best);
  }
  return out;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { tokens, files } = loadCorpus(args.chars);
  const info = backendInfo();
  console.log(`char-lm · State of the Union addresses (${files} files), first ${tokens.length.toLocaleString('en-US')} characters, vocabulary ${V}`);
  console.log(`batch ${args.batch}, ${args.steps} steps, hidden ${args.hidden}, SGD lr ${args.lr}, clipping at ${args.clip}, ${args.epochs} epochs · backend ${info.backend} (${info.isa}, ${info.threads} threads)`);
  mkdirSync(RESULTS, { recursive: true });
  const results = { date: new Date().toISOString(), cpu: os.cpus()[0]?.model, node: process.version, backendInfo: info, options: args, forms: {} };
  for (const form of args.forms) {
    const gru = new GRU({ inputSize: V, hiddenSize: args.hidden, resetAfter: form === 'after', seed: args.seed });
    const head = new Linear({ inFeatures: args.hidden, outFeatures: V, seed: args.seed + 1 });
    const opt = new SGD({ gru, head }, { lr: args.lr });
    const rand = prng(args.seed);
    const epochs = [];
    for (let e = 1; e <= args.epochs; e++) {
      const r = trainEpoch(gru, head, opt, tokens, args, rand, `${form} epoch ${String(e).padStart(2)}/${args.epochs}`);
      progress(`${form} epoch ${String(e).padStart(2)}/${args.epochs} perplexity ${r.perplexity.toFixed(2)} ${Math.round(r.tokensPerSecond).toLocaleString('en-US')} tokens/s`, true);
      epochs.push(r);
    }
    const sample = generate(gru, head, args.prefix, 80);
    console.log(`${form}: ${sample}`);
    // Save, reload into fresh models and check the reloaded model scores the same.
    const file = `${RESULTS}char-lm-${form}.safetensors`;
    // One file for the whole model, as PyTorch would save it: the GRU under rnn., the head under dense.
    const tensors = {};
    for (const [k, t] of Object.entries(gru.stateDict())) tensors[`rnn.${k}`] = t;
    for (const [k, t] of Object.entries(head.stateDict())) tensors[`dense.${k}`] = t;
    await writeSafetensorsFile(file, tensors, { ...gruSafetensorsMetadata({ resetAfter: form === 'after', prefix: 'rnn.' }), vocab: VOCAB.join('|') });
    const gru2 = await GRU.fromSafetensors(file, { prefix: 'rnn.' });
    const head2 = new Linear({ inFeatures: args.hidden, outFeatures: V });
    head2.loadStateDict(stripPrefix((await readSafetensorsFile(file)).tensors, 'dense.'));
    const before = evaluate(gru, head, tokens, args);
    const after = evaluate(gru2, head2, tokens, args);
    if (before !== after) throw new Error(`the reloaded model scores ${after}, the trained one ${before}`);
    console.log(`${form}: saved to ${file.replace(`${HERE}`, 'examples/char-lm/')}, reloaded: perplexity ${after.toFixed(3)} both`);
    results.forms[form] = {
      perplexity: epochs.map((r) => r.perplexity),
      tokensPerSecond: epochs.map((r) => r.tokensPerSecond),
      medianTokensPerSecond: median(epochs.map((r) => r.tokensPerSecond)),
      finalPerplexity: epochs[epochs.length - 1].perplexity,
      sample,
    };
  }
  writeFileSync(`${RESULTS}fastgru.json`, `${JSON.stringify(results, null, 1)}\n`);
  const pytorch = existsSync(`${RESULTS}pytorch.json`) ? JSON.parse(readFileSync(`${RESULTS}pytorch.json`, 'utf8')) : null;
  // Like against like: PyTorch's run only when its settings are these, and both at the same epoch.
  const compared = compareRuns(results, pytorch);
  writeCurve(`${RESULTS}perplexity.svg`, results, compared.comparable ? pytorch : null);
  console.log(`wrote examples/char-lm/results/fastgru.json and perplexity.svg`);
  const n = (v) => Math.round(v).toLocaleString('en-US');
  for (const [form, r] of Object.entries(results.forms)) {
    console.log(`${form}: perplexity ${r.finalPerplexity.toFixed(2)} after ${args.epochs} epochs, ${n(r.medianTokensPerSecond)} tokens/s (median over epochs)`);
    const c = compared.comparable ? compared.forms[form] : null;
    if (c?.torch) {
      console.log(`${form}, beside PyTorch at epoch ${c.epoch} of both runs: perplexity ${c.ours.perplexity.toFixed(2)} (PyTorch ${c.torch.perplexity.toFixed(2)}), ` +
        `${n(c.ours.tokensPerSecond)} tokens/s (PyTorch ${n(c.torch.tokensPerSecond)}), the median over epochs 1..${c.epoch}`);
    }
  }
  if (!compared.comparable) console.log(`not compared with PyTorch: ${compared.reason}`);
}

await main();
