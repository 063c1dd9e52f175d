import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { BatchUpdateFindingsCommand, SecurityHubClient } from '@aws-sdk/client-securityhub';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { SecurityHubFinding } from '../../../functions/core/case.js';
import { type Notified, Recorder } from '../../../functions/core/cases.js';
import { chatDescriptionLength, structuredMessage } from '../../../functions/core/chat.js';
import { NotificationError } from '../../../functions/core/errors.js';
import { composeMessage, notifyOutcome } from '../../../functions/forensics/notify-outcome/notify-outcome.js';
import { MemoryTimeline, sampleCase } from '../../support/core-fakes.js';

const sns = mockClient(SNSClient);
const eventBridge = mockClient(EventBridgeClient);
const ok = { status: 'succeeded', result: {} };
/** The Contain state's three branches, each as it lands at `$.containment` when it succeeded. */
const allHeld = { protect: ok, isolate: ok, revoke: ok };
const archive = {
  outcome: 'completed' as const,
  manifest: {
    key: 'cases/x/manifest.json',
    versionId: 'v1',
    bytes: 1,
    sha256: 'a'.repeat(64),
    contentType: 'j',
  },
  signature: {
    key: 'cases/x/manifest.sig',
    versionId: 'v2',
    bytes: 1,
    sha256: 'b'.repeat(64),
    contentType: 'j',
  },
  artifacts: [],
};

/** The readable text of a published message (its `default` body; e-mail gets the same). */
function textOf(message: string | undefined): string {
  return (JSON.parse(message ?? '{}') as { default?: string }).default ?? '';
}

function deps() {
  const cases = {
    setStatus: vi.fn(async () => undefined),
    unlock: vi.fn(async () => undefined),
    notified: vi.fn(async (): Promise<Notified | undefined> => undefined),
    markNotified: vi.fn(async (_id: string, _n: Notified) => true),
  };
  return {
    cases,
    deps: {
      sns: new SNSClient({}),
      events: new EventBridgeClient({}),
      topicArn: 'arn:aws:sns:us-east-1:123456789012:alerts',
      cases,
      recorder: new MemoryTimeline().recorder(sampleCase.caseId, 'notify-outcome'),
    },
  };
}

beforeEach(() => {
  sns.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
  eventBridge.reset();
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
});

