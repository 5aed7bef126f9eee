#!/usr/bin/env node
// The bits a prebuild computes: forward and backward of every PyTorch fixture (test/fixtures/pytorch)
// on the native backend, each output, hidden state, input gradient, h0 gradient and weight gradient
// reduced to a SHA-256 of its float32 bytes, printed as one JSON object. Run under qemu-user or Wine
// with another platform's Node, the same object must come out as on x86-64: the README says every
// ISA gives the same bits. It also checks each tensor against PyTorch to 1e-5, so two equal digests
// are two right answers, not two equal wrong ones.
//   node scripts/prebuild/bits.mjs [--addon PATH] [--out FILE] [--expect FILE]
// --addon loads that fastgru.node (FASTGRU_ADDON) instead of the package's own; FASTGRU_ISA picks
// the kernels as usual. --expect compares with a digest written by --out elsewhere (another
// platform or ISA) and names every tensor whose bits differ. Exits 1 if the native backend did not
// load, a tensor is off from PyTorch, or a digest differs from --expect.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseCli } from '../../bin/args.mjs';

const values = parseCli(process.argv.slice(2), {
  usage: 'usage: node scripts/prebuild/bits.mjs [--addon PATH] [--out FILE] [--expect FILE]',
  options: { addon: { type: 'string' }, out: { type: 'string' }, expect: { type: 'string' } },
});
if (values.addon) process.env.FASTGRU_ADDON = values.addon;
const root = new URL('../../', import.meta.url);
const { GRU, backendInfo, tensor } = await import(new URL('dist/index.js', root).href);

const info = backendInfo();
if (info.backend !== 'native') {
  console.error(`bits: the native backend did not load: ${info.reason}`);
  process.exit(1);
}

const dir = fileURLToPath(new URL('test/fixtures/pytorch/', root));
const t = (f) => tensor(new Float32Array(f.data), f.shape);
const digest = (data) => createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex').slice(0, 16);
let worst = 0;
function check(name, got, want) {
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i]));
    if (!(d <= 1e-5)) throw new Error(`${name}[${i}]: ${got[i]} against PyTorch's ${want[i]}`);
    worst = Math.max(worst, d);
  }
}

const cases = {};
for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
  const fx = JSON.parse(readFileSync(dir + file, 'utf8'));
  const gru = new GRU({ ...fx.options, backend: 'native' })
    .loadStateDict(Object.fromEntries(Object.entries(fx.stateDict).map(([k, v]) => [k, t(v)])));
  const h0 = fx.h0 ? t(fx.h0) : null;
  const opts = fx.lengths ? { lengths: fx.lengths } : undefined;
  const { output, hidden } = gru.forward(t(fx.x), h0, opts);
  const run = gru.forwardTrain(t(fx.x), h0, opts);
  const { dInput, dH0, grads } = run.backward(t(fx.dOutput), t(fx.dHidden));
  const tensors = { output, hidden, dInput, dH0, ...grads };
  const wants = { output: fx.output, hidden: fx.hidden, dInput: fx.dInput, dH0: fx.dH0, ...fx.grads };
  cases[fx.name] = {};
  for (const [k, v] of Object.entries(tensors)) {
    check(`${fx.name}.${k}`, v.data, wants[k].data);
    cases[fx.name][k] = digest(v.data);
  }
  // forwardTrain's output is forward's, bit for bit.
  if (digest(run.output.data) !== cases[fx.name].output) throw new Error(`${fx.name}: forwardTrain's output differs from forward's`);
}

const result = {
  platform: process.platform, arch: process.arch, node: process.version, isa: info.isa,
  fixtures: Object.keys(cases).length, worstRelativeToPyTorch: worst, cases,
};
const text = JSON.stringify(result, null, 1);
if (values.out) writeFileSync(values.out, text + '\n');
else console.log(text);
console.error(`bits: ${process.platform}-${process.arch} node ${process.version} isa ${info.isa}: ${result.fixtures} fixtures, ` +
  `worst |diff| to PyTorch ${worst.toExponential(2)}`);

if (values.expect) {
  const expected = JSON.parse(readFileSync(values.expect, 'utf8'));
  const differ = [];
  for (const [name, tensors] of Object.entries(expected.cases))
    for (const [k, h] of Object.entries(tensors)) if (cases[name]?.[k] !== h) differ.push(`${name}.${k}`);
  for (const name of Object.keys(cases)) if (!expected.cases[name]) differ.push(`${name} (not in ${values.expect})`);
  const against = `${expected.platform}-${expected.arch} isa ${expected.isa}`;
  if (differ.length) {
    console.error(`bits: FAILED: ${differ.length} tensors differ from ${against}: ${differ.slice(0, 8).join(', ')}`);
    process.exit(1);
  }
  console.error(`bits: every tensor of ${result.fixtures} fixtures has the same bits as ${against}`);
}
