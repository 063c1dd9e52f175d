/**
 * Injection, part 1: the shared defences every sink relies on, the log lines every step writes, and
 * the edge of every step that acts on AWS. The other sinks have their own files: SSM and the capture
 * scripts (injection-ssm), IAM policies and tags (injection-iam), notifications (injection-notify), the
 * CLI's output (injection-cli). The payloads are in test/support/injection.ts.
 */
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CloudTrailClient } from '@aws-sdk/client-cloudtrail';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { IAMClient } from '@aws-sdk/client-iam';
import { KMSClient } from '@aws-sdk/client-kms';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { DescribeDocumentCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { configSlices } from '../../functions/core/config.js';
import { containInputSchema, protectInputSchema } from '../../functions/core/containment.js';
import { credentialStateSchema } from '../../functions/core/credentials.js';
import { describeError } from '../../functions/core/errors.js';
import { describeIssues, logger, stepHandler } from '../../functions/core/handler.js';
import { capLength, oneLine, showInvisible } from '../../functions/core/text.js';
import { handler as collectActivityHandler } from '../../functions/credentials/collect-activity/handler.js';
import { handler as credentialArchiveHandler } from '../../functions/credentials/credential-archive/handler.js';
import { credentialNotifyInputSchema } from '../../functions/credentials/credential-notify/credential-notify.js';
import { handler as credentialNotifyHandler } from '../../functions/credentials/credential-notify/handler.js';
import { handler as deactivateHandler } from '../../functions/credentials/deactivate-access-key/handler.js';
import { handler as quarantineHandler } from '../../functions/credentials/quarantine-principal/handler.js';
import { handler as revokeSessionsHandler } from '../../functions/credentials/revoke-sessions/handler.js';
import { handler as startInstanceHandler } from '../../functions/credentials/start-instance-response/handler.js';
import { archiveInputSchema } from '../../functions/forensics/archive-evidence/archive-evidence.js';
import { handler as archiveHandler } from '../../functions/forensics/archive-evidence/handler.js';
import { captureInputSchema } from '../../functions/forensics/capture-memory/capture-memory.js';
import { handler as captureHandler } from '../../functions/forensics/capture-memory/handler.js';
import { checkMemoryInputSchema } from '../../functions/forensics/check-memory/check-memory.js';
import { handler as checkMemoryHandler } from '../../functions/forensics/check-memory/handler.js';
import { handler as isolateHandler } from '../../functions/forensics/isolate-instance/handler.js';
import { handler as notifyHandler } from '../../functions/forensics/notify-outcome/handler.js';
import { notifyInputSchema } from '../../functions/forensics/notify-outcome/notify-outcome.js';
import { handler as protectHandler } from '../../functions/forensics/protect-instance/handler.js';
import { handler as revokeHandler } from '../../functions/forensics/revoke-credentials/handler.js';
import { handler as snapshotHandler } from '../../functions/forensics/snapshot-volumes/handler.js';
import { snapshotInputSchema } from '../../functions/forensics/snapshot-volumes/snapshot-volumes.js';
import { handler as triageHandler } from '../../functions/forensics/triage-instance/handler.js';
import { triageInputSchema } from '../../functions/forensics/triage-instance/triage-instance.js';
import { handler as releaseHandler } from '../../functions/release/release-instance/handler.js';
import { releaseInputSchema } from '../../functions/release/release-instance/release-instance.js';
import { picture } from '../support/containment-fixtures.js';
import { sampleCase } from '../support/core-fakes.js';
import { runningCapture, triageFor } from '../support/evidence-fixtures.js';
import {
  echoingAwsError,
  hostile,
  hostileText,
  invisible,
  lambdaContext,
  offending,
  oversized,
  payloads,
  rawInJson,
  useStepEnvironment,
} from '../support/injection.js';
import { userCredentialCase } from '../support/playbooks-fixtures.js';

const ssm = mockClient(SSMClient);
const s3 = mockClient(S3Client);
/** What the sweep below reads of every client stub. */
interface Stub {
  calls(): unknown[];
  reset(): void;
}
const clients: Stub[] = [
  ssm,
  s3,
  ...[
    EC2Client,
    STSClient,
    IAMClient,
    SNSClient,
    KMSClient,
    SFNClient,
    CloudTrailClient,
    AutoScalingClient,
    ElasticLoadBalancingClient,
    ElasticLoadBalancingV2Client,
    DynamoDBClient,
    DynamoDBDocumentClient,
  ].map((Client) => mockClient(Client as never) as unknown as Stub),
];
const callsToAws = () => clients.reduce((n, c) => n + c.calls().length, 0);

beforeEach(() => {
  for (const c of clients) c.reset();
});
afterEach(() => {
  vi.unstubAllEnvs();
});

/** Everything the logger writes while `act` runs, at INFO, as the raw text a log reader receives. */
async function capturedLogs(act: () => Promise<unknown>): Promise<string> {
  let text = '';
  const keep = (chunk: unknown) => {
    text += String(chunk);
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(keep);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(keep);
  // Each invocation puts the level back to the configured one (SILENT in tests): keep it at INFO.
  const level = vi.spyOn(logger, 'refreshSampleRateCalculation').mockImplementation(() => undefined);
  logger.setLogLevel('INFO');
  try {
    await act().catch(() => undefined);
  } finally {
    logger.setLogLevel('SILENT');
    out.mockRestore();
    err.mockRestore();
    level.mockRestore();
  }
  return text;
}

/** The log records in `text`, each checked to be one line of JSON with nothing raw a terminal acts on. */
function logRecords(text: string): Record<string, unknown>[] {
  expect(text.endsWith('\n'), 'every record ends its line').toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      expect(offending(line, rawInJson), line.slice(0, 120)).toEqual([]);
      return JSON.parse(line) as Record<string, unknown>;
    });
}

