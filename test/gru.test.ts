// Behaviour of the GRU class beyond the fixtures: options, initialisation, state dicts, dropout,
// edge sizes, saturation, async and repeated backward.
import { describe, expect, it } from 'vitest';
import { GRU, backendInfo, tensor } from '../src/index.js';
import { expectBitwise } from './helpers/compare.js';

function randomTensor(shape: number[], seed: number, scale = 1) {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return tensor(data, shape);
}

describe('GRU options and parameters', () => {
  it('applies the defaults of the contract', () => {
    const gru = new GRU({ inputSize: 3, hiddenSize: 4 });
    expect({
      numLayers: gru.numLayers, bidirectional: gru.bidirectional, batchFirst: gru.batchFirst,
      bias: gru.bias, resetAfter: gru.resetAfter, dropout: gru.dropout,
    }).toEqual({ numLayers: 1, bidirectional: false, batchFirst: false, bias: true, resetAfter: true, dropout: 0 });
    expect(gru.backend).toBe(backendInfo().backend);
  });

  it('names and shapes the parameters as PyTorch does', () => {
    const gru = new GRU({ inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true });
    const sd = gru.stateDict();
    expect(Object.keys(sd)).toEqual([
      'weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0',
      'weight_ih_l0_reverse', 'weight_hh_l0_reverse', 'bias_ih_l0_reverse', 'bias_hh_l0_reverse',
      'weight_ih_l1', 'weight_hh_l1', 'bias_ih_l1', 'bias_hh_l1',
      'weight_ih_l1_reverse', 'weight_hh_l1_reverse', 'bias_ih_l1_reverse', 'bias_hh_l1_reverse',
    ]);
    expect(sd.weight_ih_l0.shape).toEqual([12, 3]);
    expect(sd.weight_hh_l0.shape).toEqual([12, 4]);
    expect(sd.bias_ih_l0.shape).toEqual([12]);
    expect(sd.weight_ih_l1.shape).toEqual([12, 8]);
    expect(Object.keys(new GRU({ inputSize: 3, hiddenSize: 4, bias: false }).stateDict())).toEqual([
      'weight_ih_l0', 'weight_hh_l0',
    ]);
  });

  it('initialises U(-1/sqrt(H), 1/sqrt(H)) and is deterministic with a seed', () => {
    const H = 64;
    const a = new GRU({ inputSize: 32, hiddenSize: H, seed: 5 }).stateDict();
    const b = new GRU({ inputSize: 32, hiddenSize: H, seed: 5 }).stateDict();
    const c = new GRU({ inputSize: 32, hiddenSize: H, seed: 6 }).stateDict();
    const bound = 1 / Math.sqrt(H);
    const w = a.weight_hh_l0.data;
    let min = Infinity, max = -Infinity, sum = 0, sq = 0;
    for (const v of w) { min = Math.min(min, v); max = Math.max(max, v); sum += v; sq += v * v; }
    expect(min).toBeGreaterThanOrEqual(-bound);
    expect(max).toBeLessThan(bound);
    expect(min).toBeLessThan(-0.95 * bound);
    expect(max).toBeGreaterThan(0.95 * bound);
    // U(-a, a): mean 0, variance a^2 / 3 (12288 samples: within a few standard errors)
    expect(Math.abs(sum / w.length)).toBeLessThan(0.03 * bound);
    expect(sq / w.length / (bound * bound / 3)).toBeCloseTo(1, 1);
    expectBitwise(a.weight_ih_l0.data, b.weight_ih_l0.data, 'same seed');
    expect(Array.from(a.weight_ih_l0.data)).not.toEqual(Array.from(c.weight_ih_l0.data));
  });

  it('stateDict returns copies, loadStateDict copies its input', () => {
    const gru = new GRU({ inputSize: 2, hiddenSize: 3, seed: 1 });
    const sd = gru.stateDict();
    sd.weight_ih_l0.data[0] = 99;
    expect(gru.stateDict().weight_ih_l0.data[0]).not.toBe(99);
    const other = new GRU({ inputSize: 2, hiddenSize: 3, seed: 2 }).loadStateDict(sd);
    expect(other.stateDict().weight_ih_l0.data[0]).toBe(99);
    sd.weight_ih_l0.data[0] = 7;
    expect(other.stateDict().weight_ih_l0.data[0]).toBe(99);
  });

  it('accepts Float32Array, Float64Array, flat and nested number arrays and a Map', () => {
    const src = new GRU({ inputSize: 2, hiddenSize: 2, seed: 3 });
    const sd = src.stateDict();
    const x = randomTensor([4, 1, 2], 9);
    const expected = src.forward(x).output.data;
    const forms = [
      Object.fromEntries(Object.entries(sd).map(([k, v]) => [k, v.data])),
      Object.fromEntries(Object.entries(sd).map(([k, v]) => [k, Float64Array.from(v.data)])),
      Object.fromEntries(Object.entries(sd).map(([k, v]) => [k, Array.from(v.data)])),
      Object.fromEntries(Object.entries(sd).map(([k, v]) => {
        const rows = v.shape.length === 2 ? v.shape[0] : 1;
        const cols = v.data.length / rows;
        const nested = Array.from({ length: rows }, (_, r) => Array.from(v.data.subarray(r * cols, (r + 1) * cols)));
        return [k, v.shape.length === 2 ? nested : nested[0]];
      })),
      new Map(Object.entries(sd)),
    ];
    for (const form of forms) {
      const gru = new GRU({ inputSize: 2, hiddenSize: 2, seed: 4 }).loadStateDict(form);
      expectBitwise(gru.forward(x).output.data, expected, 'output after load');
    }
  });
});

