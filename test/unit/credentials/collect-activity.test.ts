import { CloudTrailClient, LookupEventsCommand } from '@aws-sdk/client-cloudtrail';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type CollectActivityDeps,
  collectActivity,
} from '../../../functions/credentials/collect-activity/collect-activity.js';
import { exfiltrationCase, MemoryCases, userCredentialCase } from '../../support/playbooks-fixtures.js';

const trailMock = mockClient(CloudTrailClient);
const now = new Date('2026-11-27T20:12:00.000Z');

function event(id: string, name: string, minutesAgo: number, ip = '198.51.100.23') {
  const time = new Date(now.getTime() - minutesAgo * 60_000);
  return {
    EventId: id,
    EventName: name,
    EventTime: time,
    CloudTrailEvent: JSON.stringify({
      eventID: id,
      eventName: name,
      eventSource: 'iam.amazonaws.com',
      sourceIPAddress: ip,
    }),
  };
}

function deps(overrides: Partial<CollectActivityDeps> = {}) {
  const cases = new MemoryCases();
  const stored = new Map<string, string>();
  const put = vi.fn(async (_r: unknown, name: string, body: Uint8Array | string) => {
    stored.set(name, String(body));
    return {
      key: `cases/x/${name}`,
      versionId: 'v1',
      bytes: String(body).length,
      sha256: 'a'.repeat(64),
      contentType: 'x',
    };
  });
  const sleep = vi.fn(async () => undefined);
  const d: CollectActivityDeps = {
    cloudtrail: new CloudTrailClient({}),
    evidence: { put },
    recorder: cases.recorder(userCredentialCase.caseId, 'collect-activity'),
    days: 7,
    maxEvents: 5000,
    budgetMs: 240_000,
    now: () => now,
    clock: () => 0,
    sleep,
    ...overrides,
  };
  return { d, stored, put, sleep };
}

beforeEach(() => {
  trailMock.reset();
  trailMock.on(LookupEventsCommand).resolves({ Events: [] });
});

describe('collectActivity', () => {
  it("looks up the key's events and the user's events over the last N days", async () => {
    const { d } = deps();
    await collectActivity({ case: userCredentialCase }, d);
    const start = new Date('2026-11-20T20:12:00.000Z');
    expect(trailMock).toHaveReceivedCommandWith(LookupEventsCommand, {
      LookupAttributes: [{ AttributeKey: 'AccessKeyId', AttributeValue: 'AKIAEXAMPLEALICE0001' }],
      StartTime: start,
      EndTime: now,
      MaxResults: 50,
    });
    expect(trailMock).toHaveReceivedCommandWith(LookupEventsCommand, {
      LookupAttributes: [{ AttributeKey: 'Username', AttributeValue: 'dev-alice' }],
      StartTime: start,
      EndTime: now,
    });
  });

  it("looks up only the session key's events for a role", async () => {
    const { d } = deps();
    await collectActivity({ case: exfiltrationCase }, d);
    expect(trailMock).toHaveReceivedCommandTimes(LookupEventsCommand, 1);
    expect(trailMock).toHaveReceivedCommandWith(LookupEventsCommand, {
      LookupAttributes: [{ AttributeKey: 'AccessKeyId', AttributeValue: 'ASIAEXAMPLEWEBROLE01' }],
    });
  });

  it('follows every page, once each event, and stores them oldest first as CloudTrail returned them', async () => {
    trailMock
      .on(LookupEventsCommand, {
        LookupAttributes: [{ AttributeKey: 'AccessKeyId', AttributeValue: 'AKIAEXAMPLEALICE0001' }],
      })
      .resolvesOnce({
        Events: [event('e3', 'CreateUser', 1), event('e2', 'ListUsers', 5)],
        NextToken: 'page-2',
      })
      .resolvesOnce({ Events: [event('e1', 'GetCallerIdentity', 60)] });
    trailMock
      .on(LookupEventsCommand, {
        LookupAttributes: [{ AttributeKey: 'Username', AttributeValue: 'dev-alice' }],
      })
      .resolves({ Events: [event('e2', 'ListUsers', 5)] });
    const { d, stored } = deps();
    const result = await collectActivity({ case: userCredentialCase }, d);
    expect(result).toMatchObject({ status: 'succeeded', events: 3, truncated: false });
    const lines = (stored.get('activity/cloudtrail-events.jsonl') ?? '').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).eventID)).toEqual(['e1', 'e2', 'e3']);
    const summary = JSON.parse(stored.get('activity/summary.json') ?? '{}');
    expect(summary).toMatchObject({
      events: 3,
      byEventName: { CreateUser: 1, ListUsers: 1, GetCallerIdentity: 1 },
      bySourceIp: { '198.51.100.23': 3 },
      window: { start: '2026-11-20T20:12:00.000Z', end: '2026-11-27T20:12:00.000Z' },
    });
  });

  it('keeps to two lookups a second', async () => {
    trailMock
      .on(LookupEventsCommand)
      .resolvesOnce({ Events: [event('e1', 'A', 1)], NextToken: 't' })
      .resolves({ Events: [] });
    const { d, sleep } = deps();
    await collectActivity({ case: userCredentialCase }, d);
    expect(trailMock).toHaveReceivedCommandTimes(LookupEventsCommand, 3);
    expect(sleep).toHaveBeenCalledTimes(2);
    expect(sleep).toHaveBeenCalledWith(500);
  });

  it('stops at the event limit and says the evidence is truncated', async () => {
    trailMock
      .on(LookupEventsCommand)
      .resolves({ Events: [event('e1', 'A', 1), event('e2', 'B', 2)], NextToken: 'more' });
    const { d } = deps({ maxEvents: 2 });
    const result = await collectActivity({ case: userCredentialCase }, d);
    expect(result).toMatchObject({ events: 2, truncated: true });
  });

  it('stops paging when its time budget is spent and keeps what it found', async () => {
    let t = 0;
    trailMock.on(LookupEventsCommand).resolves({ Events: [event(`e${t}`, 'A', 1)], NextToken: 'more' });
    const { d } = deps({ clock: () => (t += 100_000), budgetMs: 250_000 });
    const result = await collectActivity({ case: userCredentialCase }, d);
    expect(result.truncated).toBe(true);
    expect(trailMock.commandCalls(LookupEventsCommand).length).toBeLessThan(5);
  });

  it('stores evidence even when the principal did nothing in the window', async () => {
    const { d, put } = deps();
    const result = await collectActivity({ case: userCredentialCase }, d);
    expect(result.events).toBe(0);
    expect(put).toHaveBeenCalledTimes(2);
  });

  it('lets a CloudTrail failure fail the step by its name', async () => {
    trailMock
      .on(LookupEventsCommand)
      .rejects(Object.assign(new Error('slow down'), { name: 'ThrottlingException' }));
    const { d, put } = deps();
    await expect(collectActivity({ case: userCredentialCase }, d)).rejects.toMatchObject({
      name: 'ThrottlingException',
    });
    expect(put).not.toHaveBeenCalled();
  });
});
