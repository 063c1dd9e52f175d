import { DynamoDBServiceException } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { type CommonSetting, configSlices } from '../../../functions/core/config.js';
import { ContainmentError } from '../../../functions/core/errors.js';
import {
  logger,
  resetStepContext,
  type StepContext,
  stepContext,
  stepHandler,
} from '../../../functions/core/handler.js';
import {
  invisible,
  lambdaContext,
  offending,
  payloads,
  rawInJson,
  useStepEnvironment,
} from '../../support/injection.js';

/**
 * The one middy wrapper every Lambda uses (functions/core/handler.ts), through its public functions:
 * what it lets reach the logic, what it hands back, what it makes of every kind of failure, what it
 * logs, and the context it builds.
 */
const schema = z.object({
  caseId: z.string().regex(/^case-\d+$/, 'not a case id'),
  tags: z.record(z.string(), z.string().max(8)).optional(),
});

type Context = StepContext<CommonSetting>;

function step(logic: (input: z.infer<typeof schema>, ctx: Context) => Promise<unknown>) {
  return stepHandler('demo-step', configSlices.common, schema, logic);
}

/** An error as the AWS SDK rejects with: a service exception carrying `$fault` and `$metadata`. */
function sdkError(name: string, httpStatusCode: number): DynamoDBServiceException {
  return new DynamoDBServiceException({
    name,
    $fault: httpStatusCode >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode, requestId: 'req-1' },
    message: `${name} (test)`,
  });
}

/** Every record the logger writes while `act` runs, each checked to be one JSON line with nothing raw in it. */
async function loggedWhile(act: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const writes: string[] = [];
  const keep = (chunk: unknown) => writes.push(String(chunk)) > 0;
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation(keep),
    vi.spyOn(process.stderr, 'write').mockImplementation(keep),
    // Each invocation puts the level back to the configured one (SILENT in tests): keep it at INFO.
    vi.spyOn(logger, 'refreshSampleRateCalculation').mockImplementation(() => undefined),
  ];
  logger.setLogLevel('INFO');
  try {
    await act().catch(() => undefined);
  } finally {
    logger.setLogLevel('SILENT');
    for (const spy of spies) spy.mockRestore();
  }
  const lines = writes.join('').split(/(?<=\n)/);
  for (const line of lines) {
    expect(line.endsWith('\n') && line.indexOf('\n') === line.length - 1, line.slice(0, 120)).toBe(true);
    expect(offending(line.slice(0, -1), rawInJson), line.slice(0, 120)).toEqual([]);
  }
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

afterEach(() => {
  resetStepContext();
});

describe('stepHandler', () => {
  it('refuses input its schema rejects as InvalidStepInputError, without running the logic', async () => {
    // Prepare
    await useStepEnvironment();
    const logic = vi.fn(async () => 'ran');

    // Act
    const run = step(logic)({ caseId: 7 }, lambdaContext);

    // Assess
    await expect(run).rejects.toMatchObject({ name: 'InvalidStepInputError' });
    expect(logic).not.toHaveBeenCalled();
  });

  it('says why input was refused by path and rule only, echoing no hostile value or raw key', async () => {
    await useStepEnvironment();
    const value = payloads['a shell command separator'];
    const key = `k${payloads['a forged log line']}${payloads['a bidirectional override']}`;

    const run = step(async () => 'ran')({ caseId: value, tags: { [key]: 'far too long' } }, lambdaContext);

    const error = (await run.catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/^demo-step received input it cannot use: caseId: not a case id; tags\./);
    expect(error.message).not.toContain(value);
    expect(error.message).not.toContain(key);
    expect(error.message).not.toContain('far too long');
    expect(offending(error.message)).toEqual([]);
  });

  it('hands back what the logic returns, as it is', async () => {
    await useStepEnvironment();
    const result = { instanceId: 'i-0123456789abcdef0', done: ['tagged'] };

    const out = await step(async () => result)({ caseId: 'case-1' }, lambdaContext);

    expect(out).toBe(result);
  });

  it("lets one of Cordon's named errors through with its name", async () => {
    await useStepEnvironment();
    const error = new ContainmentError('the isolation group could not be created');

    const run = step(async () => Promise.reject(error))({ caseId: 'case-1' }, lambdaContext);

    await expect(run).rejects.toBe(error);
    await expect(run).rejects.toMatchObject({ name: 'ContainmentError' });
  });

  it.each([
    ['ThrottlingException', 400, 'AwsThrottlingError'],
    ['AccessDeniedException', 400, 'AwsAccessDeniedError'],
    ['InternalServerError', 500, 'AwsServiceError'],
  ])('makes an AWS SDK %s (HTTP %i) the %s the ASL routes by', async (code, status, name) => {
    await useStepEnvironment();
    const sdk = sdkError(code, status);

    const run = step(async () => Promise.reject(sdk))({ caseId: 'case-1' }, lambdaContext);

    await expect(run).rejects.toMatchObject({ name, cause: sdk });
  });

  it('makes a bug an InternalError that names the step, never an AWS error', async () => {
    await useStepEnvironment();

    const run = step(async (input) => (input as unknown as { case: { instanceId: string } }).case.instanceId)(
      { caseId: 'case-1' },
      lambdaContext,
    );

    await expect(run).rejects.toMatchObject({
      name: 'InternalError',
      retryable: false,
      message: expect.stringMatching(
        /^demo-step failed on an internal error \(a bug, not an AWS fault\): TypeError: /,
      ),
    });
  });
});

