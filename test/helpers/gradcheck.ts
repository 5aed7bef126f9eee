// Central finite differences against an analytic gradient: the check of test/gradcheck.test.ts
// (the GRU) and test/gru-cell.test.ts (GRUCell). Why these bounds: the header of
// test/gradcheck.test.ts, where they were measured.
import { expect } from 'vitest';

/** The step: each value is moved by ±EPS (rounded to float32). */
export const EPS = 1e-2;
/** Per element: |fd − g| ≤ ATOL + RTOL·|g|. */
export const ATOL = 2e-4;
export const RTOL = 2e-3;
/** Per tensor: ‖fd − g‖₂ ≤ NORM_TOL·‖g‖₂. */
export const NORM_TOL = 1e-3;

/** Moves each entry of `values` (in place, restored after) by ±EPS and differentiates `evaluate`. */
export function centralDifferences(values: Float32Array, evaluate: () => number): Float64Array {
  const fd = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const up = Math.fround(v + EPS);
    const down = Math.fround(v - EPS);
    values[i] = up;
    const lUp = evaluate();
    values[i] = down;
    const lDown = evaluate();
    values[i] = v;
    fd[i] = (lUp - lDown) / (up - down);
  }
  return fd;
}

/** Asserts both bounds, and a gradient norm above 1e-3 (all zeros would make the check vacuous). */
export function expectGradient(analytic: Float32Array, fd: Float64Array, what: string): void {
  expect(analytic.length, `${what}: length`).toBe(fd.length);
  let worst = 0;
  let worstRatio = 0;
  let err2 = 0;
  let norm2 = 0;
  for (let i = 0; i < fd.length; i++) {
    const err = Math.abs(fd[i] - analytic[i]);
    const ratio = err / (ATOL + RTOL * Math.abs(analytic[i]));
    if (!(ratio <= worstRatio)) {
      worstRatio = ratio;
      worst = i;
    }
    err2 += err * err;
    norm2 += analytic[i] * analytic[i];
  }
  if (!(worstRatio <= 1)) {
    expect.fail(`${what}: element ${worst} is ${analytic[worst]}, finite differences give ${fd[worst]} ` +
      `(|error| ${Math.abs(fd[worst] - analytic[worst])} > ${ATOL} + ${RTOL}·|g|)`);
  }
  expect(Math.sqrt(norm2), `${what}: gradient norm`).toBeGreaterThan(1e-3);
  const relNorm = Math.sqrt(err2 / norm2);
  if (!(relNorm <= NORM_TOL)) expect.fail(`${what}: ‖fd − g‖ / ‖g‖ = ${relNorm} > ${NORM_TOL}`);
}