describe('text from outside, through the shared helpers', () => {
  it('oneLine leaves one bounded line with no control, separator or format character and no lone surrogate', () => {
    fc.assert(
      fc.property(hostileText, fc.integer({ min: 2, max: 80 }), (text, max) => {
        const line = oneLine(text, max);

        expect(offending(line)).toEqual([]);
        expect(line.length).toBeLessThanOrEqual(max);
        expect(oneLine(line, max)).toBe(line);
      }),
      { numRuns: 500 },
    );
  });

  it.each(hostile)('oneLine turns %s into inert text on the same line', (_name, payload) => {
    const line = oneLine(`web-1${payload}tail`, 500);

    expect(offending(line)).toEqual([]);
    expect(line.startsWith('web-1')).toBe(true);
    expect(line.endsWith('tail')).toBe(true);
  });

  it('oneLine caps an oversized string, never between the halves of a surrogate pair', () => {
    expect(oneLine(oversized, 300)).toHaveLength(300);
    const cut = oneLine(`a${'😀'.repeat(10)}`, 4);

    expect(offending(cut)).toEqual([]);
    expect(cut).toBe('a😀…');
    expect(capLength('😀😀', 2)).toBe('…');
  });

  it('showInvisible writes every control, separator and format character as a visible escape', () => {
    fc.assert(
      fc.property(hostileText, (text) => {
        const shown = showInvisible(text);

        expect(offending(shown)).toEqual([]);
        if (invisible.test(text)) expect(shown).not.toBe(text);
        else expect(shown).toBe(text);
      }),
      { numRuns: 500 },
    );
    expect(showInvisible(`a${payloads['an OSC window title']}\n\u202e\ud800`)).toBe(
      'a\\u001b]0;title\\u0007\\n\\u202e\\ud800',
    );
  });

  it('describeError keeps the error name and makes what AWS echoed one clean line', () => {
    const echoed = Object.values(payloads).join('');

    const e = describeError(echoingAwsError('ValidationException', echoed));

    expect(e.name).toBe('AwsServiceError');
    expect(e.message.startsWith('ValidationException: 1 validation error detected')).toBe(true);
    expect(offending(e.message)).toEqual([]);
  });

  it('describeIssues names a path whose keys came from the input without their control characters', () => {
    const schema = z.object({ tags: z.record(z.string(), z.string().max(3)) });
    const key = `Name${payloads['a forged log line']}${payloads['an ANSI clear screen']}${payloads['a bidirectional override']}`;
    const parsed = schema.safeParse({ tags: { [key]: 'too long' } });
    if (parsed.success) throw new Error('the control input should not parse');

    const described = describeIssues(parsed.error);

    expect(described).toMatch(/^tags\.Name /);
    expect(offending(described)).toEqual([]);
  });
});

