import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { InvalidStepInputError } from '../../../functions/core/errors.js';
import { handler } from '../../../functions/forensics/hold-trigger/handler.js';
import { holdTrigger } from '../../../functions/forensics/hold-trigger/hold-trigger.js';

const sqs = mockClient(SQSClient);
const queueUrl = 'https://sqs.us-east-1.amazonaws.com/123456789012/cordon-dev-triggers';
const executionArn = 'arn:aws:states:us-east-1:123456789012:execution:cordon-forensics-dev:finding-1';

beforeEach(() => {
  sqs.reset();
  sqs.on(SendMessageCommand).resolves({ MessageId: 'message-1' });
});

describe('holdTrigger', () => {
  it('puts the trigger on the queue exactly as the execution received it, saying who held it and why', async () => {
    const trigger = { source: 'aws.guardduty', detail: { id: 'x', note: 'a\nb\u001b[31m' } };

    const result = await holdTrigger(
      { trigger, executionArn, error: { Error: 'AwsServiceError', Cause: 'DynamoDB down' } },
      { sqs: new SQSClient({ region: 'us-east-1' }), queueUrl },
    );

    expect(result).toEqual({ held: true, messageId: 'message-1', redrive: 'cordon redrive' });
    expect(sqs).toHaveReceivedCommandTimes(SendMessageCommand, 1);
    const sent = sqs.commandCalls(SendMessageCommand)[0]?.args[0].input;
    expect(sent?.QueueUrl).toBe(queueUrl);
    expect(JSON.parse(String(sent?.MessageBody))).toEqual(trigger);
    expect(sent?.MessageAttributes).toEqual({
      CORDON_HELD_BY: { DataType: 'String', StringValue: executionArn },
      CORDON_ERROR: { DataType: 'String', StringValue: 'AwsServiceError' },
    });
  });

  it.each([null, 0, 'text', [1, 2]])(
    'holds a trigger that is not an object (%j) as it came',
    async (trigger) => {
      await holdTrigger({ trigger, executionArn }, { sqs: new SQSClient({ region: 'us-east-1' }), queueUrl });

      const sent = sqs.commandCalls(SendMessageCommand)[0]?.args[0].input;
      expect(JSON.parse(String(sent?.MessageBody))).toEqual(trigger);
      expect(sent?.MessageAttributes?.CORDON_ERROR?.StringValue).toBe('unknown');
    },
  );

  it('never carries an error name it did not recognise into an attribute', async () => {
    await holdTrigger(
      { trigger: {}, executionArn, error: { Error: 'Bad\nName <script>' } },
      { sqs: new SQSClient({ region: 'us-east-1' }), queueUrl },
    );

    expect(
      sqs.commandCalls(SendMessageCommand)[0]?.args[0].input.MessageAttributes?.CORDON_ERROR?.StringValue,
    ).toBe('unknown');
  });
});

describe('the hold-trigger handler', () => {
  it('refuses, by name and without sending anything, an execution ARN that is not one', async () => {
    process.env.REDRIVE_QUEUE_URL = queueUrl;
    const run = handler(
      { trigger: {}, executionArn: 'arn:aws:states:us-east-1:1:execution:x:y\n' },
      {} as never,
    );

    await expect(run).rejects.toBeInstanceOf(InvalidStepInputError);
    expect(sqs.calls()).toHaveLength(0);
  });
});
