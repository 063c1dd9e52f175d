import { readFileSync } from 'node:fs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import {
  type ApprovalRecord,
  decideApproval,
  maxApprovalWindowSeconds,
} from '../../../functions/core/approval.js';
import { composeMessage } from '../../../functions/forensics/notify-outcome/notify-outcome.js';
import {
  requestApproval,
  requestApprovalInputSchema,
} from '../../../functions/forensics/request-approval/request-approval.js';
import { repoRoot } from '../../../scripts/local/runner.js';
import { MemoryTimeline, sampleCase } from '../../support/core-fakes.js';

const ddb = mockClient(DynamoDBDocumentClient);
const sns = mockClient(SNSClient);
const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const now = new Date('2026-11-27T20:30:00.000Z');
const by = 'arn:aws:sts::123456789012:assumed-role/Responder/alice';
const waiting: ApprovalRecord = {
  status: 'waiting',
  token: 'token-1',
  rule: 'payments',
  requestedAt: '2026-11-27T20:10:00.000Z',
  deadline: '2026-11-27T21:10:00.000Z',
  timeoutAction: 'evidence-only',
};
const conditionFailed = Object.assign(new Error('failed'), { name: 'ConditionalCheckFailedException' });

afterEach(() => {
  ddb.reset();
  sns.reset();
});

function deps(answer = vi.fn(async () => undefined)) {
  const record = vi.fn(async () => undefined);
  return { answer, record, deps: { ddb: client, table: 'cases', cases: { record }, answer, now: () => now } };
}

