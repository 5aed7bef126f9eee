import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    // The native engine fills its unzeroed working buffers with NaN: reading one before writing it fails a test.
    env: { FASTGRU_POISON: '1', FASTGRU_THREAD_WORK: '0' },
  },
});
