/** mulberry32: a tiny seeded PRNG; returns a function giving floats in [0, 1). */
export function prng(seed: number): () => number;
/** n floats uniform in (-scale, scale), drawn from rand. */
export function uniform(rand: () => number, n: number, scale: number): Float32Array;