describe('decideApproval', () => {
  it('records the decision with a conditional update, then answers the stored token', async () => {
    ddb.on(GetCommand).resolves({ Item: { pk: 'x', approval: waiting } });
    ddb.on(UpdateCommand).resolves({});
    const d = deps();
    const answer = await decideApproval({ caseId: sampleCase.caseId, decision: 'approved', by }, d.deps);
    expect(answer).toEqual({
      decision: 'approved',
      goesOn: 'contain',
      by,
      at: now.toISOString(),
      rule: 'payments',
    });
    const update = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(update?.ConditionExpression).toBe(
      'approval.#s = :waiting AND approval.#t = :t AND approval.#dl > :at',
    );
    expect(update?.ExpressionAttributeValues).toMatchObject({ ':d': 'approved', ':by': by, ':t': 'token-1' });
    expect(d.answer).toHaveBeenCalledWith('token-1', answer);
    expect(d.record).toHaveBeenCalledWith(
      sampleCase.caseId,
      expect.objectContaining({ action: 'approval approved' }),
    );
  });

  it.each([
    ['a case that does not exist', undefined, 'CaseNotFoundError', /there is no case/],
    ['a case not waiting', { pk: 'x' }, 'ApprovalNotWaitingError', /not waiting for approval/],
    [
      'a case already approved',
      { pk: 'x', approval: { ...waiting, status: 'approved', by: 'bob', at: '2026-11-27T20:20:00.000Z' } },
      'ApprovalAlreadyDecidedError',
      /already approved by bob at 2026-11-27T20:20:00.000Z/,
    ],
    [
      'a closed window',
      { pk: 'x', approval: { ...waiting, deadline: '2026-11-27T20:29:00.000Z' } },
      'ApprovalWindowClosedError',
      /closed at 2026-11-27T20:29:00.000Z; the case went on as evidence-only/,
    ],
  ])('refuses %s by name, writing and answering nothing', async (_what, item, name, message) => {
    ddb.on(GetCommand).resolves(item ? { Item: item } : {});
    const d = deps();
    await expect(
      decideApproval({ caseId: sampleCase.caseId, decision: 'approved', by }, d.deps),
    ).rejects.toMatchObject({ name, message: expect.stringMatching(message) });
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
    expect(d.answer).not.toHaveBeenCalled();
  });

  it("refuses another case's token", async () => {
    ddb.on(GetCommand).resolves({ Item: { pk: 'x', approval: waiting } });
    const d = deps();
    await expect(
      decideApproval({ caseId: sampleCase.caseId, decision: 'approved', by, token: 'token-2' }, d.deps),
    ).rejects.toMatchObject({ name: 'ApprovalTokenMismatchError' });
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
  });

  it('refuses the loser of two racing answers, naming the winner, and answers nothing', async () => {
    ddb
      .on(GetCommand)
      .resolvesOnce({ Item: { pk: 'x', approval: waiting } })
      .resolves({ Item: { pk: 'x', approval: { ...waiting, status: 'rejected', by: 'bob', at: 't' } } });
    ddb.on(UpdateCommand).rejects(conditionFailed);
    const d = deps();
    await expect(
      decideApproval({ caseId: sampleCase.caseId, decision: 'approved', by }, d.deps),
    ).rejects.toMatchObject({
      name: 'ApprovalAlreadyDecidedError',
      message: expect.stringContaining('rejected by bob'),
    });
    expect(d.answer).not.toHaveBeenCalled();
  });

  it('puts the approval back to waiting when Step Functions refuses the answer', async () => {
    ddb.on(GetCommand).resolves({ Item: { pk: 'x', approval: waiting } });
    ddb.on(UpdateCommand).resolves({});
    const d = deps(
      vi.fn(async () => {
        throw Object.assign(new Error('Task Timed Out'), { name: 'TaskTimedOut' });
      }),
    );
    await expect(
      decideApproval({ caseId: sampleCase.caseId, decision: 'rejected', by, reason: 'no' }, d.deps),
    ).rejects.toMatchObject({
      name: 'ApprovalDeliveryError',
      message: expect.stringContaining('was not rejected'),
    });
    const revert = ddb.commandCalls(UpdateCommand)[1]?.args[0].input;
    expect(revert?.UpdateExpression).toMatch(/^SET approval.#s = :waiting REMOVE/);
    expect(d.record).not.toHaveBeenCalled();
  });
});

/** Request Approval's dependencies: the mocked table and topic, a timeline of its own. */
const requestDeps = () => ({
  ddb: client,
  table: 'cases',
  sns: new SNSClient({ region: 'us-east-1' }),
  topicArn: 'arn:aws:sns:us-east-1:123456789012:alerts',
  recorder: new MemoryTimeline().recorder(sampleCase.caseId, 'request-approval'),
  now: () => now,
});

describe('requestApproval', () => {
  it('records the waiting approval and publishes what waits, the deadline and the exact commands', async () => {
    ddb.on(UpdateCommand).resolves({});
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    const theCase = { ...sampleCase, response: { action: 'approve' as const, rule: 'payments' } };
    const result = await requestApproval(
      { taskToken: 'token-1', case: theCase, timeoutSeconds: 600, timeoutAction: 'contain' },
      requestDeps(),
    );
    expect(result).toEqual({
      caseId: sampleCase.caseId,
      deadline: '2026-11-27T20:40:00.000Z',
      messageId: 'm-1',
    });
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input.ExpressionAttributeValues?.[':a']).toEqual({
      status: 'waiting',
      token: 'token-1',
      rule: 'payments',
      requestedAt: now.toISOString(),
      deadline: '2026-11-27T20:40:00.000Z',
      timeoutAction: 'contain',
    });
    const body = JSON.parse(String(sns.commandCalls(PublishCommand)[0]?.args[0].input.Message))
      .default as string;
    expect(body).toContain(`cordon approve ${sampleCase.caseId}`);
    expect(body).toContain(`cordon reject ${sampleCase.caseId} --reason TEXT`);
    expect(body).toContain('Answer before 2026-11-27T20:40:00.000Z');
  });

  it('closes the window of a request it could not publish, so that nobody is told to answer it', async () => {
    ddb.on(UpdateCommand).resolves({});
    sns.on(PublishCommand).rejects(Object.assign(new Error('topic gone'), { name: 'NotFoundException' }));
    await expect(
      requestApproval(
        { taskToken: 'token-2', case: sampleCase, timeoutSeconds: 600, timeoutAction: 'evidence-only' },
        requestDeps(),
      ),
    ).rejects.toMatchObject({ name: 'NotificationError' });
    const close = ddb.commandCalls(UpdateCommand)[1]?.args[0].input;
    expect(close?.UpdateExpression).toBe('SET approval.#dl = :at, updatedAt = :at');
    expect(close?.ConditionExpression).toBe('approval.#s = :waiting AND approval.#t = :t');
    expect(close?.ExpressionAttributeValues).toMatchObject({ ':at': now.toISOString(), ':t': 'token-2' });
  });

  it('publishes nothing when the approval was already decided', async () => {
    ddb.on(UpdateCommand).rejects(conditionFailed);
    await expect(
      requestApproval(
        { taskToken: 't', case: sampleCase, timeoutSeconds: 60, timeoutAction: 'evidence-only' },
        requestDeps(),
      ),
    ).rejects.toMatchObject({ name: 'ApprovalAlreadyDecidedError' });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });
});

