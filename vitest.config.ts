import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    // The native engine fills its unzeroed working buffers with NaN: reading one before writing it fails a test.
    // Its input projection and weight gradients run in windows of 64 KB, so that small calls run
    // many of them too (the same bits as one window).
    env: { FASTGRU_POISON: '1', FASTGRU_THREAD_WORK: '0', FASTGRU_WINDOW_BYTES: '65536' },
  },
});