describe('notifyOutcome', () => {
  it('publishes one message for a contained case and marks the case contained', async () => {
    const { deps: d, cases } = deps();
    const state = {
      case: sampleCase,
      triage: {},
      containment: allHeld,
      response: { loadBalancers: ok, disk: ok },
      memory: { status: 'verified' },
      archive,
    };
    const result = await notifyOutcome(state, d);
    expect(result).toMatchObject({ outcome: 'completed', messageId: 'm-1' });
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(sns).toHaveReceivedCommandWith(PublishCommand, {
      TopicArn: 'arn:aws:sns:us-east-1:123456789012:alerts',
      Subject: `[Cordon] CONTAINED: ${sampleCase.instanceId}`,
      MessageAttributes: {
        outcome: { DataType: 'String', StringValue: 'completed' },
        caseId: { DataType: 'String', StringValue: sampleCase.caseId },
      },
    });
    expect(cases.setStatus).toHaveBeenCalledWith(sampleCase.caseId, 'contained', 'completed');
    expect(cases.unlock).not.toHaveBeenCalled();
  });

  it('says a failed case may be half-contained, and frees the instance for a new case', async () => {
    const { deps: d, cases } = deps();
    const state = {
      case: sampleCase,
      triage: {},
      containment: {
        ...allHeld,
        isolate: { status: 'failed', error: { Error: 'ContainmentError', Cause: 'eni-2 not isolated' } },
      },
      response: { loadBalancers: ok, disk: ok },
      memory: { status: 'verified' },
      archive: { ...archive, outcome: 'failed' as const },
    };
    const result = await notifyOutcome(state, d);
    expect(result.outcome).toBe('failed');
    const body = textOf(sns.commandCalls(PublishCommand)[0]?.args[0].input.Message);
    expect(body).toContain('failed    isolate: ContainmentError: eni-2 not isolated');
    expect(body).toContain('may be only partly contained');
    expect(cases.setStatus).toHaveBeenCalledWith(sampleCase.caseId, 'failed', 'failed');
    expect(cases.unlock).toHaveBeenCalledWith(sampleCase);
  });

  it('frees the instance of a case that gathered its evidence without containing it', async () => {
    const { deps: d, cases } = deps();
    const theCase = { ...sampleCase, response: { action: 'evidence-only' as const, rule: 'databases' } };
    const state = {
      case: theCase,
      triage: {},
      approval: { decision: 'not-asked', goesOn: 'evidence-only', rule: 'databases' },
      response: { disk: ok },
      memory: { status: 'verified' },
      archive,
    };
    const result = await notifyOutcome(state as never, d);
    expect(result.outcome).toBe('completed');
    expect(cases.setStatus).toHaveBeenCalledWith(sampleCase.caseId, 'evidence-only', 'completed');
    expect(cases.unlock).toHaveBeenCalledWith(theCase);
  });

  it('reports a trigger that Intake could not take in, without a case', async () => {
    const { deps: d, cases } = deps();
    const result = await notifyOutcome(
      { error: { Error: 'AwsServiceError', Cause: 'DynamoDB unavailable' } },
      d,
    );
    expect(result.outcome).toBe('failed');
    expect(sns).toHaveReceivedCommandWith(PublishCommand, {
      Subject: '[Cordon] FAILED: a trigger could not be taken in',
    });
    expect(cases.setStatus).not.toHaveBeenCalled();
  });

  it('says an exempt instance was left alone on purpose, naming the rule, and is no failure', () => {
    const message = composeMessage({
      intake: {
        decision: 'rejected',
        reason:
          'EXEMPT: i-0123456789abcdef0 in 123456789012 us-east-1 is exempt by response policy rule "payments"\u001b[31m',
      },
    });
    expect(message.outcome).toBe('rejected');
    expect(message.subject).toBe('[Cordon] EXEMPT: a finding was not actioned, by response policy');
    expect(message.body).toContain('Nothing was done to the instance and no evidence was taken.');
    expect(message.body).toContain('rule "payments"');
    expect(message.body).not.toContain('\u001b');
    expect(message.steps).toEqual([
      { name: 'intake', status: 'skipped', reason: expect.stringMatching(/^EXEMPT: /) },
    ]);
  });

  it('says a trigger Intake could not take in waits for cordon redrive, and on which message', () => {
    const message = composeMessage({
      error: { Error: 'AwsServiceError', Cause: 'DynamoDB unavailable' },
      held: { messageId: 'message-7\u001b[31m' },
    });
    expect(message.subject).toBe(
      '[Cordon] FAILED: a trigger could not be taken in (held for cordon redrive)',
    );
    expect(message.body).toContain("The trigger waits on Cordon's trigger queue (message message-7");
    expect(message.body).toContain('Fix the cause above, then run: cordon redrive');
    expect(message.body).not.toContain('\u001b');
    expect(message.steps).toEqual([
      { name: 'intake', status: 'failed', reason: 'AwsServiceError: DynamoDB unavailable' },
      { name: 'hold trigger', status: 'succeeded' },
    ]);
  });

  it('says whether the case Intake left unfinished was closed for the redrive, or still holds the instance', () => {
    const error = { Error: 'AwsThrottlingError', Cause: 'Rate exceeded' };
    const closed = composeMessage({
      error,
      held: { messageId: 'm-1', stranded: { caseId: 'case-1', closed: true } },
    });
    const stuck = composeMessage({
      error,
      held: { messageId: 'm-2', stranded: { caseId: 'case-2', closed: false, reason: 'Throttled' } },
    });
    expect(closed.body).toContain(
      'Case case-1, which Intake opened and could not finish, was closed as failed',
    );
    expect(stuck.body).toContain(
      'Case case-2, which Intake opened and could not finish, still holds the instance (Throttled)',
    );
  });

  it('says how to start the case by hand when the trigger could not be held either', () => {
    const message = composeMessage({
      error: { Error: 'AwsServiceError', Cause: 'DynamoDB unavailable' },
      holdError: { Error: 'AwsAccessDeniedError', Cause: 'sqs:SendMessage' },
    });
    expect(message.subject).toBe('[Cordon] FAILED: a trigger could not be taken in');
    expect(message.body).toContain(
      'The trigger could not be put on the trigger queue either: AwsAccessDeniedError: sqs:SendMessage',
    );
    expect(message.body).toContain('cordon start --finding FILE');
    expect(message.steps.at(-1)).toEqual({
      name: 'hold trigger',
      status: 'failed',
      reason: 'AwsAccessDeniedError: sqs:SendMessage',
    });
  });

  it('fails with NotificationError, leaving the status unchanged, when SNS refuses', async () => {
    sns
      .on(PublishCommand)
      .rejects(Object.assign(new Error('KMS key disabled'), { name: 'KMSDisabledException' }));
    const { deps: d, cases } = deps();
    await expect(
      notifyOutcome({ case: sampleCase, error: { Error: 'X', Cause: 'y' } }, d),
    ).rejects.toBeInstanceOf(NotificationError);
    expect(cases.setStatus).not.toHaveBeenCalled();
  });
});