describe('forward', () => {
  it('returns the contract shapes for every layout', () => {
    const gru = new GRU({ inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, seed: 1 });
    const r = gru.forward(randomTensor([5, 2, 3], 1));
    expect(r.output.shape).toEqual([5, 2, 8]);
    expect(r.hidden.shape).toEqual([4, 2, 4]);
    const u = gru.forward(randomTensor([5, 3], 1));
    expect(u.output.shape).toEqual([5, 8]);
    expect(u.hidden.shape).toEqual([4, 4]);
    const bf = new GRU({ inputSize: 3, hiddenSize: 4, batchFirst: true, seed: 1 });
    expect(bf.forward(randomTensor([2, 5, 3], 1)).output.shape).toEqual([2, 5, 4]);
  });

  it('accepts nested arrays for x and h0', () => {
    const gru = new GRU({ inputSize: 2, hiddenSize: 2, seed: 1 });
    const nested = [[[0.1, 0.2]], [[0.3, -0.4]]];
    const a = gru.forward(nested, [[[0.5, -0.5]]]);
    const b = gru.forward(tensor(nested), tensor([0.5, -0.5], [1, 1, 2]));
    expectBitwise(a.output.data, b.output.data, 'output');
  });

  it('uses the zero state when h0 is omitted or null', () => {
    const gru = new GRU({ inputSize: 2, hiddenSize: 3, numLayers: 2, seed: 1 });
    const x = randomTensor([4, 2, 2], 3);
    const zeros = tensor(new Float32Array(2 * 2 * 3), [2, 2, 3]);
    expectBitwise(gru.forward(x).output.data, gru.forward(x, zeros).output.data, 'omitted');
    expectBitwise(gru.forward(x, null).output.data, gru.forward(x, zeros).output.data, 'null');
  });

  it('handles T = 0, B = 0 and lengths of 0', () => {
    const gru = new GRU({ inputSize: 2, hiddenSize: 3, bidirectional: true, seed: 1 });
    const h0 = randomTensor([2, 2, 3], 5);
    const empty = gru.forward(tensor(new Float32Array(0), [0, 2, 2]), h0);
    expect(empty.output.shape).toEqual([0, 2, 6]);
    expectBitwise(empty.hidden.data, h0.data, 'T = 0 keeps h0');
    const noBatch = gru.forward(tensor(new Float32Array(0), [4, 0, 2]));
    expect(noBatch.output.shape).toEqual([4, 0, 6]);
    expect(noBatch.hidden.shape).toEqual([2, 0, 3]);
    const x = randomTensor([4, 2, 2], 6);
    const r = gru.forward(x, h0, { lengths: [0, 4] });
    for (let t = 0; t < 4; t++) for (let j = 0; j < 6; j++) expect(r.output.data[(t * 2) * 6 + j]).toBe(0);
    for (const d of [0, 1]) for (let j = 0; j < 3; j++) {
      expect(r.hidden.data[(d * 2) * 3 + j]).toBe(h0.data[(d * 2) * 3 + j]);
    }
    const run = gru.forwardTrain(x, h0, { lengths: [0, 4] });
    const dHidden = randomTensor([2, 2, 3], 8);
    const g = run.backward(null, dHidden);
    // the zero-length sequence's state passes straight through: dH0 = dHidden for it
    for (const d of [0, 1]) for (let j = 0; j < 3; j++) {
      expect(g.dH0.data[(d * 2) * 3 + j]).toBe(dHidden.data[(d * 2) * 3 + j]);
    }
  });

  it.each([true, false])('stays finite and saturates exactly for huge pre-activations (resetAfter %s)', (resetAfter) => {
    const gru = new GRU({ inputSize: 3, hiddenSize: 4, resetAfter, seed: 2 });
    const x = randomTensor([6, 2, 3], 4, 1e4);
    const run = gru.forwardTrain(x);
    for (const v of run.output.data) {
      expect(Number.isFinite(v)).toBe(true);
      expect(Math.abs(v)).toBeLessThanOrEqual(1);
    }
    const g = run.backward(randomTensor([6, 2, 4], 5), randomTensor([1, 2, 4], 6));
    for (const t of [g.dInput, g.dH0, ...Object.values(g.grads)]) {
      for (const v of t.data) expect(Number.isFinite(v)).toBe(true);
    }
  });

  it('forwardAsync resolves to exactly what forward returns', async () => {
    const gru = new GRU({ inputSize: 3, hiddenSize: 5, numLayers: 2, seed: 1 });
    const x = randomTensor([7, 3, 3], 2);
    const sync = gru.forward(x, null, { lengths: [7, 2, 5] });
    const pending = [1, 2, 3].map(() => gru.forwardAsync(x, null, { lengths: [7, 2, 5] }));
    for (const r of await Promise.all(pending)) {
      expectBitwise(r.output.data, sync.output.data, 'output');
      expectBitwise(r.hidden.data, sync.hidden.data, 'hidden');
    }
  });

  it('does not apply dropout outside forwardTrain', () => {
    const a = new GRU({ inputSize: 3, hiddenSize: 4, numLayers: 3, dropout: 0.5, seed: 1 });
    const b = new GRU({ inputSize: 3, hiddenSize: 4, numLayers: 3, seed: 1 });
    const x = randomTensor([5, 2, 3], 1);
    expectBitwise(a.forward(x).output.data, b.forward(x).output.data, 'forward ignores dropout');
  });
});

