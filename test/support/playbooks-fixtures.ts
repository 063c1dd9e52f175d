import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { vi } from 'vitest';
import { blockExpiryQueue, blockLock } from '../../functions/core/blocks.js';
import type { CaseStatus, OpenResult, TimelineEvent } from '../../functions/core/cases.js';
import { Recorder } from '../../functions/core/cases.js';
import type { CredentialCase } from '../../functions/core/credentials.js';
import type { CredentialIntakeDeps } from '../../functions/credentials/credential-intake/credential-intake.js';

/**
 * An in-memory stand-in for the parts of CaseStore the playbooks use: case items, subject locks, the
 * due queue and the timeline. It keeps the same contracts (a held lock refuses a second open, a lock
 * is freed only by the case holding it) without DynamoDB.
 */
export class MemoryCases {
  readonly items = new Map<string, Record<string, unknown>>();
  readonly locks = new Map<string, string>();
  readonly dueItems = new Map<string, { queue: string; caseId: string; dueAt: string }>();
  readonly events: (Omit<TimelineEvent, 'at'> & { at?: string; caseId: string })[] = [];

  async openSubject(
    locks: readonly string[],
    item: Record<string, unknown> & { caseId: string; openedAt: string },
  ): Promise<OpenResult> {
    const held = locks.find((l) => this.locks.has(l));
    if (held) return { opened: false, existingCaseId: this.locks.get(held) as string };
    for (const l of locks) this.locks.set(l, item.caseId);
    this.items.set(item.caseId, { ...structuredClone(item), status: 'open' });
    return { opened: true };
  }

  async holder(lock: string): Promise<string | undefined> {
    return this.locks.get(lock);
  }

  async releaseSubject(lock: string, caseId: string): Promise<void> {
    if (this.locks.get(lock) === caseId) this.locks.delete(lock);
  }

  async get(caseId: string) {
    const item = this.items.get(caseId);
    return item ? (structuredClone(item) as never) : undefined;
  }

  async saveChanges(caseId: string, step: string, changes: unknown): Promise<void> {
    const item = this.items.get(caseId);
    if (!item) throw new Error(`no case ${caseId}`);
    item.changes = { ...((item.changes as object | undefined) ?? {}), [step]: structuredClone(changes) };
  }

  async setStatus(caseId: string, status: CaseStatus, outcome?: string): Promise<void> {
    const item = this.items.get(caseId);
    if (!item) throw new Error(`no case ${caseId}`);
    item.status = status;
    if (outcome) item.outcome = outcome;
  }

  async schedule(queue: string, caseId: string, dueAt: string): Promise<void> {
    this.dueItems.set(`${queue}#${dueAt}#${caseId}`, { queue, caseId, dueAt });
  }

  async unschedule(queue: string, caseId: string, dueAt: string): Promise<void> {
    this.dueItems.delete(`${queue}#${dueAt}#${caseId}`);
  }

  async due(queue: string, now: Date, limit: number) {
    return [...this.dueItems.values()]
      .filter((d) => d.queue === queue && d.dueAt <= now.toISOString())
      .sort((a, b) => a.dueAt.localeCompare(b.dueAt))
      .slice(0, limit)
      .map(({ caseId, dueAt }) => ({ caseId, dueAt }));
  }

  async record(caseId: string, event: Omit<TimelineEvent, 'at'> & { at?: string }): Promise<void> {
    this.events.push({ ...event, caseId });
  }

  async timeline(caseId: string): Promise<TimelineEvent[]> {
    return this.events
      .filter((e) => e.caseId === caseId)
      .map(({ caseId: _c, ...e }) => ({ at: '2026-11-27T20:10:03.000Z', ...e }));
  }

  async recordMany(caseId: string, events: readonly (Omit<TimelineEvent, 'at'> & { at?: string })[]) {
    // The time each event happened is the Recorder's; the tests compare what was recorded.
    for (const { at: _at, ...e } of events) await this.record(caseId, e);
  }

  recorder = (caseId: string, step: string): Recorder => new Recorder(this, caseId, step);

  /** What a step saved on a case (`changes[step]`), as the test expects it to look. */
  changesOf<T = Record<string, unknown>>(caseId: string, step: string): T {
    const changes = (this.items.get(caseId)?.changes ?? {}) as Record<string, unknown>;
    return changes[step] as T;
  }

  actions(caseId?: string): string[] {
    return this.events.filter((e) => caseId === undefined || e.caseId === caseId).map((e) => e.action);
  }
}

/**
 * Credential Intake's dependencies over MemoryCases, in account 123456789012 and us-east-1, with an
 * evidence store whose `put` records what it was given.
 */
export function credentialIntakeDeps(
  config: Partial<CredentialIntakeDeps['config']> = {},
  now = new Date('2026-11-27T20:10:03.000Z'),
) {
  const cases = new MemoryCases();
  const put = vi.fn(async () => ({
    key: 'k',
    versionId: 'v',
    bytes: 1,
    sha256: 'a'.repeat(64),
    contentType: 'application/json',
  }));
  const d: CredentialIntakeDeps = {
    cases,
    evidence: { put },
    recorder: cases.recorder,
    config: {
      CORDON_ACCOUNT_ID: '123456789012',
      AWS_REGION: 'us-east-1',
      MIN_SEVERITY: 7,
      ACCEPT_SAMPLE_FINDINGS: true,
      ...config,
    },
    now: () => now,
  };
  return { cases, put, d };
}

