import { describe, expect, it } from 'vitest';
import {
  type AclEntry,
  type AclView,
  aclView,
  cidrContains,
  hostCidr,
  isPublicRange,
  parseCidr,
  planDenies,
  planRemoval,
} from '../../../functions/core/nacl.js';

const acl = 'acl-0123456789abcdef0';

function entry(ruleNumber: number, egress: boolean, action: 'allow' | 'deny', cidr: string): AclEntry {
  const parsed = parseCidr(cidr);
  if (!parsed) throw new Error(`bad test CIDR ${cidr}`);
  return { ruleNumber, egress, action, protocol: '-1', cidr: parsed.cidr, family: parsed.family };
}

/** A default ACL as AWS shows it in a VPC with IPv6: allow 100/101, deny `*` for each family. */
function defaultAcl(extra: AclEntry[] = []): AclView {
  const both = [false, true].flatMap((egress) => [
    entry(100, egress, 'allow', '0.0.0.0/0'),
    entry(101, egress, 'allow', '::/0'),
    entry(32767, egress, 'deny', '0.0.0.0/0'),
    entry(32768, egress, 'deny', '::/0'),
  ]);
  return { networkAclId: acl, entries: [...both, ...extra] };
}

describe('parseCidr', () => {
  it('clears host bits the way EC2 stores a range', () => {
    expect(parseCidr('100.68.0.18/18')?.cidr).toBe('100.68.0.0/18');
  });

  it('writes IPv6 in RFC 5952 form whatever form it was given in', () => {
    expect(parseCidr('2001:0DB8:0000:0000:0000:0000:0000:0001/128')?.cidr).toBe('2001:db8::1/128');
    expect(parseCidr('2001:db8:0:0:1:0:0:1/128')?.cidr).toBe('2001:db8::1:0:0:1/128');
    expect(parseCidr('::ffff:198.51.100.7/128')?.cidr).toBe('::ffff:c633:6407/128');
  });

  it('treats a bare address as a single-address range', () => {
    expect(parseCidr('198.51.100.7')).toMatchObject({ cidr: '198.51.100.7/32', prefix: 32, family: 'ipv4' });
    expect(hostCidr('2001:db8::7')?.cidr).toBe('2001:db8::7/128');
  });

  it.each([
    '256.1.1.1/32',
    '10.0.0.1/33',
    '01.2.3.4/32',
    '2001:db8::1::2/64',
    '2001:db8::/129',
    '1.2.3.4/8/9',
    'not-an-address',
    '',
  ])('refuses %j', (text) => {
    expect(parseCidr(text)).toBeUndefined();
  });

  it('knows which ranges hold which', () => {
    const wide = parseCidr('203.0.113.0/24');
    const narrow = parseCidr('203.0.113.9/32');
    if (!wide || !narrow) throw new Error('unparsed');
    expect(cidrContains(wide, narrow)).toBe(true);
    expect(cidrContains(narrow, wide)).toBe(false);
  });
});

describe('isPublicRange', () => {
  it.each([
    '10.1.2.3/32',
    '172.20.0.0/16',
    '192.168.1.1/32',
    '100.64.1.1/32',
    '127.0.0.1/32',
    'fd00::1/128',
    'fe80::1/128',
  ])('says %s is not an outside attacker', (cidr) => {
    expect(isPublicRange(parseCidr(cidr) as NonNullable<ReturnType<typeof parseCidr>>)).toBe(false);
  });

  it('accepts public unicast addresses, documentation ranges included', () => {
    for (const cidr of ['203.0.113.7/32', '198.51.100.0/32', '2001:db8::7/128', '8.8.8.8/32']) {
      expect(isPublicRange(parseCidr(cidr) as NonNullable<ReturnType<typeof parseCidr>>), cidr).toBe(true);
    }
  });
});

