import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * Workers for the whole run, integration files included: at least two even on a two-core machine
 * (vitest's default there is one), because an integration file spends much of its time waiting on its
 * emulator, a separate process, while the other worker runs.
 */
const workers = Math.max(2, availableParallelism());

export default defineConfig({
  test: {
    setupFiles: ['test/support/setup.ts'],
    restoreMocks: true,
    maxWorkers: workers,
    // The functions' JSON logs would drown the test report; no test reads them.
    env: { POWERTOOLS_LOG_LEVEL: 'SILENT' },
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'workflow', include: ['test/workflow/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // The packaged artefact (bundles, template) for the bundle suite and the IAM contract,
          // shared with the template project; and one emulated account per worker, each file
          // resetting its own (moto-worker.ts points the file at it).
          globalSetup: ['test/support/package-global.ts', 'test/support/moto-global.ts'],
          setupFiles: ['test/support/moto-worker.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'template',
          include: ['test/template/**/*.test.ts'],
          globalSetup: ['test/support/package-global.ts'],
          testTimeout: 60_000,
        },
      },
    ],
  },
});
