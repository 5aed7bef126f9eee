// GRUCell (torch.nn.GRUCell): PyTorch 1.13 fixtures for h' and every gradient on both backends
// (generated in float64 by test/fixtures/make_cell_fixtures.py), finite differences, bit equality
// with a one-layer GRU (one step, and a d2l-style loop of T steps), conversion round trips, an
// error for every argument and option, and the optimizers over a cell.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  Adam,
  ArgumentError,
  backendInfo,
  clipGradNorm,
  DTypeError,
  FastGruError,
  GRU,
  GRUCell,
  OptionError,
  SGD,
  ShapeError,
  StateDictError,
  tensor,
  type GRUCellOptions,
  type StateDict,
  type Tensor,
} from '../src/index.js';
import { expectBitwise, expectClose } from './helpers/compare.js';
import { centralDifferences, expectGradient } from './helpers/gradcheck.js';
import { thrownBy } from './helpers/errors.js';
import { prng, uniform } from './helpers/prng.mjs';

interface FixtureTensor {
  shape: number[];
  data: number[];
}

interface CellFixture {
  name: string;
  options: { inputSize: number; hiddenSize: number; bias: boolean; resetAfter: boolean };
  stateDict: Record<string, FixtureTensor>;
  x: FixtureTensor;
  h: FixtureTensor | null;
  dOutput: FixtureTensor;
  output: FixtureTensor;
  dInput: FixtureTensor;
  dH: FixtureTensor;
  grads: Record<string, FixtureTensor>;
}

const TOL = 1e-5;
const dir = fileURLToPath(new URL('./fixtures/cell/', import.meta.url));
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
  .map((f) => JSON.parse(readFileSync(dir + f, 'utf8')) as CellFixture);
const t = (f: FixtureTensor) => tensor(new Float32Array(f.data), f.shape);
const backends = backendInfo().backend === 'native' ? (['js', 'native'] as const) : (['js'] as const);

describe.each(backends)('PyTorch nn.GRUCell fixtures on the %s backend', (backend) => {
  it('has every case: 6 shapes in both forms', () => {
    expect(fixtures.length).toBe(12);
  });

  describe.each(fixtures.map((f) => [f.name, f] as const))('%s', (_name, fx) => {
    const cell = new GRUCell({ ...fx.options, backend }).loadStateDict(
      Object.fromEntries(Object.entries(fx.stateDict).map(([k, v]) => [k, t(v)])),
    );
    const h = fx.h ? t(fx.h) : undefined;

    it('forward matches h\'', () => {
      const out = cell.forward(t(fx.x), h);
      expect(out.shape).toEqual(fx.output.shape);
      expectClose(out.data, fx.output.data, TOL, 'output');
    });

    it('backward matches dInput, dH and every parameter gradient', () => {
      const run = cell.forwardTrain(t(fx.x), h);
      expectClose(run.output.data, fx.output.data, TOL, 'train output');
      const { dInput, dH, grads } = run.backward(t(fx.dOutput));
      expect(dInput.shape).toEqual(fx.dInput.shape);
      expect(dH.shape).toEqual(fx.dH.shape);
      expectClose(dInput.data, fx.dInput.data, TOL, 'dInput');
      expectClose(dH.data, fx.dH.data, TOL, 'dH');
      expect(Object.keys(grads)).toEqual(Object.keys(fx.grads));
      for (const [name, g] of Object.entries(fx.grads)) {
        expect(grads[name].shape, name).toEqual(g.shape);
        expectClose(grads[name].data, g.data, TOL, name);
      }
    });
  });
});

/** A cell and a one-layer GRU with the same weights, on one backend. */
function pair(options: GRUCellOptions): { cell: GRUCell; gru: GRU } {
  const cell = new GRUCell(options);
  return { cell, gru: cell.toGRU() };
}

const FORMS = backends.flatMap((backend) => [true, false].flatMap((resetAfter) =>
  [true, false].map((bias) => ({ backend, resetAfter, bias }))));

