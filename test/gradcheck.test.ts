// backward against central finite differences of forward (the ggml gradient mode). The loss
//   L = sum(output ⊙ dOut) + sum(hidden ⊙ dHid)
// with fixed random dOut, dHid has dL/d(output) = dOut and dL/d(hidden) = dHid, so backward(dOut, dHid)
// must return its gradient with respect to x, h0 and every parameter. L is summed in double from
// forward's float32 outputs; each parameter, x or h0 entry is moved by ±EPS (the moved values
// rounded to float32, and the difference divided by the step actually taken).
//
// Tolerance, measured on these cases with EPS in {3e-2, 1e-2, 3e-3, 1e-3}:
// - float32 noise: each output carries a relative rounding error of up to 2^-24 ≈ 6e-8; over the
//   ~100 terms of L that is ~1e-6 in L at worst, ~5e-5 in a difference quotient over 2·EPS = 2e-2;
// - truncation: central differences err by EPS²/6 · L''' — the error grew 9x from EPS 1e-2 to 3e-2,
//   so at 1e-2 it is truncation that dominates, and below 3e-3 it is the noise (it grows as 1/EPS).
// EPS = 1e-2 balances the two. Each element must satisfy |fd − g| ≤ 2e-4 + 2e-3·|g|, and each tensor
// ‖fd − g‖₂ ≤ 1e-3·‖g‖₂. Over the 16 cases below (152 tensors) the worst element uses 26% of its
// bound and the worst tensor is 9.4e-5 off in relative norm, about 4x and 10x margin (the dropout
// cases: 8% and 5.9e-5).
// The norm test is what catches a small systematic error: a gradient scaled by 1.01 is 1e-2 off in
// relative norm, 10x the bound. Checked once by hand: scaling each of the 188 tensors by 1.01, and
// swapping the r and z rows of each of the 152 parameter gradients, made every one fail its check.
import { describe, it, expect } from 'vitest';
import { GRU, tensor, type GRUOptions, type StateDict, type Tensor } from '../src/index.js';
import { centralDifferences, expectGradient } from './helpers/gradcheck.js';
import { prng, uniform } from './helpers/prng.mjs';

const T = 4;
const B = 3;
const I = 3;
const H = 3;
/** Unsorted on purpose: one full, one shorter, one of length 1. */
const LENGTHS = [2, 4, 1];

function loss(result: { output: Tensor; hidden: Tensor }, dOut: Float32Array, dHid: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < dOut.length; i++) sum += result.output.data[i] * dOut[i];
  for (let i = 0; i < dHid.length; i++) sum += result.hidden.data[i] * dHid[i];
  return sum;
}

function copyDict(sd: StateDict): StateDict {
  return Object.fromEntries(Object.entries(sd).map(([k, v]) => [k, { data: v.data.slice(), shape: v.shape }]));
}

interface Problem {
  x: Float32Array;
  h0: Float32Array;
  dOut: Float32Array;
  dHid: Float32Array;
}

function makeProblem(options: GRUOptions, seed: number): Problem {
  const D = options.bidirectional ? 2 : 1;
  const LD = (options.numLayers ?? 1) * D;
  const rand = prng(seed);
  return {
    x: uniform(rand, T * B * I, 1.5),
    h0: uniform(rand, LD * B * H, 0.8),
    dOut: uniform(rand, T * B * D * H, 1),
    dHid: uniform(rand, LD * B * H, 1),
  };
}

/**
 * Checks backward's dInput, dH0 and every parameter gradient against central differences of
 * `lossAt(stateDict, x, h0)`, which reads the arrays it is given (they are moved in place).
 */
function checkAgainstFiniteDifferences(
  analytic: { dInput: Tensor; dH0: Tensor; grads: StateDict },
  stateDict: StateDict,
  p: Problem,
  lossAt: (sd: StateDict, x: Float32Array, h0: Float32Array) => number,
): void {
  const work = copyDict(stateDict);
  const x = p.x.slice();
  const h0 = p.h0.slice();
  expect(Object.keys(analytic.grads)).toEqual(Object.keys(stateDict));
  for (const name of Object.keys(work)) {
    const fd = centralDifferences(work[name].data, () => lossAt(work, x, h0));
    expectGradient(analytic.grads[name].data, fd, name);
  }
  expectGradient(analytic.dInput.data, centralDifferences(x, () => lossAt(work, x, h0)), 'dInput');
  expectGradient(analytic.dH0.data, centralDifferences(h0, () => lossAt(work, x, h0)), 'dH0');
}