describe('planDenies', () => {
  it('puts an IPv4 deny just ahead of the first allow, in both directions', () => {
    const plan = planDenies(defaultAcl(), ['203.0.113.7/32'], { quota: 20 });
    expect(plan).toEqual([
      { kind: 'add', entry: { networkAclId: acl, ruleNumber: 99, egress: false, cidr: '203.0.113.7/32' } },
      { kind: 'add', entry: { networkAclId: acl, ruleNumber: 99, egress: true, cidr: '203.0.113.7/32' } },
    ]);
  });

  it('skips numbers already taken below the first allow', () => {
    const plan = planDenies(defaultAcl([entry(99, false, 'deny', '192.0.2.0/24')]), ['203.0.113.7/32'], {
      quota: 20,
    });
    expect(plan[0]).toMatchObject({ kind: 'add', entry: { ruleNumber: 98, egress: false } });
    expect(plan[1]).toMatchObject({ kind: 'add', entry: { ruleNumber: 99, egress: true } });
  });

  it('denies an IPv6 range with an IPv6 entry numbered in the same space as the IPv4 rules', () => {
    const plan = planDenies(defaultAcl(), ['2001:DB8::7/128'], { quota: 20 });
    expect(plan[0]).toEqual({
      kind: 'add',
      entry: { networkAclId: acl, ruleNumber: 99, egress: false, cidr: '2001:db8::7/128' },
    });
  });

  it('adds nothing when the entries it added before are still in force', () => {
    const owned = [
      { networkAclId: acl, ruleNumber: 99, egress: false, cidr: '203.0.113.7/32' },
      { networkAclId: acl, ruleNumber: 99, egress: true, cidr: '203.0.113.7/32' },
    ];
    const view = defaultAcl([
      entry(99, false, 'deny', '203.0.113.7/32'),
      entry(99, true, 'deny', '203.0.113.7/32'),
    ]);
    const plan = planDenies(view, ['203.0.113.7/32'], { quota: 20, owned });
    expect(plan.map((p) => p.kind)).toEqual(['present', 'present']);
    expect(plan.every((p) => p.kind === 'present' && p.owner === 'self')).toBe(true);
  });

  it("adds an entry of its own next to someone else's equivalent deny unless told to reuse it", () => {
    const view = defaultAcl([entry(50, false, 'deny', '203.0.113.7/32')]);
    const own = planDenies(view, ['203.0.113.7/32'], { quota: 20 });
    const reuse = planDenies(view, ['203.0.113.7/32'], { quota: 20, reuseOthers: true });
    expect(own[0]).toMatchObject({ kind: 'add', entry: { ruleNumber: 99, egress: false } });
    expect(reuse[0]).toEqual({
      kind: 'present',
      owner: 'other',
      entry: { networkAclId: acl, ruleNumber: 50, egress: false, cidr: '203.0.113.7/32' },
    });
  });

  it('does not count a deny behind an allow as in force', () => {
    const view = defaultAcl([entry(200, false, 'deny', '203.0.113.7/32')]);
    const plan = planDenies(view, ['203.0.113.7/32'], { quota: 20, reuseOthers: true });
    expect(plan[0]).toMatchObject({ kind: 'add', entry: { ruleNumber: 99 } });
  });

  it('refuses to pass the quota of a family, counting its default deny rule', () => {
    // 18 IPv4 inbound entries + allow 100 + deny * = 20: the quota of 20 is full for IPv4 only.
    const filler = Array.from({ length: 18 }, (_, i) => entry(10 + i, false, 'deny', `192.0.2.${i}/32`));
    const plan = planDenies(defaultAcl(filler), ['203.0.113.7/32', '2001:db8::7/128'], { quota: 20 });
    expect(plan[0]).toMatchObject({ kind: 'skip', reason: 'quota', egress: false, cidr: '203.0.113.7/32' });
    expect(plan[1]).toMatchObject({ kind: 'add', entry: { egress: false, cidr: '2001:db8::7/128' } });
  });

  it('counts the default deny against the quota even when the ACL listing omits it', () => {
    const view: AclView = {
      networkAclId: acl,
      entries: Array.from({ length: 19 }, (_, i) => entry(10 + i, false, 'allow', `192.0.2.${i}/32`)),
    };
    const plan = planDenies(view, ['203.0.113.7/32'], { quota: 20 });
    expect(plan[0]).toMatchObject({ kind: 'skip', reason: 'quota' });
  });

  it('says so when every number ahead of the first allow is taken', () => {
    const view = defaultAcl([entry(1, false, 'allow', '192.0.2.0/24')]);
    const plan = planDenies(view, ['203.0.113.7/32'], { quota: 20 });
    expect(plan[0]).toMatchObject({ kind: 'skip', reason: 'no-free-number', egress: false });
    expect(plan[1]).toMatchObject({ kind: 'add', entry: { egress: true, ruleNumber: 99 } });
  });

  it('places a deny in an ACL with no allow at all just below the default rules', () => {
    const view: AclView = { networkAclId: acl, entries: [entry(32767, false, 'deny', '0.0.0.0/0')] };
    const plan = planDenies(view, ['203.0.113.7/32'], { quota: 20 });
    expect(plan[0]).toMatchObject({ kind: 'add', entry: { ruleNumber: 32766 } });
  });

  it('gives every range of one call its own number', () => {
    const plan = planDenies(defaultAcl(), ['203.0.113.7/32', '203.0.113.8/32'], { quota: 20 });
    const inbound = plan.filter((p) => p.kind === 'add' && !p.entry.egress);
    expect(inbound.map((p) => (p.kind === 'add' ? p.entry.ruleNumber : 0))).toEqual([99, 98]);
  });
});

describe('planRemoval', () => {
  it('removes only entries still exactly as added, and leaves a reused number alone', () => {
    const added = [
      { networkAclId: acl, ruleNumber: 99, egress: false, cidr: '203.0.113.7/32' },
      { networkAclId: acl, ruleNumber: 98, egress: false, cidr: '203.0.113.7/32' },
      { networkAclId: acl, ruleNumber: 99, egress: true, cidr: '203.0.113.7/32' },
    ];
    const view = defaultAcl([
      entry(99, false, 'deny', '203.0.113.7/32'),
      entry(99, true, 'allow', '203.0.113.7/32'),
    ]);
    expect(planRemoval(view, added)).toEqual({
      remove: [added[0]],
      absent: [added[1]],
      changed: [added[2]],
    });
  });
});

describe('aclView', () => {
  it('reads the entries DescribeNetworkAcls returns, IPv6 included', () => {
    const view = aclView({
      NetworkAclId: acl,
      Entries: [
        {
          RuleNumber: 99,
          Egress: false,
          Protocol: '-1',
          RuleAction: 'deny',
          Ipv6CidrBlock: '2001:DB8::7/128',
        },
        { RuleNumber: 100, Egress: true, Protocol: '6', RuleAction: 'allow', CidrBlock: '0.0.0.0/0' },
      ],
    });
    expect(view.entries).toEqual([
      {
        ruleNumber: 99,
        egress: false,
        action: 'deny',
        protocol: '-1',
        cidr: '2001:db8::7/128',
        family: 'ipv6',
      },
      { ruleNumber: 100, egress: true, action: 'allow', protocol: '6', cidr: '0.0.0.0/0', family: 'ipv4' },
    ]);
  });
});