describe('forwardTrain and backward', () => {
  it('forwardTrain without dropout gives forward\'s bits', () => {
    const gru = new GRU({ inputSize: 3, hiddenSize: 5, numLayers: 2, bidirectional: true, resetAfter: false, seed: 3 });
    const x = randomTensor([6, 3, 3], 1);
    const opts = { lengths: [2, 6, 4] };
    const f = gru.forward(x, null, opts);
    const t = gru.forwardTrain(x, null, opts);
    expectBitwise(t.output.data, f.output.data, 'output');
    expectBitwise(t.hidden.data, f.hidden.data, 'hidden');
  });

  it('treats missing upstream gradients as zeros and can run backward again', () => {
    const gru = new GRU({ inputSize: 3, hiddenSize: 4, numLayers: 2, seed: 3 });
    const x = randomTensor([5, 2, 3], 1);
    const run = gru.forwardTrain(x);
    const dOut = randomTensor([5, 2, 4], 2);
    const dHid = randomTensor([2, 2, 4], 3);
    const zeroOut = tensor(new Float32Array(5 * 2 * 4), [5, 2, 4]);
    const zeroHid = tensor(new Float32Array(2 * 2 * 4), [2, 2, 4]);
    const both = run.backward(dOut, dHid);
    const again = run.backward(dOut, dHid);
    expectBitwise(again.dInput.data, both.dInput.data, 'repeat');
    expectBitwise(run.backward(dOut).dInput.data, run.backward(dOut, zeroHid).dInput.data, 'dHidden omitted');
    expectBitwise(run.backward(null, dHid).dInput.data, run.backward(zeroOut, dHid).dInput.data, 'dOutput null');
    const none = run.backward();
    for (const t of [none.dInput, none.dH0, ...Object.values(none.grads)]) for (const v of t.data) expect(v).toBe(0);
  });

  it('draws dropout masks from the seed: same seed, same masks; dropout 1 cuts the gradient', () => {
    const opts = { inputSize: 4, hiddenSize: 32, numLayers: 2, dropout: 0.3, seed: 11 };
    const x = randomTensor([20, 8, 4], 1);
    const a = new GRU(opts).forwardTrain(x);
    const b = new GRU(opts).forwardTrain(x);
    expectBitwise(a.output.data, b.output.data, 'same seed');
    const gru = new GRU(opts);
    const first = gru.forwardTrain(x).output.data;
    const second = gru.forwardTrain(x).output.data;
    expect(Array.from(first)).not.toEqual(Array.from(second));
    // dropout = 1 zeroes the input of the second layer: its weight_ih gradient is exactly zero,
    // as is every gradient of the first layer
    const all = new GRU({ ...opts, dropout: 1 }).forwardTrain(x).backward(randomTensor([20, 8, 32], 3));
    for (const name of ['weight_ih_l1', 'weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']) {
      for (const v of all.grads[name].data) expect(v).toBe(0);
    }
    for (const v of all.dInput.data) expect(v).toBe(0);
  });

  it('drops a fraction p of the first layer\'s outputs and scales the rest by 1/(1-p)', () => {
    // Layer 1 is made a probe: z = σ(-1e4) = 0 exactly and no recurrence, so its output is
    // tanh(ε · layer 1's input), which is exactly 0 where the mask dropped a unit.
    const p = 0.25, H = 16, eps = 1e-3, T = 50, B = 40;
    const gru = new GRU({ inputSize: 2, hiddenSize: H, numLayers: 2, dropout: p, seed: 5 });
    const sd = gru.stateDict();
    const probe = (name: string, fill: (row: number, col: number) => number) => {
      const [rows, cols] = sd[name].shape.length === 2 ? sd[name].shape : [sd[name].shape[0], 1];
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) sd[name].data[r * cols + c] = fill(r, c);
    };
    probe('weight_ih_l1', (r, c) => (r >= 2 * H && r - 2 * H === c ? eps : 0));
    probe('weight_hh_l1', () => 0);
    probe('bias_ih_l1', (r) => (r >= H && r < 2 * H ? -1e4 : 0));
    probe('bias_hh_l1', () => 0);
    gru.loadStateDict(sd);
    const layer0 = new GRU({ inputSize: 2, hiddenSize: H }).loadStateDict({
      weight_ih_l0: sd.weight_ih_l0, weight_hh_l0: sd.weight_hh_l0, bias_ih_l0: sd.bias_ih_l0, bias_hh_l0: sd.bias_hh_l0,
    });
    const x = randomTensor([T, B, 2], 2);
    const y0 = layer0.forward(x).output.data;
    const out = gru.forwardTrain(x).output.data;
    let dropped = 0;
    for (let i = 0; i < out.length; i++) {
      if (out[i] === 0) dropped++;
      else expect(Math.atanh(out[i]) / (eps * y0[i])).toBeCloseTo(1 / (1 - p), 2);
    }
    // 32000 Bernoulli(0.25) draws: the standard error of the fraction is 0.0024
    expect(Math.abs(dropped / out.length - p)).toBeLessThan(0.015);
  });
});

describe('an argument getter that detaches x', () => {
  const backends = backendInfo().backend === 'native' ? (['js', 'native'] as const) : (['js'] as const);
  it.each(backends)('%s: an ArgumentError naming x, not V8 TypeError or zeros', (backend) => {
    const gru = new GRU({ inputSize: 2, hiddenSize: 3, seed: 1, backend });
    const data = new Float32Array(3 * 2 * 2).fill(0.5);
    const lengths = [3, 2];
    Object.defineProperty(lengths, 1, { get: () => (structuredClone(data.buffer, { transfer: [data.buffer] }), 2) });
    let caught: unknown;
    try {
      gru.forward(tensor(data, [3, 2, 2]), null, { lengths });
    } catch (error) {
      caught = error;
    }
    expect((caught as Error).name).toBe('ArgumentError');
    expect((caught as Error).message).toMatch(/^x: expected a buffer that stays attached/);
  });
});
