import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { cordonOnAws, mockDeployedStack } from '../support/cli-mocks.js';
import { sampleCase } from '../support/core-fakes.js';

const ddb = mockClient(DynamoDBDocumentClient);
const sfn = mockClient(SFNClient);

const record = (caseId: string, openedAt: string, status = 'contained') => ({
  pk: `CASE#${caseId}`,
  sk: 'CASE',
  ...sampleCase,
  caseId,
  openedAt,
  status,
  updatedAt: openedAt,
  findingIds: [],
  instanceKey: `INSTANCE#${sampleCase.accountId}#${sampleCase.region}#${sampleCase.instanceId}`,
});
const older = record('20261120T100000Z-i-0123456789abcdef0-0001', '2026-11-20T10:00:00.000Z', 'released');
const newer = record('20261127T201003Z-i-0123456789abcdef0-3fa9', '2026-11-27T20:10:03.000Z');
const lock = { pk: newer.instanceKey, sk: 'OPEN', caseId: newer.caseId, openedAt: newer.openedAt };

beforeEach(() => {
  ddb.reset();
  sfn.reset();
  mockDeployedStack();
});

describe('cordon cases', () => {
  it('scans case items and instance locks together, across pages, newest first', async () => {
    ddb
      .on(ScanCommand)
      .resolvesOnce({ Items: [older], LastEvaluatedKey: { pk: older.pk, sk: 'CASE' } })
      .resolves({ Items: [lock, newer] });

    const { code, stdout } = await cordonOnAws(['cases', '--json']);

    expect(code).toBe(0);
    expect(ddb).toHaveReceivedCommandWith(ScanCommand, {
      TableName: 'cordon-cases-dev',
      FilterExpression: 'sk IN (:case, :open)',
      ExpressionAttributeValues: { ':case': 'CASE', ':open': 'OPEN' },
    });
    expect(ddb).toHaveReceivedCommandWith(ScanCommand, { ExclusiveStartKey: { pk: older.pk, sk: 'CASE' } });
    const rows = JSON.parse(stdout) as { caseId: string; holdsInstance: boolean; pk?: string }[];
    expect(rows.map((r) => [r.caseId, r.holdsInstance])).toEqual([
      [newer.caseId, true],
      [older.caseId, false],
    ]);
    expect(rows[0]?.pk).toBeUndefined();
  });

  it('keeps only the cases that still hold their instance with --open', async () => {
    ddb.on(ScanCommand).resolves({ Items: [older, lock, newer] });

    const { stdout } = await cordonOnAws(['cases', '--open', '--json']);

    expect((JSON.parse(stdout) as { caseId: string }[]).map((r) => r.caseId)).toEqual([newer.caseId]);
  });

  it("queries the instance's index key, for the caller's account and the stack's region, without a scan", async () => {
    ddb.on(QueryCommand).resolves({ Items: [newer, older] });
    ddb.on(GetCommand).resolves({ Item: lock });

    const { code } = await cordonOnAws(['cases', '--instance', sampleCase.instanceId, '--json']);

    expect(code).toBe(0);
    expect(ddb).toHaveReceivedCommandWith(QueryCommand, {
      IndexName: 'byInstance',
      ExpressionAttributeValues: { ':k': `INSTANCE#111122223333#us-east-1#${sampleCase.instanceId}` },
    });
    expect(ddb).toHaveReceivedCommandTimes(ScanCommand, 0);
  });
});

describe('a case waiting for approval, as the CLI shows it', () => {
  const approval = {
    status: 'waiting',
    token: 'AQB8AAAAKgAAAAMAAAAAAAAAAW-live-task-token',
    deadline: '2099-01-01T00:00:00.000Z',
    rule: 'databases',
  };

  it('never prints the task token, in the list or in the status, with or without --json', async () => {
    const waiting = { ...newer, approval };
    ddb.on(ScanCommand).resolves({ Items: [lock, waiting] });
    ddb.on(GetCommand).resolves({ Item: waiting });
    ddb.on(QueryCommand).resolves({ Items: [] });

    for (const args of [
      ['cases', '--json'],
      ['cases', '--waiting'],
      ['status', newer.caseId, '--json'],
      ['status', newer.caseId],
    ]) {
      const { stdout } = await cordonOnAws(args);
      expect(stdout, args.join(' ')).not.toContain(approval.token);
    }
    const { stdout } = await cordonOnAws(['cases', '--waiting', '--json']);
    expect(JSON.parse(stdout)[0].approval).toEqual({
      status: 'waiting',
      deadline: approval.deadline,
      rule: 'databases',
    });
  });
});

