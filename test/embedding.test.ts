// Embedding (src/train/embedding.ts) against torch.nn.Embedding: the forward and the weight's
// gradient from PyTorch's fixtures (test/fixtures/make_embedding_fixtures.py), the gradient against
// finite differences, repeated ids and the padding row, the initialisation, an error for every
// argument and option, and the optimizers and clipGradNorm over it beside a GRU and a Linear.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  Adam,
  ArgumentError,
  clipGradNorm,
  DTypeError,
  Embedding,
  GRU,
  Linear,
  OptionError,
  SGD,
  ShapeError,
  softmaxCrossEntropy,
  StateDictError,
  type Tensor,
} from '../src/index.js';
import { expectBitwise, expectClose } from './helpers/compare.js';

interface Case {
  name: string;
  options: { numEmbeddings: number; embeddingDim: number; paddingIdx: number | null };
  weight: { shape: number[]; data: number[] };
  ids: { shape: number[]; data: number[] };
  dOutput: { shape: number[]; data: number[] };
  output: { shape: number[]; data: number[] };
  gradWeight: { shape: number[]; data: number[] };
}

const { cases } = JSON.parse(readFileSync(new URL('./fixtures/embedding/embedding.json', import.meta.url), 'utf8')) as { cases: Case[] };
const t = (x: { shape: number[]; data: number[] }): Tensor => ({ data: Float32Array.from(x.data), shape: x.shape });

/** A nested array of the flat values in a shape, as a user writes ids. */
function nest(data: number[], shape: number[]): unknown {
  if (shape.length === 0) return data[0];
  const step = data.length / shape[0];
  return Array.from({ length: shape[0] }, (_, i) => nest(data.slice(i * step, (i + 1) * step), shape.slice(1)));
}

describe('Embedding against torch.nn.Embedding', () => {
  it('has fixtures of repeated ids, padding ids and 1-, 2- and 3-dimensional ids', () => {
    expect(cases.map((c) => c.name)).toEqual(['padding_2d', 'no_padding_1d', 'negative_padding_3d']);
  });

  it.each(cases)('$name: forward and the weight\'s gradient match PyTorch to 1e-5, ids as Int32Array or nested arrays', (c) => {
    const emb = new Embedding({ ...c.options, seed: 1 }).loadStateDict({ weight: t(c.weight) });
    for (const ids of [{ data: Int32Array.from(c.ids.data), shape: c.ids.shape }, nest(c.ids.data, c.ids.shape) as number[]]) {
      const out = emb.forward(ids);
      expect(out.shape).toEqual(c.output.shape);
      expectClose(out.data, c.output.data, 1e-5, `${c.name} output`);
      const run = emb.forwardTrain(ids);
      expectBitwise(run.output.data, out.data, 'forwardTrain output');
      const { grads } = run.backward(t(c.dOutput));
      expect(Object.keys(grads)).toEqual(['weight']);
      expect(grads.weight.shape).toEqual(c.gradWeight.shape);
      expectClose(grads.weight.data, c.gradWeight.data, 1e-5, `${c.name} grad weight`);
    }
    // Other integer typed arrays give the same.
    const u8 = emb.forward({ data: Uint8Array.from(c.ids.data), shape: c.ids.shape });
    expectBitwise(u8.data, emb.forward({ data: Int32Array.from(c.ids.data), shape: c.ids.shape }).data, 'Uint8Array ids');
  });

  it('normalises a negative paddingIdx as PyTorch does, and zeros that row at initialisation', () => {
    const neg = cases.find((c) => c.name === 'negative_padding_3d')!;
    const emb = new Embedding({ ...neg.options, seed: 3 });
    expect(emb.paddingIdx).toBe(neg.options.numEmbeddings - 1);
    const w = emb.parameters().weight.data;
    const D = neg.options.embeddingDim;
    expect(Array.from(w.subarray(emb.paddingIdx! * D))).toEqual(new Array(D).fill(0));
    expect(new Embedding({ numEmbeddings: 4, embeddingDim: 2 }).paddingIdx).toBeNull();
    expect(new Embedding({ numEmbeddings: 4, embeddingDim: 2, paddingIdx: null }).paddingIdx).toBeNull();
  });
});

