import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  followExecution,
  forensicOutcome,
  type StepLine,
  stepsFromHistory,
} from '../../scripts/cli/workflow.js';
import { callerArn, cordonOnAws, deployed, mockDeployedStack } from '../support/cli-mocks.js';

const sfn = mockClient(SFNClient);
let stack: ReturnType<typeof mockDeployedStack>;
const caseId = '20261127T210000Z-i-0123456789abcdef0-3fa9';
const executionArn = 'arn:aws:states:us-east-1:111122223333:execution:cordon-forensics-dev:manual-1';

const at = (s: number) => new Date(Date.UTC(2026, 10, 27, 21, 0, s));
const event = (
  id: number,
  previousEventId: number,
  type: string,
  s: number,
  extra: Partial<HistoryEvent> = {},
) => ({ id, previousEventId, type, timestamp: at(s), ...extra }) as HistoryEvent;
const entered = (id: number, prev: number, name: string, s: number) =>
  event(id, prev, 'TaskStateEntered', s, { stateEnteredEventDetails: { name } });

/** A real shape of history: Intake, then a Parallel whose two branches' events interleave. */
const history: HistoryEvent[] = [
  event(1, 0, 'ExecutionStarted', 0),
  entered(2, 1, 'Intake Finding', 0),
  event(3, 2, 'LambdaFunctionScheduled', 0),
  event(4, 3, 'LambdaFunctionStarted', 0),
  event(5, 4, 'LambdaFunctionSucceeded', 1, {
    lambdaFunctionSucceededEventDetails: {
      output: JSON.stringify({ intake: { decision: 'accepted', caseId }, case: { caseId } }),
    },
  }),
  event(6, 5, 'TaskStateExited', 1),
  event(7, 6, 'ParallelStateEntered', 1),
  entered(8, 7, 'Isolate Instance', 1),
  entered(9, 7, 'Snapshot Volumes', 1),
  event(10, 9, 'LambdaFunctionScheduled', 1),
  event(11, 8, 'LambdaFunctionScheduled', 1),
  event(12, 10, 'LambdaFunctionStarted', 2),
  event(13, 11, 'LambdaFunctionStarted', 2),
  event(14, 13, 'LambdaFunctionFailed', 4, {
    lambdaFunctionFailedEventDetails: {
      error: 'ContainmentError',
      cause: JSON.stringify({
        errorType: 'ContainmentError',
        errorMessage: 'eni-1 \u001b[31mrefused\nthe group',
      }),
    },
  }),
  event(15, 12, 'LambdaFunctionSucceeded', 5, {
    lambdaFunctionSucceededEventDetails: {
      output: JSON.stringify({ status: 'skipped', reason: 'no volumes' }),
    },
  }),
];

beforeEach(() => {
  sfn.reset();
  stack = mockDeployedStack();
});

describe('stepsFromHistory', () => {
  it('gives one line per finished Task, tied to its state through interleaved Parallel branches', () => {
    expect(stepsFromHistory(history)).toEqual([
      { name: 'Intake Finding', status: 'succeeded', seconds: 1, caseId, decision: 'accepted' },
      {
        name: 'Isolate Instance',
        status: 'failed',
        seconds: 3,
        reason: 'ContainmentError: eni-1 \\u001b[31mrefused\\nthe group',
      },
      { name: 'Snapshot Volumes', status: 'skipped', seconds: 4, reason: 'no volumes' },
    ]);
  });
});

describe('forensicOutcome', () => {
  it('reports a rejection with the reason Intake gave', () => {
    expect(
      forensicOutcome(
        'SUCCEEDED',
        { intake: { decision: 'rejected', reason: 'RESOURCE_NOT_INSTANCE: an S3 bucket' } },
        undefined,
        [],
      ),
    ).toEqual({ outcome: 'rejected', reason: 'RESOURCE_NOT_INSTANCE: an S3 bucket' });
  });

  it('reports a failed run by the last step that failed, with the case Intake opened', () => {
    const steps: StepLine[] = [
      { name: 'Intake Finding', status: 'succeeded', caseId },
      { name: 'Triage Instance', status: 'failed', reason: 'InstanceNotFoundError: gone' },
    ];

    expect(forensicOutcome('FAILED', undefined, { name: 'CaseFailed', message: '' }, steps)).toEqual({
      caseId,
      outcome: 'failed',
      reason: 'Triage Instance: InstanceNotFoundError: gone',
    });
  });
});

describe('followExecution', () => {
  it('reports each step once, as it finishes, and ends with the output', async () => {
    sfn
      .on(DescribeExecutionCommand)
      .resolvesOnce({ status: 'RUNNING' } as never)
      .resolves({
        status: 'SUCCEEDED',
        output: JSON.stringify({ notify: { outcome: 'completed' } }),
      } as never);
    sfn
      .on(GetExecutionHistoryCommand)
      .resolvesOnce({ events: history.slice(0, 6) })
      .resolves({ events: history });
    const seen: string[] = [];

    const run = await followExecution(new SFNClient({}), executionArn, {
      onStep: (s) => seen.push(`${s.name} ${s.status}`),
      sleep: async () => undefined,
    });

    expect(seen).toEqual(['Intake Finding succeeded', 'Isolate Instance failed', 'Snapshot Volumes skipped']);
    expect(run).toMatchObject({ status: 'SUCCEEDED', output: { notify: { outcome: 'completed' } } });
    expect(sfn).toHaveReceivedCommandWith(GetExecutionHistoryCommand, {
      executionArn,
      includeExecutionData: true,
    });
  });
});

