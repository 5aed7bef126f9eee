import { describe, expect, it } from 'vitest';
import { tensor } from '../src/index.js';

describe('tensor()', () => {
  it('wraps a Float32Array without copying', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = tensor(data, [2, 3]);
    expect(t.data).toBe(data);
    expect(t.shape).toEqual([2, 3]);
    data[0] = 42;
    expect(t.data[0]).toBe(42);
  });

  it('defaults a flat array to one dimension', () => {
    expect(tensor(new Float32Array(4)).shape).toEqual([4]);
    expect(tensor([1, 2, 3]).shape).toEqual([3]);
  });

  it('converts number arrays and Float64Array to float32', () => {
    const a = tensor([0.1, 2, -3], [3, 1]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(Array.from(a.data)).toEqual([Math.fround(0.1), 2, -3]);
    expect(a.shape).toEqual([3, 1]);
    const src = new Float64Array([1.5, 2.5]);
    const b = tensor(src);
    expect(b.data).toBeInstanceOf(Float32Array);
    expect(Array.from(b.data)).toEqual([1.5, 2.5]);
  });

  it('flattens nested arrays row-major and infers their shape', () => {
    const t = tensor([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 10], [11, 12]]]);
    expect(t.shape).toEqual([2, 3, 2]);
    expect(Array.from(t.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('reshapes when the element count matches, including empty tensors', () => {
    expect(tensor([[1, 2, 3], [4, 5, 6]], [3, 2]).shape).toEqual([3, 2]);
    expect(tensor(new Float32Array(0), [0, 4]).shape).toEqual([0, 4]);
    expect(tensor([]).shape).toEqual([0]);
  });

  it('freezes the shape and does not alias the caller\'s shape array', () => {
    const shape = [2, 2];
    const t = tensor(new Float32Array(4), shape);
    shape[0] = 7;
    expect(t.shape).toEqual([2, 2]);
    expect(Object.isFrozen(t.shape)).toBe(true);
  });

  it('accepts an existing tensor and can reshape it without copying', () => {
    const a = tensor(new Float32Array(6), [2, 3]);
    const b = tensor(a, [6]);
    expect(b.data).toBe(a.data);
    expect(b.shape).toEqual([6]);
  });
});
