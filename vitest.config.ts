import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // tfjs backends are process-global; forks keep test files isolated from each other.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // After the default summary: one line naming suites skipped for a missing dependency (test/fixtures/skip.ts).
    reporters: ['default', './test/skip-summary.ts'],
  },
});