describe('Embedding gradients', () => {
  it('match central finite differences of a loss through the lookup', () => {
    const emb = new Embedding({ numEmbeddings: 6, embeddingDim: 3, paddingIdx: 4, seed: 5 });
    const ids = [[1, 4, 1], [0, 5, 1]];
    const coef = Float32Array.from({ length: 2 * 3 * 3 }, (_, i) => Math.sin(i + 1));
    // loss = Σ coef · output²: dOutput = 2·coef·output.
    const loss = () => {
      const out = emb.forward(ids).data;
      let s = 0;
      for (let i = 0; i < out.length; i++) s += coef[i] * out[i] * out[i];
      return s;
    };
    const run = emb.forwardTrain(ids);
    const dOut = run.output.data.map((v, i) => 2 * coef[i] * v);
    const g = run.backward({ data: dOut, shape: run.output.shape }).grads.weight.data;
    const w = emb.parameters().weight.data;
    const eps = 1e-2;
    let checked = 0;
    for (let i = 0; i < w.length; i++) {
      const keep = w[i];
      w[i] = keep + eps;
      const up = loss();
      w[i] = keep - eps;
      const down = loss();
      w[i] = keep;
      const numeric = (up - down) / (2 * eps);
      // The padding row's gradient is zero by definition, whatever the loss says.
      const row = Math.floor(i / 3);
      if (row === 4) expect(g[i]).toBe(0);
      else {
        expect(Math.abs(g[i] - numeric), `weight[${i}]`).toBeLessThan(1e-3 * Math.max(1, Math.abs(numeric)));
        if (numeric !== 0) checked++;
      }
    }
    expect(checked).toBe(3 * 3); // rows 0, 1 and 5 are used; row 1 three times
  });

  it('sums the gradient of a repeated id, gives unused rows and the padding row zero, and is fresh on each call', () => {
    const emb = new Embedding({ numEmbeddings: 5, embeddingDim: 2, paddingIdx: 0, seed: 1 });
    const run = emb.forwardTrain({ data: Int32Array.from([3, 0, 3, 3, 0]), shape: [5] });
    const dOut = [[1, 2], [5, 5], [10, 20], [100, 200], [7, 7]];
    const first = run.backward(dOut).grads.weight;
    expect(Array.from(first.data)).toEqual([0, 0, 0, 0, 0, 0, 111, 222, 0, 0]);
    const second = run.backward(dOut).grads.weight;
    expect(second.data).not.toBe(first.data);
    expect(Array.from(second.data)).toEqual(Array.from(first.data));
  });

  it('keeps a copy of the ids: a later write to them does not change the gradient', () => {
    const emb = new Embedding({ numEmbeddings: 3, embeddingDim: 1, seed: 1 });
    const ids = Int32Array.from([0, 1]);
    const run = emb.forwardTrain({ data: ids, shape: [2] });
    ids[0] = 2;
    expect(Array.from(run.backward([[1], [2]]).grads.weight.data)).toEqual([1, 2, 0]);
  });
});

describe('Embedding initialisation and state', () => {
  it('draws N(0, 1) reproducibly from the seed', () => {
    const a = new Embedding({ numEmbeddings: 200, embeddingDim: 50, seed: 7 }).parameters().weight.data;
    const b = new Embedding({ numEmbeddings: 200, embeddingDim: 50, seed: 7 }).parameters().weight.data;
    const c = new Embedding({ numEmbeddings: 200, embeddingDim: 50, seed: 8 }).parameters().weight.data;
    expectBitwise(a, b, 'same seed');
    expect(a.some((v, i) => v !== c[i])).toBe(true);
    let mean = 0;
    for (const v of a) mean += v / a.length;
    let variance = 0;
    for (const v of a) variance += (v - mean) ** 2 / a.length;
    // 10,000 draws: the mean within 4 standard errors (0.04) of 0, the variance within 0.06 of 1.
    expect(Math.abs(mean)).toBeLessThan(0.04);
    expect(Math.abs(variance - 1)).toBeLessThan(0.06);
  });

  it('round-trips its state dict; stateDict() is a copy and parameters() is live', () => {
    const a = new Embedding({ numEmbeddings: 4, embeddingDim: 3, seed: 1 });
    const b = new Embedding({ numEmbeddings: 4, embeddingDim: 3, seed: 2 }).loadStateDict(a.stateDict());
    expectBitwise(b.parameters().weight.data, a.parameters().weight.data, 'loaded');
    const sd = a.stateDict();
    sd.weight.data[0] = 99;
    expect(a.parameters().weight.data[0]).not.toBe(99);
    a.parameters().weight.data[3] = 42;
    a.parametersChanged();
    expect(a.forward([1]).data[0]).toBe(42);
    expect(sd.weight.shape).toEqual([4, 3]);
  });
});

