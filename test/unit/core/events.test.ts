import { readFileSync } from 'node:fs';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  caseEventDetailSchema,
  detailTypes,
  emitCaseEvent,
  eventSource,
  type Transition,
} from '../../../functions/core/events.js';
import { MemoryTimeline, sampleCase } from '../../support/core-fakes.js';
import { validate } from '../../support/json-schema.js';

const eventBridge = mockClient(EventBridgeClient);
const schema = JSON.parse(readFileSync(new URL('../../../docs/events.schema.json', import.meta.url), 'utf8'));
const now = () => new Date('2026-11-27T20:12:00.000Z');

beforeEach(() => {
  eventBridge.reset();
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
});

function sent() {
  return eventBridge.commandCalls(PutEventsCommand).flatMap((c) => c.args[0].input.Entries ?? []);
}

describe('emitCaseEvent', () => {
  it('puts one event on the default bus, from cordon, naming the transition, about the instance', async () => {
    const timeline = new MemoryTimeline();
    const result = await emitCaseEvent(sampleCase, 'opened', {
      events: new EventBridgeClient({}),
      recorder: timeline.recorder(sampleCase.caseId, 'intake-finding'),
      now,
    });
    expect(result).toEqual({ sent: true, eventId: 'e-1' });
    const [entry] = sent();
    expect(entry).toMatchObject({
      Source: 'cordon',
      DetailType: 'Cordon Case Opened',
      Resources: [`arn:aws:ec2:us-east-1:123456789012:instance/${sampleCase.instanceId}`],
    });
    expect(entry?.EventBusName).toBeUndefined();
    expect(JSON.parse(entry?.Detail ?? '{}')).toEqual({
      version: '1',
      transition: 'opened',
      caseId: sampleCase.caseId,
      instanceId: sampleCase.instanceId,
      accountId: sampleCase.accountId,
      region: sampleCase.region,
      openedAt: sampleCase.openedAt,
      at: '2026-11-27T20:12:00.000Z',
      executionArn: sampleCase.executionArn,
    });
    expect(timeline.events).toMatchObject([
      { action: 'events:PutEvents', status: 'ok', detail: 'event e-1' },
    ]);
  });

  it.each(Object.keys(detailTypes) as Transition[])(
    'sends a %s event whose detail holds to docs/events.schema.json',
    async (transition) => {
      await emitCaseEvent(sampleCase, transition, { events: new EventBridgeClient({}), now });
      const [entry] = sent();
      expect(entry?.Source).toBe(eventSource);
      expect(entry?.DetailType).toBe(detailTypes[transition]);
      const detail = JSON.parse(entry?.Detail ?? '{}');
      expect(validate(schema, detail)).toEqual([]);
      expect(detail.transition).toBe(transition);
      expect(detail.outcome).toBe(
        ['completed', 'partial', 'failed'].includes(transition) ? transition : undefined,
      );
    },
  );

  it('carries no text from the finding, only identifiers', async () => {
    const hostile = {
      ...sampleCase,
      trigger: { ...sampleCase.trigger, findingType: 'Backdoor <!channel>', reason: 'rm -rf /' },
    };
    await emitCaseEvent(hostile, 'contained', { events: new EventBridgeClient({}), now });
    const detail = sent()[0]?.Detail ?? '';
    expect(detail).not.toContain('Backdoor');
    expect(detail).not.toContain('rm -rf');
    expect(detail).not.toContain(sampleCase.trigger.findingId ?? 'x');
  });

  it('leaves out an execution ARN that is not one', async () => {
    await emitCaseEvent({ ...sampleCase, executionArn: 'arn:local:runner "x"' }, 'sealed', {
      events: new EventBridgeClient({}),
      now,
    });
    const detail = JSON.parse(sent()[0]?.Detail ?? '{}');
    expect(detail.executionArn).toBeUndefined();
    expect(validate(schema, detail)).toEqual([]);
  });

  it('does not throw when EventBridge refuses, and records on the timeline that the case went on', async () => {
    eventBridge.on(PutEventsCommand).rejects(
      Object.assign(new Error('not authorized to perform: events:PutEvents'), {
        name: 'AccessDeniedException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const timeline = new MemoryTimeline();
    const result = await emitCaseEvent(sampleCase, 'contained', {
      events: new EventBridgeClient({}),
      recorder: timeline.recorder(sampleCase.caseId, 'snapshot-volumes'),
      now,
    });
    expect(result.sent).toBe(false);
    expect(timeline.events).toMatchObject([
      {
        action: 'events:PutEvents',
        status: 'failed',
        target: 'Cordon Case Contained',
        detail: expect.stringContaining('not sent, the case goes on: AwsAccessDeniedError'),
      },
    ]);
  });

  it('counts an entry EventBridge rejected as not sent', async () => {
    eventBridge.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }],
    });
    const timeline = new MemoryTimeline();
    const result = await emitCaseEvent(sampleCase, 'released', {
      events: new EventBridgeClient({}),
      recorder: timeline.recorder(sampleCase.caseId, 'release-instance'),
      now,
    });
    expect(result).toEqual({ sent: false, reason: 'the entry was refused: InternalFailure: try again' });
    expect(timeline.events[0]).toMatchObject({ status: 'failed' });
  });

  it('goes on when neither the event nor its record on the timeline can be written', async () => {
    eventBridge.on(PutEventsCommand).rejects(new Error('network down'));
    const broken = new MemoryTimeline();
    broken.record = async () => Promise.reject(new Error('timeline down'));
    const result = await emitCaseEvent(sampleCase, 'opened', {
      events: new EventBridgeClient({}),
      recorder: broken.recorder(sampleCase.caseId, 'intake-finding'),
      now,
    });
    expect(result.sent).toBe(false);
  });
});

describe('docs/events.schema.json', () => {
  it('names the same fields, and requires the same ones, as the detail Cordon builds', () => {
    const shape = caseEventDetailSchema.shape;
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(shape).sort());
    const required = Object.entries(shape)
      .filter(([, s]) => !s.safeParse(undefined).success)
      .map(([k]) => k)
      .sort();
    expect([...schema.required].sort()).toEqual(required);
  });

  it('refuses a detail with a field it does not name, or a finding type for an instance id', () => {
    const base = JSON.parse(
      JSON.stringify({
        version: '1',
        transition: 'opened',
        caseId: sampleCase.caseId,
        instanceId: sampleCase.instanceId,
        accountId: sampleCase.accountId,
        region: sampleCase.region,
        openedAt: sampleCase.openedAt,
        at: sampleCase.openedAt,
      }),
    );
    expect(validate(schema, base)).toEqual([]);
    expect(validate(schema, { ...base, findingType: 'x' })).toEqual(['$.findingType: not allowed']);
    expect(validate(schema, { ...base, instanceId: 'Backdoor:EC2' })).toHaveLength(1);
  });
});
