// The native backend against the js backend (design §3: they agree to about 1e-5), and against
// itself: the same bits for any thread count, any ISA, and forward or forwardAsync.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GRU, backendInfo, type GRUGradients, type GRUOptions, type Tensor } from '../src/index.js';
import { loadNative } from '../src/backend/native.js';
import { expectBitwise, expectClose } from './helpers/compare.js';
import { distWarning, fromBase64, prng, runNode, uniform } from './helpers/native.js';

const native = backendInfo().backend === 'native';
const TOL = 1e-5;

interface Case {
  resetAfter: boolean;
  numLayers: number;
  bidirectional: boolean;
  bias: boolean;
  batchFirst: boolean;
  /** x is 2-D [T, I] (one unbatched sequence); only with B = 1 */
  unbatched: boolean;
  T: number;
  B: number;
  I: number;
  H: number;
  dropout: number;
  withH0: boolean;
  lengths: number[] | null;
  seed: number;
}

/** Sizes below, at and above the vector widths and tiles (8, 16, 24, 48), and others. */
const size = fc.oneof(
  { arbitrary: fc.integer({ min: 1, max: 40 }), weight: 3 },
  { arbitrary: fc.constantFrom(1, 7, 8, 9, 23, 24, 25, 47, 48), weight: 2 },
);
const small = (max: number) => fc.oneof(fc.constant(1), fc.integer({ min: 1, max }));

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    resetAfter: fc.boolean(),
    numLayers: fc.integer({ min: 1, max: 3 }),
    bidirectional: fc.boolean(),
    bias: fc.boolean(),
    batchFirst: fc.boolean(),
    unbatched: fc.boolean(),
    T: small(7),
    B: small(6),
    I: size,
    H: size,
    dropout: fc.constantFrom(0, 0.3),
    withH0: fc.boolean(),
    seed: fc.nat({ max: 2 ** 31 - 1 }),
  })
  .chain((c) => {
    // Unsorted, sometimes 0 (the state stays h0 and the outputs zero), sometimes all T.
    const one = fc.oneof(
      { arbitrary: fc.integer({ min: 0, max: c.T }), weight: 4 },
      { arbitrary: fc.constant(0), weight: 1 },
      { arbitrary: fc.constant(c.T), weight: 1 },
    );
    return fc
      .option(fc.array(one, { minLength: c.B, maxLength: c.B }), { freq: 2 })
      .map((lengths) => ({ ...c, unbatched: c.unbatched && c.B === 1, lengths }));
  });

function options(c: Case): GRUOptions {
  return {
    inputSize: c.I,
    hiddenSize: c.H,
    numLayers: c.numLayers,
    bidirectional: c.bidirectional,
    bias: c.bias,
    batchFirst: c.batchFirst,
    resetAfter: c.resetAfter,
    dropout: c.dropout,
    seed: c.seed,
  };
}

interface Data {
  x: Tensor;
  h0: Tensor | null;
  dOutput: Tensor;
  dHidden: Tensor;
}

function makeData(c: Case, dataSeed: number): Data {
  const rand = prng(dataSeed);
  const D = c.bidirectional ? 2 : 1;
  const LD = c.numLayers * D;
  const xShape = c.unbatched ? [c.T, c.I] : c.batchFirst ? [c.B, c.T, c.I] : [c.T, c.B, c.I];
  const hShape = c.unbatched ? [LD, c.H] : [LD, c.B, c.H];
  const oShape = c.unbatched ? [c.T, D * c.H] : c.batchFirst ? [c.B, c.T, D * c.H] : [c.T, c.B, D * c.H];
  return {
    x: { data: uniform(rand, c.T * c.B * c.I, 2), shape: xShape },
    h0: c.withH0 ? { data: uniform(rand, LD * c.B * c.H, 0.9), shape: hShape } : null,
    dOutput: { data: uniform(rand, c.T * c.B * D * c.H, 1), shape: oShape },
    dHidden: { data: uniform(rand, LD * c.B * c.H, 1), shape: hShape },
  };
}

