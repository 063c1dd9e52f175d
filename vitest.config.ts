import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    setupFiles: ['test/support/setup.ts'],
    restoreMocks: true,
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
          // shared with the template project.
          globalSetup: ['test/support/package-global.ts', 'test/support/moto-global.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // One emulated account, reset between files: files run one at a time.
          fileParallelism: false,
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
