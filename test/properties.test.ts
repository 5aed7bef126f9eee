// Property tests of the js backend over small random configurations (both forms, 1-3 layers, one or
// two directions, with and without bias, lengths including 0, h0 or none). Every GEMM element sums
// over k in the same order whatever the other rows of the call, and padding is never read, so
// these invariances hold bit for bit; only a batch's parameter gradients, which are sums over its
// sequences, are compared with a tolerance.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { GRU, tensor, type GRUGradients, type StateDict, type Tensor } from '../src/index.js';
import { expectBitwise, expectClose } from './helpers/compare.js';
import { prng, uniform } from './helpers/prng.mjs';

const RUNS = 100;

interface Case {
  resetAfter: boolean;
  numLayers: number;
  bidirectional: boolean;
  bias: boolean;
  T: number;
  B: number;
  I: number;
  H: number;
  /** seeds the model's own initialisation */
  modelSeed: number;
  /** seeds x, h0, dOutput, dHidden and the junk */
  dataSeed: number;
  withH0: boolean;
  lengths: number[] | null;
}

interface CaseShape {
  lengths?: 'maybe' | 'always';
  bidirectional?: boolean;
  B?: number;
}

function caseArb({ lengths = 'maybe', bidirectional, B }: CaseShape = {}): fc.Arbitrary<Case> {
  return fc
    .record({
      resetAfter: fc.boolean(),
      numLayers: fc.integer({ min: 1, max: 3 }),
      bidirectional: bidirectional === undefined ? fc.boolean() : fc.constant(bidirectional),
      bias: fc.boolean(),
      T: fc.integer({ min: 1, max: 6 }),
      B: B === undefined ? fc.integer({ min: 1, max: 5 }) : fc.constant(B),
      I: fc.integer({ min: 1, max: 5 }),
      H: fc.integer({ min: 1, max: 6 }),
      modelSeed: fc.nat(),
      dataSeed: fc.nat(),
      withH0: fc.boolean(),
    })
    .chain((c) => {
      // Mostly 1..T; sometimes 0, which fastgru allows (the state stays h0, the outputs zero).
      const one = fc.oneof(
        { arbitrary: fc.integer({ min: 1, max: c.T }), weight: 5 },
        { arbitrary: fc.constant(0), weight: 1 },
      );
      const list = fc.array(one, { minLength: c.B, maxLength: c.B });
      const arb: fc.Arbitrary<number[] | null> = lengths === 'always' ? list : fc.option(list, { freq: 4 });
      return arb.map((ls) => ({ ...c, lengths: ls }));
    });
}

const directions = (c: Case) => (c.bidirectional ? 2 : 1);
const lengthOf = (c: Case, b: number) => (c.lengths ? c.lengths[b] : c.T);
const allLengths = (c: Case) => Array.from({ length: c.B }, (_, b) => lengthOf(c, b));
const forwardOptions = (c: Case) => (c.lengths ? { lengths: c.lengths } : undefined);

function makeGru(c: Case, batchFirst = false): GRU {
  return new GRU({
    inputSize: c.I,
    hiddenSize: c.H,
    numLayers: c.numLayers,
    bidirectional: c.bidirectional,
    bias: c.bias,
    resetAfter: c.resetAfter,
    batchFirst,
    backend: 'js',
    seed: c.modelSeed,
  });
}

interface Data {
  x: Float32Array; // [T, B, I]
  h0: Float32Array | null; // [L*D, B, H]
  dOut: Float32Array; // [T, B, D*H]
  dHid: Float32Array; // [L*D, B, H]
  rand: () => number;
}

function makeData(c: Case): Data {
  const rand = prng(c.dataSeed);
  const LD = c.numLayers * directions(c);
  return {
    x: uniform(rand, c.T * c.B * c.I, 2),
    h0: c.withH0 ? uniform(rand, LD * c.B * c.H, 0.9) : null,
    dOut: uniform(rand, c.T * c.B * directions(c) * c.H, 1),
    dHid: uniform(rand, LD * c.B * c.H, 1),
    rand,
  };
}