export const fixturesDir = resolve(import.meta.dirname, '..', 'fixtures');

/** A CloudTrail event from test/fixtures/cloudtrail, as EventBridge delivers it. */
export function cloudTrailEvent(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(resolve(fixturesDir, 'cloudtrail', name), 'utf8')) as Record<
    string,
    unknown
  >;
}

/** The lines of an EVE JSON file from test/fixtures/suricata, exactly as written (no parsing). */
export function eveLines(name: string): string[] {
  return readFileSync(resolve(fixturesDir, 'suricata', name), 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);
}

/** The default network ACL of a dual-stack VPC, as DescribeNetworkAcls shows it. */
export function defaultAcl(networkAclId: string, subnetIds: string[], extra: object[] = []) {
  return {
    NetworkAclId: networkAclId,
    VpcId: 'vpc-0a1b2c3d4e5f60718',
    IsDefault: true,
    Associations: subnetIds.map((SubnetId, i) => ({
      NetworkAclAssociationId: `aclassoc-0000000${i}`,
      NetworkAclId: networkAclId,
      SubnetId,
    })),
    Entries: [
      ...[false, true].flatMap((Egress) => [
        { RuleNumber: 100, Egress, Protocol: '-1', RuleAction: 'allow' as const, CidrBlock: '0.0.0.0/0' },
        { RuleNumber: 101, Egress, Protocol: '-1', RuleAction: 'allow' as const, Ipv6CidrBlock: '::/0' },
        { RuleNumber: 32767, Egress, Protocol: '-1', RuleAction: 'deny' as const, CidrBlock: '0.0.0.0/0' },
        { RuleNumber: 32768, Egress, Protocol: '-1', RuleAction: 'deny' as const, Ipv6CidrBlock: '::/0' },
      ]),
      ...extra,
    ],
  };
}

/** Puts an open block case, as Block IP leaves it, into the in-memory store. */
export async function openBlockCase(
  cases: MemoryCases,
  block: {
    caseId: string;
    accountId: string;
    region: string;
    vpcId: string;
    cidr: string;
    entries: { networkAclId: string; ruleNumber: number; egress: boolean; cidr: string }[];
    expiresAt?: string | undefined;
  },
): Promise<void> {
  const { entries, expiresAt, ...where } = block;
  await cases.openSubject([blockLock(where)], {
    ...where,
    kind: 'block',
    openedAt: '2026-11-27T20:10:03.000Z',
    requestedBy: 'alice@example.com',
    reason: 'scanner',
    source: 'manual',
  });
  await cases.saveChanges(block.caseId, 'block-ip', { entries, ...(expiresAt ? { expiresAt } : {}) });
  if (expiresAt) await cases.schedule(blockExpiryQueue, block.caseId, expiresAt);
}

/** A credential case as Credential Intake opens it for an IAM user's long-term key. */
export const userCredentialCase: CredentialCase = {
  caseId: '20261127T201003Z-cred-3fa9c2d1-07be',
  kind: 'credential',
  accountId: '123456789012',
  region: 'us-east-1',
  partition: 'aws',
  openedAt: '2026-11-27T20:10:03.000Z',
  executionArn: 'arn:aws:states:us-east-1:123456789012:execution:cordon-credentials-dev:e1',
  principal: {
    type: 'IAMUser',
    name: 'dev-alice',
    principalId: 'AIDAEXAMPLEALICE0001',
    accessKeyId: 'AKIAEXAMPLEALICE0001',
  },
  finding: {
    id: '30bf285e52a1e405084ff6ec28e06e17',
    type: 'UnauthorizedAccess:IAMUser/MaliciousIPCaller',
    severity: 8,
    sample: false,
    archived: false,
    remoteIps: ['198.51.100.23'],
  },
  trigger: {
    shape: 'eventbridge-guardduty',
    requestedBy: 'guardduty',
    reason: 'UnauthorizedAccess:IAMUser/MaliciousIPCaller',
    receivedAt: '2026-11-27T20:10:02.000Z',
  },
  exfiltration: false,
};

/** The same, for instance credentials used outside AWS: a role session whose name is the instance. */
export const exfiltrationCase: CredentialCase = {
  ...userCredentialCase,
  caseId: '20261127T201003Z-cred-0badc0de-0001',
  principal: {
    type: 'AssumedRole',
    name: 'web-role',
    principalId: 'AROAEXAMPLEWEBROLE01:i-0123456789abcdef0',
    accessKeyId: 'ASIAEXAMPLEWEBROLE01',
  },
  finding: {
    ...userCredentialCase.finding,
    type: 'UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS',
    instanceId: 'i-0123456789abcdef0',
  },
  exfiltration: true,
};