/** The pair of models: js with the seed's weights, native loaded from the js model's state dict. */
function pair(c: Case): { js: GRU; nat: GRU } {
  const js = new GRU({ ...options(c), backend: 'js' });
  // Same seed: the native model's own draws (initialisation, then dropout masks) follow the js
  // model's exactly, so both forwardTrain calls get the same masks.
  const nat = new GRU({ ...options(c), backend: 'native' });
  nat.loadStateDict(js.stateDict());
  expect(nat.backend).toBe('native');
  expect(js.backend).toBe('js');
  return { js, nat };
}

function compareGradients(actual: GRUGradients, expected: GRUGradients, what: string, compare: typeof expectClose | 'bitwise'): void {
  const check = (a: Float32Array, e: Float32Array, name: string) =>
    compare === 'bitwise' ? expectBitwise(a, e, `${what}: ${name}`) : compare(a, e, TOL, `${what}: ${name}`);
  expect(actual.dInput.shape, `${what}: dInput shape`).toEqual(expected.dInput.shape);
  expect(actual.dH0.shape, `${what}: dH0 shape`).toEqual(expected.dH0.shape);
  check(actual.dInput.data, expected.dInput.data, 'dInput');
  check(actual.dH0.data, expected.dH0.data, 'dH0');
  expect(Object.keys(actual.grads), `${what}: gradient names`).toEqual(Object.keys(expected.grads));
  for (const name of Object.keys(expected.grads)) {
    expect(actual.grads[name].shape, `${what}: ${name} shape`).toEqual(expected.grads[name].shape);
    check(actual.grads[name].data, expected.grads[name].data, name);
  }
}

const describeCase = (c: Case) => JSON.stringify(c);

describe.skipIf(!native)('native backend vs js backend', () => {
  it('agree to 1e-5 on forward, forwardTrain and every gradient (fast-check)', () => {
    let withDropout = 0;
    let withLengths = 0;
    fc.assert(
      fc.property(caseArb, fc.nat(), (c, dataSeed) => {
        const what = describeCase(c);
        const { js, nat } = pair(c);
        const d = makeData(c, dataSeed);
        const opts = c.lengths ? { lengths: c.lengths } : undefined;

        const fj = js.forward(d.x, d.h0, opts);
        const fn = nat.forward(d.x, d.h0, opts);
        expect(fn.output.shape, `${what}: output shape`).toEqual(fj.output.shape);
        expect(fn.hidden.shape, `${what}: hidden shape`).toEqual(fj.hidden.shape);
        expectClose(fn.output.data, fj.output.data, TOL, `${what}: forward output`);
        expectClose(fn.hidden.data, fj.hidden.data, TOL, `${what}: forward hidden`);

        const tj = js.forwardTrain(d.x, d.h0, opts);
        const tn = nat.forwardTrain(d.x, d.h0, opts);
        expectClose(tn.output.data, tj.output.data, TOL, `${what}: forwardTrain output`);
        expectClose(tn.hidden.data, tj.hidden.data, TOL, `${what}: forwardTrain hidden`);
        compareGradients(tn.backward(d.dOutput, d.dHidden), tj.backward(d.dOutput, d.dHidden), what, expectClose);
        // Upstream gradients left out are zeros on both.
        compareGradients(tn.backward(null, d.dHidden), tj.backward(null, d.dHidden), `${what} (dOutput null)`, expectClose);
        if (c.dropout > 0 && c.numLayers > 1) withDropout++;
        if (c.lengths) withLengths++;
      }),
      { numRuns: 80, seed: 0x5eed_2026 },
    );
    // The generator must actually reach the interesting corners.
    expect(withDropout).toBeGreaterThan(5);
    expect(withLengths).toBeGreaterThan(10);
  });

  // σ(x) for x far below -88 is 0 in float32 (as in js and PyTorch): a gate that saturates must
  // close exactly, or h' = z·h leaks a denormal where the math says 0.
  it.each([-1e4, -200, -104])('a gate saturated by a pre-activation of %d is exactly 0, as in js', (zBias) => {
    const sd = {
      weight_ih_l0: [[0], [0], [0]], weight_hh_l0: [[0], [0], [0]],
      bias_ih_l0: [0, zBias, 0], bias_hh_l0: [0, 0, 0],
    };
    const h0 = [[1]];
    const js = new GRU({ inputSize: 1, hiddenSize: 1, backend: 'js' }).loadStateDict(sd).forward([[0]], h0).hidden.data;
    const nat = new GRU({ inputSize: 1, hiddenSize: 1, backend: 'native' }).loadStateDict(sd).forward([[0]], h0).hidden.data;
    // h' = z·h0 + (1 − z)·tanh(0) = σ(zBias)
    expect(js[0]).toBe(0);
    expect(nat[0], `native σ(${zBias})`).toBe(0);
  });

  it('gives the same dropout masks as js for the same seed (their outputs differ from no-dropout)', () => {
    const c: Case = {
      resetAfter: true, numLayers: 3, bidirectional: true, bias: true, batchFirst: false, unbatched: false,
      T: 5, B: 3, I: 6, H: 9, dropout: 0.3, withH0: false, lengths: null, seed: 77,
    };
    const { js, nat } = pair(c);
    const d = makeData(c, 1);
    const tj = js.forwardTrain(d.x);
    const tn = nat.forwardTrain(d.x);
    expectClose(tn.output.data, tj.output.data, TOL, 'forwardTrain output with dropout');
    const plain = nat.forward(d.x).output.data;
    let differs = 0;
    for (let i = 0; i < plain.length; i++) if (Math.abs(plain[i] - tn.output.data[i]) > 1e-3) differs++;
    expect(differs, 'dropout changes the output of forwardTrain').toBeGreaterThan(plain.length / 4);
  });
});

