import type { Case } from '../../functions/core/case.js';
import { Recorder, type TimelineEvent } from '../../functions/core/cases.js';

/** A timeline kept in memory: what a step recorded, in order. */
export class MemoryTimeline {
  readonly events: (Omit<TimelineEvent, 'at'> & { at?: string; caseId: string })[] = [];
  async record(caseId: string, event: Omit<TimelineEvent, 'at'> & { at?: string }): Promise<void> {
    this.events.push({ ...event, caseId });
  }
  async recordMany(caseId: string, events: readonly (Omit<TimelineEvent, 'at'> & { at?: string })[]) {
    // The time each event happened is the Recorder's; the tests compare what was recorded.
    for (const { at: _at, ...e } of events) await this.record(caseId, e);
  }
  recorder(caseId: string, step: string): Recorder {
    return new Recorder(this, caseId, step);
  }
}

export const sampleCase: Case = {
  caseId: '20261127T201003Z-i-0123456789abcdef0-3fa9',
  instanceId: 'i-0123456789abcdef0',
  accountId: '123456789012',
  region: 'us-east-1',
  partition: 'aws',
  openedAt: '2026-11-27T20:10:03.000Z',
  executionArn: 'arn:aws:states:us-east-1:123456789012:execution:cordon-forensics-dev:abc',
  trigger: {
    source: 'guardduty',
    shape: 'eventbridge-guardduty',
    findingId: '16afba5c5c43e07c9e3e5e2e544e95df',
    findingType: 'Backdoor:EC2/C&CActivity.B!DNS',
    severity: 8,
    count: 1,
    sample: false,
    remoteIps: ['198.51.100.7'],
    requestedBy: 'guardduty',
    reason: 'Backdoor:EC2/C&CActivity.B!DNS',
    receivedAt: '2026-11-27T20:10:02.000Z',
  },
};
