import {
  CreateNetworkAclEntryCommand,
  DeleteNetworkAclEntryCommand,
  DescribeNetworkAclsCommand,
  DescribeVpcsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  type BlockDeps,
  blockExpiryQueue,
  blockIp,
  blockLock,
  blockRange,
} from '../../../functions/core/blocks.js';
import { NetworkBlockError } from '../../../functions/core/errors.js';
import { readRealEvent } from '../../support/fixtures.js';
import { defaultAcl, MemoryCases } from '../../support/playbooks-fixtures.js';

const ec2Mock = mockClient(EC2Client);
const snsMock = mockClient(SNSClient);

const vpcId = 'vpc-0a1b2c3d4e5f60718';
const aclA = 'acl-0aaaaaaaaaaaaaaa1';
const aclB = 'acl-0bbbbbbbbbbbbbbb2';
const now = new Date('2026-11-27T20:10:03.000Z');
const config: BlockDeps['config'] = {
  CORDON_ACCOUNT_ID: '123456789012',
  AWS_REGION: 'us-east-1',
  NACL_RULE_QUOTA: 20,
  FORENSIC_CIDR: '',
  AUTO_BLOCK_FINDINGS: true,
  AUTO_BLOCK_TTL: '24h',
  ACCEPT_SAMPLE_FINDINGS: true,
  ALERT_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:cordon-alerts',
};

function deps(overrides: Partial<BlockDeps['config']> = {}) {
  const cases = new MemoryCases();
  const d: BlockDeps = {
    ec2For: () => new EC2Client({}),
    cases,
    recorder: cases.recorder,
    sns: new SNSClient({}),
    config: { ...config, ...overrides },
    now: () => now,
  };
  return { cases, d };
}

const request = {
  cidr: '203.0.113.7/32',
  vpcId,
  reason: 'scanner hitting the web tier',
  requestedBy: 'alice@example.com',
};

function expectNoMutation() {
  expect(ec2Mock).toHaveReceivedCommandTimes(CreateNetworkAclEntryCommand, 0);
  expect(ec2Mock).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 0);
}

beforeEach(() => {
  ec2Mock.reset();
  snsMock.reset();
  ec2Mock.on(DescribeVpcsCommand).resolves({
    Vpcs: [
      {
        VpcId: vpcId,
        CidrBlock: '10.0.0.0/16',
        CidrBlockAssociationSet: [{ CidrBlock: '10.0.0.0/16' }],
        Ipv6CidrBlockAssociationSet: [{ Ipv6CidrBlock: '2600:1f18:abcd:1200::/56' }],
      },
    ],
  });
  ec2Mock.on(DescribeNetworkAclsCommand).resolves({
    NetworkAcls: [
      defaultAcl(aclA, ['subnet-0aaaaaaaaaaaaaaa1']),
      defaultAcl(aclB, ['subnet-0bbbbbbbbbbbbbbb2']),
      // An ACL no subnet uses filters nothing: it is left alone.
      { ...defaultAcl('acl-0ccccccccccccccc3', []), Associations: [] },
    ],
  });
  ec2Mock.on(CreateNetworkAclEntryCommand).resolves({ $metadata: { requestId: 'req-create' } });
  snsMock.on(PublishCommand).resolves({ MessageId: 'm-1' });
});