describe('notifyOutcome, when a write around the message fails', () => {
  const contained = {
    case: sampleCase,
    triage: {},
    containment: allHeld,
    response: { loadBalancers: ok, disk: ok },
    memory: { status: 'verified' },
    archive,
  };
  const deniedByDynamo = () =>
    Object.assign(new Error('not authorized to perform: dynamodb:PutItem'), {
      name: 'AccessDeniedException',
      $metadata: { httpStatusCode: 400 },
    });

  it('puts the outcome, step by step, on the case timeline before it publishes', async () => {
    const timeline = new MemoryTimeline();
    const { deps: d } = deps();
    const state = {
      ...contained,
      containment: {
        ...allHeld,
        revoke: { status: 'failed', error: { Error: 'RevocationError', Cause: 'PutRolePolicy denied' } },
      },
    };
    await notifyOutcome(state, { ...d, recorder: timeline.recorder(sampleCase.caseId, 'notify-outcome') });
    expect(timeline.events.map((e) => e.action)).toEqual(['case outcome', 'sns:Publish', 'events:PutEvents']);
    expect(timeline.events[0]).toMatchObject({
      status: 'failed',
      detail:
        'failed: protect succeeded; isolate succeeded; revoke failed (RevocationError: PutRolePolicy denied); ' +
        'triage succeeded; load balancers succeeded; snapshots succeeded; memory succeeded; archive succeeded',
    });
  });

  it('still publishes and sets the status when the timeline cannot be written, and says what was not recorded', async () => {
    const { deps: d, cases } = deps();
    const unwritable = new Recorder(
      { recordMany: async () => Promise.reject(deniedByDynamo()) },
      sampleCase.caseId,
      'notify-outcome',
    );
    const result = await notifyOutcome(contained, { ...d, recorder: unwritable });
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(cases.setStatus).toHaveBeenCalledWith(sampleCase.caseId, 'contained', 'completed');
    expect(result).toMatchObject({ outcome: 'completed', messageId: 'm-1' });
    expect(result.unrecorded).toMatch(
      /^the case timeline could not record the outcome: AwsAccessDeniedError: /,
    );
  });

  it('says why SNS refused, and records the refusal on the case timeline', async () => {
    sns.on(PublishCommand).rejects(
      Object.assign(new Error('not authorized to perform: SNS:Publish'), {
        name: 'AuthorizationError',
        $metadata: { httpStatusCode: 403 },
      }),
    );
    const timeline = new MemoryTimeline();
    const { deps: d } = deps();
    const failure = await notifyOutcome(contained, {
      ...d,
      recorder: timeline.recorder(sampleCase.caseId, 'notify-outcome'),
    }).then(
      () => expect.unreachable('it succeeded'),
      (error: unknown) => error as Error,
    );
    expect(failure).toBeInstanceOf(NotificationError);
    expect(failure.message).toContain(
      `Cannot publish the outcome (completed) of case ${sampleCase.caseId}: `,
    );
    expect(failure.message).toContain('not authorized to perform: SNS:Publish');
    expect(timeline.events.at(-1)).toMatchObject({ action: 'sns:Publish', status: 'failed' });
  });

  it('fails, saying the message went out, when the case status cannot be set', async () => {
    const { deps: d, cases } = deps();
    cases.setStatus.mockRejectedValueOnce(deniedByDynamo());
    const failure = await notifyOutcome(contained, d).then(
      () => expect.unreachable('it succeeded'),
      (error: unknown) => error as Error,
    );
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(failure).toMatchObject({ name: 'AwsAccessDeniedError' });
    expect(failure.message).toContain(
      `The outcome (completed) of case ${sampleCase.caseId} was notified (message m-1), but the case record could not be updated to match`,
    );
  });
});

