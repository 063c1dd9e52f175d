import { beforeAll, describe, expect, inject, it } from 'vitest';
import { type BlockPlaybookReport, runBlockIpPlaybook } from '../../scripts/playbooks/block-ip.js';

/**
 * The IP-range blocking playbook against the emulated account: the real handlers, moto's network
 * ACLs. One run (block, block again, block IPv6 with a TTL, unblock, expire) and what it left behind.
 */
const endpoint = inject('motoEndpoint');
let report: BlockPlaybookReport;

beforeAll(async () => {
  report = await runBlockIpPlaybook({ endpoint });
}, 120_000);

describe('blocking a range on the emulated account', () => {
  it('adds a deny, inbound and outbound, in every subnet ACL of the VPC, ahead of the allows', () => {
    expect(report.first.decision).toBe('blocked');
    const expected = report.network.aclIds.flatMap((networkAclId) =>
      [false, true].map((egress) => ({
        networkAclId,
        ruleNumber: 99,
        egress,
        action: 'deny',
        cidr: '203.0.113.7/32',
      })),
    );
    expect(report.denies.afterBlock).toHaveLength(4);
    expect(report.denies.afterBlock).toEqual(expect.arrayContaining(expected));
  });

  it('adds nothing when the same range is blocked again', () => {
    expect(report.again).toMatchObject({ decision: 'unchanged', caseId: report.first.caseId });
    expect(report.denies.afterAgain).toEqual(report.denies.afterBlock);
  });

  it('blocks an IPv6 range with IPv6 entries at the next free number', () => {
    expect(report.ipv6.decision).toBe('blocked');
    expect(report.ipv6.added).toHaveLength(4);
    expect(report.ipv6.added?.every((e) => e.cidr === '2001:db8::7/128' && e.ruleNumber === 98)).toBe(true);
  });

  it('takes out exactly the entries of the unblocked range and nothing else', () => {
    expect(report.unblocked).toMatchObject({ status: 'released', leftAlone: [], failed: [] });
    expect(report.unblocked.removed).toHaveLength(4);
    expect(report.denies.afterUnblock.map((e) => e.cidr)).toEqual(Array(4).fill('2001:db8::7/128'));
  });

  it('lets the expiry run take out the block whose TTL passed', () => {
    expect(report.expired.expired.map((e) => [e.cidr, e.status])).toEqual([['2001:db8::7/128', 'released']]);
    expect(report.denies.afterExpiry).toEqual([]);
  });
});
