// A training tape keeps the weights it was recorded with, on every backend: a change to the
// parameters applies to the calls that start after it (the native tape holds the packed weights of
// its forward; design §4 packs weights once, at load). Between forwardTrain and backward the
// parameters change by an optimizer step, by writes into the arrays of parameters() (with and
// without parametersChanged()) or of stateDict(), or by loadStateDict; backward must still give the
// gradients of the weights forwardTrain ran with: bit for bit those of a fresh model holding the old
// weights on the same backend, and native and js within 1e-5 of each other (design §3). The js
// backend gets there by packing backward's transposed weights from its forward operands
// (transposePacked), never from the parameter arrays.
import { describe, expect, it } from 'vitest';
import { backendInfo, GRU, Linear, SGD, type GRUGradients, type GRUOptions, type StateDict } from '../src/index.js';
import { NR, packB, transposePacked, view } from '../src/backend/js/gemm.js';
import { expectBitwise, expectClose } from './helpers/compare.js';
import { prng, uniform } from './helpers/native.js';

const backends = backendInfo().backend === 'native' ? (['native', 'js'] as const) : (['js'] as const);
const TOL = 1e-5;
const T = 5;
const B = 3;
const I = 4;
const H = 6;

type Change = (gru: GRU, grads: StateDict) => void;

/** Each way of changing the parameters between forwardTrain and backward. */
const changes: Record<string, Change> = {
  'an optimizer step': (gru, grads) => {
    new SGD({ gru }, { lr: 0.5 }).step({ gru: grads });
  },
  'writes into parameters() then parametersChanged()': (gru) => {
    for (const t of Object.values(gru.parameters())) t.data.forEach((v, i, a) => (a[i] = v * -1.5 + 0.1));
    gru.parametersChanged();
  },
  'writes into parameters() without parametersChanged()': (gru) => {
    for (const t of Object.values(gru.parameters())) t.data.fill(0.75);
  },
  'writes into the arrays of stateDict()': (gru) => {
    for (const t of Object.values(gru.stateDict())) t.data.fill(-0.75);
  },
  'loadStateDict': (gru, grads) => {
    gru.loadStateDict(grads);
  },
  'loadStateDict, then writes into the arrays parameters() gave before it': (gru, grads) => {
    const old = gru.parameters();
    gru.loadStateDict(grads);
    for (const t of Object.values(old)) t.data.fill(0.25);
  },
};

function configs(): Array<Omit<GRUOptions, 'backend'>> {
  return [
    { inputSize: I, hiddenSize: H, numLayers: 2, bidirectional: true, seed: 11 },
    { inputSize: I, hiddenSize: H, numLayers: 2, resetAfter: false, seed: 12 },
  ];
}

/** forwardTrain then backward on a fresh model holding `weights`: the gradients to expect. */
function reference(options: GRUOptions, weights: StateDict, call: ReturnType<typeof inputs>): GRUGradients {
  const gru = new GRU(options).loadStateDict(weights);
  return gru.forwardTrain(call.x, call.h0, { lengths: call.lengths }).backward(call.dOutput, call.dHidden);
}

function inputs(options: Omit<GRUOptions, 'backend'>, seed: number) {
  const D = options.bidirectional ? 2 : 1;
  const LD = (options.numLayers ?? 1) * D;
  const rand = prng(seed);
  return {
    x: { data: uniform(rand, T * B * I, 1), shape: [T, B, I] },
    lengths: [5, 2, 4],
    h0: { data: uniform(rand, LD * B * H, 1), shape: [LD, B, H] },
    dOutput: { data: uniform(rand, T * B * D * H, 1), shape: [T, B, D * H] },
    dHidden: { data: uniform(rand, LD * B * H, 1), shape: [LD, B, H] },
  };
}

function compare(actual: GRUGradients, expected: GRUGradients, what: string, tol: number | 'bitwise'): void {
  const check = (a: Float32Array, e: Float32Array, name: string) =>
    tol === 'bitwise' ? expectBitwise(a, e, `${what}: ${name}`) : expectClose(a, e, tol, `${what}: ${name}`);
  check(actual.dInput.data, expected.dInput.data, 'dInput');
  check(actual.dH0.data, expected.dH0.data, 'dH0');
  expect(Object.keys(actual.grads), `${what}: gradient names`).toEqual(Object.keys(expected.grads));
  for (const name of Object.keys(expected.grads)) check(actual.grads[name].data, expected.grads[name].data, name);
}