// ------------------------------------------------------------------------------------------------
// The same bits for any thread count
// ------------------------------------------------------------------------------------------------

interface BitCase extends Case {
  name: string;
}

const MEDIUM: BitCase[] = [
  {
    name: 'reset-after, 2 layers bidirectional, lengths, dropout', resetAfter: true, numLayers: 2, bidirectional: true, bias: true,
    batchFirst: false, unbatched: false, T: 20, B: 9, I: 37, H: 100, dropout: 0.3, withH0: true,
    lengths: [20, 3, 0, 17, 20, 1, 9, 12, 19], seed: 11,
  },
  {
    name: 'reset-before, 2 layers bidirectional, lengths, batchFirst', resetAfter: false, numLayers: 2, bidirectional: true, bias: true,
    batchFirst: true, unbatched: false, T: 20, B: 9, I: 37, H: 100, dropout: 0, withH0: true,
    lengths: [5, 20, 20, 0, 8, 13, 1, 20, 2], seed: 12,
  },
  {
    name: 'reset-before, 1 layer, no bias, wide', resetAfter: false, numLayers: 1, bidirectional: false, bias: false,
    batchFirst: false, unbatched: false, T: 12, B: 17, I: 64, H: 260, dropout: 0, withH0: false, lengths: null, seed: 13,
  },
  {
    name: 'reset-after, 1 layer, wide, lengths', resetAfter: true, numLayers: 1, bidirectional: false, bias: true,
    batchFirst: false, unbatched: false, T: 12, B: 17, I: 64, H: 260, dropout: 0, withH0: true,
    lengths: [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 12, 12, 6, 3], seed: 14,
  },
  {
    // Enough rows for every thread count here to split the batch by rows (8 or more per thread).
    name: 'reset-before, 2 layers bidirectional, 40 sequences of mixed lengths', resetAfter: false, numLayers: 2,
    bidirectional: true, bias: true, batchFirst: false, unbatched: false, T: 9, B: 40, I: 21, H: 45, dropout: 0,
    withH0: true, lengths: Array.from({ length: 40 }, (_, i) => (i * 7) % 10), seed: 15,
  },
  {
    name: 'reset-after, 1 layer, 40 sequences of mixed lengths', resetAfter: true, numLayers: 1, bidirectional: false,
    bias: true, batchFirst: true, unbatched: false, T: 9, B: 40, I: 21, H: 45, dropout: 0, withH0: false,
    lengths: Array.from({ length: 40 }, (_, i) => (i * 3) % 10), seed: 16,
  },
];