/** Rows t < L of sequence b of a time-first [T, B, W] buffer, as [L, W]. */
function sequenceRows(src: Float32Array, B: number, W: number, b: number, L: number): Float32Array {
  const out = new Float32Array(L * W);
  for (let t = 0; t < L; t++) out.set(src.subarray((t * B + b) * W, (t * B + b + 1) * W), t * W);
  return out;
}

/** Sequence b's row of every layer-direction slot of a [LD, B, H] buffer, as [LD, H]. */
function stateRows(src: Float32Array, LD: number, B: number, H: number, b: number): Float32Array {
  const out = new Float32Array(LD * H);
  for (let s = 0; s < LD; s++) out.set(src.subarray((s * B + b) * H, (s * B + b + 1) * H), s * H);
  return out;
}

/** Slots from..from+count-1 of a [LD, B, H] buffer. */
function slots(src: Float32Array, B: number, H: number, from: number, count: number): Float32Array {
  return src.slice(from * B * H, (from + count) * B * H);
}

/** A copy of a time-first [T, B, W] buffer with every row t >= L_b replaced by fill(). */
function repad(src: Float32Array, B: number, W: number, lengths: number[], fill: () => number): Float32Array {
  const out = src.slice();
  const T = src.length / (B * W);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      if (t < lengths[b]) continue;
      for (let k = 0; k < W; k++) out[(t * B + b) * W + k] = fill();
    }
  }
  return out;
}

/** Each sequence of a time-first [T, B, W] buffer reversed within its length; zeros past it. */
function reverseWithin(src: Float32Array, B: number, W: number, lengths: number[]): Float32Array {
  const out = new Float32Array(src.length);
  for (let b = 0; b < B; b++) {
    const L = lengths[b];
    for (let t = 0; t < L; t++) out.set(src.subarray(((L - 1 - t) * B + b) * W, ((L - 1 - t) * B + b + 1) * W), (t * B + b) * W);
  }
  return out;
}

/** Columns [col, col + w) of every row of a [rows, W] buffer. */
function columns(src: Float32Array, W: number, col: number, w: number): Float32Array {
  const rows = src.length / W;
  const out = new Float32Array(rows * w);
  for (let i = 0; i < rows; i++) out.set(src.subarray(i * W + col, i * W + col + w), i * w);
  return out;
}

/** [A, B, W] -> [B, A, W] */
function swap01(src: Float32Array, A: number, B: number, W: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < B; b++) out.set(src.subarray((a * B + b) * W, (a * B + b + 1) * W), (b * A + a) * W);
  }
  return out;
}

function expectZeroPast(src: Float32Array, B: number, W: number, lengths: number[], what: string): void {
  const T = src.length / (B * W);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      if (t < lengths[b]) continue;
      for (let k = 0; k < W; k++) {
        const v = src[(t * B + b) * W + k];
        if (v !== 0) expect.fail(`${what}: element [${t}, ${b}, ${k}] past length ${lengths[b]} is ${v}, expected 0`);
      }
    }
  }
}

function expectSameGrads(actual: StateDict, expected: StateDict, what: string): void {
  expect(Object.keys(actual), `${what}: parameter names`).toEqual(Object.keys(expected));
  for (const name of Object.keys(expected)) expectBitwise(actual[name].data, expected[name].data, `${what}: ${name}`);
}

/** Values a caller might leave in padding: overflowed, undefined and merely huge. */
const JUNK = [NaN, Infinity, -Infinity, 3.4e38, -3.4e38, 1e30, -65504];
function junk(rand: () => number): number {
  const k = Math.floor(rand() * (JUNK.length + 1));
  return k < JUNK.length ? JUNK[k] : (2 * rand() - 1) * 1e6;
}

