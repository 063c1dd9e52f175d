import { describe, expect, it } from 'vitest';
import type { CaseRecord } from '../../../functions/core/cases.js';
import { changeKeys } from '../../../functions/core/containment.js';
import { mayHoldContainment, previousContainment } from '../../../functions/core/takeover.js';
import { sampleCase } from '../../support/core-fakes.js';

const record = (
  caseId: string,
  openedAt: string,
  status: CaseRecord['status'],
  changes: CaseRecord['changes'],
): CaseRecord =>
  ({ ...sampleCase, caseId, openedAt, status, updatedAt: openedAt, findingIds: [], changes }) as CaseRecord;

const isolated = { [changeKeys.isolate]: { enis: [], groups: [], elasticIps: [], naclEntries: [] } };
const marked = { [changeKeys.protect]: { tags: [{ key: 'cordon:case-id', original: null }] } };
const failedA = record(
  '20261201T100000Z-i-0123456789abcdef0-000a',
  '2026-12-01T10:00:00.000Z',
  'failed',
  isolated,
);
const evidenceB = record(
  '20261202T100000Z-i-0123456789abcdef0-000b',
  '2026-12-02T10:00:00.000Z',
  'evidence-only',
  marked,
);
const own = { caseId: '20261203T100000Z-i-0123456789abcdef0-000c', openedAt: '2026-12-03T10:00:00.000Z' };
const cases = { get: async (id: string) => [failedA, evidenceB].find((r) => r.caseId === id) };

describe('taking over an earlier case', () => {
  it('passes over a case that only marked the instance for its evidence, to the one that contained it', async () => {
    expect(await previousContainment(cases, own, [evidenceB, failedA])).toBe(failedA);
  });

  it('takes over nothing behind a released case', async () => {
    const released = { ...evidenceB, status: 'released' as const, changes: isolated };
    expect(await previousContainment(cases, own, [released, failedA])).toBeUndefined();
  });

  it('never counts an evidence-only or released case as holding containment', () => {
    expect(mayHoldContainment({ status: 'evidence-only' })).toBe(false);
    expect(mayHoldContainment({ status: 'released' })).toBe(false);
    expect(mayHoldContainment({ status: 'partial' })).toBe(true);
  });
});
