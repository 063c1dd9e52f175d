/**
 * Injection, part 5: what the `cordon` CLI prints to an investigator's terminal. Case records,
 * timelines, execution histories, evidence files and AWS's error messages all carry text from outside
 * (a tampered manifest included: it is what `evidence verify` exists to catch). The terminal must get
 * none of it raw: every control, separator and format character shows as a visible escape, and a
 * value never starts a line of its own.
 */
import { GetPublicKeyCommand, KMSClient, VerifyCommand } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { jsonDocument, safe, table } from '../../scripts/cli/output.js';
import { cordonOnAws, mockDeployedStack, sealedCase, serveObjects } from '../support/cli-mocks.js';
import { sampleCase } from '../support/core-fakes.js';
import {
  hostile,
  hostileText,
  invisible,
  invisibleButNewline,
  offending,
  oversized,
  payloads,
} from '../support/injection.js';

const ddb = mockClient(DynamoDBDocumentClient);
const sfn = mockClient(SFNClient);
const s3 = mockClient(S3Client);
const kms = mockClient(KMSClient);

beforeEach(() => {
  for (const m of [ddb, sfn, s3, kms]) m.reset();
});

const everything = Object.values(payloads).join('|');

describe('the renderers every command prints through', () => {
  it('safe shows any text as one bounded line with every control, separator and format character escaped', () => {
    fc.assert(
      fc.property(hostileText, fc.integer({ min: 8, max: 120 }), (text, max) => {
        const shown = safe(text, max);

        expect(offending(shown)).toEqual([]);
        expect(shown.length).toBeLessThanOrEqual(max);
        if (shown.length < max) expect(safe(shown, max)).toBe(shown);
      }),
      { numRuns: 1_000 },
    );
  });

  it.each(hostile)('safe shows %s visibly instead of passing it to the terminal', (_name, payload) => {
    const shown = safe(`web-1${payload}tail`, 500);

    expect(offending(shown)).toEqual([]);
    if (offending(payload).length) expect(shown).toMatch(/^web-1.*\\(u[0-9a-f]{4}|n|r).*tail$/);
    else expect(shown).toBe(`web-1${payload}tail`);
  });

  it('safe never ends on half an escape or half a surrogate pair when it cuts', () => {
    for (let max = 2; max < 30; max++) {
      const shown = safe(`ab\u001b[2J😀\u202e😀\n${'x'.repeat(20)}`, max);

      expect(shown.length).toBeLessThanOrEqual(max);
      expect(offending(shown)).toEqual([]);
      expect(shown).not.toMatch(/\\(u[0-9a-f]{0,3})?…$/);
    }
    expect(safe(oversized, 300)).toHaveLength(300);
  });

  it('table gives one line per row, whatever the cells hold', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(hostileText, { minLength: 3, maxLength: 3 }), { maxLength: 6 }),
        (rows) => {
          const text = table(['A', 'B', 'C'], rows, 60);

          expect(offending(text, invisibleButNewline)).toEqual([]);
          expect(text.split('\n')).toHaveLength(rows.length + 2);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('jsonDocument escapes everything JSON leaves raw, and parses back to the same values', () => {
    fc.assert(
      fc.property(fc.dictionary(hostileText, hostileText, { maxKeys: 4 }), hostileText, (record, text) => {
        const value = { record, list: [text], text };

        const document = jsonDocument(value);

        expect(offending(document, invisibleButNewline)).toEqual([]);
        expect(JSON.parse(document)).toEqual(value);
      }),
      { numRuns: 500 },
    );
  });
});

/** Text a terminal receives: nothing raw but line feeds, and every line the command's own. */
function expectTerminalSafe(text: string): string[] {
  expect(offending(text, invisibleButNewline)).toEqual([]);
  return text.split('\n');
}

describe('cordon status and cordon cases', () => {
  const hostileCase = {
    pk: `CASE#${sampleCase.caseId}`,
    sk: 'CASE',
    ...sampleCase,
    status: `contained${payloads['an ANSI clear screen']}`,
    updatedAt: sampleCase.openedAt,
    findingIds: [`f1${payloads['a forged log line']}`],
    trigger: {
      ...sampleCase.trigger,
      findingType: `Backdoor${payloads['an OSC window title']}`,
      requestedBy: `guardduty${payloads['a C1 control sequence introducer']}`,
      reason: everything,
    },
  };
  const hostileEvents = hostile.map(([name, payload], i) => ({
    pk: hostileCase.pk,
    sk: `T#${i}`,
    at: `2026-11-27T20:10:${String(10 + i).padStart(2, '0')}.000Z`,
    step: `protect-instance${payload}`,
    action: `ec2:CreateTags${payload}`,
    status: 'failed',
    target: `i-0123456789abcdef0${payload}`,
    requestId: `req${payload}`,
    detail: `${name}: ${payload}${payload}`,
  }));

  beforeEach(() => {
    mockDeployedStack();
  });

  it('shows a case whose record, timeline and execution history carry every payload, each inside its own line', async () => {
    ddb.on(GetCommand).resolves({ Item: hostileCase });
    ddb.on(QueryCommand).resolves({ Items: hostileEvents });
    // The workflow's partition carries them; investigators' own events are none here.
    ddb
      .on(QueryCommand, { ExpressionAttributeValues: { ':pk': `INVESTIGATION#${sampleCase.caseId}` } })
      .resolves({ Items: [] });
    sfn
      .on(DescribeExecutionCommand)
      .resolves({ status: `FAILED${payloads['an ANSI clear screen']}` } as never);
    sfn.on(GetExecutionHistoryCommand).resolves({
      events: [
        {
          id: 1,
          previousEventId: 0,
          type: 'TaskStateEntered',
          timestamp: new Date(0),
          stateEnteredEventDetails: { name: `Isolate Instance${payloads['a forged log line']}` },
        },
        {
          id: 2,
          previousEventId: 1,
          type: 'LambdaFunctionFailed',
          timestamp: new Date(1500),
          lambdaFunctionFailedEventDetails: {
            error: `ContainmentError${payloads['an OSC window title']}`,
            cause: JSON.stringify({ errorType: 'ContainmentError', errorMessage: everything }),
          },
        },
      ] as HistoryEvent[],
    });

    const { code, stdout, stderr } = await cordonOnAws(['status', sampleCase.caseId]);

    expect(code, stderr).toBe(0);
    const lines = expectTerminalSafe(stdout);
    // 10 fields, a blank, the execution and its one step, a blank, the timeline's title, header and
    // rows: each event on its line, its request id and detail on the line below.
    expect(lines).toHaveLength(10 + 1 + 2 + 1 + 2 + 2 * hostileEvents.length + 1);
    expect(stdout).toContain('contained\\u001b[2J');
    expect(stdout).toContain('Backdoor\\u001b]0;title\\u0007');
    expect(stdout).not.toMatch(/^\{"level"/m);
  });

  it('lists cases whose fields carry every payload, one line each', async () => {
    ddb.on(ScanCommand).resolves({
      Items: hostile.map(([, payload], i) => ({
        ...hostileCase,
        caseId: `20261127T2010${String(10 + i).padStart(2, '0')}Z-i-0123456789abcdef0-3fa9`,
        region: `us-east-1${payload}`,
        trigger: { ...hostileCase.trigger, findingType: `T${payload}` },
      })),
    });

    const { code, stdout } = await cordonOnAws(['cases']);

    expect(code).toBe(0);
    const lines = expectTerminalSafe(stdout);
    expect(lines).toHaveLength(1 + hostile.length + 1);
  });

  it('prints --json that escapes what JSON leaves raw and parses back to the record', async () => {
    ddb.on(GetCommand).resolves({ Item: hostileCase });
    ddb.on(QueryCommand).resolves({ Items: hostileEvents });
    sfn
      .on(DescribeExecutionCommand)
      .rejects(Object.assign(new Error('gone'), { name: 'ExecutionDoesNotExist' }));

    const { stdout } = await cordonOnAws(['status', sampleCase.caseId, '--json']);

    expectTerminalSafe(stdout);
    const status = JSON.parse(stdout) as { case: { trigger: { reason: string } } };
    expect(status.case.trigger.reason).toBe(everything);
  });
});

describe('cordon evidence, on evidence that was tampered with', () => {
  const caseId = sampleCase.caseId;
  const keyArn = 'arn:aws:kms:us-east-1:111122223333:key/sign-1';
  const bucket = 'cordon-evidence-dev-111122223333-us-east-1';
  const locked = {
    ObjectLockMode: 'COMPLIANCE' as const,
    ObjectLockRetainUntilDate: new Date('2027-11-27T21:00:00Z'),
    ObjectLockLegalHoldStatus: 'OFF' as const,
  };

  beforeEach(() => {
    mockDeployedStack();
    kms.on(VerifyCommand).resolves({ SignatureValid: false });
  });

  /** A sealed case whose `name` document was rewritten by `edit` after sealing. */
  function tampered(name: 'manifest.sig' | 'manifest.json', edit: (doc: Record<string, unknown>) => void) {
    const sealed = sealedCase({ caseId, bucket, keyId: keyArn, artifacts: { 'triage.json': '{"a":1}' } });
    const key = `cases/${caseId}/${name}`;
    const stored = sealed.objects.get(key);
    if (!stored) throw new Error(`no ${key}`);
    const doc = JSON.parse(stored.body.toString('utf8')) as Record<string, unknown>;
    edit(doc);
    sealed.objects.set(key, { ...stored, body: Buffer.from(JSON.stringify(doc)) });
    serveObjects(s3, sealed.objects, locked);
    kms.on(GetPublicKeyCommand).resolves({ PublicKey: sealed.publicKeyDer });
  }

  const hostileSignatureFile = () =>
    tampered('manifest.sig', (sig) => {
      (sig.manifest as Record<string, unknown>).key = `cases/${caseId}/${everything}`;
    });

  it.each([
    ['evidence ls', []],
    ['evidence get', ['--out', '/nonexistent-dir']],
  ])(
    'cordon %s refuses a signature file naming a hostile manifest key without passing it to the terminal',
    async (command, extra) => {
      hostileSignatureFile();

      const { code, stdout, stderr } = await cordonOnAws([...command.split(' '), caseId, ...extra]);

      expect(code).toBe(1);
      expect(stdout).toBe('');
      const lines = expectTerminalSafe(stderr);
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(
        /^cordon: manifest\.sig names cases\/.*\\n\{"level":"INFO".*\\u001b\[2J.*\\u202egnp.*, not cases\/.*\/manifest\.json\.$/,
      );
    },
  );

  it('cordon evidence verify reports a signature file naming a hostile manifest key without passing it to the terminal', async () => {
    hostileSignatureFile();

    const { code, stdout, stderr } = await cordonOnAws(['evidence', 'verify', caseId]);

    expect(code).toBe(1);
    expectTerminalSafe(stderr);
    const lines = expectTerminalSafe(stdout);
    expect(lines.filter((l) => l.includes('signature file'))).toEqual([
      expect.stringMatching(
        /^ {2}FAIL {8}signature file {7}its manifest field \(cases\/.*\\n\{"level":"INFO"/,
      ),
    ]);
  });

  it('cordon evidence verify reports a manifest that lists hostile artifact names without passing them to the terminal', async () => {
    tampered('manifest.json', (manifest) => {
      const [first] = manifest.artifacts as Record<string, unknown>[];
      if (first) first.key = `cases/${caseId}/${everything}`;
    });

    const { code, stdout, stderr } = await cordonOnAws(['evidence', 'verify', caseId]);

    expect(code).not.toBe(0);
    expectTerminalSafe(stdout);
    expectTerminalSafe(stderr);
    expect(stdout).toContain('The manifest lists an artifact with an unsafe name: "; rm -rf / #');
    expect(stdout).toMatch(/^FAILED: .*\\n\{"level":"INFO"/m);
  });
});

describe('errors the CLI explains', () => {
  it('passes what AWS echoed through the renderer', async () => {
    mockDeployedStack();
    ddb.on(ScanCommand).rejects(
      Object.assign(new Error(`1 validation error detected: Value '${everything}' failed`), {
        name: 'ValidationException',
        $metadata: { httpStatusCode: 400 },
      }),
    );

    const { code, stderr } = await cordonOnAws(['cases']);

    expect(code).not.toBe(0);
    expectTerminalSafe(stderr);
    expect(stderr).toContain('\\u001b[2J');
  });

  it.each([
    ['an unknown command', [`st${payloads['an ANSI clear screen']}atus`]],
    ['an unexpected argument', ['status', sampleCase.caseId, `x${payloads['an OSC window title']}`]],
    ['an unreadable finding file', ['start', '--finding', `/nonexistent/${everything}`]],
    ['an unknown option', ['cases', `--op${payloads['a C1 control sequence introducer']}en`]],
  ])('shows %s it refuses without passing it to the terminal', async (_what, args) => {
    const { code, stdout, stderr } = await cordonOnAws(args);

    expect(code).toBe(2);
    expectTerminalSafe(stdout);
    expect(offending(stderr, invisibleButNewline)).toEqual([]);
    expect(invisible.test(stderr.replace(/\n/g, ''))).toBe(false);
  });
});
