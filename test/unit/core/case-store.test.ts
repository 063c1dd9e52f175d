import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { CaseStore } from '../../../functions/core/cases.js';
import { EvidenceConflictError } from '../../../functions/core/errors.js';
import { putObservation } from '../../../functions/core/evidence.js';
import { sampleCase } from '../../support/core-fakes.js';

const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const ddbMock = mockClient(ddb);
const now = () => new Date('2026-11-27T20:10:05.000Z');
const store = new CaseStore(ddb, 'cordon-cases-dev', now);
const changes = { groups: { 'eni-1': ['sg-1'] } };

beforeEach(() => ddbMock.reset());

describe('CaseStore.saveChanges', () => {
  it('opens every case with an empty record of changes', async () => {
    ddbMock.on(TransactWriteCommand).resolves({});
    await store.open(sampleCase);
    const items = ddbMock.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(items[1]?.Put?.Item?.changes).toEqual({});
  });

  it("saves a step's changes in one write", async () => {
    ddbMock.on(UpdateCommand).resolves({});
    await store.saveChanges(sampleCase.caseId, 'isolate', changes);
    const calls = ddbMock.commandCalls(UpdateCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toMatchObject({
      UpdateExpression: 'SET changes.#step = :c, updatedAt = :at',
      ExpressionAttributeNames: { '#step': 'isolate' },
      ExpressionAttributeValues: { ':c': changes, ':at': '2026-11-27T20:10:05.000Z' },
    });
  });

  it('creates the record first for a case opened without one, then saves', async () => {
    const invalidPath = Object.assign(
      new Error('The document path provided in the update expression is invalid for update'),
      { name: 'ValidationException' },
    );
    ddbMock.on(UpdateCommand).rejectsOnce(invalidPath).resolves({});
    await store.saveChanges(sampleCase.caseId, 'isolate', changes);
    const expressions = ddbMock.commandCalls(UpdateCommand).map((c) => c.args[0].input.UpdateExpression);
    expect(expressions).toEqual([
      'SET changes.#step = :c, updatedAt = :at',
      'SET changes = if_not_exists(changes, :empty)',
      'SET changes.#step = :c, updatedAt = :at',
    ]);
  });

  it('lets any other failure through, without a second write', async () => {
    const denied = Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' });
    ddbMock.on(UpdateCommand).rejects(denied);
    await expect(store.saveChanges(sampleCase.caseId, 'isolate', changes)).rejects.toThrow('not authorized');
    expect(ddbMock.commandCalls(UpdateCommand)).toHaveLength(1);
  });
});

describe('CaseStore.markNotified and notified', () => {
  const marker = { outcome: 'completed' as const, at: '2026-11-27T20:10:05.000Z', messageId: 'm-1' };

  it('marks the outcome published only on an existing case that holds no marker yet', async () => {
    ddbMock.on(UpdateCommand).resolves({});
    expect(await store.markNotified(sampleCase.caseId, marker)).toBe(true);
    expect(ddbMock).toHaveReceivedCommandWith(UpdateCommand, {
      Key: { pk: `CASE#${sampleCase.caseId}`, sk: 'CASE' },
      UpdateExpression: 'SET #n = :n',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#n)',
      ExpressionAttributeNames: { '#n': 'notified' },
      ExpressionAttributeValues: { ':n': marker },
    });
  });

  it('says so, keeping the first marker, when an earlier attempt marked it', async () => {
    ddbMock.on(UpdateCommand).rejects(
      Object.assign(new Error('The conditional request failed'), {
        name: 'ConditionalCheckFailedException',
      }),
    );
    expect(await store.markNotified(sampleCase.caseId, marker)).toBe(false);
  });

  it('lets any other failure through', async () => {
    ddbMock
      .on(UpdateCommand)
      .rejects(Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }));
    await expect(store.markNotified(sampleCase.caseId, marker)).rejects.toThrow('not authorized');
  });

  it('reads the marker consistently, and nothing when there is none', async () => {
    ddbMock
      .on(GetCommand)
      .resolvesOnce({ Item: { notified: marker } })
      .resolvesOnce({ Item: {} });
    expect(await store.notified(sampleCase.caseId)).toEqual(marker);
    expect(await store.notified(sampleCase.caseId)).toBeUndefined();
    expect(ddbMock).toHaveReceivedCommandWith(GetCommand, {
      ConsistentRead: true,
      ProjectionExpression: '#n',
    });
  });
});