describe('composeMessage', () => {
  it('calls a contained case partial when the archive failed', () => {
    const message = composeMessage({
      case: sampleCase,
      triage: {},
      containment: allHeld,
      response: { loadBalancers: ok, disk: ok },
      memory: { status: 'verified' },
      archiveError: { Error: 'SigningError', Cause: 'key disabled' },
    });
    expect(message.outcome).toBe('partial');
    expect(message.steps.at(-1)).toEqual({
      name: 'archive',
      status: 'failed',
      reason: 'SigningError: key disabled',
    });
  });

  it('keeps a case failed when containment failed, and says its evidence went unsealed too', () => {
    const message = composeMessage({
      case: sampleCase,
      triage: {},
      containment: {
        ...allHeld,
        revoke: { status: 'failed', error: { Error: 'RevocationError', Cause: 'denied' } },
      },
      response: { loadBalancers: ok, disk: ok },
      memory: { status: 'verified' },
      archiveError: { Error: 'SigningError', Cause: 'key disabled' },
    });
    expect(message.outcome).toBe('failed');
    expect(message.steps.at(-1)).toEqual({
      name: 'archive',
      status: 'failed',
      reason: 'SigningError: key disabled',
    });
  });

  it('says nothing of an archive for a case that ended before containment began', () => {
    const message = composeMessage({
      case: sampleCase,
      error: { Error: 'InstanceNotFoundError', Cause: 'i-1 does not exist' },
    });
    expect(message.outcome).toBe('failed');
    expect(message.steps).toEqual([
      { name: 'triage', status: 'failed', reason: 'InstanceNotFoundError: i-1 does not exist' },
      { name: 'contain', status: 'failed', reason: 'containment did not run' },
    ]);
  });

  it('calls a case whose triage failed after containment partial, its evidence sealed', () => {
    const message = composeMessage({
      case: sampleCase,
      containment: allHeld,
      error: { Error: 'InstanceNotFoundError', Cause: 'i-1 does not exist' },
      archive: { ...archive, outcome: 'partial' },
    });
    expect(message.outcome).toBe('partial');
    expect(message.subject).toBe(`[Cordon] CONTAINED, EVIDENCE INCOMPLETE: ${sampleCase.instanceId}`);
    expect(message.steps).toEqual([
      { name: 'protect', status: 'succeeded' },
      { name: 'isolate', status: 'succeeded' },
      { name: 'revoke', status: 'succeeded' },
      { name: 'triage', status: 'failed', reason: 'InstanceNotFoundError: i-1 does not exist' },
      { name: 'archive', status: 'succeeded' },
    ]);
  });

  it('says why triage failed and why the archive failed when both did, each with its own error', () => {
    const message = composeMessage({
      case: sampleCase,
      containment: allHeld,
      error: { Error: 'InstanceNotFoundError', Cause: 'i-1 does not exist' },
      archiveError: { Error: 'SigningError', Cause: 'key disabled' },
    });
    expect(message.outcome).toBe('partial');
    expect(message.steps.slice(-2)).toEqual([
      { name: 'triage', status: 'failed', reason: 'InstanceNotFoundError: i-1 does not exist' },
      { name: 'archive', status: 'failed', reason: 'SigningError: key disabled' },
    ]);
  });

  it('tells the responders an instance left in its load balancers, the case contained', () => {
    const message = composeMessage({
      case: sampleCase,
      triage: {},
      containment: allHeld,
      response: {
        loadBalancers: {
          status: 'failed',
          error: { Error: 'AwsAccessDeniedError', Cause: 'DeregisterTargets' },
        },
        disk: ok,
      },
      memory: { status: 'verified' },
      archive: { ...archive, outcome: 'partial' },
    });
    expect(message.outcome).toBe('partial');
    expect(message.body).toContain('failed    load balancers: AwsAccessDeniedError: DeregisterTargets');
    expect(message.body).not.toContain('may be only partly contained');
  });

  it('strips control characters that a finding smuggled into the case', () => {
    const hostile = { ...sampleCase, trigger: { ...sampleCase.trigger, requestedBy: 'guardduty' } };
    const message = composeMessage({
      case: hostile,
      error: { Error: 'InstanceNotFoundError', Cause: 'gone\n\u001b[31mFAKE LINE' },
    });
    expect(message.body).not.toContain('\u001b');
    expect(message.body).toContain('InstanceNotFoundError: gone [31mFAKE LINE');
  });
});