describe('the notification of a case not contained', () => {
  const evidence = {
    triage: { plan: {} },
    response: { disk: { status: 'succeeded' } },
    memory: { status: 'verified' },
    archive: {
      outcome: 'completed' as const,
      manifest: { key: 'm', versionId: 'v', bytes: 1, sha256: 'a', contentType: 'x' },
      signature: { key: 's', versionId: 'v', bytes: 1, sha256: 'a', contentType: 'x' },
      artifacts: [],
    },
  };

  it('says plainly, for evidence only by policy, that it was NOT contained, naming the rule', () => {
    const m = composeMessage({
      case: { ...sampleCase, response: { action: 'evidence-only', rule: 'domain-controllers' } },
      ...evidence,
      approval: { decision: 'not-asked', goesOn: 'evidence-only', rule: 'domain-controllers' },
    } as never);
    expect(m.outcome).toBe('completed');
    expect(m.subject).toBe(`[Cordon] EVIDENCE SEALED, NOT CONTAINED: ${sampleCase.instanceId}`);
    expect(m.body).toContain(
      'The instance was NOT contained, by policy: the response policy (rule domain-controllers)',
    );
    expect(m.body).not.toMatch(/: CONTAINED|\bcontained at\b/);
  });

  it('names who rejected the containment, when and why', () => {
    const m = composeMessage({
      case: { ...sampleCase, response: { action: 'approve', rule: 'payments' } },
      ...evidence,
      approval: {
        decision: 'rejected',
        goesOn: 'evidence-only',
        by,
        at: now.toISOString(),
        rule: 'payments',
        reason: 'change window',
      },
    } as never);
    expect(m.outcome).toBe('completed');
    expect(m.body).toContain(
      `containment was rejected by ${by} at ${now.toISOString()} (rule payments): change window`,
    );
  });
});

describe('the approval window', () => {
  const yamlOf = (file: string) => parse(readFileSync(`${repoRoot}/${file}`, 'utf8'), { merge: true });

  it('ends, at its longest, well inside the forensic execution, so that a case that waits is still notified', () => {
    const asl = yamlOf('statemachines/forensics.asl.yml') as { TimeoutSeconds: number };
    const stage = yamlOf('serverless.yml') as { params: { default: { approvalTimeoutSeconds: number } } };

    expect(asl.TimeoutSeconds).toBeGreaterThanOrEqual(2 * maxApprovalWindowSeconds);
    expect(stage.params.default.approvalTimeoutSeconds).toBeLessThanOrEqual(maxApprovalWindowSeconds);
  });

  it('is refused by Request Approval when longer, so that the case goes on at once as the timeout says', () => {
    const input = { taskToken: 'token', case: sampleCase, timeoutAction: 'evidence-only' };

    expect(
      requestApprovalInputSchema.safeParse({ ...input, timeoutSeconds: maxApprovalWindowSeconds }).success,
    ).toBe(true);
    expect(
      requestApprovalInputSchema.safeParse({ ...input, timeoutSeconds: maxApprovalWindowSeconds + 1 })
        .success,
    ).toBe(false);
  });
});
