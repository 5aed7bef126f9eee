// Run by test/native-parity.test.ts in a child process, under a given FASTGRU_ISA.
//   node isa-child.mjs compute  -> one JSON line: { info, results: { case: { array: base64 } } }
//   node isa-child.mjs probe    -> one JSON line: what backendInfo() and backend 'native' say
// The data come from the seeded PRNG the tests use (test/helpers/prng.mjs).
import { GRU, backendInfo } from '../../dist/index.js';
import { prng, uniform } from '../helpers/prng.mjs';

const b64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

// Sizes around every vector width and tile (8, 16, 24, 48) and a few that are none of them.
export const CASES = [
  { name: 'tails-a', I: 37, H: 100, L: 2, bi: true, T: 9, B: 5, resetAfter: true, lengths: [9, 0, 4, 9, 1], dropout: 0.3 },
  { name: 'tails-b', I: 37, H: 100, L: 2, bi: true, T: 9, B: 5, resetAfter: false, lengths: [3, 9, 9, 0, 7], dropout: 0 },
  { name: 'h1', I: 1, H: 1, L: 1, bi: false, T: 4, B: 1, resetAfter: true, lengths: null, dropout: 0 },
  { name: 'h24', I: 24, H: 24, L: 1, bi: true, T: 5, B: 3, resetAfter: false, lengths: null, dropout: 0 },
  { name: 'h25', I: 25, H: 25, L: 3, bi: false, T: 6, B: 7, resetAfter: true, lengths: [6, 5, 4, 3, 2, 1, 0], dropout: 0 },
  { name: 'h47', I: 48, H: 47, L: 1, bi: false, T: 3, B: 2, resetAfter: false, lengths: null, dropout: 0, batchFirst: true },
  { name: 'h48', I: 47, H: 48, L: 2, bi: true, T: 3, B: 4, resetAfter: true, lengths: [1, 3, 2, 3], dropout: 0.3, batchFirst: true },
  { name: 'h129', I: 65, H: 129, L: 1, bi: false, T: 6, B: 11, resetAfter: true, lengths: null, dropout: 0, bias: false },
];

function compute(c, seed) {
  const D = c.bi ? 2 : 1;
  const gru = new GRU({
    inputSize: c.I, hiddenSize: c.H, numLayers: c.L, bidirectional: c.bi, resetAfter: c.resetAfter,
    batchFirst: c.batchFirst ?? false, bias: c.bias ?? true, dropout: c.dropout, backend: 'native', seed,
  });
  const rand = prng(seed + 1);
  const xShape = c.batchFirst ? [c.B, c.T, c.I] : [c.T, c.B, c.I];
  const x = { data: uniform(rand, c.T * c.B * c.I, 2), shape: xShape };
  const h0 = { data: uniform(rand, c.L * D * c.B * c.H, 0.9), shape: [c.L * D, c.B, c.H] };
  const opts = c.lengths ? { lengths: c.lengths } : undefined;
  const f = gru.forward(x, h0, opts);
  const run = gru.forwardTrain(x, h0, opts);
  const dOut = { data: uniform(rand, f.output.data.length, 1), shape: f.output.shape };
  const dHid = { data: uniform(rand, f.hidden.data.length, 1), shape: f.hidden.shape };
  const g = run.backward(dOut, dHid);
  const arrays = {
    output: f.output.data, hidden: f.hidden.data, trainOutput: run.output.data, trainHidden: run.hidden.data,
    dInput: g.dInput.data, dH0: g.dH0.data,
  };
  for (const [name, t] of Object.entries(g.grads)) arrays[`grad.${name}`] = t.data;
  return Object.fromEntries(Object.entries(arrays).map(([k, v]) => [k, b64(v)]));
}

function errorRecord(e) {
  return { ctor: e?.constructor?.name, name: e?.name, code: e?.code, message: String(e?.message ?? e) };
}

const mode = process.argv[2];
if (mode === 'compute') {
  const results = {};
  CASES.forEach((c, i) => (results[c.name] = compute(c, 1000 + i)));
  process.stdout.write(JSON.stringify({ info: backendInfo(), results }) + '\n');
} else if (mode === 'probe') {
  const out = { info: backendInfo() };
  try {
    new GRU({ inputSize: 2, hiddenSize: 3, backend: 'native' });
    out.native = { ok: true };
  } catch (e) {
    out.native = errorRecord(e);
  }
  try {
    const gru = new GRU({ inputSize: 2, hiddenSize: 3, seed: 1 });
    out.auto = { backend: gru.backend, output: Array.from(gru.forward([[1, 2], [3, 4]]).output.data) };
  } catch (e) {
    out.auto = errorRecord(e);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
} else {
  process.stderr.write(`isa-child.mjs: expected mode compute or probe, got ${mode}\n`);
  process.exit(2);
}
