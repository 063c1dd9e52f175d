import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { callerArn, cordonOnAws, deployed, mockDeployedStack } from '../support/cli-mocks.js';
import { sampleCase } from '../support/core-fakes.js';

const ddb = mockClient(DynamoDBDocumentClient);
const sfn = mockClient(SFNClient);
const caseId = sampleCase.caseId;
const executionArn = 'arn:aws:states:us-east-1:111122223333:execution:cordon-release-dev:r-1';

function caseIs(status: string) {
  ddb.on(GetCommand, { Key: { pk: `CASE#${caseId}`, sk: 'CASE' } }).resolves({
    Item: {
      pk: `CASE#${caseId}`,
      sk: 'CASE',
      ...sampleCase,
      status,
      updatedAt: sampleCase.openedAt,
      findingIds: [],
    },
  });
}

beforeEach(() => {
  ddb.reset();
  sfn.reset();
  mockDeployedStack();
  sfn.on(StartExecutionCommand).resolves({ executionArn, startDate: new Date() });
});

describe('cordon release', () => {
  it('starts the release state machine for the case, naming who asked, after --yes', async () => {
    caseIs('contained');

    const { code, stdout } = await cordonOnAws(['release', caseId, '--yes']);

    expect(code).toBe(0);
    expect(sfn).toHaveReceivedCommandWith(StartExecutionCommand, {
      stateMachineArn: deployed.ReleaseStateMachineArn,
      input: JSON.stringify({ caseId, requestedBy: callerArn }),
    });
    expect(stdout).toContain(`Started ${executionArn}`);
  });

  it('asks first, and starts nothing when the answer is no', async () => {
    caseIs('partial');

    const { code, asked, stderr } = await cordonOnAws(['release', caseId], { answer: 'n', tty: true });

    expect(code).toBe(1);
    expect(asked[0]).toContain(
      `Release ${sampleCase.instanceId} (${sampleCase.accountId} ${sampleCase.region})`,
    );
    expect(stderr).toBe('Not released.\n');
    expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
  });

  it('refuses to go ahead unasked when nobody is at a terminal', async () => {
    caseIs('contained');

    const { code, stderr } = await cordonOnAws(['release', caseId], { tty: false });

    expect(code).toBe(2);
    expect(stderr).toContain('pass --yes');
    expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
  });

  it('refuses a case whose workflow is still running', async () => {
    caseIs('open');

    const { code, stderr } = await cordonOnAws(['release', caseId, '--yes']);

    expect(code).toBe(1);
    expect(stderr).toContain(
      `Case ${caseId} is open: only a contained or partially contained case can be released.`,
    );
    expect(stderr).toContain('Its workflow is still running');
    expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
  });

  it('changes nothing for a case already released, and exits 0 as the README says', async () => {
    caseIs('released');

    const { code, stdout, stderr } = await cordonOnAws(['release', caseId, '--yes']);

    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe(`Case ${caseId}: already released; nothing was changed.\n`);
    expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
  });

  it('says so in its JSON document too', async () => {
    caseIs('released');

    const { code, stdout } = await cordonOnAws(['release', caseId, '--json']);

    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ caseId, outcome: 'already-released', steps: [] });
  });

  it('points a block case at unblock, before any AWS call', async () => {
    const block = '20261127T201003Z-block-3fa9c2d1-07be';

    const { code, stderr } = await cordonOnAws(['release', block, '--yes']);

    expect(code).toBe(2);
    expect(stderr).toContain(
      `${block} is an IP-range block, not an instance's case: cordon unblock ${block}`,
    );
    expect(ddb.calls()).toHaveLength(0);
  });

  it('follows the release to its end with --wait', async () => {
    caseIs('contained');
    const events = [
      { id: 1, previousEventId: 0, type: 'ExecutionStarted', timestamp: new Date(0) },
      {
        id: 2,
        previousEventId: 1,
        type: 'TaskStateEntered',
        timestamp: new Date(0),
        stateEnteredEventDetails: { name: 'Release Instance' },
      },
      {
        id: 3,
        previousEventId: 2,
        type: 'LambdaFunctionSucceeded',
        timestamp: new Date(2000),
        lambdaFunctionSucceededEventDetails: { output: '{"caseId":"x","restored":["a","b"]}' },
      },
    ] as HistoryEvent[];
    sfn.on(GetExecutionHistoryCommand).resolves({ events });
    sfn.on(DescribeExecutionCommand).resolves({
      status: 'SUCCEEDED',
      output: JSON.stringify({ caseId, release: { restored: ['a', 'b'], notes: [] } }),
    } as never);

    const { code, stdout } = await cordonOnAws(['release', caseId, '--yes', '--wait']);

    expect(code).toBe(0);
    expect(stdout).toMatch(/^\s+succeeded\s+Release Instance\s+2\.0 s$/m);
    expect(stdout).toContain(`Release of ${caseId}: RELEASED - restored 2 item(s)`);
  });
});
