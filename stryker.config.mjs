// StrykerJS (`make mutation`): the unit tier against small changes to the modules whose job is a
// decision (issue 34: config, shares, ssh arguments, known_hosts, reconcile, saved states, the
// toolchain lock, SHA256SUMS, the m5ops host side, shell quoting, cleanup). Each surviving mutant
// is a change the tests would let through: docs/testing.md lists them, killed or explained.
// @ts-check
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts', related: true },
  coverageAnalysis: 'perTest',
  mutate: [
    'src/config.ts',
    'src/config-schema.ts',
    'src/vm/shares.ts',
    'src/ssh/args.ts',
    'src/docker/known-hosts.ts',
    'src/vm/reconcile.ts',
    'src/vm/saved-state.ts',
    'src/docker/toolchain-lock.ts',
    'src/download/sha256sums.ts',
    'src/m5ops/ops.ts',
    'src/m5ops/job.ts',
    'src/m5ops/stats.ts',
    'src/vm/disk-image.ts',
    'src/shell.ts',
    'src/ssh/guest-command.ts',
    'src/cleanup.ts',
    'src/gem5/m5-tree.ts',
  ],
  concurrency: 2,
  // Module-level constants (tables of strings and numbers) run every test file that imports them: a
  // quarter of an hour for mutants that are mostly message wording. Counted as ignored, not as killed.
  ignoreStatic: true,
  timeoutMS: 20000,
  reporters: ['clear-text', 'json', 'progress'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 85, break: null },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
