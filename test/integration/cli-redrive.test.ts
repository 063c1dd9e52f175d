import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { runWorkflowLocally } from '../../scripts/local/case.js';
import { mapEvent } from '../../scripts/local/map-event.js';
import { resetMoto } from '../../scripts/local/moto.js';
import { seedAccount } from '../../scripts/local/seed.js';
import { deployLocalStack, type LocalStack, localAccountId, localRegion } from '../../scripts/local/stack.js';
import { cordon, publishStack } from '../support/cli-fixtures.js';
import { installFaults } from '../support/faults.js';
import { readRealEvent } from '../support/fixtures.js';

const endpoint = inject('motoEndpoint');
const sqs = new SQSClient({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
});
let stack: LocalStack;

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  await resetMoto(endpoint);
  stack = await deployLocalStack(endpoint);
  await publishStack(endpoint, stack);
}, 120_000);

const waiting = async () =>
  Number(
    (
      await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: stack.triggerQueueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      )
    ).Attributes?.ApproximateNumberOfMessages,
  );

interface Redriven {
  triggers: { messageId: string; from: string; why: string; result: string; detail: string }[];
}

describe('cordon redrive', () => {
  it('lists what waits with --dry-run, starts each trigger, and leaves on the queue only what is not one', async () => {
    const executionArn = 'arn:aws:states:us-east-1:123456789012:execution:cordon-forensics-dev:finding-1';
    // What Hold Trigger leaves, and what EventBridge's dead-letter delivery leaves.
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.triggerQueueUrl,
        MessageBody: JSON.stringify({ source: 'cordon.test', detail: {} }),
        MessageAttributes: {
          CORDON_HELD_BY: { DataType: 'String', StringValue: executionArn },
          CORDON_ERROR: { DataType: 'String', StringValue: 'AwsServiceError' },
        },
      }),
    );
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.triggerQueueUrl,
        MessageBody: 'not a trigger',
        MessageAttributes: {
          RULE_ARN: {
            DataType: 'String',
            StringValue: 'arn:aws:events:us-east-1:123456789012:rule/cordon-dev-x',
          },
          ERROR_CODE: { DataType: 'String', StringValue: 'ThrottlingException' },
        },
      }),
    );

    const dry = await cordon(endpoint, ['redrive', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(1);
    const listed = JSON.parse(dry.stdout) as Redriven;
    expect(listed.triggers.map((t) => [t.from, t.why, t.result]).sort()).toEqual([
      ['arn:aws:events:us-east-1:123456789012:rule/cordon-dev-x', 'ThrottlingException', 'left on the queue'],
      [executionArn, 'AwsServiceError', 'would start'],
    ]);
    expect(await waiting()).toBe(2);

    const run = await cordon(endpoint, ['redrive', '--json']);
    expect(run.code, run.stderr).toBe(1);
    const done = JSON.parse(run.stdout) as Redriven;
    const started = done.triggers.find((t) => t.from === executionArn);
    // Started again through the real workflow: Intake refuses this trigger by name.
    expect(started).toMatchObject({ result: 'started', detail: 'ran here: rejected' });
    expect(done.triggers.find((t) => t.from !== executionArn)).toMatchObject({
      result: 'left on the queue',
      detail: 'the body is not JSON',
    });
    expect(await waiting()).toBe(1);
  });

  it('contains the instance whose finding Intake opened a case for and could not finish for minutes', async () => {
    await resetMoto(endpoint);
    stack = await deployLocalStack(endpoint);
    await publishStack(endpoint, stack);
    const seeded = await seedAccount(endpoint, { vpcEndpoints: true });
    const { event } = mapEvent(readRealEvent('gd_detail_canary_ec2_stateless_integtest.json'), {
      instanceId: seeded.instanceId,
      accountId: localAccountId,
      region: localRegion,
    });
    // The case opens, then storing the trigger is throttled on every attempt of every retry.
    const executionArn = `${stack.forensicsStateMachineArn.replace(':stateMachine:', ':execution:')}:stranded`;
    const faults = installFaults();
    let held: Awaited<ReturnType<typeof runWorkflowLocally>>;
    try {
      faults.arm(executionArn, [
        { stateName: 'Intake Finding', operation: 's3:PutObject', mode: 'throttled' },
      ]);
      held = await runWorkflowLocally(stack, 'forensics', event, { executionArn });
    } finally {
      faults.uninstall();
    }
    expect(held.steps.map((s) => s.name).filter((n) => n !== 'Intake Finding')).toEqual([
      'Hold Trigger',
      'Notify Outcome',
    ]);
    // The case Intake opened and could not finish is closed, and the instance free for a new one.
    const casesOf = async () => {
      const listed = await cordon(endpoint, ['cases', '--instance', seeded.instanceId, '--json']);
      return (JSON.parse(listed.stdout) as { caseId: string; status: string; holdsInstance: boolean }[]).map(
        (c) => ({ caseId: c.caseId, status: c.status, holdsInstance: c.holdsInstance }),
      );
    };
    const before = await casesOf();
    expect(before).toEqual([expect.objectContaining({ status: 'failed', holdsInstance: false })]);
    const stranded = before[0]?.caseId as string;

    const run = await cordon(endpoint, ['redrive', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const [redriven] = (JSON.parse(run.stdout) as Redriven).triggers;
    expect(redriven).toMatchObject({ from: executionArn, result: 'started' });
    // A new case, not the stranded one, and it contained the instance.
    expect(redriven?.detail).toMatch(/^ran here: completed \(case \S+\)$/);
    expect(redriven?.detail).not.toContain(stranded);
    expect(await waiting()).toBe(0);
    expect((await casesOf()).find((c) => c.caseId !== stranded)).toMatchObject({ status: 'contained' });
  }, 120_000);

  it('says the queue is empty, and succeeds, when nothing waits', async () => {
    await resetMoto(endpoint);
    stack = await deployLocalStack(endpoint);
    await publishStack(endpoint, stack);

    const run = await cordon(endpoint, ['redrive']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('The trigger queue is empty: nothing to redrive.\n');
  });
});