describe('CaseStore.join and securityHubFindings', () => {
  const joining = {
    id: 'arn:aws:guardduty:us-east-1:123456789012:detector/d1/finding/f00d',
    productArn: 'arn:aws:securityhub:us-east-1::product/aws/guardduty',
  };

  it('says a finding new to the case joined, and lists its Security Hub identity with it', async () => {
    ddbMock.on(UpdateCommand).resolves({});

    expect(await store.join(sampleCase.caseId, 'f00d', joining)).toBe(true);
    expect(ddbMock).toHaveReceivedCommandWith(UpdateCommand, {
      UpdateExpression:
        'SET findingIds = list_append(if_not_exists(findingIds, :empty), :f), securityHubFindings = list_append(if_not_exists(securityHubFindings, :empty), :sh), updatedAt = :at',
      ConditionExpression: 'attribute_exists(pk) AND NOT contains(findingIds, :fid)',
      ExpressionAttributeValues: {
        ':f': ['f00d'],
        ':fid': 'f00d',
        ':empty': [],
        ':at': now().toISOString(),
        ':sh': [joining],
      },
    });
  });

  it('says an update of a finding the case already lists added nothing', async () => {
    ddbMock.on(UpdateCommand).rejects(
      Object.assign(new Error('The conditional request failed'), {
        name: 'ConditionalCheckFailedException',
      }),
    );

    expect(await store.join(sampleCase.caseId, 'f00d', joining)).toBe(false);
  });

  it('reads the findings that joined, leaving out anything that is not a Security Hub identity', async () => {
    ddbMock.on(GetCommand).resolves({
      Item: { securityHubFindings: [joining, { id: 'x', productArn: 'arn:aws:s3:::bucket' }, 'nonsense'] },
    });

    expect(await store.securityHubFindings(sampleCase.caseId)).toEqual([joining]);
    expect(ddbMock).toHaveReceivedCommandWith(GetCommand, {
      Key: { pk: `CASE#${sampleCase.caseId}`, sk: 'CASE' },
      ConsistentRead: true,
      ProjectionExpression: 'securityHubFindings',
    });
  });

  it('reads none from a case that no finding joined', async () => {
    ddbMock.on(GetCommand).resolves({ Item: {} });

    expect(await store.securityHubFindings(sampleCase.caseId)).toEqual([]);
  });
});

describe('putObservation', () => {
  const artifact = (key: string) => ({
    key,
    versionId: 'v1',
    bytes: 2,
    sha256: 'ab',
    contentType: 'application/json',
  });
  const recorder = { caseId: sampleCase.caseId } as never;

  it('keeps what a retried step saw beside what an earlier attempt stored, replacing nothing', async () => {
    const names: string[] = [];
    const store = {
      put: async (_r: unknown, name: string) => {
        names.push(name);
        if (name === 'triage.json')
          throw new EvidenceConflictError('triage.json already holds different evidence');
        return artifact(name);
      },
    };
    const out = await putObservation(store, recorder, 'triage.json', '{}', {
      contentType: 'application/json',
    });
    expect(names).toEqual(['triage.json', 'triage.attempt-2.json']);
    expect(out.key).toBe('triage.attempt-2.json');
  });

  it('lets any other failure through at once', async () => {
    let calls = 0;
    const store = {
      put: async () => {
        calls += 1;
        throw new Error('AccessDenied');
      },
    };
    await expect(
      putObservation(store, recorder, 'triage.json', '{}', { contentType: 'application/json' }),
    ).rejects.toThrow('AccessDenied');
    expect(calls).toBe(1);
  });
});