describe('blockRange', () => {
  it('denies an IPv4 range inbound and outbound in every subnet ACL, just ahead of the first allow', async () => {
    const { d } = deps();
    const result = await blockRange(request, d);
    expect(result.decision).toBe('blocked');
    expect(ec2Mock).toHaveReceivedCommandTimes(CreateNetworkAclEntryCommand, 4);
    for (const NetworkAclId of [aclA, aclB]) {
      for (const Egress of [false, true]) {
        expect(ec2Mock).toHaveReceivedCommandWith(CreateNetworkAclEntryCommand, {
          NetworkAclId,
          RuleNumber: 99,
          Egress,
          Protocol: '-1',
          RuleAction: 'deny',
          CidrBlock: '203.0.113.7/32',
        });
      }
    }
  });

  it('denies an IPv6 range with IPv6 entries, in the canonical form EC2 stores', async () => {
    const { d } = deps();
    const result = await blockRange({ ...request, cidr: '2001:DB8:0:0::7/128' }, d);
    expect(result.cidr).toBe('2001:db8::7/128');
    expect(ec2Mock).toHaveReceivedCommandWith(CreateNetworkAclEntryCommand, {
      NetworkAclId: aclA,
      RuleNumber: 99,
      Egress: false,
      Protocol: '-1',
      RuleAction: 'deny',
      Ipv6CidrBlock: '2001:db8::7/128',
    });
  });

  it('opens a block case that records every entry, its lock and its expiry', async () => {
    const { d, cases } = deps();
    const result = await blockRange({ ...request, ttl: '24h' }, d);
    const record = (await cases.get(result.caseId as string)) as unknown as Record<string, unknown>;
    expect(result.caseId).toMatch(/^20261127T201003Z-block-[0-9a-f]{8}-[0-9a-f]{4}$/);
    expect(record).toMatchObject({
      kind: 'block',
      vpcId,
      cidr: '203.0.113.7/32',
      status: 'open',
      outcome: 'completed',
    });
    expect((record.changes as Record<string, { entries: unknown[]; expiresAt: string }>)['block-ip']).toEqual(
      {
        entries: [
          { networkAclId: aclA, ruleNumber: 99, egress: false, cidr: '203.0.113.7/32' },
          { networkAclId: aclA, ruleNumber: 99, egress: true, cidr: '203.0.113.7/32' },
          { networkAclId: aclB, ruleNumber: 99, egress: false, cidr: '203.0.113.7/32' },
          { networkAclId: aclB, ruleNumber: 99, egress: true, cidr: '203.0.113.7/32' },
        ],
        expiresAt: '2026-11-28T20:10:03.000Z',
      },
    );
    expect(
      cases.locks.get(
        blockLock({ accountId: '123456789012', region: 'us-east-1', vpcId, cidr: '203.0.113.7/32' }),
      ),
    ).toBe(result.caseId);
    expect([...cases.dueItems.values()]).toEqual([
      { queue: blockExpiryQueue, caseId: result.caseId, dueAt: '2026-11-28T20:10:03.000Z' },
    ]);
  });

  it('records every entry it creates on the timeline with AWS request id', async () => {
    const { d, cases } = deps();
    await blockRange(request, d);
    const creates = cases.events.filter((e) => e.action.startsWith('ec2:CreateNetworkAclEntry'));
    expect(creates).toHaveLength(4);
    expect(creates[0]).toMatchObject({ status: 'ok', requestId: 'req-create', target: `${aclA}#99` });
  });

  it('adds nothing the second time the same range is blocked in the same VPC', async () => {
    const { d } = deps();
    const first = await blockRange(request, d);
    const deny = () =>
      [false, true].map((Egress) => ({
        RuleNumber: 99,
        Egress,
        Protocol: '-1',
        RuleAction: 'deny' as const,
        CidrBlock: '203.0.113.7/32',
      }));
    ec2Mock.on(DescribeNetworkAclsCommand).resolves({
      NetworkAcls: [defaultAcl(aclA, ['subnet-a'], deny()), defaultAcl(aclB, ['subnet-b'], deny())],
    });
    ec2Mock.resetHistory();
    const second = await blockRange(request, d);
    expect(second).toMatchObject({ decision: 'unchanged', caseId: first.caseId });
    expect(second.present).toHaveLength(4);
    expectNoMutation();
  });

  it('extends the expiry of an open block when it is asked for again with a later one', async () => {
    const { d, cases } = deps();
    const first = await blockRange({ ...request, ttl: '1h' }, d);
    await blockRange({ ...request, ttl: '7d' }, d);
    expect([...cases.dueItems.values()]).toEqual([
      { queue: blockExpiryQueue, caseId: first.caseId, dueAt: '2026-12-04T20:10:03.000Z' },
    ]);
  });

  it('makes a block permanent when it is asked for again without a TTL', async () => {
    const { d, cases } = deps();
    await blockRange({ ...request, ttl: '1h' }, d);
    const again = await blockRange(request, d);
    expect(again.expiresAt).toBeUndefined();
    expect(cases.dueItems.size).toBe(0);
  });

  it('skips a direction whose IPv4 rules are at the quota and says the block is partial', async () => {
    const full = Array.from({ length: 18 }, (_, i) => ({
      RuleNumber: 10 + i,
      Egress: false,
      Protocol: '-1',
      RuleAction: 'deny' as const,
      CidrBlock: `192.0.2.${i}/32`,
    }));
    ec2Mock.on(DescribeNetworkAclsCommand).resolves({ NetworkAcls: [defaultAcl(aclA, ['subnet-a'], full)] });
    const { d } = deps();
    const result = await blockRange(request, d);
    expect(result.decision).toBe('partial');
    expect(result.skipped).toEqual([
      {
        networkAclId: aclA,
        egress: false,
        reason: `the inbound ipv4 rules of ${aclA} are at the quota of 20`,
      },
    ]);
    expect(ec2Mock).toHaveReceivedCommandTimes(CreateNetworkAclEntryCommand, 1);
    expect(ec2Mock).toHaveReceivedCommandWith(CreateNetworkAclEntryCommand, {
      NetworkAclId: aclA,
      Egress: true,
    });
  });

  it('reads the ACL again and takes the next free number when another writer took its number', async () => {
    ec2Mock.on(DescribeNetworkAclsCommand, { NetworkAclIds: [aclA] }).resolves({
      NetworkAcls: [
        defaultAcl(
          aclA,
          ['subnet-a'],
          [
            {
              RuleNumber: 99,
              Egress: false,
              Protocol: '6',
              RuleAction: 'deny',
              CidrBlock: '198.51.100.0/24',
            },
          ],
        ),
      ],
    });
    ec2Mock
      .on(CreateNetworkAclEntryCommand, { NetworkAclId: aclA, RuleNumber: 99, Egress: false })
      .rejectsOnce(Object.assign(new Error('taken'), { name: 'NetworkAclEntryAlreadyExists' }));
    const { d, cases } = deps();
    const result = await blockRange(request, d);
    expect(ec2Mock).toHaveReceivedCommandWith(CreateNetworkAclEntryCommand, {
      NetworkAclId: aclA,
      RuleNumber: 98,
      Egress: false,
      CidrBlock: '203.0.113.7/32',
    });
    const { entries } = cases.changesOf<{
      entries: { networkAclId: string; ruleNumber: number; egress: boolean }[];
    }>(result.caseId as string, 'block-ip');
    expect(entries.filter((e) => e.networkAclId === aclA && !e.egress).map((e) => e.ruleNumber)).toEqual([
      98,
    ]);
  });

  it("counts an entry a concurrent request for the same block just added as the block's own", async () => {
    const { d, cases } = deps();
    const first = await blockRange(request, d);
    // The second request read the ACLs before the first wrote: its numbers are taken when it writes.
    const taken = [false, true].map((Egress) => ({
      RuleNumber: 99,
      Egress,
      Protocol: '-1',
      RuleAction: 'deny' as const,
      CidrBlock: '203.0.113.7/32',
    }));
    ec2Mock.resetHistory();
    ec2Mock.on(DescribeNetworkAclsCommand).resolves({ NetworkAcls: [defaultAcl(aclA, ['subnet-a'])] });
    ec2Mock.on(DescribeNetworkAclsCommand, { NetworkAclIds: [aclA] }).resolves({
      NetworkAcls: [defaultAcl(aclA, ['subnet-a'], taken)],
    });
    ec2Mock
      .on(CreateNetworkAclEntryCommand)
      .rejects(Object.assign(new Error('taken'), { name: 'NetworkAclEntryAlreadyExists' }));
    const second = await blockRange(request, d);
    expect(second).toMatchObject({ caseId: first.caseId, decision: 'unchanged' });
    expect(ec2Mock).toHaveReceivedCommandTimes(CreateNetworkAclEntryCommand, 1);
    expect(cases.changesOf<{ entries: unknown[] }>(first.caseId as string, 'block-ip').entries).toHaveLength(
      4,
    );
  });

  it('publishes one message saying what was blocked, where, until when and by whom', async () => {
    const { d } = deps();
    await blockRange({ ...request, ttl: '24h' }, d);
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 1);
    const body = snsMock.commandCalls(PublishCommand)[0]?.args[0].input.Message ?? '';
    expect(snsMock).toHaveReceivedCommandWith(PublishCommand, {
      Subject: '[Cordon] BLOCKED: 203.0.113.7/32',
    });
    expect(body).toContain(`in ${vpcId} (123456789012 us-east-1)`);
    expect(body).toContain('Requested by: alice@example.com (manual)');
    expect(body).toContain('Expires: 2026-11-28T20:10:03.000Z');
  });

  it('fails by name, and frees the range for a new attempt, when no ACL could take the deny', async () => {
    ec2Mock
      .on(CreateNetworkAclEntryCommand)
      .rejects(Object.assign(new Error('denied'), { name: 'UnauthorizedOperation' }));
    const { d, cases } = deps();
    await expect(blockRange(request, d)).rejects.toBeInstanceOf(NetworkBlockError);
    expect(cases.locks.size).toBe(0);
    expect([...cases.items.values()][0]).toMatchObject({ status: 'failed' });
  });

  it.each([
    [{ cidr: '0.0.0.0/0' }, /^CIDR_TOO_BROAD/],
    [{ cidr: '2001:db8::/16' }, /^CIDR_TOO_BROAD/],
    [{ cidr: '10.0.3.0/24' }, /^CIDR_IN_VPC/],
    [{ cidr: '2600:1f18:abcd:1234::1/128' }, /^CIDR_IN_VPC/],
    [{ cidr: '203.0.113.300/32' }, /^CIDR_INVALID/],
    [{ ttl: '3y' }, /^TTL_INVALID/],
    [{ ttl: '366d' }, /^TTL_INVALID/],
  ])('refuses %j without a single mutating call', async (change, reason) => {
    const { d, cases } = deps();
    const result = await blockRange({ ...request, ...change }, d);
    expect(result.decision).toBe('refused');
    expect(result.reason).toMatch(reason);
    expectNoMutation();
    expect(cases.items.size).toBe(0);
  });

  it('refuses a range that holds the forensic workstation range', async () => {
    const { d } = deps({ FORENSIC_CIDR: '203.0.113.0/28' });
    const result = await blockRange(request, d);
    expect(result.reason).toMatch(/^CIDR_FORENSIC/);
    expectNoMutation();
  });

  it('refuses a VPC that does not exist', async () => {
    ec2Mock
      .on(DescribeVpcsCommand)
      .rejects(Object.assign(new Error('no such VPC'), { name: 'InvalidVpcID.NotFound' }));
    const { d } = deps();
    const result = await blockRange(request, d);
    expect(result.reason).toMatch(/^VPC_NOT_FOUND/);
    expectNoMutation();
  });
});