const cases: Array<[string, GRUOptions, number[] | null]> = [];
for (const resetAfter of [true, false]) {
  for (const [numLayers, bidirectional] of [[1, false], [2, true]] as const) {
    for (const lengths of [null, LENGTHS]) {
      for (const bias of [true, false]) {
        const name = `resetAfter ${resetAfter}, ${numLayers} layer${numLayers > 1 ? 's' : ''} ` +
          `${bidirectional ? 'bidirectional' : 'unidirectional'}, ${lengths ? `lengths ${lengths}` : 'no lengths'}, ` +
          `${bias ? 'bias' : 'no bias'}`;
        cases.push([name, { inputSize: I, hiddenSize: H, numLayers, bidirectional, bias, resetAfter }, lengths]);
      }
    }
  }
}

describe('backward against central finite differences of forward', () => {
  it.each(cases.map((c, index) => [...c, index] as const))('%s', (_name, base, lengths, index) => {
    const options: GRUOptions = { ...base, backend: 'js', seed: 100 + index };
    const D = options.bidirectional ? 2 : 1;
    const LD = options.numLayers! * D;
    const gru = new GRU(options);
    const p = makeProblem(options, 200 + index);
    const opts = lengths ? { lengths } : undefined;
    const analytic = gru
      .forwardTrain(tensor(p.x, [T, B, I]), tensor(p.h0, [LD, B, H]), opts)
      .backward(tensor(p.dOut, [T, B, D * H]), tensor(p.dHid, [LD, B, H]));
    if (lengths) {
      // padding is never read: its gradient is exactly zero (and so are its finite differences)
      for (let t = 0; t < T; t++) {
        for (let b = 0; b < B; b++) {
          if (t >= lengths[b]) for (let k = 0; k < I; k++) expect(analytic.dInput.data[(t * B + b) * I + k]).toBe(0);
        }
      }
    }
    const probe = new GRU(options);
    checkAgainstFiniteDifferences(analytic, gru.stateDict(), p, (sd, x, h0) => {
      probe.loadStateDict(sd);
      return loss(probe.forward(tensor(x, [T, B, I]), tensor(h0, [LD, B, H]), opts), p.dOut, p.dHid);
    });
  });

  describe('with dropout between layers', () => {
    const options: GRUOptions = {
      inputSize: I, hiddenSize: H, numLayers: 2, bidirectional: true, dropout: 0.5, backend: 'js', seed: 4242,
    };
    const LD = 4;
    const opts = { lengths: LENGTHS };

    it.each([true, false])('resetAfter %s: backward matches finite differences under the same mask', (resetAfter) => {
      // The mask is drawn from the model's RNG at each forwardTrain; a fresh GRU with the same seed
      // has drawn the same initial parameters, so its first forwardTrain draws the same mask. Every
      // loss below is the first forwardTrain of a fresh model, after loading the perturbed parameters.
      const o = { ...options, resetAfter };
      const p = makeProblem(o, 77);
      const x = tensor(p.x, [T, B, I]);
      const h0 = tensor(p.h0, [LD, B, H]);
      const reference = new GRU(o);
      const run = reference.forwardTrain(x, h0, opts);
      const analytic = run.backward(tensor(p.dOut, [T, B, 2 * H]), tensor(p.dHid, [LD, B, H]));

      const twin = new GRU(o).forwardTrain(x, h0, opts);
      expect(Array.from(twin.output.data)).toEqual(Array.from(run.output.data));
      // and the mask does something: training output differs from inference output
      const inference = reference.forward(x, h0, opts);
      expect(run.output.data.some((v, k) => v !== inference.output.data[k])).toBe(true);
      expect(Array.from(run.hidden.data.subarray(0, 2 * B * H))).toEqual(Array.from(inference.hidden.data.subarray(0, 2 * B * H)));

      checkAgainstFiniteDifferences(analytic, reference.stateDict(), p, (sd, xs, h0s) => {
        const fresh = new GRU(o).loadStateDict(sd);
        return loss(fresh.forwardTrain(tensor(xs, [T, B, I]), tensor(h0s, [LD, B, H]), opts), p.dOut, p.dHid);
      });
    });

    it('dropout 1 cuts the path from the output down to the first layer', () => {
      const gru = new GRU({ ...options, dropout: 1 });
      const p = makeProblem(options, 78);
      p.dHid.fill(0, 0, 2 * B * H); // only the top layer's final state has a gradient
      const g = gru
        .forwardTrain(tensor(p.x, [T, B, I]), tensor(p.h0, [LD, B, H]), opts)
        .backward(tensor(p.dOut, [T, B, 2 * H]), tensor(p.dHid, [LD, B, H]));
      for (const [name, grad] of Object.entries(g.grads)) {
        // the first layer gets nothing; the top layer's input is all zeros, so weight_ih_l1 too
        const reached = name.includes('_l1') && !name.startsWith('weight_ih');
        expect(grad.data.some((v) => v !== 0), name).toBe(reached);
      }
      expect(g.dInput.data.every((v) => v === 0)).toBe(true);
      expect(g.dH0.data.subarray(0, 2 * B * H).every((v) => v === 0)).toBe(true);
      expect(g.dH0.data.subarray(2 * B * H).some((v) => v !== 0)).toBe(true);
    });
  });
});
