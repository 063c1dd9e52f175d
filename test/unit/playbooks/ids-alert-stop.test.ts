import {
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  EC2Client,
  ModifyInstanceAttributeCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../../functions/core/errors.js';
import {
  type StopDeps,
  type StopInput,
  stopAfterEvidence,
} from '../../../functions/playbooks/ids-alert-stop/ids-alert-stop.js';
import { sampleCase } from '../../support/core-fakes.js';
import { MemoryCases } from '../../support/playbooks-fixtures.js';

const ec2Mock = mockClient(EC2Client);
const sfnMock = mockClient(SFNClient);
const snsMock = mockClient(SNSClient);

const forensics = 'arn:aws:states:us-east-1:123456789012:stateMachine:cordon-forensics-dev';
const executionArn = `${forensics.replace(':stateMachine:', ':execution:')}:ids-stop-i-0123456789abcdef0-0011223344556677`;

function event(overrides: Partial<StopInput['detail']> = {}): StopInput {
  return {
    source: 'aws.states',
    'detail-type': 'Step Functions Execution Status Change',
    detail: {
      executionArn,
      stateMachineArn: forensics,
      name: 'ids-stop-i-0123456789abcdef0-0011223344556677',
      status: 'SUCCEEDED',
      ...overrides,
    },
  };
}

function deps(cases = new MemoryCases()): StopDeps {
  return {
    sfn: new SFNClient({}),
    ec2For: () => new EC2Client({}),
    sns: new SNSClient({}),
    topicArn: 'arn:aws:sns:us-east-1:123456789012:cordon-alerts',
    stateMachineArn: forensics,
    cases,
    recorder: cases.recorder,
  };
}

const finished = (outcome: string) => ({
  output: JSON.stringify({ case: sampleCase, archive: { outcome } }),
});
const mutating = () => [
  ec2Mock.commandCalls(ModifyInstanceAttributeCommand).length,
  ec2Mock.commandCalls(StopInstancesCommand).length,
];

beforeEach(async () => {
  ec2Mock.reset();
  sfnMock.reset();
  snsMock.reset();
  sfnMock.on(DescribeExecutionCommand).resolves(finished('completed'));
  ec2Mock.on(DescribeInstancesCommand).resolves({
    Reservations: [{ Instances: [{ InstanceId: sampleCase.instanceId, State: { Name: 'running' } }] }],
  });
  ec2Mock.on(DescribeInstanceAttributeCommand).resolves({ DisableApiStop: { Value: true } });
  ec2Mock.on(ModifyInstanceAttributeCommand).resolves({ $metadata: { requestId: 'req-modify' } });
  ec2Mock.on(StopInstancesCommand).resolves({ $metadata: { requestId: 'req-stop' } });
  snsMock.on(PublishCommand).resolves({ MessageId: 'm-1' });
});

/** A MemoryCases that already holds the forensic case, so that saveChanges has somewhere to write. */
async function withCase() {
  const cases = new MemoryCases();
  await cases.openSubject([], { caseId: sampleCase.caseId, openedAt: sampleCase.openedAt });
  return cases;
}

describe('stopAfterEvidence', () => {
  it('lifts stop protection and stops the instance once every piece of evidence is sealed', async () => {
    const cases = await withCase();
    const result = await stopAfterEvidence(event(), deps(cases));
    expect(result).toMatchObject({
      decision: 'stopped',
      instanceId: sampleCase.instanceId,
      caseId: sampleCase.caseId,
    });
    expect(sfnMock).toHaveReceivedCommandWith(DescribeExecutionCommand, { executionArn });
    expect(ec2Mock).toHaveReceivedCommandWith(ModifyInstanceAttributeCommand, {
      InstanceId: sampleCase.instanceId,
      DisableApiStop: { Value: false },
    });
    expect(ec2Mock).toHaveReceivedCommandWith(StopInstancesCommand, { InstanceIds: [sampleCase.instanceId] });
    expect(cases.actions(sampleCase.caseId)).toEqual([
      'ec2:ModifyInstanceAttribute (DisableApiStop=false)',
      'ec2:StopInstances',
      'sns:Publish',
    ]);
  });

  it('does not touch stop protection that is not set', async () => {
    ec2Mock.on(DescribeInstanceAttributeCommand).resolves({ DisableApiStop: { Value: false } });
    await stopAfterEvidence(event(), deps(await withCase()));
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifyInstanceAttributeCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(StopInstancesCommand, 1);
  });

  it.each(['partial', 'failed'])(
    'leaves the instance running when the case ended %s, and says why',
    async (outcome) => {
      sfnMock.on(DescribeExecutionCommand).resolves(finished(outcome));
      const result = await stopAfterEvidence(event(), deps(await withCase()));
      expect(result.decision).toBe('withheld');
      expect(result.reason).toMatch(/^EVIDENCE_INCOMPLETE/);
      expect(mutating()).toEqual([0, 0]);
      expect(snsMock).toHaveReceivedCommandWith(PublishCommand, {
        Subject: `[Cordon] NOT STOPPED: ${sampleCase.instanceId}`,
      });
    },
  );

  it('leaves alone an execution that opened no case', async () => {
    sfnMock
      .on(DescribeExecutionCommand)
      .resolves({ output: JSON.stringify({ intake: { decision: 'duplicate' } }) });
    const result = await stopAfterEvidence(event(), deps());
    expect(result.reason).toMatch(/^NO_CASE/);
    expect(mutating()).toEqual([0, 0]);
  });

  it('stops nothing that is already stopped', async () => {
    ec2Mock
      .on(DescribeInstancesCommand)
      .resolves({ Reservations: [{ Instances: [{ State: { Name: 'stopped' } }] }] });
    const result = await stopAfterEvidence(event(), deps(await withCase()));
    expect(result.decision).toBe('already-stopped');
    expect(mutating()).toEqual([0, 0]);
  });

  it.each([
    { name: 'ids-i-0123456789abcdef0-0011223344556677' },
    { status: 'FAILED' },
    { stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:someone-else' },
  ])('ignores %j without reading the execution', async (overrides) => {
    const result = await stopAfterEvidence(event(overrides), deps());
    expect(result.decision).toBe('ignored');
    expect(sfnMock).toHaveReceivedCommandTimes(DescribeExecutionCommand, 0);
    expect(mutating()).toEqual([0, 0]);
  });

  it('fails by name when it does not know which workflow to watch', async () => {
    await expect(stopAfterEvidence(event(), { ...deps(), stateMachineArn: '' })).rejects.toBeInstanceOf(
      ConfigurationError,
    );
  });
});
