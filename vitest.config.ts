import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Fails the run if a test left an anvil node running (issue: no leftover processes); keeps temporary files in one
    // directory of the run, removed at its end (kept with E2E_KEEP=1, which keeps the e2e tests' directories in it).
    globalSetup: ['test/support/no-leftover-processes.ts', 'test/support/run-temp-dir.ts'],
  },
});
