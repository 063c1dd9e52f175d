import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { InvalidStepInputError } from '../../../functions/core/errors.js';
import { handler } from '../../../functions/forensics/hold-trigger/handler.js';
import { type HoldDeps, holdTrigger } from '../../../functions/forensics/hold-trigger/hold-trigger.js';
import { containCase, MemoryCases } from '../../support/containment-fixtures.js';

const sqs = mockClient(SQSClient);
const queueUrl = 'https://sqs.us-east-1.amazonaws.com/123456789012/cordon-dev-triggers';
const executionArn = 'arn:aws:states:us-east-1:123456789012:execution:cordon-forensics-dev:finding-1';

let cases: MemoryCases;
const holdDeps = (): HoldDeps => ({
  sqs: new SQSClient({ region: 'us-east-1' }),
  queueUrl,
  cases,
  recorder: (caseId) => cases.recorder(caseId, 'hold-trigger'),
});

beforeEach(() => {
  sqs.reset();
  sqs.on(SendMessageCommand).resolves({ MessageId: 'message-1' });
  cases = new MemoryCases();
});

/** Intake's error when it opened a case and could not finish it, as Step Functions passes it on. */
const intakeLeftOpen = (caseId: string) => ({
  Error: 'AwsThrottlingError',
  Cause: JSON.stringify({
    errorType: 'AwsThrottlingError',
    errorMessage: `Case ${caseId} was opened for i-0123456789abcdef0 in 123456789012 us-east-1 but not finished; it stays open for Intake's retry, and nothing was done to the instance: AwsThrottlingError: Rate exceeded`,
  }),
});

describe('holdTrigger', () => {
  it('puts the trigger on the queue exactly as the execution received it, saying who held it and why', async () => {
    const trigger = { source: 'aws.guardduty', detail: { id: 'x', note: 'a\nb\u001b[31m' } };

    const result = await holdTrigger(
      { trigger, executionArn, error: { Error: 'AwsServiceError', Cause: 'DynamoDB down' } },
      holdDeps(),
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
      await holdTrigger({ trigger, executionArn }, holdDeps());

      const sent = sqs.commandCalls(SendMessageCommand)[0]?.args[0].input;
      expect(JSON.parse(String(sent?.MessageBody))).toEqual(trigger);
      expect(sent?.MessageAttributes?.CORDON_ERROR?.StringValue).toBe('unknown');
    },
  );

  it('never carries an error name it did not recognise into an attribute', async () => {
    await holdTrigger({ trigger: {}, executionArn, error: { Error: 'Bad\nName <script>' } }, holdDeps());

    expect(
      sqs.commandCalls(SendMessageCommand)[0]?.args[0].input.MessageAttributes?.CORDON_ERROR?.StringValue,
    ).toBe('unknown');
  });
});

describe('the case Intake opened and could not finish', () => {
  it('is closed as failed and the instance freed, so that the redrive opens a new case', async () => {
    const opened = containCase({ executionArn });
    cases.add(opened);

    const result = await holdTrigger(
      { trigger: {}, executionArn, error: intakeLeftOpen(opened.caseId) },
      holdDeps(),
    );

    expect(result.stranded).toEqual({ caseId: opened.caseId, closed: true });
    expect(cases.records.get(opened.caseId)?.status).toBe('failed');
    expect(cases.unlocked).toEqual([opened.caseId]);
  });

  it('is left alone when another execution opened it, or when the error names no case', async () => {
    const other = containCase({ executionArn: `${executionArn}-other` });
    cases.add(other);

    const named = await holdTrigger(
      { trigger: {}, executionArn, error: intakeLeftOpen(other.caseId) },
      holdDeps(),
    );
    const unnamed = await holdTrigger(
      { trigger: {}, executionArn, error: { Error: 'AwsThrottlingError', Cause: 'No case could be opened' } },
      holdDeps(),
    );

    expect(named.stranded).toEqual({
      caseId: other.caseId,
      closed: false,
      reason: 'the case is not one this execution opened',
    });
    expect(unnamed.stranded).toBeUndefined();
    expect(cases.records.get(other.caseId)?.status).toBe('open');
    expect(cases.unlocked).toEqual([]);
  });

  it('never reads a case id from text after the start of the message (where finding text may sit)', async () => {
    const opened = containCase({ executionArn });
    cases.add(opened);
    const error = {
      Error: 'AwsServiceError',
      Cause: `No case could be opened (finding Case ${opened.caseId} was opened for x)`,
    };

    const result = await holdTrigger({ trigger: {}, executionArn, error }, holdDeps());

    expect(result.stranded).toBeUndefined();
    expect(cases.records.get(opened.caseId)?.status).toBe('open');
  });

  it('is reported, with the trigger still held, when it cannot be closed', async () => {
    const opened = containCase({ executionArn });
    cases.add(opened);
    cases.setStatus = async () => {
      throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: {} });
    };

    const result = await holdTrigger(
      { trigger: {}, executionArn, error: intakeLeftOpen(opened.caseId) },
      holdDeps(),
    );

    expect(result).toMatchObject({
      held: true,
      messageId: 'message-1',
      stranded: { caseId: opened.caseId, closed: false },
    });
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