describe.each(FORMS)('bits of a one-layer GRU: %o', ({ backend, resetAfter, bias }) => {
  const I = 5;
  const H = 7;
  const B = 3;
  const options = { inputSize: I, hiddenSize: H, bias, resetAfter, backend, seed: 11 };

  it('one step, batched and unbatched, with and without h: forward and backward', () => {
    const { cell, gru } = pair(options);
    const rand = prng(3);
    const x = uniform(rand, B * I, 1.5);
    const h = uniform(rand, B * H, 0.8);
    const dOut = uniform(rand, B * H, 1);
    for (const withH of [true, false]) {
      const ref = gru.forwardTrain(tensor(x, [1, B, I]), withH ? tensor(h, [1, B, H]) : null);
      const run = cell.forwardTrain(tensor(x, [B, I]), withH ? tensor(h, [B, H]) : null);
      expect(run.output.shape).toEqual([B, H]);
      expectBitwise(run.output.data, ref.hidden.data, 'forwardTrain h\'');
      expectBitwise(cell.forward(tensor(x, [B, I]), withH ? tensor(h, [B, H]) : undefined).data, ref.hidden.data, 'forward h\'');
      const g = run.backward(tensor(dOut, [B, H]));
      const r = ref.backward(null, tensor(dOut, [1, B, H]));
      expectBitwise(g.dInput.data, r.dInput.data, 'dInput');
      expectBitwise(g.dH.data, r.dH0.data, 'dH');
      for (const name of cell.parameterNames()) expectBitwise(g.grads[name].data, r.grads[`${name}_l0`].data, name);
      // Unbatched: x [I], h [H] -> h' [H], the first sequence's state.
      const one = cell.forward(tensor(x.slice(0, I), [I]),
        withH ? tensor(h.slice(0, H), [H]) : null);
      const oneRef = gru.forward(tensor(x.slice(0, I), [1, I]), withH ? tensor(h.slice(0, H), [1, H]) : null);
      expect(one.shape).toEqual([H]);
      expectBitwise(one.data, oneRef.hidden.data, 'unbatched h\'');
    }
  });

  it('a d2l-style decoder loop: stepping T times is the GRU over T steps, forward bit for bit', () => {
    const T = 6;
    const { cell, gru } = pair(options);
    const rand = prng(5);
    const x = uniform(rand, T * B * I, 1.5);
    const h0 = uniform(rand, B * H, 0.8);
    const dOut = uniform(rand, T * B * H, 1);
    const ref = gru.forwardTrain(tensor(x, [T, B, I]), tensor(h0, [1, B, H]));
    let h: Tensor = tensor(h0.slice(), [B, H]);
    const runs = [];
    for (let step = 0; step < T; step++) {
      const run = cell.forwardTrain(tensor(x.slice(step * B * I, (step + 1) * B * I), [B, I]), h);
      expectBitwise(run.output.data, ref.output.data.subarray(step * B * H, (step + 1) * B * H), `h' at step ${step}`);
      runs.push(run);
      h = run.output;
    }
    expectBitwise(h.data, ref.hidden.data, 'final state');
    // Backpropagation through time by hand: each step's dH flows into the previous step's dOutput.
    const r = ref.backward(tensor(dOut, [T, B, H]));
    const sums: Record<string, Float64Array> = {};
    let carry: Float32Array = new Float32Array(B * H);
    for (let step = T - 1; step >= 0; step--) {
      const d = dOut.slice(step * B * H, (step + 1) * B * H);
      for (let k = 0; k < d.length; k++) d[k] += carry[k];
      const g = runs[step].backward(tensor(d, [B, H]));
      expectClose(g.dInput.data, r.dInput.data.subarray(step * B * I, (step + 1) * B * I), 1e-5, `dInput at step ${step}`);
      for (const [name, v] of Object.entries(g.grads)) {
        sums[name] ??= new Float64Array(v.data.length);
        for (let k = 0; k < v.data.length; k++) sums[name][k] += v.data[k];
      }
      carry = g.dH.data;
    }
    expectClose(carry, r.dH0.data, 1e-5, 'dH0');
    for (const name of cell.parameterNames()) expectClose(Float32Array.from(sums[name]), r.grads[`${name}_l0`].data, 1e-5, name);
  });
});