describe('cordon start against AWS', () => {
  const instance = 'i-0123456789abcdef0';

  function executionRuns(final: 'RUNNING' | 'SUCCEEDED') {
    sfn.on(StartExecutionCommand).resolves({ executionArn, startDate: new Date() });
    sfn.on(GetExecutionHistoryCommand).resolves({ events: history.slice(0, 6) });
    sfn.on(DescribeExecutionCommand).resolves(
      final === 'RUNNING'
        ? ({ status: 'RUNNING' } as never)
        : ({
            status: 'SUCCEEDED',
            output: JSON.stringify({ case: { caseId }, notify: { outcome: 'completed' } }),
          } as never),
    );
  }

  it('starts the forensic state machine with a manual start naming the caller, and prints the case', async () => {
    executionRuns('RUNNING');

    const { code, stdout } = await cordonOnAws([
      'start',
      '--instance',
      instance,
      '--reason',
      'beaconing to a C2',
    ]);

    expect(code).toBe(0);
    expect(sfn).toHaveReceivedCommandWith(StartExecutionCommand, {
      stateMachineArn: deployed.ForensicsStateMachineArn,
      input: JSON.stringify({ instanceId: instance, reason: 'beaconing to a C2', requestedBy: callerArn }),
      name: `manual-${instance}-20261127T210000Z`,
    });
    expect(stdout).toContain(`Started ${executionArn}`);
    expect(stdout).toMatch(/^\s+succeeded\s+Intake Finding\s+1\.0 s$/m);
    expect(stdout).toContain(`Case ${caseId}: RUNNING - follow it with: cordon status ${caseId}`);
  });

  it('follows the case to its outcome with --wait', async () => {
    executionRuns('SUCCEEDED');

    const { code, stdout } = await cordonOnAws([
      'start',
      '--instance',
      instance,
      '--reason',
      'x',
      '--wait',
      '--json',
    ]);

    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      caseId,
      outcome: 'completed',
      executionArn,
      status: 'SUCCEEDED',
    });
  });

  it('passes a finding file through as it is', async () => {
    executionRuns('RUNNING');
    const dir = await mkdtemp(join(tmpdir(), 'cordon-finding-'));
    const finding = {
      detail: {
        type: 'Backdoor:EC2/C&CActivity.B!DNS',
        resource: { instanceDetails: { instanceId: instance } },
      },
    };
    await writeFile(join(dir, 'finding.json'), JSON.stringify(finding));

    const { code } = await cordonOnAws(['start', '--finding', join(dir, 'finding.json')]);

    expect(code).toBe(0);
    expect(sfn).toHaveReceivedCommandWith(StartExecutionCommand, {
      stateMachineArn: deployed.ForensicsStateMachineArn,
      input: JSON.stringify(finding),
    });
  });

  it('reads a finding file saved with a UTF-8 byte-order mark, and names why a file is not JSON', async () => {
    executionRuns('RUNNING');
    const dir = await mkdtemp(join(tmpdir(), 'cordon-finding-'));
    const finding = { detail: { resource: { instanceDetails: { instanceId: instance } } } };
    await writeFile(join(dir, 'bom.json'), `\uFEFF${JSON.stringify(finding)}`);
    await writeFile(join(dir, 'cut.json'), '{"detail": {');

    const bom = await cordonOnAws(['start', '--finding', join(dir, 'bom.json')]);
    const cut = await cordonOnAws(['start', '--finding', join(dir, 'cut.json')]);

    expect(bom.code).toBe(0);
    expect(sfn).toHaveReceivedCommandWith(StartExecutionCommand, { input: JSON.stringify(finding) });
    expect(cut.code).toBe(2);
    expect(cut.stderr).toMatch(/cut\.json is not JSON: \S/);
    expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 1);
  });

  it('reports a rejection as soon as Intake decides, without waiting for the end', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn, startDate: new Date() });
    sfn.on(DescribeExecutionCommand).resolves({ status: 'RUNNING' } as never);
    sfn.on(GetExecutionHistoryCommand).resolves({
      events: [
        ...history.slice(0, 4),
        event(5, 4, 'LambdaFunctionSucceeded', 1, {
          lambdaFunctionSucceededEventDetails: {
            output: JSON.stringify({
              intake: { decision: 'rejected', reason: 'INSTANCE_NOT_FOUND: no such instance' },
            }),
          },
        }),
      ],
    });

    const { code, stdout } = await cordonOnAws(['start', '--instance', instance, '--reason', 'x']);

    expect(code).toBe(1);
    expect(stdout).toContain('Case REJECTED - INSTANCE_NOT_FOUND: no such instance');
  });

  it('refuses a malformed instance id without calling AWS', async () => {
    const { code, stderr } = await cordonOnAws(['start', '--instance', 'i-123; rm -rf /', '--reason', 'x']);

    expect(code).toBe(2);
    expect(stderr).toContain('--instance not an EC2 instance id');
    expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
    expect(stack.sts).toHaveReceivedCommandTimes(GetCallerIdentityCommand, 0);
  });

  it('refuses a reason with control characters without calling AWS', async () => {
    const { code, stderr } = await cordonOnAws([
      'start',
      '--instance',
      instance,
      '--reason',
      'ok\u001b[2Jnot',
    ]);

    expect(code).toBe(2);
    expect(stderr).toContain('--reason contains control characters');
    expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
  });

  it('refuses --reason alongside a finding, which names its own', async () => {
    const { code, stderr } = await cordonOnAws(['start', '--finding', 'f.json', '--reason', 'x']);

    expect(code).toBe(2);
    expect(stderr).toContain('--reason goes with --instance');
    expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
  });
});