describe('blockIp', () => {
  it('refuses a request with a field it does not know, naming no value', async () => {
    const { d } = deps();
    const { blocks } = await blockIp({ ...request, vpcID: vpcId }, d);
    expect(blocks).toEqual([{ decision: 'refused', reason: 'MALFORMED: a field is not one a block takes' }]);
    expectNoMutation();
  });

  it('refuses a reason holding control characters', async () => {
    const { d } = deps();
    const { blocks } = await blockIp({ ...request, reason: 'ok\u001b[31m' }, d);
    expect(blocks[0]?.reason).toBe('MALFORMED: reason contains control characters');
    expectNoMutation();
  });

  it.each([
    ['a zero-width space', 'ok\u200bthen'],
    ['a right-to-left override', 'ok\u202egnp.exe'],
    ['a byte-order mark', 'ok\ufeffthen'],
  ])('refuses a reason holding %s, as cordon block-ip does', async (_what, reason) => {
    const { d } = deps();
    const { blocks } = await blockIp({ ...request, reason }, d);
    expect(blocks[0]?.reason).toBe('MALFORMED: reason contains control characters');
    expectNoMutation();
  });
});

describe('blocking from a finding', () => {
  const finding = () => {
    const event = structuredClone(readRealEvent('gd_eb_partial_sshbruteforce_sample.json')) as {
      detail: {
        resource: { instanceDetails: { networkInterfaces: { vpcId: string }[] } };
        service: Record<string, unknown>;
      };
    };
    for (const n of event.detail.resource.instanceDetails.networkInterfaces) n.vpcId = vpcId;
    return event as unknown as Record<string, unknown>;
  };

  it("blocks the brute-force attacker's address in the targeted instance's VPC for the configured TTL", async () => {
    const { d } = deps();
    const { blocks } = await blockIp(finding(), d);
    expect(blocks).toHaveLength(1);
    expect(blocks[0]).toMatchObject({
      decision: 'blocked',
      cidr: '198.51.100.0/32',
      vpcId,
      expiresAt: '2026-11-28T20:10:03.000Z',
    });
    expect(ec2Mock).toHaveReceivedCommandTimes(CreateNetworkAclEntryCommand, 4);
  });

  it('blocks nothing from findings unless AUTO_BLOCK_FINDINGS is on', async () => {
    const { d } = deps({ AUTO_BLOCK_FINDINGS: false });
    const { blocks } = await blockIp(finding(), d);
    expect(blocks[0]?.reason).toMatch(/^AUTO_BLOCK_DISABLED/);
    expectNoMutation();
  });

  it('blocks nothing when the instance is the attacker, since the remote address is then its victim', async () => {
    const event = finding();
    (event.detail as { service: Record<string, unknown> }).service.resourceRole = 'ACTOR';
    const { d } = deps();
    const { blocks } = await blockIp(event, d);
    expect(blocks[0]?.reason).toMatch(/^NOT_AN_ATTACKER/);
    expectNoMutation();
  });

  it('never blocks a private address automatically', async () => {
    const event = finding();
    const connection = (
      event.detail as {
        service: { action: { networkConnectionAction: { remoteIpDetails: Record<string, unknown> } } };
      }
    ).service.action.networkConnectionAction;
    connection.remoteIpDetails.ipAddressV4 = '10.0.9.9';
    const { d } = deps();
    const { blocks } = await blockIp(event, d);
    expect(blocks[0]?.reason).toMatch(/^ADDRESS_NOT_PUBLIC/);
    expectNoMutation();
  });

  it('refuses a sample finding outside test mode', async () => {
    const { d } = deps({ ACCEPT_SAMPLE_FINDINGS: false });
    const { blocks } = await blockIp(finding(), d);
    expect(blocks[0]?.reason).toMatch(/^SAMPLE_FINDING/);
    expectNoMutation();
  });

  it('refuses the finding as it came, whose VPC is a placeholder', async () => {
    const { d } = deps();
    const { blocks } = await blockIp(
      readRealEvent('gd_eb_partial_sshbruteforce_sample.json') as Record<string, unknown>,
      d,
    );
    expect(blocks[0]?.reason).toMatch(/^MALFORMED: the finding does not name exactly one valid VPC/);
    expectNoMutation();
  });
});