// Central differences of L = sum(h' ⊙ dOut), with test/gradcheck.test.ts's step and bounds.
describe.each(FORMS)('finite differences: %o', ({ backend, resetAfter, bias }) => {
  it('dInput, dH and every parameter gradient', () => {
    const I = 3;
    const H = 4;
    const B = 2;
    const cell = new GRUCell({ inputSize: I, hiddenSize: H, bias, resetAfter, backend, seed: 7 });
    const rand = prng(9);
    const x = uniform(rand, B * I, 1.5);
    const h = uniform(rand, B * H, 0.8);
    const dOut = uniform(rand, B * H, 1);
    const g = cell.forwardTrain(tensor(x, [B, I]), tensor(h, [B, H])).backward(tensor(dOut, [B, H]));
    const loss = () => {
      const out = cell.forward(tensor(x, [B, I]), tensor(h, [B, H])).data;
      let sum = 0;
      for (let k = 0; k < out.length; k++) sum += out[k] * dOut[k];
      return sum;
    };
    expectGradient(g.dInput.data, centralDifferences(x, loss), 'dInput');
    expectGradient(g.dH.data, centralDifferences(h, loss), 'dH');
    const params = cell.parameters();
    expect(Object.keys(g.grads)).toEqual(Object.keys(params));
    for (const [name, p] of Object.entries(params)) {
      const fd = centralDifferences(p.data, () => {
        cell.parametersChanged();
        return loss();
      });
      cell.parametersChanged();
      expectGradient(g.grads[name].data, fd, name);
    }
  });
});

describe('names and conversion', () => {
  it('has torch.nn.GRUCell\'s names and shapes, and a one-layer GRU\'s initialisation for a seed', () => {
    const cell = new GRUCell({ inputSize: 3, hiddenSize: 2, seed: 4 });
    expect(cell.parameterNames()).toEqual(['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']);
    const sd = cell.stateDict();
    expect(Object.fromEntries(Object.entries(sd).map(([k, v]) => [k, v.shape]))).toEqual({
      weight_ih: [6, 3], weight_hh: [6, 2], bias_ih: [6], bias_hh: [6],
    });
    expect(new GRUCell({ inputSize: 3, hiddenSize: 2, bias: false }).parameterNames()).toEqual(['weight_ih', 'weight_hh']);
    const gru = new GRU({ inputSize: 3, hiddenSize: 2, seed: 4 }).stateDict();
    for (const name of cell.parameterNames()) expectBitwise(sd[name].data, gru[`${name}_l0`].data, name);
    // stateDict copies; parameters() are the live arrays.
    sd.weight_ih.data[0] += 1;
    expect(cell.stateDict().weight_ih.data[0]).not.toBe(sd.weight_ih.data[0]);
    expect(cell.parameters().weight_ih.data).toBe(cell.parameters().weight_ih.data);
  });

  it.each(backends)('fromGRU, toGRU and the state dicts round-trip bit for bit (%s)', (backend) => {
    for (const resetAfter of [true, false]) {
      const gru = new GRU({ inputSize: 4, hiddenSize: 3, resetAfter, batchFirst: true, backend, seed: 2 });
      const cell = GRUCell.fromGRU(gru);
      expect(cell.resetAfter).toBe(resetAfter);
      expect(cell.backend).toBe(backend);
      const back = cell.toGRU({ batchFirst: true });
      expect(back.batchFirst).toBe(true);
      expect(back.resetAfter).toBe(resetAfter);
      const a = gru.stateDict();
      const b = back.stateDict();
      expect(Object.keys(b)).toEqual(Object.keys(a));
      for (const name of Object.keys(a)) expectBitwise(b[name].data, a[name].data, name);
      // The cell's names in, the same values out; another cell loads them.
      const other = new GRUCell({ inputSize: 4, hiddenSize: 3, resetAfter, backend }).loadStateDict(cell.stateDict());
      for (const [name, v] of Object.entries(other.stateDict())) expectBitwise(v.data, a[`${name}_l0`].data, name);
      // The GRU's state after one step is the cell's h'.
      const x = [[0.3, -0.2, 0.9, 0.1]];
      expectBitwise(other.forward(x).data, gru.forward([x]).hidden.data, 'h\'');
    }
    const noBias = new GRU({ inputSize: 2, hiddenSize: 2, bias: false, backend, seed: 1 });
    expect(GRUCell.fromGRU(noBias).toGRU().parameterNames()).toEqual(['weight_ih_l0', 'weight_hh_l0']);
    expect(GRUCell.fromGRU(noBias, { backend: 'js', threads: 1 }).backend).toBe('js');
    expect(new GRUCell({ inputSize: 2, hiddenSize: 2, backend }).toGRU({ backend: 'js', threads: 1 }).backend).toBe('js');
  });

  it('loadStateDict takes a Map and number arrays, and changes nothing when an entry is bad', () => {
    const cell = new GRUCell({ inputSize: 1, hiddenSize: 1, seed: 3 });
    const before = cell.stateDict();
    const bad = { weight_ih: [[1], [2], [3]], weight_hh: [[1], [2], [3]], bias_ih: [0, 0, 0], bias_hh: [0, 0] };
    expect(() => cell.loadStateDict(bad)).toThrow(StateDictError);
    for (const [name, v] of Object.entries(cell.stateDict())) expectBitwise(v.data, before[name].data, name);
    cell.loadStateDict(new Map(Object.entries({ ...bad, bias_hh: new Float64Array([0.5, 0, 0]) })));
    expect([...cell.stateDict().bias_hh.data]).toEqual([0.5, 0, 0]);
    expect([...cell.stateDict().weight_ih.data]).toEqual([1, 2, 3]);
  });
});

