import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One scratch directory per run, removed at its end (test/run-tmpdir.ts).
    globalSetup: ['test/run-tmpdir.ts'],
    // Integration and e2e tests share one Docker engine and two cores: run files one at a time.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 600_000,
    reporters: ['default'],
  },
});
