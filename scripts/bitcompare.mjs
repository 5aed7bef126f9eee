#!/usr/bin/env node
// Bit-for-bit comparison of two builds of the native engine: the addon built from a git revision
// (--before) against the addon of this checkout (or --after-addon FILE). Both are built the same
// way (cmake-js, Release) in a temporary directory outside the repository; the same seeded random
// cases then run on each addon in child processes (FASTGRU_ADDON), on every ISA this CPU has
// (FASTGRU_ISA) and with the default and with 4 KB windows (FASTGRU_WINDOW_BYTES), and every byte
// of every result is compared: output and hidden of forward and forwardTrain, and d_input, d_h0 and
// every weight and bias gradient of backward.
//
// The cases cover both GRU forms, 1-3 layers, one and two directions, lengths (none, or per
// sequence with 0 and T among them), batch-first and not, with and without h0 and bias, dropout
// masks in forwardTrain, threads 1 and 2 (FASTGRU_THREAD_WORK=0: small calls really run on both,
// with the rows split and with the units split), and backward with and without d_output.
//
//   node scripts/bitcompare.mjs --before main                  build main and this checkout, compare
//   node scripts/bitcompare.mjs --before HEAD~3 --cases 400 --seed 7
//   node scripts/bitcompare.mjs --before-addon A.node --after-addon B.node   no builds
//   node scripts/bitcompare.mjs --keep                         keep the temporary builds (prints where)
//
// It runs the package in dist/ (`npm run build` first); the addon's interface must be the same in
// both builds. Exits 1 when any byte differs, naming the first differing results.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { number, parseCli } from '../bin/args.mjs';
import { COMPARE_OPTIONS, COMPARE_USAGE, comparedAddons, run } from './addon-builds.mjs';
import { prng, uniform } from '../test/helpers/prng.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

const USAGE = `usage: node scripts/bitcompare.mjs ${COMPARE_USAGE} [--cases N] [--seed N]`;
const opts = parseCli(process.argv.slice(2), {
  usage: USAGE,
  options: {
    ...COMPARE_OPTIONS,
    cases: { type: 'string', value: number({ integer: true, min: 1 }), default: 240 },
    seed: { type: 'string', value: number({ integer: true, min: 0, max: 2 ** 32 - 1 }), default: 20240616 },
    // Internal: run the cases on the addon in FASTGRU_ADDON and write the results to FILE.
    child: { type: 'string' },
  },
});

// ------------------------------------------------------------------------------------------------
// The cases (the same in every child: a seeded generator)
// ------------------------------------------------------------------------------------------------

function makeCases(count, seed) {
  const rand = prng(seed);
  const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = (...xs) => xs[Math.floor(rand() * xs.length)];
  const cases = [];
  for (let k = 0; k < count; k++) {
    // Every eighth case is mid-sized (several gate blocks and panels, many rows); the rest small.
    const big = k % 8 === 7;
    const T = big ? int(6, 16) : int(0, 9);
    const B = big ? int(16, 33) : pick(1, 2, 3, int(4, 12), int(16, 24));
    const numLayers = 1 + (k % 3);
    const c = {
      id: k,
      resetAfter: k % 2 === 0,
      numLayers,
      bidirectional: Math.floor(k / 6) % 2 === 1,
      batchFirst: rand() < 0.5,
      bias: rand() < 0.85,
      withH0: rand() < 0.5,
      dropout: numLayers > 1 && rand() < 0.5 ? 0.3 : 0,
      threads: Math.floor(k / 12) % 2 === 0 ? 1 : 2,
      T,
      B,
      I: big ? int(16, 64) : int(1, 40),
      H: big ? int(33, 100) : int(1, 70),
      dOutputNull: rand() < 0.2,
      lengths: null,
      seed: int(1, 1 << 30),
    };
    if (rand() < 0.5 && B > 0) {
      c.lengths = Array.from({ length: B }, () => int(0, T));
      c.lengths[int(0, B - 1)] = T;
      if (B > 1) c.lengths[int(0, B - 1)] = 0;
    }
    cases.push(c);
  }
  return cases;
}

// ------------------------------------------------------------------------------------------------
// The child: runs every case on the addon FASTGRU_ADDON names, writes the results' bytes
// ------------------------------------------------------------------------------------------------