describe('Embedding checks every argument and option', () => {
  const emb = new Embedding({ numEmbeddings: 10, embeddingDim: 2, paddingIdx: 0, seed: 1 });

  it('options', () => {
    const cases: Array<[unknown, RegExp]> = [
      [undefined, /^options: expected an object with numEmbeddings and embeddingDim, got undefined$/],
      [{ embeddingDim: 2 }, /^options.numEmbeddings: expected a positive integer, got undefined$/],
      [{ numEmbeddings: 0, embeddingDim: 2 }, /^options.numEmbeddings: expected a positive integer, got 0$/],
      [{ numEmbeddings: 2.5, embeddingDim: 2 }, /^options.numEmbeddings: expected a positive integer, got 2.5$/],
      [{ numEmbeddings: 3 }, /^options.embeddingDim: expected a positive integer, got undefined$/],
      [{ numEmbeddings: 3, embeddingDim: '4' }, /^options.embeddingDim: expected a positive integer, got "4"$/],
      [{ numEmbeddings: 2 ** 16, embeddingDim: 2 ** 15 }, /^options: expected a weight of at most 2\^30 elements, got 65536 × 32768$/],
      [{ numEmbeddings: 3, embeddingDim: 2, paddingIdx: 3 }, /^options.paddingIdx: expected null or an integer from -3 to 2 \(numEmbeddings 3\), got 3$/],
      [{ numEmbeddings: 3, embeddingDim: 2, paddingIdx: -4 }, /^options.paddingIdx: expected null or an integer from -3 to 2 \(numEmbeddings 3\), got -4$/],
      [{ numEmbeddings: 3, embeddingDim: 2, paddingIdx: 1.5 }, /^options.paddingIdx: expected null or an integer/],
      [{ numEmbeddings: 3, embeddingDim: 2, seed: -1 }, /^options.seed: expected a non-negative integer, got -1$/],
      [{ numEmbeddings: 3, embeddingDim: 2, maxNorm: 1 }, /^options.maxNorm: expected no maxNorm: rows are not renormalised/],
      [{ numEmbeddings: 3, embeddingDim: 2, normType: 2 }, /^options.normType: expected no normType/],
      [{ numEmbeddings: 3, embeddingDim: 2, sparse: true }, /^options.sparse: expected no sparse: gradients are dense, got boolean true$/],
      [{ numEmbeddings: 3, embeddingDim: 2, scaleGradByFreq: true }, /^options.scaleGradByFreq: expected no scaleGradByFreq/],
      [{ numEmbeddings: 3, embeddingDim: 2, padding_idx: 0 }, /^options: expected only the options numEmbeddings, embeddingDim, paddingIdx, seed, got unknown option "padding_idx"$/],
    ];
    for (const [options, message] of cases) {
      expect(() => new Embedding(options as never), JSON.stringify(options)).toThrow(OptionError);
      expect(() => new Embedding(options as never), JSON.stringify(options)).toThrow(message);
    }
  });

  it('ids: out of range, negative and non-integer ids are named by index and value', () => {
    const cases: Array<[unknown, typeof ArgumentError, RegExp]> = [
      [[[1, 2], [3, 10]], ArgumentError, /^ids\[1\]\[1\]: expected an integer id from 0 to 9 \(numEmbeddings 10\), got 10$/],
      [[1, -1], ArgumentError, /^ids\[1\]: expected an integer id from 0 to 9 \(numEmbeddings 10\), got -1$/],
      [[[0.5]], ArgumentError, /^ids\[0\]\[0\]: expected an integer id from 0 to 9 \(numEmbeddings 10\), got 0.5$/],
      [[NaN], ArgumentError, /^ids\[0\]: expected an integer id .*, got NaN$/],
      [['3'], ArgumentError, /^ids\[0\]: expected an integer id .*, got "3"$/],
      [{ data: Int32Array.from([1, 2, 3, 4, 11, 5]), shape: [2, 3] }, ArgumentError, /^ids\[1\]\[1\]: expected an integer id from 0 to 9 \(numEmbeddings 10\), got 11$/],
      [{ data: Int8Array.from([1, -2]), shape: [2] }, ArgumentError, /^ids\[1\]: expected .*, got -2$/],
      [{ data: Float32Array.from([1, 2]), shape: [2] }, DTypeError, /^ids.data: expected an integer typed array \(Int32Array, .*\), got Float32Array\(2\)$/],
      [{ data: [1, 2], shape: [2] }, DTypeError, /^ids.data: expected an integer typed array/],
      [{ data: new BigInt64Array(2), shape: [2] }, DTypeError, /^ids.data: expected an integer typed array/],
      [{ data: Int32Array.from([1, 2, 3]), shape: [2, 2] }, ShapeError, /^ids.shape: expected a shape with 3 elements \(data's length\), got \[2, 2\] \(4 elements\)$/],
      [{ data: Int32Array.from([1]), shape: [1.5] }, ShapeError, /^ids.shape\[0\]: expected a non-negative integer dimension, got 1.5$/],
      [{ data: Int32Array.from([1]), shape: 1 }, ArgumentError, /^ids.shape: expected an array of non-negative integers, got 1$/],
      [[[1, 2], [3]], ShapeError, /^ids\[1\]: expected an array of length 2 \(the nested array must be rectangular, shape \[2, 2\]\)/],
      [[[1], 2], ShapeError, /^ids\[1\]: expected an array of length 1/],
      [[1, [2]], ShapeError, /^ids\[1\]: expected an id \(the nested array must be rectangular, shape \[2\]\)/],
      [Int32Array.from([1, 2]), ArgumentError, /^ids: expected integer ids: \{ data: Int32Array, shape \} or a nested number array \(give a typed array its shape: \{ data, shape \}\), got Int32Array\(2\)$/],
      [3, ArgumentError, /^ids: expected integer ids: .*, got 3$/],
      [null, ArgumentError, /^ids: expected integer ids: .*, got null$/],
      [{ data: Int32Array.from([1]) }, ArgumentError, /^ids: expected integer ids/],
    ];
    for (const [ids, ErrorClass, message] of cases) {
      for (const call of [() => emb.forward(ids as never), () => emb.forwardTrain(ids as never)]) {
        expect(call, String(message)).toThrow(ErrorClass);
        expect(call, String(message)).toThrow(message);
      }
    }
    // Empty ids are fine: an empty output.
    expect(emb.forward([]).shape).toEqual([0, 2]);
    expect(emb.forward({ data: new Int32Array(0), shape: [2, 0] }).shape).toEqual([2, 0, 2]);
    expect(emb.forward({ data: Int32Array.from([3]), shape: [] }).shape).toEqual([2]);
  });

  it('dOutput of backward', () => {
    const run = emb.forwardTrain([[1, 2, 3]]);
    expect(() => run.backward({ data: new Float32Array(6), shape: [3, 2] })).toThrow(ShapeError);
    expect(() => run.backward({ data: new Float32Array(6), shape: [3, 2] })).toThrow(/^dOutput: expected shape \[1, 3, 2\] \(the shape of output\), got \[3, 2\]$/);
    expect(() => run.backward({ data: new Float64Array(6), shape: [1, 3, 2] } as never)).toThrow(DTypeError);
    expect(() => run.backward('grad' as never)).toThrow(ArgumentError);
  });

  it('loadStateDict, changing nothing on a bad entry', () => {
    const before = emb.stateDict().weight.data;
    const cases: Array<[unknown, typeof StateDictError, RegExp]> = [
      [null, StateDictError, /^stateDict: expected an object with weight, got null$/],
      [{}, StateDictError, /^stateDict.weight: expected a tensor of shape \[10, 2\], got undefined$/],
      [{ weight: { data: new Float32Array(20), shape: [10, 2] }, bias: [1] }, StateDictError, /^stateDict: expected only weight, got "bias"$/],
      [{ weight: { data: new Float32Array(20), shape: [2, 10] } }, StateDictError, /^stateDict.weight: expected shape \[10, 2\], got \[2, 10\]$/],
      [{ weight: { data: new Float64Array(20), shape: [10, 2] } }, DTypeError, /^stateDict.weight.data: expected a Float32Array/],
      [{ weight: 'w' }, ArgumentError, /^stateDict.weight: expected a Tensor/],
    ];
    for (const [sd, ErrorClass, message] of cases) {
      expect(() => emb.loadStateDict(sd as never)).toThrow(ErrorClass);
      expect(() => emb.loadStateDict(sd as never)).toThrow(message);
    }
    expectBitwise(emb.parameters().weight.data, before, 'unchanged');
  });
});

describe('the optimizers and clipGradNorm take an Embedding like the other modules', () => {
  it('SGD steps weight by −lr·grad, leaving the padding row and unused rows alone', () => {
    const emb = new Embedding({ numEmbeddings: 4, embeddingDim: 2, paddingIdx: 0, seed: 2 });
    const before = emb.stateDict().weight.data;
    const run = emb.forwardTrain([1, 0, 1]);
    const { grads } = run.backward([[1, 1], [3, 3], [1, -1]]);
    new SGD({ emb }, { lr: 0.5 }).step({ emb: grads });
    const w = emb.parameters().weight.data;
    expect(Array.from(w)).toEqual([
      0, 0,
      Math.fround(before[2] - 0.5 * 2), Math.fround(before[3] - 0),
      before[4], before[5], before[6], before[7],
    ]);
  });

  it('Embedding → GRU → Linear learns a toy task with Adam and clipGradNorm over all three', () => {
    // Tell apart sequences by their first token: class = ids[0] % 2, the rest noise to remember past.
    const embed = new Embedding({ numEmbeddings: 6, embeddingDim: 4, paddingIdx: 0, seed: 1 });
    const gru = new GRU({ inputSize: 4, hiddenSize: 8, batchFirst: true, seed: 2, backend: 'js' });
    const head = new Linear({ inFeatures: 8, outFeatures: 2, seed: 3, backend: 'js' });
    const opt = new Adam({ embed, gru, head }, { lr: 0.05 });
    const ids = [[1, 3, 4, 5], [2, 3, 4, 5], [3, 5, 5, 4], [4, 5, 5, 4], [5, 4, 3, 3], [2, 4, 0, 0]];
    const labels = ids.map((s) => s[0] % 2);
    const losses: number[] = [];
    for (let step = 0; step < 40; step++) {
      const e = embed.forwardTrain(ids);
      const g = gru.forwardTrain(e.output);
      const B = ids.length;
      const last = { data: g.hidden.data.slice(), shape: [B, 8] };
      const h = head.forwardTrain(last);
      const ce = softmaxCrossEntropy(h.output, labels);
      losses.push(ce.loss);
      const dh = h.backward(ce.dLogits);
      const dg = g.backward(null, { data: dh.dInput.data, shape: g.hidden.shape });
      const de = e.backward(dg.dInput);
      const grads = { embed: de.grads, gru: dg.grads, head: dh.grads };
      const norm = clipGradNorm(grads, 1);
      expect(Number.isFinite(norm)).toBe(true);
      opt.step(grads);
    }
    expect(losses[losses.length - 1]).toBeLessThan(0.5 * losses[0]);
    expect(Array.from(embed.parameters().weight.data.subarray(0, 4))).toEqual([0, 0, 0, 0]);
  });
});
