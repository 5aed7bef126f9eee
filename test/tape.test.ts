// The js backend's packed operands: a transpose of a packed operand is the packing of the transpose.
import { describe, expect, it } from 'vitest';
import { NR, packB, transposePacked, view } from '../src/backend/js/gemm.js';
import { expectBitwise } from './helpers/compare.js';
import { prng, uniform } from './helpers/native.js';

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