describe('a training tape keeps the weights of its forwardTrain', () => {
  configs().forEach((config, c) => {
    describe(JSON.stringify(config), () => {
      for (const [how, change] of Object.entries(changes)) {
        it(`backward after ${how} gives the old weights' gradients, on every backend alike`, () => {
          const call = inputs(config, 100 + c);
          const results: Partial<Record<(typeof backends)[number], GRUGradients>> = {};
          for (const backend of backends) {
            const options: GRUOptions = { ...config, backend };
            const gru = new GRU(options);
            expect(gru.backend).toBe(backend);
            const old = gru.stateDict();
            const expected = reference(options, old, call);
            // Other weights to change to: the old ones' gradients, as a training step would use.
            const run = gru.forwardTrain(call.x, call.h0, { lengths: call.lengths });
            change(gru, expected.grads);
            const got = run.backward(call.dOutput, call.dHidden);
            compare(got, expected, `${backend}, ${how}`, 'bitwise');
            // A second backward on the same tape, after one more change, still sees the old weights.
            changes['writes into parameters() then parametersChanged()'](gru, expected.grads);
            compare(run.backward(call.dOutput, call.dHidden), expected, `${backend}, ${how}, second backward`, 'bitwise');
            results[backend] = got;
          }
          if (results.native && results.js) compare(results.js, results.native, `${how}: js vs native`, TOL);
        });
      }

      it('a forwardTrain after the change runs with the new weights, forward and backward', () => {
        const call = inputs(config, 200 + c);
        const results: Partial<Record<(typeof backends)[number], GRUGradients>> = {};
        for (const backend of backends) {
          const options: GRUOptions = { ...config, backend };
          const gru = new GRU(options);
          const first = gru.forwardTrain(call.x, call.h0, { lengths: call.lengths });
          const g = first.backward(call.dOutput, call.dHidden);
          new SGD({ gru }, { lr: 0.5 }).step({ gru: g.grads });
          const expected = reference(options, gru.stateDict(), call);
          const got = gru.forwardTrain(call.x, call.h0, { lengths: call.lengths }).backward(call.dOutput, call.dHidden);
          compare(got, expected, `${backend}, after a step`, 'bitwise');
          // The step moved the weights enough to change the gradients: this is not the old tape again.
          let moved = 0;
          for (let i = 0; i < got.dInput.data.length; i++) moved = Math.max(moved, Math.abs(got.dInput.data[i] - g.dInput.data[i]));
          expect(moved, `${backend}: dInput moved by the step`).toBeGreaterThan(1e-3);
          results[backend] = got;
        }
        if (results.native && results.js) compare(results.js, results.native, 'after a step: js vs native', TOL);
      });
    });
  });
});

describe('transposePacked (the js backend packs its backward operands from its forward ones)', () => {
  it('equals packB of the transposed matrix bit for bit, padding included, at sizes off the panel width', () => {
    const rand = prng(5);
    for (const [n, k] of [[1, 1], [3, 5], [NR, NR], [NR + 1, 2 * NR - 1], [18, 7], [7, 18], [24, 40]]) {
      const m = uniform(rand, n * k, 1);
      const t = transposePacked(packB(view(m, 0, k), n, k));
      const direct = packB(view(m, 0, 1, k), k, n);
      expect([t.n, t.k], `${n}x${k}: extents`).toEqual([k, n]);
      expectBitwise(t.data, direct.data, `${n}x${k}`);
    }
  });
});

describe('a Linear run keeps the weight of its forwardTrain', () => {
  const backends = backendInfo().backend === 'native' ? (['js', 'native'] as const) : (['js'] as const);
  it.each(backends)('%s: an optimizer step or loadStateDict before backward changes nothing', (backend) => {
    const make = () => new Linear({ inFeatures: 6, outFeatures: 4, seed: 3, backend });
    const x = { data: Float32Array.from({ length: 5 * 6 }, (_, i) => Math.sin(0.7 * i)), shape: [5, 6] };
    const dY = { data: Float32Array.from({ length: 5 * 4 }, (_, i) => Math.cos(0.3 * i)), shape: [5, 4] };
    const want = make().forwardTrain(x).backward(dY);

    const stepped = make();
    const run = stepped.forwardTrain(x);
    const grads = run.backward(dY);
    new SGD({ head: stepped }, { lr: 1 }).step({ head: grads.grads });
    stepped.loadStateDict({ weight: { data: new Float32Array(24).fill(9), shape: [4, 6] }, bias: { data: new Float32Array(4), shape: [4] } });
    const again = run.backward(dY);
    expectBitwise(again.dInput.data, want.dInput.data, 'dInput');
    expectBitwise(again.grads.weight.data, want.grads.weight.data, 'dWeight');
  });
});