const t = (data: Float32Array, shape: number[]): Tensor => tensor(data, shape);

describe('GRU properties (js backend, random small configurations)', () => {
  it('a batch equals each of its sequences run alone: forward bit for bit, backward too', () => {
    fc.assert(
      fc.property(caseArb(), (c) => {
        const gru = makeGru(c);
        const { x, h0, dOut, dHid } = makeData(c);
        const LD = c.numLayers * directions(c);
        const DH = directions(c) * c.H;
        const X = t(x, [c.T, c.B, c.I]);
        const H0 = h0 && t(h0, [LD, c.B, c.H]);
        const full = gru.forward(X, H0, forwardOptions(c));
        const run = gru.forwardTrain(X, H0, forwardOptions(c));
        // forward and forwardTrain are one computation: the tape changes where states live, not values
        expectBitwise(run.output.data, full.output.data, 'forwardTrain output vs forward');
        expectBitwise(run.hidden.data, full.hidden.data, 'forwardTrain hidden vs forward');
        const g = run.backward(t(dOut, [c.T, c.B, DH]), t(dHid, [LD, c.B, c.H]));
        expect(Object.keys(g.grads)).toEqual(gru.parameterNames());

        const sums = new Map(gru.parameterNames().map((name) => [name, new Float64Array(g.grads[name].data.length)]));
        for (let b = 0; b < c.B; b++) {
          const L = lengthOf(c, b);
          const xb = t(sequenceRows(x, c.B, c.I, b, L), [L, 1, c.I]);
          const h0b = h0 && t(stateRows(h0, LD, c.B, c.H, b), [LD, 1, c.H]);
          const one = gru.forward(xb, h0b);
          expectBitwise(sequenceRows(full.output.data, c.B, DH, b, L), one.output.data, `output of sequence ${b}`);
          expectBitwise(stateRows(full.hidden.data, LD, c.B, c.H, b), one.hidden.data, `hidden of sequence ${b}`);

          const oneGrads = gru
            .forwardTrain(xb, h0b)
            .backward(t(sequenceRows(dOut, c.B, DH, b, L), [L, 1, DH]), t(stateRows(dHid, LD, c.B, c.H, b), [LD, 1, c.H]));
          expectBitwise(sequenceRows(g.dInput.data, c.B, c.I, b, L), oneGrads.dInput.data, `dInput of sequence ${b}`);
          expectBitwise(stateRows(g.dH0.data, LD, c.B, c.H, b), oneGrads.dH0.data, `dH0 of sequence ${b}`);
          if (L === 0) {
            // no step runs: every layer's state stays its h0, and dHidden flows straight to dH0
            expectBitwise(one.hidden.data, h0b ? h0b.data : new Float32Array(LD * c.H), `hidden of empty sequence ${b}`);
            expectBitwise(oneGrads.dH0.data, stateRows(dHid, LD, c.B, c.H, b), `dH0 of empty sequence ${b}`);
          }
          for (const [name, sum] of sums) {
            const gb = oneGrads.grads[name].data;
            for (let k = 0; k < gb.length; k++) sum[k] += gb[k];
          }
        }
        // A batch's parameter gradient is one float64 sum over all its rows rounded once; the
        // per-sequence gradients are each rounded to float32 first: a few ulps apart, no more.
        for (const [name, sum] of sums) expectClose(g.grads[name].data, sum, 1e-5, `${name}: batch vs sum of sequences`);
        // backward may be called again, after other calls on the same model, with the same result
        const again = run.backward(t(dOut, [c.T, c.B, DH]), t(dHid, [LD, c.B, c.H]));
        expectBitwise(again.dInput.data, g.dInput.data, 'second backward: dInput');
        expectBitwise(again.dH0.data, g.dH0.data, 'second backward: dH0');
        expectSameGrads(again.grads, g.grads, 'second backward');
        if (c.lengths) {
          expectZeroPast(full.output.data, c.B, DH, c.lengths, 'output');
          expectZeroPast(g.dInput.data, c.B, c.I, c.lengths, 'dInput');
        }
      }),
      { numRuns: RUNS, seed: 0x5eed01 },
    );
  });

  it('padding past each length changes nothing, even NaN, Infinity and huge values', () => {
    fc.assert(
      fc.property(caseArb({ lengths: 'always' }), (c) => {
        const gru = makeGru(c);
        const { x, h0, dOut, dHid, rand } = makeData(c);
        const lengths = c.lengths!;
        const LD = c.numLayers * directions(c);
        const DH = directions(c) * c.H;
        const xZero = repad(x, c.B, c.I, lengths, () => 0);
        const xJunk = repad(x, c.B, c.I, lengths, () => junk(rand));
        // dOutput past a length has no output to flow into: junk there must be ignored as well
        const dOutZero = repad(dOut, c.B, DH, lengths, () => 0);
        const dOutJunk = repad(dOut, c.B, DH, lengths, () => junk(rand));
        const H0 = h0 && t(h0, [LD, c.B, c.H]);
        const opts = { lengths };

        const clean = gru.forward(t(xZero, [c.T, c.B, c.I]), H0, opts);
        const dirty = gru.forward(t(xJunk, [c.T, c.B, c.I]), H0, opts);
        expectBitwise(dirty.output.data, clean.output.data, 'output');
        expectBitwise(dirty.hidden.data, clean.hidden.data, 'hidden');
        expectZeroPast(dirty.output.data, c.B, DH, lengths, 'output');

        const gClean = gru.forwardTrain(t(xZero, [c.T, c.B, c.I]), H0, opts)
          .backward(t(dOutZero, [c.T, c.B, DH]), t(dHid, [LD, c.B, c.H]));
        const dirtyRun = gru.forwardTrain(t(xJunk, [c.T, c.B, c.I]), H0, opts);
        expectBitwise(dirtyRun.output.data, clean.output.data, 'forwardTrain output');
        expectBitwise(dirtyRun.hidden.data, clean.hidden.data, 'forwardTrain hidden');
        const gDirty = dirtyRun.backward(t(dOutJunk, [c.T, c.B, DH]), t(dHid, [LD, c.B, c.H]));
        expectZeroPast(gDirty.dInput.data, c.B, c.I, lengths, 'dInput');
        expectBitwise(gDirty.dInput.data, gClean.dInput.data, 'dInput');
        expectBitwise(gDirty.dH0.data, gClean.dH0.data, 'dH0');
        expectSameGrads(gDirty.grads, gClean.grads, 'grads');
      }),
      { numRuns: RUNS, seed: 0x5eed02 },
    );
  });

  it('each half of a bidirectional top layer is a unidirectional GRU; the reverse one on reversed sequences', () => {
    fc.assert(
      fc.property(caseArb({ bidirectional: true }), (c) => {
        const gru = makeGru(c);
        const sd = gru.stateDict();
        const { x, h0, dOut, dHid } = makeData(c);
        const { B, H, T } = c;
        const LD = 2 * c.numLayers;
        const top = c.numLayers - 1;
        const lengths = allLengths(c);
        const opts = forwardOptions(c);
        const H0 = h0 && t(h0, [LD, B, H]);
        const full = gru.forward(t(x, [T, B, c.I]), H0, opts);
        const g = gru.forwardTrain(t(x, [T, B, c.I]), H0, opts).backward(t(dOut, [T, B, 2 * H]), t(dHid, [LD, B, H]));

        // The top layer's input: x itself, or the output of the layers below (a GRU of its own).
        let topInput = x;
        const W = top === 0 ? c.I : 2 * H;
        if (top > 0) {
          const lowerDict: StateDict = {};
          for (const [name, value] of Object.entries(sd)) if (Number(/_l(\d+)/.exec(name)![1]) < top) lowerDict[name] = value;
          const lower = new GRU({
            inputSize: c.I, hiddenSize: H, numLayers: top, bidirectional: true, bias: c.bias,
            resetAfter: c.resetAfter, backend: 'js',
          }).loadStateDict(lowerDict);
          topInput = lower.forward(t(x, [T, B, c.I]), h0 && t(slots(h0, B, H, 0, 2 * top), [2 * top, B, H]), opts).output.data;
        }
        const single = (suffix: string) => {
          const dict: StateDict = {};
          for (const base of ['weight_ih', 'weight_hh', ...(c.bias ? ['bias_ih', 'bias_hh'] : [])]) {
            dict[`${base}_l0`] = sd[`${base}_l${top}${suffix}`];
          }
          return new GRU({ inputSize: W, hiddenSize: H, bias: c.bias, resetAfter: c.resetAfter, backend: 'js' }).loadStateDict(dict);
        };
        const slot = (src: Float32Array, s: number) => t(slots(src, B, H, s, 1), [1, B, H]);
        const h0Of = (s: number) => h0 && slot(h0, s);

        // forward half: the top layer's forward weights on the same input
        const fw = single('');
        const fwIn = t(topInput, [T, B, W]);
        const fwOut = fw.forward(fwIn, h0Of(2 * top), opts);
        expectBitwise(columns(full.output.data, 2 * H, 0, H), fwOut.output.data, 'forward half of output');
        expectBitwise(slots(full.hidden.data, B, H, 2 * top, 1), fwOut.hidden.data, 'forward final hidden');
        const fwGrads = fw.forwardTrain(fwIn, h0Of(2 * top), opts)
          .backward(t(columns(dOut, 2 * H, 0, H), [T, B, H]), slot(dHid, 2 * top));

        // reverse half: the _reverse weights on each sequence reversed within its length
        const rv = single('_reverse');
        const rvIn = t(reverseWithin(topInput, B, W, lengths), [T, B, W]);
        const rvOut = rv.forward(rvIn, h0Of(2 * top + 1), opts);
        expectBitwise(columns(full.output.data, 2 * H, H, H), reverseWithin(rvOut.output.data, B, H, lengths), 'reverse half of output');
        expectBitwise(slots(full.hidden.data, B, H, 2 * top + 1, 1), rvOut.hidden.data, 'reverse final hidden');
        const rvGrads = rv.forwardTrain(rvIn, h0Of(2 * top + 1), opts)
          .backward(t(reverseWithin(columns(dOut, 2 * H, H, H), B, H, lengths), [T, B, H]), slot(dHid, 2 * top + 1));

        // The top layer's gradients see only dOutput and its own dHidden: the same bits.
        for (const [grads, suffix] of [[fwGrads, ''], [rvGrads, '_reverse']] as Array<[GRUGradients, string]>) {
          for (const name of Object.keys(grads.grads)) {
            expectBitwise(g.grads[name.replace('_l0', `_l${top}${suffix}`)].data, grads.grads[name].data, `${name} of ${suffix || 'forward'}`);
          }
        }
        expectBitwise(slots(g.dH0.data, B, H, 2 * top, 1), fwGrads.dH0.data, 'dH0 of the forward direction');
        expectBitwise(slots(g.dH0.data, B, H, 2 * top + 1, 1), rvGrads.dH0.data, 'dH0 of the reverse direction');
        if (top === 0) {
          // dInput adds the reverse direction's contribution to the forward one's, in float32
          const rvBack = reverseWithin(rvGrads.dInput.data, B, W, lengths);
          const sum = fwGrads.dInput.data.map((v, k) => Math.fround(v + rvBack[k]));
          expectBitwise(g.dInput.data, sum, 'dInput = forward + reversed reverse');
        }
      }),
      { numRuns: RUNS, seed: 0x5eed03 },
    );
  });

  it('batchFirst is the transposed time-first run, forward and backward', () => {
    fc.assert(
      fc.property(caseArb(), (c) => {
        const tf = makeGru(c);
        const bf = makeGru(c, true);
        const { x, h0, dOut, dHid } = makeData(c);
        const { T, B, I } = c;
        const LD = c.numLayers * directions(c);
        const DH = directions(c) * c.H;
        const H0 = h0 && t(h0, [LD, B, c.H]);
        const opts = forwardOptions(c);
        const runT = tf.forwardTrain(t(x, [T, B, I]), H0, opts);
        const runB = bf.forwardTrain(t(swap01(x, T, B, I), [B, T, I]), H0, opts);
        expect(runB.output.shape).toEqual([B, T, DH]);
        expectBitwise(runB.output.data, swap01(runT.output.data, T, B, DH), 'output');
        expectBitwise(runB.hidden.data, runT.hidden.data, 'hidden');
        const fwdB = bf.forward(t(swap01(x, T, B, I), [B, T, I]), H0, opts);
        expectBitwise(fwdB.output.data, runB.output.data, 'forward output');
        expectBitwise(fwdB.hidden.data, runB.hidden.data, 'forward hidden');

        const gT = runT.backward(t(dOut, [T, B, DH]), t(dHid, [LD, B, c.H]));
        const gB = runB.backward(t(swap01(dOut, T, B, DH), [B, T, DH]), t(dHid, [LD, B, c.H]));
        expect(gB.dInput.shape).toEqual([B, T, I]);
        expectBitwise(gB.dInput.data, swap01(gT.dInput.data, T, B, I), 'dInput');
        expectBitwise(gB.dH0.data, gT.dH0.data, 'dH0');
        expectSameGrads(gB.grads, gT.grads, 'grads');
      }),
      { numRuns: RUNS, seed: 0x5eed04 },
    );
  });

  it('an unbatched [T, I] input is the batched run with B = 1', () => {
    fc.assert(
      fc.property(caseArb({ B: 1 }), fc.boolean(), (c, batchFirst) => {
        const gru = makeGru(c, batchFirst);
        const { x, h0, dOut, dHid } = makeData(c);
        const { T, I, H } = c;
        const LD = c.numLayers * directions(c);
        const DH = directions(c) * H;
        const opts = forwardOptions(c);
        const x3 = t(x, batchFirst ? [1, T, I] : [T, 1, I]);
        const out3 = batchFirst ? [1, T, DH] : [T, 1, DH];
        const batched = gru.forwardTrain(x3, h0 && t(h0, [LD, 1, H]), opts);
        const single = gru.forwardTrain(t(x, [T, I]), h0 && t(h0, [LD, H]), opts);
        expect(single.output.shape).toEqual([T, DH]);
        expect(single.hidden.shape).toEqual([LD, H]);
        expectBitwise(single.output.data, batched.output.data, 'output');
        expectBitwise(single.hidden.data, batched.hidden.data, 'hidden');
        const plain = gru.forward(t(x, [T, I]), h0 && t(h0, [LD, H]), opts);
        expect(plain.output.shape).toEqual([T, DH]);
        expectBitwise(plain.output.data, batched.output.data, 'forward output');
        expectBitwise(plain.hidden.data, batched.hidden.data, 'forward hidden');

        const gB = batched.backward(t(dOut, out3), t(dHid, [LD, 1, H]));
        const gS = single.backward(t(dOut, [T, DH]), t(dHid, [LD, H]));
        expect(gS.dInput.shape).toEqual([T, I]);
        expect(gS.dH0.shape).toEqual([LD, H]);
        expectBitwise(gS.dInput.data, gB.dInput.data, 'dInput');
        expectBitwise(gS.dH0.data, gB.dH0.data, 'dH0');
        expectSameGrads(gS.grads, gB.grads, 'grads');
      }),
      { numRuns: RUNS, seed: 0x5eed05 },
    );
  });
});
