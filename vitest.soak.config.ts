/**
 * `npm run test:soak`: the long reliability runs, kept out of `npm test` (whose include,
 * `*.test.ts`, never matches `*.soak.ts`). Files run one after the other: the soak measures
 * memory and lag and must not share the two cores with the 200-kill crash run.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.soak.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
