import {
  CreateNetworkAclEntryCommand,
  DeleteNetworkAclEntryCommand,
  DescribeNetworkAclsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { CaseNotFoundError, NetworkBlockError } from '../../../functions/core/errors.js';
import { unblockIp } from '../../../functions/playbooks/unblock-ip/unblock-ip.js';
import { defaultAcl, MemoryCases, openBlockCase } from '../../support/playbooks-fixtures.js';

const ec2Mock = mockClient(EC2Client);

const vpcId = 'vpc-0a1b2c3d4e5f60718';
const aclA = 'acl-0aaaaaaaaaaaaaaa1';
const cidr = '203.0.113.7/32';
const caseId = '20261127T201003Z-block-3fa9c2d1-07be';
const where = { accountId: '123456789012', region: 'us-east-1', vpcId, cidr };
const entries = [
  { networkAclId: aclA, ruleNumber: 99, egress: false, cidr },
  { networkAclId: aclA, ruleNumber: 99, egress: true, cidr },
];
const denyEntries = [false, true].map((Egress) => ({
  RuleNumber: 99,
  Egress,
  Protocol: '-1',
  RuleAction: 'deny' as const,
  CidrBlock: cidr,
}));

const openBlock = (cases: MemoryCases, expiresAt?: string, id = caseId, range = cidr) =>
  openBlockCase(cases, {
    caseId: id,
    ...where,
    cidr: range,
    entries: entries.map((e) => ({ ...e, cidr: range })),
    expiresAt,
  });

function deps(cases: MemoryCases) {
  return {
    ec2For: () => new EC2Client({}),
    cases,
    recorder: cases.recorder,
    home: { accountId: '123456789012', region: 'us-east-1' },
  };
}

beforeEach(() => {
  ec2Mock.reset();
  ec2Mock
    .on(DescribeNetworkAclsCommand)
    .resolves({ NetworkAcls: [defaultAcl(aclA, ['subnet-a'], denyEntries)] });
  ec2Mock.on(DeleteNetworkAclEntryCommand).resolves({ $metadata: { requestId: 'req-delete' } });
});

describe('unblockIp', () => {
  it('deletes exactly the entries the block added, by number and direction', async () => {
    const cases = new MemoryCases();
    await openBlock(cases);
    const result = await unblockIp({ caseId, requestedBy: 'bob@example.com' }, deps(cases));
    expect(result.status).toBe('released');
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 2);
    expect(ec2Mock).toHaveReceivedCommandWith(DeleteNetworkAclEntryCommand, {
      NetworkAclId: aclA,
      RuleNumber: 99,
      Egress: false,
    });
    expect(ec2Mock).toHaveReceivedCommandWith(DeleteNetworkAclEntryCommand, {
      NetworkAclId: aclA,
      RuleNumber: 99,
      Egress: true,
    });
    expect(ec2Mock).toHaveReceivedCommandTimes(CreateNetworkAclEntryCommand, 0);
  });

  it('closes the case, frees the range and drops its expiry', async () => {
    const cases = new MemoryCases();
    await openBlock(cases, '2026-11-28T20:10:03.000Z');
    await unblockIp({ caseId, requestedBy: 'bob@example.com', reason: 'false positive' }, deps(cases));
    expect(cases.items.get(caseId)).toMatchObject({ status: 'released' });
    expect(cases.locks.size).toBe(0);
    expect(cases.dueItems.size).toBe(0);
    expect(cases.events.find((e) => e.action === 'unblock requested')).toMatchObject({
      detail: 'bob@example.com: false positive',
    });
  });

  it('finds the open block by range and VPC', async () => {
    const cases = new MemoryCases();
    await openBlock(cases);
    const result = await unblockIp(
      { cidr: '203.0.113.7', vpcId, requestedBy: 'bob@example.com' },
      deps(cases),
    );
    expect(result.caseId).toBe(caseId);
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 2);
  });

  it('says so when the range has no open block, deleting nothing', async () => {
    const cases = new MemoryCases();
    await expect(
      unblockIp({ cidr, vpcId, requestedBy: 'bob@example.com' }, deps(cases)),
    ).rejects.toBeInstanceOf(CaseNotFoundError);
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 0);
  });

  it('leaves alone a number someone reused for another rule, and reports it', async () => {
    ec2Mock.on(DescribeNetworkAclsCommand).resolves({
      NetworkAcls: [
        defaultAcl(
          aclA,
          ['subnet-a'],
          [
            ...denyEntries.slice(0, 1),
            {
              RuleNumber: 99,
              Egress: true,
              Protocol: '6',
              RuleAction: 'allow',
              CidrBlock: '198.51.100.0/24',
            },
          ],
        ),
      ],
    });
    const cases = new MemoryCases();
    await openBlock(cases);
    const result = await unblockIp({ caseId, requestedBy: 'bob@example.com' }, deps(cases));
    expect(result.leftAlone).toEqual([entries[1]]);
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 1);
    expect(ec2Mock).toHaveReceivedCommandWith(DeleteNetworkAclEntryCommand, {
      NetworkAclId: aclA,
      RuleNumber: 99,
      Egress: false,
    });
  });

  it('treats entries already gone, or an ACL deleted since, as nothing to do', async () => {
    ec2Mock
      .on(DescribeNetworkAclsCommand)
      .rejects(Object.assign(new Error('gone'), { name: 'InvalidNetworkAclID.NotFound' }));
    const cases = new MemoryCases();
    await openBlock(cases);
    const result = await unblockIp({ caseId, requestedBy: 'bob@example.com' }, deps(cases));
    expect(result).toMatchObject({ status: 'released', absent: entries });
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 0);
  });

  it('changes nothing for a block already released', async () => {
    const cases = new MemoryCases();
    await openBlock(cases);
    await cases.setStatus(caseId, 'released');
    const result = await unblockIp({ caseId, requestedBy: 'bob@example.com' }, deps(cases));
    expect(result.status).toBe('already-released');
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeNetworkAclsCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 0);
  });

  it('keeps the case open, with the entries it could not delete, when a deletion fails', async () => {
    ec2Mock
      .on(DeleteNetworkAclEntryCommand, { Egress: true })
      .rejects(Object.assign(new Error('denied'), { name: 'UnauthorizedOperation' }));
    const cases = new MemoryCases();
    await openBlock(cases);
    await expect(unblockIp({ caseId, requestedBy: 'bob@example.com' }, deps(cases))).rejects.toBeInstanceOf(
      NetworkBlockError,
    );
    expect(cases.items.get(caseId)).toMatchObject({ status: 'open' });
    expect(cases.changesOf(caseId, 'block-ip')).toEqual({ entries: [entries[1]] });
    expect(cases.locks.size).toBe(1);
  });
});
