import { expect } from 'vitest';

/**
 * Asserts that every element of `actual` is within `tol` of `expected`, absolutely or relatively
 * (|a - e| <= tol * max(1, |e|)), and reports the worst element when one is not.
 */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i]));
    if (!(err <= worstErr)) {
      worstErr = err;
      worst = i;
    }
  }
  if (worst >= 0 && !(worstErr <= tol)) {
    expect.fail(`${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (error ${worstErr} > ${tol})`);
  }
}

/** Asserts bit-for-bit equality of two float arrays, naming the first element that differs. */
export function expectBitwise(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) expect.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]} bit for bit`);
  }
}
