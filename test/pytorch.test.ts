// The js backend against PyTorch 1.13: nn.GRU (resetAfter true) and a hand-written autograd GRU
// (resetAfter false), generated in float64 by test/fixtures/make_fixtures.py.
import { describe, it, expect } from 'vitest';
import { GRU, backendInfo, tensor } from '../src/index.js';
import { expectClose } from './helpers/compare.js';
import { loadFixtures, type FixtureTensor } from './helpers/fixtures.js';

const TOL = 1e-5;
const fixtures = loadFixtures();
const t = (f: FixtureTensor) => tensor(new Float32Array(f.data), f.shape);

const backends = backendInfo().backend === 'native' ? (['js', 'native'] as const) : (['js'] as const);

describe.each(backends)('PyTorch fixtures on the %s backend', (backend) => {
  it('has every case', () => {
    expect(fixtures.length).toBe(14);
  });

  describe.each(fixtures.map((f) => [f.name, f] as const))('%s', (_name, fx) => {
    const gru = new GRU({ ...fx.options, backend }).loadStateDict(
      Object.fromEntries(Object.entries(fx.stateDict).map(([k, v]) => [k, t(v)])),
    );
    const h0 = fx.h0 ? t(fx.h0) : null;
    const opts = fx.lengths ? { lengths: fx.lengths } : undefined;

    it('forward matches output and h_n', () => {
      const { output, hidden } = gru.forward(t(fx.x), h0, opts);
      expect(output.shape).toEqual(fx.output.shape);
      expect(hidden.shape).toEqual(fx.hidden.shape);
      expectClose(output.data, fx.output.data, TOL, 'output');
      expectClose(hidden.data, fx.hidden.data, TOL, 'hidden');
    });

    it('backward matches dX, dh0 and every parameter gradient', () => {
      const run = gru.forwardTrain(t(fx.x), h0, opts);
      expectClose(run.output.data, fx.output.data, TOL, 'train output');
      const { dInput, dH0, grads } = run.backward(t(fx.dOutput), t(fx.dHidden));
      expect(dInput.shape).toEqual(fx.dInput.shape);
      expectClose(dInput.data, fx.dInput.data, TOL, 'dInput');
      expectClose(dH0.data, fx.dH0.data, TOL, 'dH0');
      expect(Object.keys(grads)).toEqual(Object.keys(fx.grads));
      for (const [name, g] of Object.entries(fx.grads)) {
        expect(grads[name].shape, name).toEqual(g.shape);
        expectClose(grads[name].data, g.data, TOL, name);
      }
    });
  });
});
