/**
 * Activations in double precision. Both are finite and saturate cleanly for any finite input:
 * exp(-x) overflows to Infinity for x below about -709 and 1 / (1 + Infinity) is exactly 0, never NaN;
 * Math.tanh returns exactly ±1 once |x| is past about 19.
 */
export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

export const tanh = Math.tanh;