async function child(file) {
  const { GRU, backendInfo } = await import(pathToFileURL(join(ROOT, 'dist/index.js')).href);
  const info = backendInfo();
  if (info.backend !== 'native' || info.addon?.source !== 'FASTGRU_ADDON')
    throw new Error(`the child runs on ${JSON.stringify(info)}, not the addon FASTGRU_ADDON names`);
  const chunks = [];
  const index = [];
  let offset = 0;
  const put = (caseId, name, data) => {
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    index.push({ case: caseId, name, offset, length: bytes.length });
    chunks.push(Buffer.from(bytes));
    offset += bytes.length;
  };
  for (const c of makeCases(opts.cases, opts.seed)) {
    const D = c.bidirectional ? 2 : 1;
    const LD = c.numLayers * D;
    const rand = prng(c.seed);
    const xShape = c.batchFirst ? [c.B, c.T, c.I] : [c.T, c.B, c.I];
    const oShape = c.batchFirst ? [c.B, c.T, D * c.H] : [c.T, c.B, D * c.H];
    const hShape = [LD, c.B, c.H];
    const x = { data: uniform(rand, c.T * c.B * c.I, 2), shape: xShape };
    const h0 = c.withH0 ? { data: uniform(rand, LD * c.B * c.H, 0.9), shape: hShape } : null;
    const dOutput = c.dOutputNull ? null : { data: uniform(rand, c.T * c.B * D * c.H, 1), shape: oShape };
    const dHidden = { data: uniform(rand, LD * c.B * c.H, 1), shape: hShape };
    const gru = new GRU({
      inputSize: c.I, hiddenSize: c.H, numLayers: c.numLayers, bidirectional: c.bidirectional,
      batchFirst: c.batchFirst, bias: c.bias, resetAfter: c.resetAfter, dropout: c.dropout,
      threads: c.threads, seed: c.seed, backend: 'native',
    });
    const options = c.lengths ? { lengths: c.lengths } : undefined;
    const f = gru.forward(x, h0, options);
    put(c.id, 'forward.output', f.output.data);
    put(c.id, 'forward.hidden', f.hidden.data);
    const run = gru.forwardTrain(x, h0, options);
    put(c.id, 'forwardTrain.output', run.output.data);
    put(c.id, 'forwardTrain.hidden', run.hidden.data);
    const g = run.backward(dOutput, dHidden);
    put(c.id, 'backward.dInput', g.dInput.data);
    put(c.id, 'backward.dH0', g.dH0.data);
    for (const name of Object.keys(g.grads).sort()) put(c.id, `backward.${name}`, g.grads[name].data);
  }
  writeFileSync(`${file}.bin`, Buffer.concat(chunks));
  writeFileSync(`${file}.json`, JSON.stringify({ isa: info.isa, index }));
}

// ------------------------------------------------------------------------------------------------
// The parent: builds, runs the children, compares
// ------------------------------------------------------------------------------------------------

/** The ISAs this CPU offers the addon, as its info() lists them. */
function isas(addon) {
  const script = `const a = require(${JSON.stringify(addon)});
    a.init((code, message) => Object.assign(new Error(message), { code }), (n) => new Float32Array(n));
    console.log(JSON.stringify(a.info().isas));`;
  return JSON.parse(run(process.execPath, ['-e', script]).trim());
}

function runChild(addon, env, file) {
  run(process.execPath, [SELF, '--child', file, '--cases', String(opts.cases), '--seed', String(opts.seed)], {
    env: { ...process.env, FASTGRU_ADDON: addon, FASTGRU_THREAD_WORK: '0', ...env },
    maxBuffer: 1 << 26,
  });
  return {
    bin: readFileSync(`${file}.bin`),
    meta: JSON.parse(readFileSync(`${file}.json`, 'utf8')),
  };
}

async function main() {
  if (opts.child) return child(opts.child);
  if (!existsSync(join(ROOT, 'dist/index.js'))) throw new Error('no dist/index.js: run `npm run build` first');
  const { builds, addons } = comparedAddons(opts, 'bitcompare', USAGE);
  const temp = mkdtempSync(join(tmpdir(), 'fastgru-bitcompare-results-'));
  try {
    const { before, after } = addons();
    const list = isas(after);
    const beforeList = isas(before);
    if (JSON.stringify(list) !== JSON.stringify(beforeList))
      throw new Error(`the two addons offer different ISAs: ${beforeList} before, ${list} after`);
    let results = 0, cases = 0, bytes = 0, differing = 0;
    const failures = [];
    for (const isa of list) {
      for (const windowBytes of ['', '4096']) {
        const env = { FASTGRU_ISA: isa, FASTGRU_WINDOW_BYTES: windowBytes };
        const what = `isa ${isa}, windows ${windowBytes || 'default'}`;
        const a = runChild(before, env, join(temp, `before-${isa}-${windowBytes || 'default'}`));
        const b = runChild(after, env, join(temp, `after-${isa}-${windowBytes || 'default'}`));
        if (a.meta.isa !== isa || b.meta.isa !== isa) throw new Error(`${what}: a child ran on ${a.meta.isa} / ${b.meta.isa}`);
        if (JSON.stringify(a.meta.index) !== JSON.stringify(b.meta.index)) throw new Error(`${what}: the results' shapes differ`);
        let diff = 0;
        for (const r of a.meta.index) {
          const x = a.bin.subarray(r.offset, r.offset + r.length);
          const y = b.bin.subarray(r.offset, r.offset + r.length);
          let d = 0;
          for (let i = 0; i < r.length; i++) if (x[i] !== y[i]) d++;
          if (d && failures.length < 20) failures.push(`${what}: case ${r.case} ${r.name}: ${d} of ${r.length} bytes differ`);
          diff += d;
        }
        cases += opts.cases;
        results += a.meta.index.length;
        bytes += a.bin.length;
        differing += diff;
        console.log(`bitcompare: ${what}: ${opts.cases} cases, ${a.meta.index.length} results, ${a.bin.length} bytes, ${diff} differ`);
      }
    }
    console.log(`bitcompare: ${cases} case runs (${opts.cases} cases x ${list.length} ISAs x 2 window sizes), ` +
      `${results} results, ${bytes} bytes compared, ${differing} differing bytes`);
    for (const f of failures) console.log(`  ${f}`);
    process.exitCode = differing ? 1 : 0;
  } finally {
    builds.dispose();
    rmSync(temp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bitcompare: ${e.message}`);
  process.exitCode = 2;
});