interface AllOutputs {
  forward: { output: Float32Array; hidden: Float32Array };
  train: { output: Float32Array; hidden: Float32Array };
  grads: GRUGradients;
}

function runAll(c: Case, threads: number | undefined): AllOutputs {
  const gru = new GRU({ ...options(c), backend: 'native', threads });
  const d = makeData(c, c.seed + 100);
  const opts = c.lengths ? { lengths: c.lengths } : undefined;
  const f = gru.forward(d.x, d.h0, opts);
  const t = gru.forwardTrain(d.x, d.h0, opts);
  return {
    forward: { output: f.output.data, hidden: f.hidden.data },
    train: { output: t.output.data, hidden: t.hidden.data },
    grads: t.backward(d.dOutput, d.dHidden),
  };
}

describe.skipIf(!native)('native backend: the same bits for any thread count', () => {
  it.each(MEDIUM)('$name: threads 1, 2 and 3', (c) => {
    const one = runAll(c, 1);
    for (const threads of [2, 3]) {
      const what = `${c.name}, threads ${threads}`;
      const other = runAll(c, threads);
      expectBitwise(other.forward.output, one.forward.output, `${what}: output`);
      expectBitwise(other.forward.hidden, one.forward.hidden, `${what}: hidden`);
      expectBitwise(other.train.output, one.train.output, `${what}: forwardTrain output`);
      expectBitwise(other.train.hidden, one.train.hidden, `${what}: forwardTrain hidden`);
      compareGradients(other.grads, one.grads, what, 'bitwise');
    }
    // And the js backend agrees with them (so the bits compared are the right ones).
    const js = new GRU({ ...options(c), backend: 'js' });
    const d = makeData(c, c.seed + 100);
    expectClose(one.forward.output, js.forward(d.x, d.h0, c.lengths ? { lengths: c.lengths } : undefined).output.data, TOL, `${c.name}: vs js`);
  });
});

// ------------------------------------------------------------------------------------------------
// The same bits for every ISA (child processes, since FASTGRU_ISA is read once per process)
// ------------------------------------------------------------------------------------------------

const CHILD = 'test/workers/isa-child.mjs';

