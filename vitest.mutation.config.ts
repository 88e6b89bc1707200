// The unit tier as StrykerJS runs it (`make mutation`, stryker.config.mjs): only the unit tests, in
// parallel files (they share no engine), the scratch directory as the main config makes it.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    globalSetup: ['test/run-tmpdir.ts'],
    testTimeout: 30_000,
  },
});
