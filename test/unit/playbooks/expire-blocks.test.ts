import { DeleteNetworkAclEntryCommand, DescribeNetworkAclsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { NetworkBlockError } from '../../../functions/core/errors.js';
import { expireBlocks } from '../../../functions/playbooks/expire-blocks/expire-blocks.js';
import { defaultAcl, MemoryCases, openBlockCase } from '../../support/playbooks-fixtures.js';

const ec2Mock = mockClient(EC2Client);
const snsMock = mockClient(SNSClient);

const vpcId = 'vpc-0a1b2c3d4e5f60718';
const aclA = 'acl-0aaaaaaaaaaaaaaa1';
const cidr = '203.0.113.7/32';
const caseId = '20261127T201003Z-block-3fa9c2d1-07be';
const where = { accountId: '123456789012', region: 'us-east-1', vpcId };
const entriesFor = (range: string) => [
  { networkAclId: aclA, ruleNumber: 99, egress: false, cidr: range },
  { networkAclId: aclA, ruleNumber: 99, egress: true, cidr: range },
];
const openBlock = (cases: MemoryCases, expiresAt?: string, id = caseId, range = cidr) =>
  openBlockCase(cases, { caseId: id, ...where, cidr: range, entries: entriesFor(range), expiresAt });

beforeEach(() => {
  ec2Mock.reset();
  snsMock.reset();
  ec2Mock.on(DescribeNetworkAclsCommand).resolves({
    NetworkAcls: [
      defaultAcl(
        aclA,
        ['subnet-a'],
        [
          ...[false, true].map((Egress) => ({
            RuleNumber: 99,
            Egress,
            Protocol: '-1',
            RuleAction: 'deny' as const,
            CidrBlock: cidr,
          })),
        ],
      ),
    ],
  });
  ec2Mock.on(DeleteNetworkAclEntryCommand).resolves({ $metadata: { requestId: 'req-delete' } });
  snsMock.on(PublishCommand).resolves({ MessageId: 'm-1' });
});

describe('expireBlocks', () => {
  const now = new Date('2026-11-28T20:15:00.000Z');
  const expireDeps = (cases: MemoryCases) => ({
    ec2For: () => new EC2Client({}),
    cases,
    recorder: cases.recorder,
    sns: new SNSClient({}),
    topicArn: 'arn:aws:sns:us-east-1:123456789012:cordon-alerts',
    now: () => now,
  });

  it('takes out blocks whose TTL has passed and leaves the others', async () => {
    const cases = new MemoryCases();
    await openBlock(cases, '2026-11-28T20:10:03.000Z');
    const later = '20261127T201003Z-block-0000beef-0001';
    await openBlock(cases, '2026-11-29T20:10:03.000Z', later, '198.51.100.9/32');
    const result = await expireBlocks(expireDeps(cases));
    expect(result.expired.map((r) => r.caseId)).toEqual([caseId]);
    expect(cases.items.get(caseId)).toMatchObject({ status: 'released' });
    expect(cases.items.get(later)).toMatchObject({ status: 'open' });
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 2);
  });

  it('tells humans which blocks lapsed', async () => {
    const cases = new MemoryCases();
    await openBlock(cases, '2026-11-28T20:10:03.000Z');
    await expireBlocks(expireDeps(cases));
    expect(snsMock).toHaveReceivedCommandWith(PublishCommand, {
      Subject: '[Cordon] BLOCKS EXPIRED: 1 released',
    });
  });

  it('publishes nothing and deletes nothing when nothing is due', async () => {
    const cases = new MemoryCases();
    await openBlock(cases, '2026-11-30T00:00:00.000Z');
    await expireBlocks(expireDeps(cases));
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 0);
  });

  it('drops the expiry of a block released by hand before it was due', async () => {
    const cases = new MemoryCases();
    await openBlock(cases, '2026-11-28T20:10:03.000Z');
    await cases.setStatus(caseId, 'released');
    await expireBlocks(expireDeps(cases));
    expect(cases.dueItems.size).toBe(0);
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 0);
  });

  it('keeps a block due and fails by name when it cannot be taken out', async () => {
    ec2Mock
      .on(DeleteNetworkAclEntryCommand)
      .rejects(Object.assign(new Error('denied'), { name: 'UnauthorizedOperation' }));
    const cases = new MemoryCases();
    await openBlock(cases, '2026-11-28T20:10:03.000Z');
    await expect(expireBlocks(expireDeps(cases))).rejects.toBeInstanceOf(NetworkBlockError);
    expect(cases.dueItems.size).toBe(1);
    expect(snsMock).toHaveReceivedCommandWith(PublishCommand, {
      Subject: '[Cordon] BLOCK EXPIRY FAILED: 0 released',
    });
  });
});