describe('log lines', () => {
  it('stay one JSON line per record, with the error named, when AWS echoes hostile text into an error', async () => {
    await useStepEnvironment();
    ssm
      .on(DescribeDocumentCommand)
      .rejects(echoingAwsError('InvalidDocument', Object.values(payloads).join('')));
    const state = { case: sampleCase, triage: triageFor() };

    const text = await capturedLogs(() => captureHandler(state, lambdaContext));

    const records = logRecords(text);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      level: 'ERROR',
      message: 'step failed',
      step: 'capture-memory',
      error: { name: 'AwsServiceError' },
    });
    const message = String((records[0]?.error as { message?: string } | undefined)?.message);
    expect(message.startsWith('InvalidDocument: 1 validation error detected')).toBe(true);
    expect(offending(message)).toEqual([]);
    expect(ssm).toHaveReceivedCommandTimes(SendCommandCommand, 0);
  });

  it('stay one JSON line per record when a step is handed input with hostile keys', async () => {
    const step = stepHandler(
      'test-step',
      configSlices.common,
      z.object({ tags: z.record(z.string(), z.string().max(3)) }),
      async () => 'ran',
    );
    // The first five issues are described: the keys that hold control characters come first.
    const keys = hostile.filter(([, p]) => offending(p).length > 0).map(([, p]) => `k${p}`);
    const input = { tags: Object.fromEntries(keys.map((k) => [k, 'too long'])) };

    let refused: unknown;
    const text = await capturedLogs(() =>
      step(input, lambdaContext).catch((error: unknown) => {
        refused = error;
      }),
    );

    expect(refused).toMatchObject({ name: 'InvalidStepInputError' });
    expect(offending((refused as Error).message)).toEqual([]);
    const records = logRecords(text);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ message: 'step failed', error: { name: 'InvalidStepInputError' } });
  });

  it('write every string a record carries with C1 controls, separators and format characters escaped', async () => {
    await fc.assert(
      fc.asyncProperty(hostileText, hostileText, async (value, message) => {
        const text = await capturedLogs(async () =>
          logger.info(message, { tag: value, nested: { list: [value] } }),
        );

        const [record, ...rest] = logRecords(text);
        expect(rest).toEqual([]);
        expect(offending(String(record?.tag), /[\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]/u)).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });
});

/**
 * Every step that acts on AWS checks its input at the edge, before any client is built. A state whose
 * identifiers carry a payload (whole, or after a valid value, which is how it would be slipped in) is
 * refused with InvalidStepInputError and not one AWS call, changing or not. Each row's valid state
 * first parses, so that a refusal is the hostile field's doing.
 */
const forensicCaseFields = ['caseId', 'instanceId', 'accountId', 'region'] as const;
const forensicSteps: [
  string,
  (e: unknown, c: typeof lambdaContext) => Promise<unknown>,
  z.ZodType,
  object,
][] = [
  ['triage-instance', triageHandler as never, triageInputSchema, {}],
  ['protect-instance', protectHandler as never, protectInputSchema, {}],
  ['isolate-instance', isolateHandler as never, containInputSchema, { triage: picture() }],
  ['revoke-credentials', revokeHandler as never, containInputSchema, { triage: picture() }],
  ['snapshot-volumes', snapshotHandler as never, snapshotInputSchema, { triage: triageFor() }],
  ['capture-memory', captureHandler as never, captureInputSchema, { triage: triageFor() }],
  ['check-memory', checkMemoryHandler as never, checkMemoryInputSchema, { memory: runningCapture() }],
  ['archive-evidence', archiveHandler as never, archiveInputSchema, {}],
  ['notify-outcome', notifyHandler as never, notifyInputSchema, {}],
];
const credentialFields = [
  'caseId',
  'accountId',
  'principal.name',
  'principal.accessKeyId',
  'finding.id',
] as const;
const credentialSteps: [string, (e: unknown, c: typeof lambdaContext) => Promise<unknown>, z.ZodType][] = [
  ['deactivate-access-key', deactivateHandler as never, credentialStateSchema],
  ['quarantine-principal', quarantineHandler as never, credentialStateSchema],
  ['revoke-sessions', revokeSessionsHandler as never, credentialStateSchema],
  ['start-instance-response', startInstanceHandler as never, credentialStateSchema],
  ['collect-activity', collectActivityHandler as never, credentialStateSchema],
  ['credential-archive', credentialArchiveHandler as never, credentialStateSchema],
  ['credential-notify', credentialNotifyHandler as never, credentialNotifyInputSchema],
];

/** `value` with the field at `path` (dotted) replaced by `replacement`. */
function withField<T extends object>(value: T, path: string, replacement: string): T {
  const copy = structuredClone(value) as Record<string, unknown>;
  const keys = path.split('.');
  let at = copy;
  for (const key of keys.slice(0, -1)) at = at[key] as Record<string, unknown>;
  at[keys.at(-1) as string] = replacement;
  return copy as T;
}
function fieldOf(value: object, path: string): string {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], value) as string;
}
/** Each payload whole, after a valid value, and the oversized string. */
function hostileVersions(valid: string): string[] {
  return [...hostile.flatMap(([, p]) => [p, `${valid}${p}`]), oversized];
}