describe('an error for every argument and option', () => {
  type ErrorClass = new (message: string) => FastGruError;
  const CODE = new Map<ErrorClass, string>([
    [ShapeError, 'ERR_SHAPE'], [DTypeError, 'ERR_DTYPE'], [ArgumentError, 'ERR_ARGUMENT'],
    [OptionError, 'ERR_OPTION'], [StateDictError, 'ERR_STATE_DICT'],
  ]);
  function expectError(call: () => unknown, error: ErrorClass, arg: string, contains: string): void {
    const e = thrownBy(call) as FastGruError;
    expect(e).toBeInstanceOf(error);
    expect(e).toBeInstanceOf(FastGruError);
    expect(e.code).toBe(CODE.get(error));
    expect(e.message.startsWith(`${arg}: expected `), e.message).toBe(true);
    expect(e.message).toContain(contains);
  }
  const ok: GRUCellOptions = { inputSize: 2, hiddenSize: 3, backend: 'js' };
  const cell = new GRUCell(ok);

  it('constructor options, beside valid neighbours', () => {
    expect(new GRUCell({ ...ok, bias: false, resetAfter: false, threads: 2, seed: 0 }).bias).toBe(false);
    expectError(() => new GRUCell(null as never), OptionError, 'options', 'inputSize and hiddenSize');
    expectError(() => new GRUCell([] as never), OptionError, 'options', 'an object');
    expectError(() => new GRUCell({ ...ok, numLayers: 2 } as never), OptionError, 'options', 'unknown option "numLayers"');
    expectError(() => new GRUCell({ ...ok, batchFirst: true } as never), OptionError, 'options', 'unknown option "batchFirst"');
    expectError(() => new GRUCell({ hiddenSize: 3 } as never), OptionError, 'options.inputSize', 'a positive integer');
    expectError(() => new GRUCell({ inputSize: 2 } as never), OptionError, 'options.hiddenSize', 'a positive integer');
    expectError(() => new GRUCell({ ...ok, inputSize: 0 }), OptionError, 'options.inputSize', 'got 0');
    expectError(() => new GRUCell({ ...ok, hiddenSize: 1.5 }), OptionError, 'options.hiddenSize', 'got 1.5');
    expectError(() => new GRUCell({ ...ok, bias: 1 as never }), OptionError, 'options.bias', 'a boolean');
    expectError(() => new GRUCell({ ...ok, resetAfter: 'no' as never }), OptionError, 'options.resetAfter', 'a boolean');
    expectError(() => new GRUCell({ ...ok, backend: 'gpu' as never }), OptionError, 'options.backend', "'native' or 'js'");
    expectError(() => new GRUCell({ ...ok, threads: 0 }), OptionError, 'options.threads', 'a positive integer');
    expectError(() => new GRUCell({ ...ok, threads: 2000 }), OptionError, 'options.threads', 'up to 1024');
    expectError(() => new GRUCell({ ...ok, seed: -1 }), OptionError, 'options.seed', 'a non-negative integer');
    expectError(() => new GRUCell({ ...ok, inputSize: 2 ** 29 }), OptionError, 'options', 'at most 2^30 elements');
  });

  it('forward and forwardTrain: x and h', () => {
    expect(cell.forward([[1, 2]], [[0, 0, 0]]).shape).toEqual([1, 3]);
    expect(cell.forward([1, 2], [0, 0, 0]).shape).toEqual([3]);
    for (const call of [(x: unknown, h?: unknown) => cell.forward(x as never, h as never),
      (x: unknown, h?: unknown) => cell.forwardTrain(x as never, h as never)]) {
      expectError(() => call('x'), ArgumentError, 'x', 'a Tensor');
      expectError(() => call(new Float32Array(2)), ArgumentError, 'x', 'wrap typed arrays');
      expectError(() => call({ data: new Float64Array(2), shape: [2] }), DTypeError, 'x.data', 'a Float32Array');
      expectError(() => call([[1, 2, 3]]), ShapeError, 'x', 'shape [B, 2] (or [2] for one unbatched input), got [1, 3]');
      expectError(() => call([[[1, 2]]]), ShapeError, 'x', 'got [1, 1, 2]');
      expectError(() => call([1, 2, 3]), ShapeError, 'x', 'got [3]');
      expectError(() => call([[1, 2]], 'h'), ArgumentError, 'h', 'a Tensor');
      expectError(() => call([[1, 2]], [[0, 0]]), ShapeError, 'h', 'shape [1, 3]');
      expectError(() => call([[1, 2]], [0, 0, 0]), ShapeError, 'h', 'shape [1, 3]');
      expectError(() => call([1, 2], [[0, 0, 0]]), ShapeError, 'h', 'shape [3]');
      expectError(() => call([[1, 2], [3, 4]], [[0, 0, 0]]), ShapeError, 'h', 'got [1, 3]');
    }
  });

  it('backward: dOutput', () => {
    const run = cell.forwardTrain([[1, 2]]);
    expect(run.backward([[1, 1, 1]]).dInput.shape).toEqual([1, 2]);
    expectError(() => run.backward(undefined as never), ArgumentError, 'dOutput', 'a Tensor');
    expectError(() => run.backward([1, 1, 1]), ShapeError, 'dOutput', 'shape [1, 3]');
    expectError(() => run.backward({ data: new Int32Array(3), shape: [1, 3] } as never), DTypeError, 'dOutput.data', 'Float32Array');
  });

  it('loadStateDict: the cell\'s names only, each with its shape', () => {
    const sd = cell.stateDict();
    expect(cell.loadStateDict(sd)).toBe(cell);
    expectError(() => cell.loadStateDict(null as never), StateDictError, 'stateDict', 'an object');
    expectError(() => cell.loadStateDict([] as never), StateDictError, 'stateDict', 'an object');
    const { bias_hh: _dropped, ...missing } = sd;
    expectError(() => cell.loadStateDict(missing), StateDictError, 'stateDict', 'missing bias_hh');
    expectError(() => cell.loadStateDict({ ...sd, extra: sd.bias_hh }), StateDictError, 'stateDict', 'unexpected extra');
    const gruNames = Object.fromEntries(Object.entries(sd).map(([k, v]) => [`${k}_l0`, v]));
    expectError(() => cell.loadStateDict(gruNames), StateDictError, 'stateDict', 'GRUCell.fromGRU');
    expectError(() => cell.loadStateDict({ ...sd, weight_hh: tensor(new Float32Array(9), [3, 3]) }),
      StateDictError, 'stateDict.weight_hh', 'shape [9, 3]');
    expectError(() => cell.loadStateDict({ ...sd, bias_ih: [1, 2] }), StateDictError, 'stateDict.bias_ih', '9 values');
    expectError(() => cell.loadStateDict({ ...sd, bias_ih: 'b' as never }), StateDictError, 'stateDict.bias_ih', 'a tensor');
  });

  it('fromGRU: gru and options; toGRU: options', () => {
    const gru = new GRU({ inputSize: 2, hiddenSize: 3, backend: 'js' });
    expect(GRUCell.fromGRU(gru, null).inputSize).toBe(2);
    expectError(() => GRUCell.fromGRU(cell as never), ArgumentError, 'gru', 'a GRU');
    expectError(() => GRUCell.fromGRU(new GRU({ inputSize: 2, hiddenSize: 3, numLayers: 2 })), ArgumentError, 'gru',
      'got numLayers 2, bidirectional false');
    expectError(() => GRUCell.fromGRU(new GRU({ inputSize: 2, hiddenSize: 3, bidirectional: true })), ArgumentError, 'gru',
      'bidirectional true');
    expectError(() => GRUCell.fromGRU(gru, 3 as never), OptionError, 'options', 'an object');
    expectError(() => GRUCell.fromGRU(gru, { batchFirst: true } as never), OptionError, 'options', 'unknown option "batchFirst"');
    expectError(() => GRUCell.fromGRU(gru, { backend: 'gpu' as never }), OptionError, 'options.backend', "'js'");
    expectError(() => GRUCell.fromGRU(gru, { threads: -1 }), OptionError, 'options.threads', 'a positive integer');
    expect(cell.toGRU(null).numLayers).toBe(1);
    expectError(() => cell.toGRU('x' as never), OptionError, 'options', 'an object');
    expectError(() => cell.toGRU({ numLayers: 2 } as never), OptionError, 'options', 'unknown option "numLayers"');
    expectError(() => cell.toGRU({ batchFirst: 1 as never }), OptionError, 'options.batchFirst', 'a boolean');
    expectError(() => cell.toGRU({ backend: 'cuda' as never }), OptionError, 'options.backend', "'js'");
    expectError(() => cell.toGRU({ threads: 1.5 }), OptionError, 'options.threads', 'a positive integer');
  });
});

