import { beforeAll, describe, expect, inject, it } from 'vitest';
import { resetConfig } from '../../functions/core/config.js';
import { errorNames } from '../../functions/core/errors.js';
import { resetStepContext } from '../../functions/core/handler.js';
import { loadBundle } from '../../scripts/local/bundles.js';
import { type LocalCase, runLocalCase } from '../../scripts/local/case.js';
import { resetMoto } from '../../scripts/local/moto.js';
import { handlerSettings, lambdaContext, sourceHandler } from '../../scripts/local/runner.js';
import { deployLocalStack } from '../../scripts/local/stack.js';
import { readRealEvent, realEventFiles } from '../support/fixtures.js';

/**
 * What is deployed is the esbuild bundle in each function's zip, not the TypeScript the other suites
 * import: minified, CommonJS, its dependencies inlined. This suite runs those bundles, as packaged
 * once for the whole test run, the way Lambda would.
 */
const endpoint = inject('motoEndpoint');
const bundles = inject('artefactDirs').dev;
const functions = Object.keys(handlerSettings());

/** How a handler ends for `event`: its result, or the name Lambda would report as `errorType`. */
async function outcome(
  handler: (event: unknown, context: unknown) => Promise<unknown>,
  fn: string,
  event: unknown,
) {
  try {
    return { returned: await handler(event, lambdaContext(fn)) };
  } catch (error) {
    return { errorType: (error as Error).name, message: (error as Error).message };
  }
}

describe('every packaged handler, given input it cannot use', () => {
  beforeAll(async () => {
    await resetMoto(endpoint);
    const stack = await deployLocalStack(endpoint, 'dev');
    Object.assign(process.env, stack.env, { FORENSICS_STATE_MACHINE_ARN: stack.forensicsStateMachineArn });
    resetConfig();
    resetStepContext();
  }, 60_000);

  it('covers all the functions serverless.yml packages', () => {
    expect(functions.length).toBeGreaterThanOrEqual(27);
  });

  it.each(functions)(
    '%s fails with a Cordon error name Lambda can report, the one its sources give',
    async (fn) => {
      const packaged = await outcome(loadBundle(bundles, fn), fn, { bogus: true });
      const fromSources = await outcome(await sourceHandler(fn), fn, { bogus: true });

      expect(packaged.errorType, JSON.stringify(packaged)).toBeDefined();
      expect(errorNames).toContain(packaged.errorType);
      expect(packaged.errorType).toBe(fromSources.errorType);
    },
  );
});

describe('the demo over every real event, through the packaged bundles', () => {
  const files = realEventFiles();
  const runs = new Map<string, LocalCase>();

  beforeAll(async () => {
    await resetMoto(endpoint);
    for (const file of files) runs.set(file, await runLocalCase(readRealEvent(file), { endpoint, bundles }));
  }, 300_000);

  it.each(files.filter((f) => f.includes('REJECT')))(
    '%s is rejected by Intake with a named reason',
    (file) => {
      const { report } = runs.get(file) as LocalCase;
      expect(report.outcome).toBe('rejected');
      expect(report.reason).toMatch(/^[A-Z_]+: /);
      expect(report.steps.map((s) => s.name)).toEqual(['Intake Finding']);
    },
  );

  it.each(files.filter((f) => !f.includes('REJECT')))(
    '%s completes with sealed, signed evidence and memory',
    (file) => {
      const { report } = runs.get(file) as LocalCase;
      expect(report.outcome, report.reason).toBe('completed');
      const names = report.evidence.map((e) => e.key.split('/').slice(2).join('/'));
      expect(names).toEqual(
        expect.arrayContaining(['trigger.json', 'triage.json', 'manifest.json', 'manifest.sig']),
      );
      expect(names.some((n) => n.startsWith('memory/'))).toBe(true);
      expect(report.steps.every((s) => s.status !== 'failed')).toBe(true);
    },
  );
});