describe('notifyOutcome, when Notify is retried', () => {
  const contained = {
    case: sampleCase,
    triage: {},
    containment: allHeld,
    response: { loadBalancers: ok, disk: ok },
    memory: { status: 'verified' },
    archive,
  };

  it('marks the outcome published, with its message id, after publishing it', async () => {
    const { deps: d, cases } = deps();
    await notifyOutcome(contained, { ...d, now: () => new Date('2026-01-02T03:04:05.000Z') });
    expect(cases.markNotified).toHaveBeenCalledWith(sampleCase.caseId, {
      outcome: 'completed',
      at: '2026-01-02T03:04:05.000Z',
      messageId: 'm-1',
    });
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 1);
  });

  it('does not publish again an outcome an earlier attempt published, and still sets the status', async () => {
    const timeline = new MemoryTimeline();
    const { deps: d, cases } = deps();
    cases.notified.mockResolvedValueOnce({
      outcome: 'completed',
      at: '2026-01-02T03:04:05.000Z',
      messageId: 'm-0',
    });
    const result = await notifyOutcome(contained, {
      ...d,
      recorder: timeline.recorder(sampleCase.caseId, 'notify-outcome'),
    });
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 0);
    expect(cases.markNotified).not.toHaveBeenCalled();
    expect(cases.setStatus).toHaveBeenCalledWith(sampleCase.caseId, 'contained', 'completed');
    expect(result).toMatchObject({ outcome: 'completed', messageId: 'm-0' });
    expect(timeline.events.find((e) => e.action === 'sns:Publish')).toMatchObject({
      status: 'skipped',
      detail: expect.stringContaining('(message m-0); not sent again'),
    });
  });

  it('publishes once over a retry that follows a status write that failed', async () => {
    const { deps: d, cases } = deps();
    let marker: Notified | undefined;
    cases.notified.mockImplementation(async () => marker);
    cases.markNotified.mockImplementation(async (_id: string, n: Notified) => {
      marker = n;
      return true;
    });
    cases.setStatus.mockRejectedValueOnce(
      Object.assign(new Error('slow down'), {
        name: 'ThrottlingException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    await expect(notifyOutcome(contained, d)).rejects.toMatchObject({ name: 'AwsThrottlingError' });
    await notifyOutcome(contained, d);
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(cases.setStatus).toHaveBeenCalledTimes(2);
  });

  it('publishes when the case record cannot say whether it was already published, and records why', async () => {
    const timeline = new MemoryTimeline();
    const { deps: d, cases } = deps();
    cases.notified.mockRejectedValueOnce(
      Object.assign(new Error('down'), { name: 'InternalServerError', $metadata: { httpStatusCode: 500 } }),
    );
    await notifyOutcome(contained, {
      ...d,
      recorder: timeline.recorder(sampleCase.caseId, 'notify-outcome'),
    });
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(timeline.events.map((e) => [e.action, e.status])).toContainEqual(['case notified', 'failed']);
  });

  it('still sets the status when the published outcome cannot be marked, and records that a retry would send again', async () => {
    const timeline = new MemoryTimeline();
    const { deps: d, cases } = deps();
    cases.markNotified.mockRejectedValueOnce(
      Object.assign(new Error('denied'), {
        name: 'AccessDeniedException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const result = await notifyOutcome(contained, {
      ...d,
      recorder: timeline.recorder(sampleCase.caseId, 'notify-outcome'),
    });
    expect(result.outcome).toBe('completed');
    expect(cases.setStatus).toHaveBeenCalledWith(sampleCase.caseId, 'contained', 'completed');
    expect(timeline.events.find((e) => e.action === 'case notified')).toMatchObject({
      status: 'failed',
      detail: expect.stringContaining('a retry would publish it again'),
    });
  });
});

describe('the chat form of the message', () => {
  it('publishes the text for e-mail and other protocols, and the chat event for HTTPS subscribers', async () => {
    const { deps: d } = deps();
    await notifyOutcome(
      {
        case: sampleCase,
        triage: {},
        containment: allHeld,
        response: { loadBalancers: ok, disk: ok },
        memory: { status: 'verified' },
        archive,
      },
      d,
    );
    const input = sns.commandCalls(PublishCommand)[0]?.args[0].input;
    expect(input?.MessageStructure).toBe('json');
    const bodies = JSON.parse(input?.Message ?? '{}') as Record<string, string>;
    expect(Object.keys(bodies).sort()).toEqual(['default', 'email', 'https']);
    expect(bodies.default).toContain(`Case ${sampleCase.caseId}: CONTAINED`);
    expect(bodies.email).toBe(bodies.default);
    const card = JSON.parse(bodies.https ?? '{}');
    expect(card).toMatchObject({
      version: '1.0',
      source: 'custom',
      content: {
        textType: 'client-markdown',
        title: `:white_check_mark: Cordon case ${sampleCase.caseId}: CONTAINED`,
        nextSteps: [`Verify the evidence: \`cordon evidence verify ${sampleCase.caseId}\`.`],
      },
      metadata: {
        threadId: sampleCase.caseId,
        eventType: 'cordon.case.completed',
        additionalContext: {
          caseId: sampleCase.caseId,
          outcome: 'completed',
          accountId: sampleCase.accountId,
          region: sampleCase.region,
        },
      },
    });
    expect(card.content.description).toContain(`Instance \`${sampleCase.instanceId}\``);
  });

  it('makes an error reason inert on the card: no mention, link or markup', () => {
    const message = composeMessage({
      case: sampleCase,
      error: { Error: 'InstanceNotFoundError', Cause: 'gone <!channel> [click](https://x.example) `x` *b*' },
    });
    const description = message.chat.content.description;
    expect(description).toContain('InstanceNotFoundError: gone ‹!channel› ');
    expect(description.split('\n').slice(1).join('\n')).not.toMatch(/[<>[\]`*]/);
  });

  it('cuts a long description for chat and leaves the text whole', () => {
    const long = 'x'.repeat(5000);
    const card = JSON.parse(
      (
        JSON.parse(
          structuredMessage(long, {
            version: '1.0',
            source: 'custom',
            content: { textType: 'client-markdown', title: 't', description: long },
          }),
        ) as { https: string }
      ).https,
    );
    expect(card.content.description.length).toBe(chatDescriptionLength);
  });
});

describe('the outcome event', () => {
  it('puts the failed outcome on the default bus once the case is marked failed', async () => {
    const { deps: d, cases } = deps();
    const result = await notifyOutcome(
      { case: sampleCase, error: { Error: 'TriageError', Cause: 'gone' } },
      d,
    );
    expect(result).toMatchObject({ outcome: 'failed', eventSent: true });
    expect(cases.setStatus).toHaveBeenCalled();
    const entry = eventBridge.commandCalls(PutEventsCommand)[0]?.args[0].input.Entries?.[0];
    expect(entry).toMatchObject({ Source: 'cordon', DetailType: 'Cordon Case Failed' });
    expect(JSON.parse(entry?.Detail ?? '{}')).toMatchObject({ caseId: sampleCase.caseId, outcome: 'failed' });
  });

  it('still ends the case when the event is refused, and says so in its result', async () => {
    eventBridge.on(PutEventsCommand).rejects(
      Object.assign(new Error('denied'), {
        name: 'AccessDeniedException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const { deps: d, cases } = deps();
    const result = await notifyOutcome(
      { case: sampleCase, error: { Error: 'TriageError', Cause: 'gone' } },
      d,
    );
    expect(result).toMatchObject({ outcome: 'failed', eventSent: false });
    expect(cases.unlock).toHaveBeenCalledWith(sampleCase);
  });

  it('sends no case event for a trigger that never became a case', async () => {
    const { deps: d } = deps();
    await notifyOutcome({ error: { Error: 'AwsServiceError', Cause: 'DynamoDB unavailable' } }, d);
    expect(eventBridge).toHaveReceivedCommandTimes(PutEventsCommand, 0);
  });
});

describe('the case’s findings in Security Hub', () => {
  const securityHub = mockClient(SecurityHubClient);
  const own = {
    id: 'arn:aws:guardduty:us-east-1:123456789012:detector/123456789012/finding/16afba5c5c43e07c9e3e5e2e544e95df',
    productArn: 'arn:aws:securityhub:us-east-1::product/aws/guardduty',
  };
  const joinedLater = {
    id: 'arn:aws:guardduty:us-east-1:123456789012:detector/123456789012/finding/f00dfeedf00dfeedf00dfeedf00dfeed',
    productArn: own.productArn,
  };
  const inSecurityHub = { ...sampleCase, securityHub: own };
  const contained = {
    case: inSecurityHub,
    triage: {},
    containment: allHeld,
    response: { loadBalancers: ok, disk: ok },
    memory: { status: 'verified' },
    archive,
  };
  const partial = {
    ...contained,
    memory: { status: 'failed', error: { Error: 'MemoryCaptureError', Cause: 'x' } },
  };
  const failed = { case: inSecurityHub, error: { Error: 'TriageError', Cause: 'gone' } };

  function withSecurityHub(
    options: { resolve?: boolean; joined?: () => Promise<SecurityHubFinding[]> } = {},
  ) {
    const { deps: d, cases } = deps();
    const timeline = new MemoryTimeline();
    return {
      cases,
      timeline,
      deps: {
        ...d,
        recorder: timeline.recorder(sampleCase.caseId, 'notify-outcome'),
        securityHub: {
          client: (region: string) => new SecurityHubClient({ region }),
          updatedBy: 'cordon-test',
          resolveOnComplete: options.resolve ?? false,
          joined: options.joined ?? (async () => []),
        },
      },
    };
  }
  const sent = () => securityHub.commandCalls(BatchUpdateFindingsCommand).map((c) => c.args[0].input);

  beforeEach(() => {
    securityHub.reset();
    securityHub.on(BatchUpdateFindingsCommand).resolves({ UnprocessedFindings: [] });
  });

  it('resolves the findings of a completed case where the stage says so, with the outcome in the note', async () => {
    const { deps: d } = withSecurityHub({ resolve: true });

    const result = await notifyOutcome(contained, d);

    expect(result.securityHub).toEqual(['updated']);
    expect(sent()).toEqual([
      {
        FindingIdentifiers: [{ Id: own.id, ProductArn: own.productArn }],
        Workflow: { Status: 'RESOLVED' },
        Note: {
          Text: `Cordon case ${sampleCase.caseId} completed: contained, evidence sealed; resolved by Cordon. Details: cordon status ${sampleCase.caseId}`,
          UpdatedBy: 'cordon-test',
        },
        UserDefinedFields: { cordonCaseId: sampleCase.caseId },
      },
    ]);
  });

  it('leaves a completed case’s findings NOTIFIED by default, and still says the outcome', async () => {
    const { deps: d } = withSecurityHub();

    await notifyOutcome(contained, d);

    expect(sent()).toMatchObject([
      { Workflow: { Status: 'NOTIFIED' }, Note: { Text: expect.stringContaining('completed: contained') } },
    ]);
  });

  it.each([
    ['partial', partial],
    ['failed', failed],
  ])('never resolves a %s case, whatever the stage says', async (outcome, state) => {
    const { deps: d } = withSecurityHub({ resolve: true });

    const result = await notifyOutcome(state, d);

    expect(result.outcome).toBe(outcome);
    expect(sent()).toMatchObject([
      {
        Workflow: { Status: 'NOTIFIED' },
        Note: { Text: expect.stringContaining(`Cordon case ${sampleCase.caseId} ${outcome}: `) },
      },
    ]);
  });

  it('tells the findings that joined the case too, each once, in one request', async () => {
    const { deps: d } = withSecurityHub({ joined: async () => [joinedLater, own] });

    await notifyOutcome(contained, d);

    expect(sent()).toHaveLength(1);
    expect(sent()[0]?.FindingIdentifiers).toEqual([
      { Id: own.id, ProductArn: own.productArn },
      { Id: joinedLater.id, ProductArn: joinedLater.productArn },
    ]);
  });

  it('tells the case’s own finding when the ones that joined cannot be read, and says so', async () => {
    const { deps: d, timeline } = withSecurityHub({
      joined: async () => Promise.reject(new Error('DynamoDB unavailable')),
    });

    await notifyOutcome(contained, d);

    expect(sent()[0]?.FindingIdentifiers).toEqual([{ Id: own.id, ProductArn: own.productArn }]);
    expect(timeline.events).toContainEqual(
      expect.objectContaining({
        action: 'securityhub:BatchUpdateFindings',
        status: 'failed',
        detail: expect.stringContaining('could not be read'),
      }),
    );
  });

  it('ends the case as it would have when Security Hub denies the update, and records the refusal', async () => {
    securityHub.on(BatchUpdateFindingsCommand).rejects(
      Object.assign(new Error('not authorized'), {
        name: 'AccessDeniedException',
        $metadata: { httpStatusCode: 403 },
      }),
    );
    const { deps: d, cases, timeline } = withSecurityHub({ resolve: true });

    const result = await notifyOutcome(contained, d);

    expect(result).toMatchObject({
      outcome: 'completed',
      messageId: 'm-1',
      eventSent: true,
      securityHub: ['denied'],
    });
    expect(cases.setStatus).toHaveBeenCalledWith(sampleCase.caseId, 'contained', 'completed');
    expect(timeline.events).toContainEqual(
      expect.objectContaining({
        action: 'securityhub:BatchUpdateFindings',
        status: 'failed',
        detail: expect.stringMatching(/^denied: RESOLVED, .*AccessDeniedException: .*the case goes on$/),
      }),
    );
  });

  it('makes no call for a case that no Security Hub finding started or joined', async () => {
    const { deps: d } = withSecurityHub();

    const result = await notifyOutcome({ ...contained, case: sampleCase }, d);

    expect(securityHub.calls()).toHaveLength(0);
    expect(result).not.toHaveProperty('securityHub');
  });

  it('makes no call for a trigger that never became a case', async () => {
    const { deps: d } = withSecurityHub();

    await notifyOutcome({ error: { Error: 'AwsServiceError', Cause: 'DynamoDB unavailable' } }, d);

    expect(securityHub.calls()).toHaveLength(0);
  });
});