async function expectRefusedWithoutAwsCalls(
  step: (e: unknown, c: typeof lambdaContext) => Promise<unknown>,
  state: object,
): Promise<void> {
  await expect(step(state, lambdaContext)).rejects.toMatchObject({ name: 'InvalidStepInputError' });
  expect(callsToAws()).toBe(0);
}

describe('the steps that act on AWS refuse hostile identifiers before any call', () => {
  beforeEach(async () => {
    await useStepEnvironment();
  });

  const forensicRows = forensicSteps.flatMap(([name, step, schema, rest]) =>
    forensicCaseFields.map((field) => [name, field, step, schema, rest] as const),
  );
  it.each(forensicRows)(
    '%s refuses a case whose %s carries a payload',
    async (_n, field, step, schema, rest) => {
      const valid = { case: sampleCase, ...rest };
      expect(schema.safeParse(valid).success, 'the valid state parses').toBe(true);

      for (const value of hostileVersions(fieldOf(sampleCase, field))) {
        await expectRefusedWithoutAwsCalls(step, { ...valid, case: withField(sampleCase, field, value) });
      }
    },
  );

  const credentialRows = credentialSteps.flatMap(([name, step, schema]) =>
    credentialFields.map((field) => [name, field, step, schema] as const),
  );
  it.each(credentialRows)(
    '%s refuses a credential case whose %s carries a payload',
    async (_n, field, step, schema) => {
      const valid = { case: userCredentialCase };
      expect(schema.safeParse(valid).success, 'the valid state parses').toBe(true);

      for (const value of hostileVersions(fieldOf(userCredentialCase, field))) {
        await expectRefusedWithoutAwsCalls(step, { case: withField(userCredentialCase, field, value) });
      }
    },
  );

  it('release-instance refuses a case id that carries a payload', async () => {
    expect(releaseInputSchema.safeParse({ caseId: sampleCase.caseId }).success).toBe(true);

    for (const value of hostileVersions(sampleCase.caseId)) {
      await expectRefusedWithoutAwsCalls(releaseHandler as never, { caseId: value });
    }
  });

  it.each(['reason', 'requestedBy', 'findingType', 'findingId'] as const)(
    'the forensic steps refuse a trigger %s with control, format or separator characters or over 512 characters',
    async (field) => {
      const refused = [
        payloads['a forged log line'],
        payloads['a forged header line'],
        payloads['an ANSI clear screen'],
        payloads['an OSC window title'],
        payloads['a C1 control sequence introducer'],
        payloads['a NUL'],
        payloads['a line separator'],
        payloads['a bidirectional override'],
        '\u200b',
        '\ud800',
        oversized,
      ];
      for (const payload of refused) {
        const trigger = { ...sampleCase.trigger, [field]: `ok${payload}` };
        await expectRefusedWithoutAwsCalls(protectHandler as never, {
          case: { ...sampleCase, trigger },
          triage: picture(),
        });
      }
    },
  );

  it('capture-memory refuses an instance type that would carry a payload into DescribeInstanceTypes', async () => {
    for (const value of hostileVersions('t3.large')) {
      const triage = triageFor({ instance: { instanceType: value } });
      await expectRefusedWithoutAwsCalls(captureHandler as never, { case: sampleCase, triage });
    }
    expect(s3).toHaveReceivedCommandTimes(HeadObjectCommand, 0);
  });
});
