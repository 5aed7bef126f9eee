// Seeded data shared by the tests, the fuzz harness (test/fuzz/) and the child processes
// (test/workers/), so that data match across processes and a failing case is reproduced by its seed.
// Plain JavaScript so that .mjs files can import it without a build; types in prng.d.mts.
// examples/char-lm/corpus.mjs and bench/serve.mjs keep their own copies: they stand alone.

/** mulberry32: a tiny seeded PRNG; returns a function giving floats in [0, 1). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n floats uniform in (-scale, scale), drawn from rand. */
export function uniform(rand, n, scale) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * rand() - 1) * scale;
  return out;
}