describe('the log lines of a step', () => {
  it('are one line for a step that finished, naming the step', async () => {
    await useStepEnvironment();

    const records = await loggedWhile(() => step(async () => 'done')({ caseId: 'case-1' }, lambdaContext));

    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ level: 'INFO', message: 'step finished', step: 'demo-step' });
  });

  it('are one line for a step that failed, whatever its error message holds', async () => {
    await useStepEnvironment();
    const hostile = Object.values(payloads).join(' ');

    const records = await loggedWhile(() =>
      step(async () => Promise.reject(new ContainmentError(hostile)))({ caseId: 'case-1' }, lambdaContext),
    );

    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      level: 'ERROR',
      message: 'step failed',
      step: 'demo-step',
      error: { name: 'ContainmentError' },
    });
    const error = records[0]?.error as { message?: unknown } | undefined;
    expect(offending(String(error?.message), invisible)).toEqual([]);
  });

  it('write the control, separator and bidirectional characters JSON leaves raw as visible escapes', async () => {
    const value = 'a\u007fb\u009bc\u2028d\u202ee';

    const records = await loggedWhile(async () => logger.info('demo', { value }));

    expect(records).toHaveLength(1);
    expect(records[0]?.value).toBe(String.raw`a\u007fb\u009bc\u2028d\u202ee`);
  });
});

describe('the step context', () => {
  it('is built once per process: every step and every invocation shares its clients and stores', async () => {
    await useStepEnvironment();
    const seen: Context[] = [];
    const keep = async (_input: unknown, ctx: Context) => {
      seen.push(ctx);
    };

    await step(keep)({ caseId: 'case-1' }, lambdaContext);
    await step(keep)({ caseId: 'case-2' }, lambdaContext);
    const protect = stepContext(configSlices.protect);

    const [first, second] = seen;
    expect(second?.home).toBe(first?.home);
    expect(second?.cases).toBe(first?.cases);
    expect(protect.evidence).toBe(first?.evidence);
    expect(protect.clientsFor).toBe(first?.clientsFor);
  });

  it("holds each step's own slice of the configuration", async () => {
    await useStepEnvironment();

    const common = stepContext(configSlices.common);
    const protect = stepContext(configSlices.protect);

    expect(protect.config).toMatchObject({ ASG_MODE: 'standby', CASES_TABLE: 'cordon-test-cases' });
    expect(common.config).not.toHaveProperty('ASG_MODE');
  });

  it('is built again once reset, for a runner that changes the configuration between runs', async () => {
    await useStepEnvironment();
    const before = stepContext(configSlices.common);

    resetStepContext();
    const after = stepContext(configSlices.common);

    expect(after.cases).not.toBe(before.cases);
  });
});