describe.skipIf(!native)('native backend: the same bits for every ISA', () => {
  const info = native ? loadNative().addon!.info() : null;
  const isas = info?.isas ?? [];
  const best = isas[isas.length - 1];

  it(`ref and the best ISA on this CPU (${best}) give the same outputs and gradients`, async () => {
    const warning = distWarning();
    if (warning) console.warn(warning);
    const runs = await Promise.all(
      ['ref', best].map((isa) => runNode([CHILD, 'compute'], { FASTGRU_ISA: isa, FASTGRU_BACKEND: undefined })),
    );
    const parsed = runs.map((r, i) => {
      expect(r.signal, `child (${['ref', best][i]}) signal; stderr: ${r.stderr}`).toBeNull();
      expect(r.code, `child (${['ref', best][i]}) exit code; stderr: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout) as { info: { backend: string; isa: string }; results: Record<string, Record<string, string>> };
    });
    expect(parsed[0].info).toMatchObject({ backend: 'native', isa: 'ref' });
    expect(parsed[1].info).toMatchObject({ backend: 'native', isa: best });
    const [ref, opt] = parsed.map((p) => p.results);
    expect(Object.keys(opt)).toEqual(Object.keys(ref));
    let arrays = 0;
    for (const name of Object.keys(ref)) {
      expect(Object.keys(opt[name]), `${name}: arrays`).toEqual(Object.keys(ref[name]));
      for (const key of Object.keys(ref[name])) {
        const a = fromBase64(opt[name][key]);
        expect(a.length, `${name} ${key}: non-empty`).toBeGreaterThan(0);
        expectBitwise(a, fromBase64(ref[name][key]), `${name} ${key}: ${best} vs ref`);
        arrays++;
      }
    }
    expect(arrays).toBeGreaterThan(50);
    if (best === 'ref') console.warn('only the ref kernels run on this CPU: the ISA comparison compares ref with itself');
  });

  // Every forced ISA this CPU cannot run must be a clear error, never a crash.
  const missing = ['avx512', 'avx2', 'neon', 'sse9'].filter((isa) => !isas.includes(isa));
  it.each(missing)('FASTGRU_ISA=%s (not on this CPU): BackendUnavailableError naming it, auto falls back to js', async (isa) => {
    const r = await runNode([CHILD, 'probe'], { FASTGRU_ISA: isa, FASTGRU_BACKEND: undefined });
    expect(r.signal, `signal; stderr: ${r.stderr}`).toBeNull();
    expect(r.code, `exit code; stderr: ${r.stderr}`).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.info.backend).toBe('js');
    expect(out.info.reason).toContain('FASTGRU_ISA');
    expect(out.info.reason).toContain(`'${isa}'`);
    expect(out.native).toMatchObject({ ctor: 'BackendUnavailableError', code: 'ERR_BACKEND_UNAVAILABLE' });
    expect(out.native.message).toMatch(/^options\.backend: 'native' was requested but is unavailable: FASTGRU_ISA: /);
    expect(out.native.message).toContain(`'${isa}'`);
    expect(out.auto.backend).toBe('js');
    expect(out.auto.output).toHaveLength(6);
    for (const v of out.auto.output) expect(Number.isFinite(v)).toBe(true);
  });
});

// ------------------------------------------------------------------------------------------------
// forwardAsync
// ------------------------------------------------------------------------------------------------

describe.skipIf(!native)('native forwardAsync', () => {
  const a: Case = MEDIUM[0];
  const b: Case = MEDIUM[2];

  it('resolves to forward\'s bits, for 1 and 3 threads', async () => {
    for (const threads of [1, 3]) {
      for (const c of [a, b]) {
        const gru = new GRU({ ...options(c), backend: 'native', threads });
        const d = makeData(c, 5);
        const opts = c.lengths ? { lengths: c.lengths } : undefined;
        const sync = gru.forward(d.x, d.h0, opts);
        const got = await gru.forwardAsync(d.x, d.h0, opts);
        expect(got.output.shape).toEqual(sync.output.shape);
        expect(got.hidden.shape).toEqual(sync.hidden.shape);
        expectBitwise(got.output.data, sync.output.data, `threads ${threads}: output`);
        expectBitwise(got.hidden.data, sync.hidden.data, `threads ${threads}: hidden`);
      }
    }
  });

  it('50 concurrent calls on two models (and sync calls meanwhile) all resolve to the right bits', async () => {
    const models = [a, b].map((c) => {
      const gru = new GRU({ ...options(c), backend: 'native' });
      const inputs = [0, 1, 2].map((k) => makeData(c, 40 + k));
      const opts = c.lengths ? { lengths: c.lengths } : undefined;
      const expected = inputs.map((d) => gru.forward(d.x, d.h0, opts));
      return { gru, inputs, opts, expected };
    });
    const calls: Array<{ m: number; k: number; p: Promise<{ output: Tensor; hidden: Tensor }> }> = [];
    for (let i = 0; i < 50; i++) {
      const m = i % 2;
      const k = i % 3;
      const { gru, inputs, opts } = models[m];
      calls.push({ m, k, p: gru.forwardAsync(inputs[k].x, inputs[k].h0, opts) });
      // The sync path competes for the same thread pool while the async calls run.
      if (i % 10 === 0) {
        const r = models[1 - m].gru.forward(models[1 - m].inputs[k].x, models[1 - m].inputs[k].h0, models[1 - m].opts);
        expectBitwise(r.output.data, models[1 - m].expected[k].output.data, `sync call ${i} between async calls`);
      }
    }
    const settled = await Promise.allSettled(calls.map((c) => c.p));
    settled.forEach((s, i) => {
      expect(s.status, `call ${i}`).toBe('fulfilled');
      const r = (s as PromiseFulfilledResult<{ output: Tensor; hidden: Tensor }>).value;
      const { m, k } = calls[i];
      expectBitwise(r.output.data, models[m].expected[k].output.data, `call ${i} (model ${m}, input ${k}): output`);
      expectBitwise(r.hidden.data, models[m].expected[k].hidden.data, `call ${i} (model ${m}, input ${k}): hidden`);
    });
  });

  it('rejects with AbortedError (ERR_ABORTED) for a signal aborted before the call, keeping the reason', async () => {
    const gru = new GRU({ ...options(b), backend: 'native' });
    const d = makeData(b, 1);
    const controller = new AbortController();
    const reason = new Error('stop');
    controller.abort(reason);
    const error = await gru.forwardAsync(d.x, null, { signal: controller.signal }).then(
      () => expect.fail('expected a rejection'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as { code: string }).code).toBe('ERR_ABORTED');
    expect((error as Error).name).toBe('AbortedError');
    expect((error as Error).cause).toBe(reason);
    // The model still works afterwards.
    expectBitwise((await gru.forwardAsync(d.x)).output.data, gru.forward(d.x).output.data, 'after abort');
  });

  it('an abort after the call either resolves to the right bits or rejects with ERR_ABORTED', async () => {
    const gru = new GRU({ ...options(a), backend: 'native' });
    const d = makeData(a, 2);
    const opts = { lengths: a.lengths! };
    const expected = gru.forward(d.x, d.h0, opts);
    const controllers = Array.from({ length: 20 }, () => new AbortController());
    const pending = controllers.map((c) => gru.forwardAsync(d.x, d.h0, { ...opts, signal: c.signal }));
    controllers.forEach((c) => c.abort());
    const settled = await Promise.allSettled(pending);
    for (const s of settled) {
      if (s.status === 'fulfilled') expectBitwise(s.value.output.data, expected.output.data, 'resolved despite a late abort');
      else expect((s.reason as { code: string }).code).toBe('ERR_ABORTED');
    }
  });
});

describe.runIf(native)('calls with no steps', () => {
  it.each([1, 2])('T = 0 or every length 0, stacked and bidirectional, on %i thread(s): zeros out, h0 through', (threads) => {
    const gru = new GRU({ inputSize: 3, hiddenSize: 7, numLayers: 2, bidirectional: true, backend: 'native', threads, seed: 1 });
    const empty = gru.forward({ data: new Float32Array(0), shape: [0, 3, 3] });
    expect(empty.output.shape).toEqual([0, 3, 14]);
    expect(Array.from(empty.hidden.data).every((v) => v === 0)).toBe(true);
    const h0 = { data: uniform(prng(3), 4 * 3 * 7, 0.5), shape: [4, 3, 7] };
    const none = gru.forwardTrain({ data: uniform(prng(4), 5 * 3 * 3, 1), shape: [5, 3, 3] }, h0, { lengths: [0, 0, 0] });
    expect(Array.from(none.output.data).every((v) => v === 0)).toBe(true);
    expectBitwise(none.hidden.data, h0.data, 'hidden = h0');
    expectBitwise(none.backward(null, h0).dH0.data, h0.data, 'dH0 = dHidden');
  });
});