describe.each(backends)('optimizers over a cell (%s)', (backend) => {
  it.each([
    ['SGD', (cell: GRUCell) => new SGD({ cell }, { lr: 0.5 })],
    ['Adam', (cell: GRUCell) => new Adam({ cell }, { lr: 0.05 })],
  ] as const)('%s with clipGradNorm lowers a loss of a 4-step decoder loop', (_name, make) => {
    // Teach the cell to carry its first input to the last step: x_0 = ±1, later inputs 0, target h'_3 = x_0.
    const cell = new GRUCell({ inputSize: 1, hiddenSize: 2, backend, seed: 5 });
    const opt = make(cell);
    const B = 2;
    const inputs = [[[1], [-1]], [[0], [0]], [[0], [0]], [[0], [0]]];
    const target = [[0.5, 0.5], [-0.5, -0.5]];
    const epoch = (train: boolean): number => {
      const runs = [];
      let h: Tensor | null = null;
      for (const x of inputs) {
        const run = cell.forwardTrain(x, h);
        runs.push(run);
        h = run.output;
      }
      const out = h!.data;
      let loss = 0;
      const d = new Float32Array(B * 2);
      for (let k = 0; k < d.length; k++) {
        const e = out[k] - target[Math.floor(k / 2)][k % 2];
        loss += 0.5 * e * e;
        d[k] = e;
      }
      if (train) {
        const sums: StateDict = {};
        let dOut = tensor(d, [B, 2]);
        for (let step = runs.length - 1; step >= 0; step--) {
          const g = runs[step].backward(dOut);
          for (const [name, v] of Object.entries(g.grads)) {
            if (!sums[name]) sums[name] = { data: new Float32Array(v.data.length), shape: v.shape };
            for (let k = 0; k < v.data.length; k++) sums[name].data[k] += v.data[k];
          }
          dOut = g.dH;
        }
        const norm = clipGradNorm({ cell: sums }, 1);
        expect(Number.isFinite(norm)).toBe(true);
        opt.step({ cell: sums });
      }
      return loss;
    };
    const first = epoch(false);
    for (let i = 0; i < 60; i++) epoch(true);
    const last = epoch(false);
    expect(last).toBeLessThan(first * 0.5);
  });
});
