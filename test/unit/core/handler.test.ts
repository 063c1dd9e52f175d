import { DynamoDBServiceException } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { type CommonSetting, configSlices } from '../../../functions/core/config.js';
import { ContainmentError } from '../../../functions/core/errors.js';
import {
  correlation,
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

/** A step whose input carries the case, as every step after Intake receives it. */
const caseInput = z.object({ case: z.object({ caseId: z.string(), executionArn: z.string() }) });
const knownCase = {
  caseId: '20261127T201003Z-i-0123456789abcdef0-3fa9',
  executionArn:
    'arn:aws:states:us-east-1:123456789012:execution:cordon-forensics-test:5f0e6b9c-2d3a-4c1e-9a7b-0c1d2e3f4a5b',
};

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
  vi.unstubAllEnvs();
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

  it('carry the case id and execution ARN of the input, on every line of the invocation', async () => {
    // Prepare
    await useStepEnvironment();
    const caseStep = stepHandler('demo-step', configSlices.common, caseInput, async () => {
      logger.info('working');
      return 'done';
    });

    // Act
    const records = await loggedWhile(() => caseStep({ case: knownCase }, lambdaContext));

    // Assess
    expect(records.map((r) => r.message)).toEqual(['working', 'step finished']);
    for (const record of records) {
      expect(record).toMatchObject({ caseId: knownCase.caseId, executionArn: knownCase.executionArn });
    }
  });

  it('carry them on the line of a failed step too, and on no line after the invocation', async () => {
    // Prepare
    await useStepEnvironment();
    const failing = stepHandler('demo-step', configSlices.common, caseInput, async () =>
      Promise.reject(new ContainmentError('no')),
    );

    // Act
    const records = await loggedWhile(async () => {
      await failing({ case: knownCase }, lambdaContext).catch(() => undefined);
      logger.info('afterwards');
    });

    // Assess
    expect(records[0]).toMatchObject({ message: 'step failed', caseId: knownCase.caseId });
    expect(records[1]?.message).toBe('afterwards');
    expect(records[1]).not.toHaveProperty('caseId');
    expect(records[1]).not.toHaveProperty('executionArn');
  });

  it('take the execution ARN at the top of the input, as Intake receives it', () => {
    expect(correlation({ event: {}, executionArn: knownCase.executionArn })).toEqual({
      executionArn: knownCase.executionArn,
    });
  });

  it('leave out a case id or execution ARN that is not in the form Cordon and AWS issue', () => {
    for (const hostile of [...Object.values(payloads), `${knownCase.caseId}\n`, 'x'.repeat(5000)]) {
      expect(correlation({ case: { caseId: hostile, executionArn: hostile } })).toEqual({});
      expect(correlation({ caseId: hostile, executionArn: `${knownCase.executionArn}${hostile}` })).toEqual(
        {},
      );
    }
    expect(correlation(null)).toEqual({});
    expect(correlation('text')).toEqual({});
  });

  it('write the control, separator and bidirectional characters JSON leaves raw as visible escapes', async () => {
    const value = 'a\u007fb\u009bc\u2028d\u202ee';

    const records = await loggedWhile(async () => logger.info('demo', { value }));

    expect(records).toHaveLength(1);
    expect(records[0]?.value).toBe(String.raw`a\u007fb\u009bc\u2028d\u202ee`);
  });
});

describe('the metrics of a step', () => {
  it('are one EMF line counting the failure by step when a step fails inside Lambda', async () => {
    // Prepare
    await useStepEnvironment();
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'cordon-test-demo-step');

    // Act
    const records = await loggedWhile(() =>
      step(async () => Promise.reject(new ContainmentError('no')))({ caseId: 'case-1' }, lambdaContext),
    );

    // Assess
    const emf = records.filter((r) => '_aws' in r);
    expect(emf).toHaveLength(1);
    expect(emf[0]).toMatchObject({ Stage: 'test', Step: 'demo-step', StepFailures: 1 });
  });

  it('are the time to containment once Snapshot Volumes starts after Isolate and Revoke both held', async () => {
    // Prepare
    await useStepEnvironment();
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'cordon-test-snapshot-volumes');
    const held = z.looseObject({ status: z.string(), result: z.looseObject({ finishedAt: z.string() }) });
    const contained = z.object({
      case: z.object({ openedAt: z.string() }),
      containment: z.object({ isolate: held, revoke: held }),
    });
    const snapshot = stepHandler('snapshot-volumes', configSlices.common, contained, async () => ({}));
    const t = Date.now();
    const openedAt = new Date(t - 90_000).toISOString();
    const finishedAt = new Date(t - 30_000).toISOString();
    const ended = { status: 'succeeded', result: { finishedAt } };

    // Act
    const records = await loggedWhile(() =>
      snapshot({ case: { openedAt }, containment: { isolate: ended, revoke: ended } }, lambdaContext),
    );

    // Assess
    const emf = records.filter((r) => '_aws' in r);
    expect(emf).toHaveLength(1);
    expect(emf[0]?.TimeToContainment).toBe(60);
  });

  it('never fail the step: a metric that cannot be written is a warning', async () => {
    // Prepare
    await useStepEnvironment();
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'cordon-test-demo-step');
    const oddlyNamed = stepHandler('Demo Step', configSlices.common, schema, async () =>
      Promise.reject(new ContainmentError('no')),
    );

    // Act
    let thrown: unknown;
    const records = await loggedWhile(() =>
      oddlyNamed({ caseId: 'case-1' }, lambdaContext).catch((error: unknown) => {
        thrown = error;
      }),
    );

    // Assess
    expect(thrown).toBeInstanceOf(ContainmentError);
    expect(records.map((r) => r.message)).toEqual(['step failed', 'metrics not written']);
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