describe('cordon status', () => {
  it("shows the execution's steps from its Step Functions history", async () => {
    ddb.on(GetCommand).resolves({ Item: newer });
    ddb.on(QueryCommand).resolves({
      Items: [
        {
          pk: newer.pk,
          sk: 'T#1',
          at: '2026-11-27T20:10:04.000Z',
          step: 'intake-finding',
          action: 'case opened',
          status: 'info',
        },
      ],
    });
    sfn
      .on(DescribeExecutionCommand)
      .resolves({ status: 'SUCCEEDED', startDate: new Date('2026-11-27T20:10:03Z') } as never);
    sfn.on(GetExecutionHistoryCommand).resolves({
      events: [
        {
          id: 1,
          previousEventId: 0,
          type: 'TaskStateEntered',
          timestamp: new Date(0),
          stateEnteredEventDetails: { name: 'Triage Instance' },
        },
        {
          id: 2,
          previousEventId: 1,
          type: 'LambdaFunctionSucceeded',
          timestamp: new Date(1500),
          lambdaFunctionSucceededEventDetails: { output: '{}' },
        },
      ] as HistoryEvent[],
    });

    const { code, stdout } = await cordonOnAws(['status', newer.caseId]);

    expect(code).toBe(0);
    expect(sfn).toHaveReceivedCommandWith(DescribeExecutionCommand, {
      executionArn: sampleCase.executionArn,
    });
    expect(stdout).toMatch(/^Execution SUCCEEDED started 2026-11-27T20:10:03\.000Z$/m);
    expect(stdout).toMatch(/^\s+succeeded\s+Triage Instance\s+1\.5 s$/m);
    expect(stdout).toMatch(/intake-finding\s+case opened\s+info/);
  });
});

describe('cordon status of a block, the case id cordon cases lists', () => {
  const blockId = '20261207T211937Z-block-49ad9481-483f';
  const block = {
    pk: `CASE#${blockId}`,
    sk: 'CASE',
    caseId: blockId,
    kind: 'block',
    accountId: '111122223333',
    region: 'us-east-1',
    vpcId: 'vpc-0a1b2c3d4e5f60718',
    cidr: '198.51.100.0/24',
    openedAt: '2026-12-07T21:19:37.960Z',
    updatedAt: '2026-12-07T21:19:38.058Z',
    requestedBy: 'arn:aws:sts::111122223333:assumed-role/responder/alice',
    reason: 'scanner',
    status: 'open',
    outcome: 'completed',
    changes: { 'block-ip': { entries: [], expiresAt: '2026-12-07T22:19:37.960Z' } },
  };

  it('shows the range, the VPC and the expiry', async () => {
    ddb.on(GetCommand).resolves({ Item: block });
    ddb.on(QueryCommand).resolves({ Items: [] });

    const { code, stdout, stderr } = await cordonOnAws(['status', blockId]);

    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^Case\\s+${blockId}$`, 'm'));
    expect(stdout).toMatch(/^Kind\s+IP-range block$/m);
    expect(stdout).toMatch(
      /^Subject\s+198\.51\.100\.0\/24 in vpc-0a1b2c3d4e5f60718 \(111122223333 us-east-1\)$/m,
    );
    expect(stdout).toMatch(/^Expires\s+2026-12-07T22:19:37\.960Z$/m);
    expect(stdout).toMatch(/^Reason\s+scanner$/m);
    expect(stdout).not.toContain('undefined');
  });

  it('names the value it refuses, not the word CASE', async () => {
    const { code, stderr } = await cordonOnAws(['status', '20261207T211937Z-blok-49ad9481-483f']);

    expect(code).toBe(2);
    expect(stderr).toContain('cordon: "20261207T211937Z-blok-49ad9481-483f" is not a Cordon case id');
    expect(ddb.calls()).toHaveLength(0);
  });
});

describe('the status timeline', () => {
  const event = (i: number) => ({
    pk: `CASE#${newer.caseId}`,
    sk: `T#2026-11-27T20:10:0${i}.000Z#${i}`,
    at: `2026-11-27T20:10:0${i}.000Z`,
    step: 'isolate-instance',
    action: 'modify network interface attribute',
    status: 'ok',
    target: `arn:aws:ec2:us-east-1:111122223333:network-interface/eni-0${i}${'a'.repeat(15)}`,
    requestId: `8f2e6a1c-0b7d-4c1e-9a3f-5d6e7f8a9b0${i}`,
    detail: `groups sg-0123456789abcdef0 -> sg-0fedcba9876543210; ${'the untracking group first, '.repeat(8)}`,
  });

  it('fits a 100-column terminal, keeping each request id whole on the line below its event', async () => {
    ddb.on(GetCommand).resolves({ Item: newer });
    ddb.on(QueryCommand).resolves({ Items: [event(1), event(2)] });
    const { runCli } = await import('../../scripts/cli/main.js');
    const { capturedIo } = await import('../support/cli-fixtures.js');
    const io = Object.assign(capturedIo(), { columns: 100 });

    const code = await runCli(['status', newer.caseId, '--region', 'us-east-1'], { io });

    expect(code).toBe(0);
    const timeline = io.stdout.slice(io.stdout.indexOf('Timeline'));
    for (const line of timeline.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
    expect(timeline).toContain(
      '    request 8f2e6a1c-0b7d-4c1e-9a3f-5d6e7f8a9b01  groups sg-0123456789abcdef0',
    );
    expect(timeline).toMatch(/^AT\s+STEP\s+ACTION\s+STATUS\s+TARGET$/m);
    expect(timeline).toMatch(/^2026-11-27T20:10:01\.000Z\s+isolate-instance\s+.*…$/m);
  });
});
