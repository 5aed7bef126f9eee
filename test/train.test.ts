// Training (src/train/): optimizers against hand-computed steps, gradient clipping, the Linear
// layer and softmax cross-entropy against finite differences, truncated BPTT, and a tiny language
// model whose loss falls, on every backend.
import { describe, expect, it } from 'vitest';
import {
  Adam,
  AdamW,
  ArgumentError,
  backendInfo,
  clipGradNorm,
  detach,
  GRU,
  Linear,
  OptionError,
  SGD,
  ShapeError,
  softmaxCrossEntropy,
  type Module,
  type Tensor,
} from '../src/index.js';
import { expectBitwise, expectClose } from './helpers/compare.js';
import { prng, uniform } from './helpers/native.js';

const backends = backendInfo().backend === 'native' ? (['native', 'js'] as const) : (['js'] as const);

/** A module of one parameter vector, to check update rules by hand. */
function vector(values: number[]): Module & { p: Float32Array; changed: number } {
  const p = Float32Array.from(values);
  const m = {
    p,
    changed: 0,
    parameters: () => ({ w: { data: p, shape: [p.length] } }),
    parametersChanged: () => {
      m.changed++;
    },
  };
  return m;
}

const f = (x: number) => Math.fround(x);

describe('optimizers', () => {
  it('SGD: p -= lr·g, with weight decay, momentum (first step b = g), dampening and nesterov', () => {
    const m = vector([1, -2]);
    const sgd = new SGD({ m }, { lr: 0.5 });
    sgd.step({ m: { w: Float32Array.from([0.2, -0.4]) } });
    expect(Array.from(m.p)).toEqual([f(1 - 0.5 * 0.2), f(-2 + 0.5 * 0.4)]);
    expect(m.changed).toBe(1);

    const a = vector([1]);
    const mom = new SGD({ a }, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    const g = [0.5, 0.25];
    // step 1: d = g + wd·p = 0.5 + 0.01 = 0.51, b = 0.51, p = 1 - 0.051
    mom.step({ a: { w: Float32Array.from([g[0]]) } });
    let p = f(1 - 0.1 * 0.51);
    expect(a.p[0]).toBe(p);
    // step 2: d = 0.25 + 0.01·p, b = 0.9·0.51 + d, p -= 0.1·b
    const d2 = f(0.25) + 0.01 * p;
    const b2 = 0.9 * 0.51 + d2;
    mom.step({ a: { w: Float32Array.from([g[1]]) } });
    p = f(p - 0.1 * b2);
    expect(a.p[0]).toBe(p);

    const n = vector([1]);
    const nest = new SGD({ n }, { lr: 0.1, momentum: 0.5, nesterov: true });
    nest.step({ n: { w: Float32Array.from([1]) } }); // b = 1, d = 1 + 0.5·1 = 1.5
    expect(n.p[0]).toBe(f(1 - 0.15));
    const damp = vector([0]);
    const dsgd = new SGD({ damp }, { lr: 1, momentum: 0.5, dampening: 0.5 });
    dsgd.step({ damp: { w: Float32Array.from([1]) } }); // first: b = d = 1
    dsgd.step({ damp: { w: Float32Array.from([1]) } }); // b = 0.5·1 + 0.5·1 = 1
    expect(damp.p[0]).toBe(-2);
  });

  it('Adam and AdamW follow torch.optim step by step', () => {
    const grads = [0.3, -0.1, 0.2];
    const run = (decoupled: boolean) => {
      const m = vector([0.5]);
      const opt = decoupled ? new AdamW({ m }, { lr: 0.01, weightDecay: 0.1 }) : new Adam({ m }, { lr: 0.01, weightDecay: 0.1 });
      const values: number[] = [];
      for (const g of grads) {
        opt.step({ m: { w: Float32Array.from([g]) } });
        values.push(m.p[0]);
      }
      return values;
    };
    // The same recurrences by hand, in double, rounding p to float32 after each step.
    const expected = (decoupled: boolean) => {
      let p = f(0.5), m = 0, v = 0;
      const out: number[] = [];
      grads.forEach((g0, i) => {
        const t = i + 1;
        let g = f(g0);
        if (decoupled) p = p * (1 - 0.01 * 0.1);
        else g = g + 0.1 * p;
        m = 0.9 * m + 0.1 * g;
        v = 0.999 * v + 0.001 * g * g;
        const denom = Math.sqrt(v) / Math.sqrt(1 - 0.999 ** t) + 1e-8;
        p = f(p - ((0.01 / (1 - 0.9 ** t)) * m) / denom);
        out.push(p);
      });
      return out;
    };
    expect(run(false)).toEqual(expected(false));
    expect(run(true)).toEqual(expected(true));
    // The first Adam step moves every parameter by about lr, whatever the gradient's scale.
    const big = vector([0, 0]);
    new Adam({ big }, { lr: 0.01 }).step({ big: { w: Float32Array.from([1000, -1e-3]) } });
    expectClose(big.p, [-0.01, 0.01], 1e-4, 'first Adam step');
  });

  it('checks modules, gradients and options before changing anything', () => {
    const m = vector([1, 2]);
    const sgd = new SGD({ m }, { lr: 1 });
    expect(() => sgd.step({ other: { w: new Float32Array(2) } })).toThrow(/^grads: expected only the modules m, got "other"$/);
    expect(() => sgd.step({ m: { v: new Float32Array(2) } })).toThrow(/grads.m: expected only parameters of m \(w\)/);
    expect(() => sgd.step({ m: { w: new Float32Array(3) } })).toThrow(ShapeError);
    expect(() => sgd.step({ m: { w: [1, 2] as never } })).toThrow(ArgumentError);
    expect(Array.from(m.p)).toEqual([1, 2]);
    expect(() => new SGD({ m }, {} as never)).toThrow(/^options.lr: expected a non-negative number, got undefined$/);
    expect(() => new SGD({ m }, { lr: -1 })).toThrow(OptionError);
    expect(() => new SGD({ m }, { lr: 1, nesterov: true })).toThrow(/nesterov/);
    expect(() => new Adam({ m }, { betas: [0.9, 1] })).toThrow(/options.betas/);
    expect(() => new Adam({ m }, { lr: 1, beta: 2 } as never)).toThrow(/unknown option "beta"/);
    expect(() => new SGD({}, { lr: 1 })).toThrow(/^modules: expected an object of named modules/);
    expect(() => new SGD({ x: {} as never }, { lr: 1 })).toThrow(/modules.x: expected a module/);
  });
});

describe('clipGradNorm', () => {
  it('scales every gradient by maxNorm / norm when the global norm is larger, and returns the norm', () => {
    const a = Float32Array.from([3, 0]);
    const b = { data: Float32Array.from([4]), shape: [1] };
    const norm = clipGradNorm({ gru: { a }, head: { b } }, 1);
    expect(norm).toBe(5);
    const coef = 1 / (5 + 1e-6);
    expect(Array.from(a)).toEqual([f(3 * coef), 0]);
    expect(b.data[0]).toBe(f(4 * coef));
    const small = { w: Float32Array.from([0.1, 0.2]) };
    expect(clipGradNorm(small, 1)).toBeCloseTo(Math.hypot(f(0.1), f(0.2)), 12);
    expect(Array.from(small.w)).toEqual([f(0.1), f(0.2)]);
    expect(() => clipGradNorm(small, -1)).toThrow(/^maxNorm: expected a non-negative finite number, got -1$/);
    expect(() => clipGradNorm({ w: 'x' } as never, 1)).toThrow(/^grads.w: expected gradients/);
  });

  it('counts an array reached twice twice, as torch does with a tensor given twice, and refuses a cycle naming its path', () => {
    const a = Float32Array.from([3]);
    const shared = { a };
    // The norm of [3, 3] (a by two paths), and a scaled twice.
    expect(clipGradNorm({ gru: shared, head: shared }, 1)).toBeCloseTo(Math.hypot(3, 3), 12);
    const coef = f(1 / (Math.hypot(3, 3) + 1e-6));
    expect(a[0]).toBe(f(f(3 * coef) * coef));
    const cyclic: Record<string, unknown> = { w: Float32Array.from([1]) };
    cyclic.inner = { back: cyclic };
    const before = Float32Array.from(cyclic.w as Float32Array);
    expect(() => clipGradNorm(cyclic, 0.1)).toThrow(/^grads.inner.back: expected gradients: Tensors or Float32Arrays by name, without cycles, got an object that contains itself$/);
    expect(cyclic.w).toEqual(before);
  });
});

describe('softmaxCrossEntropy', () => {
  it('gives the mean loss and its gradient (against finite differences), finite for huge logits', () => {
    const rand = prng(1);
    const logits = { data: uniform(rand, 5 * 4, 3), shape: [5, 4] };
    const targets = [0, 3, 1, 1, 2];
    const { loss, dLogits } = softmaxCrossEntropy(logits, targets);
    let expected = 0;
    for (let i = 0; i < 5; i++) {
      const row = Array.from(logits.data.subarray(i * 4, i * 4 + 4));
      expected += Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[targets[i]];
    }
    expect(loss).toBeCloseTo(expected / 5, 10);
    const h = 1e-3;
    const numeric = new Float64Array(20);
    for (let k = 0; k < 20; k++) {
      const plus = logits.data.slice();
      plus[k] += h;
      const minus = logits.data.slice();
      minus[k] -= h;
      numeric[k] = (softmaxCrossEntropy({ data: plus, shape: [5, 4] }, targets).loss - softmaxCrossEntropy({ data: minus, shape: [5, 4] }, targets).loss) / (2 * h);
    }
    expectClose(dLogits.data, numeric, 2e-3, 'dLogits');
    const huge = softmaxCrossEntropy({ data: Float32Array.from([1e30, -1e30, 0]), shape: [1, 3] }, [1]);
    expect(Number.isFinite(huge.loss)).toBe(true);
    expect(() => softmaxCrossEntropy(logits, [0, 1])).toThrow(/^targets: expected 5 class indices/);
    expect(() => softmaxCrossEntropy(logits, [0, 1, 2, 3, 4])).toThrow(/^targets\[4\]: expected an integer in 0..3, got 4$/);
  });
});

describe.each(backends)('Linear on the %s backend', (backend) => {
  it('computes x·Wᵀ + b and its gradients (against a direct sum in double)', () => {
    const rand = prng(2);
    const lin = new Linear({ inFeatures: 7, outFeatures: 5, backend, seed: 3 });
    expect(lin.backend).toBe(backend);
    const { weight, bias } = lin.parameters();
    const x = { data: uniform(rand, 3 * 2 * 7, 1), shape: [3, 2, 7] };
    const run = lin.forwardTrain(x);
    expect(run.output.shape).toEqual([3, 2, 5]);
    const want = new Float64Array(6 * 5);
    for (let n = 0; n < 6; n++) for (let j = 0; j < 5; j++) {
      let s = bias.data[j];
      for (let p = 0; p < 7; p++) s += x.data[n * 7 + p] * weight.data[j * 7 + p];
      want[n * 5 + j] = s;
    }
    expectClose(run.output.data, want, 1e-6, 'output');
    expectBitwise(lin.forward(x).data, run.output.data, 'forward = forwardTrain');
    const dOut = { data: uniform(rand, 30, 1), shape: [3, 2, 5] };
    const g = run.backward(dOut);
    const dX = new Float64Array(42);
    const dW = new Float64Array(35);
    const dB = new Float64Array(5);
    for (let n = 0; n < 6; n++) for (let j = 0; j < 5; j++) {
      const d = dOut.data[n * 5 + j];
      dB[j] += d;
      for (let p = 0; p < 7; p++) {
        dX[n * 7 + p] += d * weight.data[j * 7 + p];
        dW[j * 7 + p] += d * x.data[n * 7 + p];
      }
    }
    expect(g.dInput.shape).toEqual([3, 2, 7]);
    expectClose(g.dInput.data, dX, 1e-6, 'dInput');
    expectClose(g.grads.weight.data, dW, 1e-6, 'dWeight');
    expectClose(g.grads.bias.data, dB, 1e-6, 'dBias');
  });

  it('checks its arguments and round-trips its state dict', () => {
    const lin = new Linear({ inFeatures: 3, outFeatures: 2, backend, bias: false, seed: 1 });
    expect(Object.keys(lin.parameters())).toEqual(['weight']);
    expect(() => lin.forward({ data: new Float32Array(4), shape: [2, 2] })).toThrow(/^x: expected shape \[\.\.\., 3\], got \[2, 2\]$/);
    expect(() => new Linear({ inFeatures: 0, outFeatures: 1 })).toThrow(/^options.inFeatures: expected a positive integer, got 0$/);
    const other = new Linear({ inFeatures: 3, outFeatures: 2, backend, bias: false, seed: 9 });
    other.loadStateDict(lin.stateDict());
    expectBitwise(other.parameters().weight.data, lin.parameters().weight.data, 'loaded');
    expect(() => other.loadStateDict({ weight: { data: new Float32Array(6), shape: [3, 2] } })).toThrow(/^stateDict.weight: expected shape \[2, 3\]/);
    const run = lin.forwardTrain({ data: new Float32Array(3), shape: [1, 3] });
    expect(() => run.backward({ data: new Float32Array(3), shape: [1, 3] })).toThrow(/^dOutput: expected shape \[1, 2\]/);
  });
});

describe.each(backends)('training a GRU on the %s backend', (backend) => {
  it('truncated BPTT: carrying the state gives the long run\'s outputs; the gradient stops at the cut', () => {
    const rand = prng(4);
    const gru = new GRU({ inputSize: 3, hiddenSize: 5, backend, seed: 2 });
    const x = { data: uniform(rand, 8 * 2 * 3, 1), shape: [8, 2, 3] };
    const first = { data: x.data.slice(0, 4 * 6), shape: [4, 2, 3] };
    const second = { data: x.data.slice(4 * 6), shape: [4, 2, 3] };
    const full = gru.forwardTrain(x);
    const a = gru.forwardTrain(first);
    const b = gru.forwardTrain(second, detach(a.hidden));
    expectBitwise(a.output.data, full.output.data.subarray(0, 4 * 10), 'first chunk');
    expectBitwise(b.output.data, full.output.data.subarray(4 * 10), 'second chunk');
    // A loss on the second chunk only: through the cut, the full run's gradient reaches the first
    // chunk's inputs; the truncated run's does not (its first chunk never sees it).
    const dSecond = { data: uniform(rand, 4 * 2 * 5, 1), shape: [4, 2, 5] };
    const dFull = new Float32Array(8 * 2 * 5);
    dFull.set(dSecond.data, 4 * 10);
    const gFull = full.backward({ data: dFull, shape: [8, 2, 5] });
    const gCut = b.backward(dSecond);
    expect(gFull.dInput.data.subarray(0, 4 * 6).some((v) => v !== 0)).toBe(true);
    expectClose(gCut.dInput.data, gFull.dInput.data.subarray(4 * 6), 1e-5, 'dInput of the second chunk');
    // The parameter gradients differ by exactly what flowed through the cut.
    const weight = 'weight_hh_l0';
    expect(Array.from(gCut.grads[weight].data)).not.toEqual(Array.from(gFull.grads[weight].data));
    const viaCut = a.backward(null, gCut.dH0);
    const summed = gCut.grads[weight].data.map((v, i) => v + viaCut.grads[weight].data[i]);
    expectClose(summed, gFull.grads[weight].data, 1e-5, 'cut + carried = full');
  });

  it('a tiny character model learns: the loss falls by a margin in a few steps', () => {
    const text = 'the quick brown fox jumps over the lazy dog '.repeat(6);
    const vocab = [...new Set(text)];
    const V = vocab.length;
    const ids = [...text].map((c) => vocab.indexOf(c));
    const T = 12, B = 4, H = 24;
    const gru = new GRU({ inputSize: V, hiddenSize: H, backend, seed: 11 });
    const head = new Linear({ inFeatures: H, outFeatures: V, backend, seed: 12 });
    const opt = new Adam({ gru, head }, { lr: 0.02 });
    const batch = (offset: number) => {
      const x = new Float32Array(T * B * V);
      const y: number[] = [];
      for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) {
        const at = (offset + b * 50 + t) % (ids.length - 1);
        x[(t * B + b) * V + ids[at]] = 1;
        y.push(ids[at + 1]);
      }
      return { x: { data: x, shape: [T, B, V] } as Tensor, y };
    };
    const losses: number[] = [];
    for (let step = 0; step < 40; step++) {
      const { x, y } = batch(step * 7);
      const run = gru.forwardTrain(x);
      const out = head.forwardTrain(run.output);
      const { loss, dLogits } = softmaxCrossEntropy(out.output, y);
      const hb = out.backward(dLogits);
      const gb = run.backward(hb.dInput);
      const grads = { gru: gb.grads, head: hb.grads };
      clipGradNorm(grads, 1);
      opt.step(grads);
      losses.push(loss);
    }
    const start = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const end = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(start).toBeGreaterThan(Math.log(V) - 0.5);
    expect(end, `loss ${start.toFixed(3)} -> ${end.toFixed(3)}`).toBeLessThan(start - 1.0);
  });

  it.runIf(backend === 'native' && !/asan/.test(process.env.LD_PRELOAD ?? ''))('a synchronous training loop keeps its memory flat (results, tapes and packed weights are garbage-collected memory)', () => {
    const gru = new GRU({ inputSize: 28, hiddenSize: 256, backend, seed: 3 });
    const x = { data: uniform(prng(7), 35 * 32 * 28, 1), shape: [35, 32, 28] };
    const step = () => {
      const run = gru.forwardTrain(x);
      run.backward(run.output);
      gru.parametersChanged(); // as an optimizer step does: the weights are repacked
    };
    for (let i = 0; i < 20; i++) step();
    const before = process.memoryUsage().rss;
    // Each step makes about 10 MB (tape, outputs, gradients, packed weights): 200 steps would hold
    // 2 GB if any of it waited for the event loop to be freed.
    for (let i = 0; i < 200; i++) step();
    const grown = (process.memoryUsage().rss - before) / 2 ** 20;
    expect(grown, `RSS grew ${grown.toFixed(0)} MiB`).toBeLessThan(500);
  });

  it('parameters() are live: an in-place change takes effect after parametersChanged()', () => {
    const gru = new GRU({ inputSize: 2, hiddenSize: 3, backend, seed: 1 });
    const x = { data: Float32Array.from([1, -1, 0.5, 0.5]), shape: [2, 2] };
    const before = gru.forward(x).output.data;
    gru.parameters().bias_ih_l0.data[0] += 1;
    gru.parametersChanged();
    const after = gru.forward(x).output.data;
    expect(Array.from(after)).not.toEqual(Array.from(before));
    expectBitwise(gru.stateDict().bias_ih_l0.data, gru.parameters().bias_ih_l0.data, 'stateDict sees the change');
  });
});
