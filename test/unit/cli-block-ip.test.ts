import type { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { GetTemplateCommand } from '@aws-sdk/client-cloudformation';
import {
  CreateNetworkAclEntryCommand,
  DeleteNetworkAclEntryCommand,
  DescribeNetworkAclsCommand,
  DescribeVpcsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { STSClient } from '@aws-sdk/client-sts';
import {
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { AssumeRoleError } from '../../functions/core/errors.js';
import { callerArn, cordonOnAws, deployed, mockDeployedStack } from '../support/cli-mocks.js';
import { defaultAcl } from '../support/playbooks-fixtures.js';

const ec2 = mockClient(EC2Client);
const sns = mockClient(SNSClient);
const ddb = mockClient(DynamoDBDocumentClient);
let cfn: AwsClientStub<CloudFormationClient>;
let sts: AwsClientStub<STSClient>;

const home = '111122223333'; // the account of deployed.AlertTopicArn
const vpcId = 'vpc-0a1b2c3d4e5f60718';
const aclA = 'acl-0aaaaaaaaaaaaaaa1';
const aclB = 'acl-0bbbbbbbbbbbbbbb2';
const blockCaseId = '20261127T201003Z-block-3fa9c2d1-07be';

/** The processed template as serverless deploys it: each function's environment holds the stage's settings. */
const template = {
  Resources: Object.fromEntries(
    ['block-ip', 'unblock-ip'].map((fn) => [
      `${fn}Function`,
      {
        Type: 'AWS::Lambda::Function',
        Properties: {
          FunctionName: `cordon-dev-${fn}`,
          Environment: {
            Variables: {
              CASES_TABLE: { Ref: 'CasesTable' },
              MEMBER_ROLE_NAME: 'CordonResponder',
              FORENSIC_CIDR: '198.51.100.0/28',
              NACL_RULE_QUOTA: '20',
            },
          },
        },
      },
    ]),
  ),
};

/** The Cases table, kept in memory: what the block writes, the unblock (and a failed block) reads back. */
let table: Map<string, Record<string, unknown>>;
const key = (k: { pk?: unknown; sk?: unknown }) => `${String(k.pk)}|${String(k.sk)}`;

function fakeTable(): void {
  table = new Map();
  ddb.on(TransactWriteCommand).callsFake(async (input: { TransactItems: Record<string, never>[] }) => {
    for (const t of input.TransactItems) {
      const put = t.Put as { Item: Record<string, unknown> } | undefined;
      const del = t.Delete as { Key: { pk: string; sk: string } } | undefined;
      if (put) table.set(key(put.Item), structuredClone(put.Item));
      if (del) table.delete(key(del.Key));
    }
    return {};
  });
  ddb.on(PutCommand).callsFake(async (input: { Item: Record<string, unknown> }) => {
    table.set(key(input.Item), structuredClone(input.Item));
    return {};
  });
  ddb
    .on(BatchWriteCommand)
    .callsFake(
      async (input: {
        RequestItems: Record<string, { PutRequest: { Item: Record<string, unknown> } }[]>;
      }) => {
        for (const requests of Object.values(input.RequestItems))
          for (const r of requests) table.set(key(r.PutRequest.Item), structuredClone(r.PutRequest.Item));
        return {};
      },
    );
  ddb.on(DeleteCommand).callsFake(async (input: { Key: { pk: string; sk: string } }) => {
    table.delete(key(input.Key));
    return {};
  });
  ddb.on(GetCommand).callsFake(async (input: { Key: { pk: string; sk: string } }) => {
    const item = table.get(key(input.Key));
    return item ? { Item: structuredClone(item) } : {};
  });
  ddb
    .on(UpdateCommand)
    .callsFake(
      async (input: {
        Key: { pk: string; sk: string };
        UpdateExpression: string;
        ExpressionAttributeNames?: Record<string, string>;
        ExpressionAttributeValues: Record<string, unknown>;
      }) => {
        const item = table.get(key(input.Key)) ?? { ...input.Key };
        const values = input.ExpressionAttributeValues;
        if (input.UpdateExpression.includes('changes.#step')) {
          const step = input.ExpressionAttributeNames?.['#step'] as string;
          item.changes = { ...((item.changes as object) ?? {}), [step]: values[':c'] };
        }
        if (input.UpdateExpression.includes('#s = :s')) item.status = values[':s'];
        table.set(key(input.Key), item);
        return {};
      },
    );
}

/** A block case as Block IP leaves it, with its lock. */
function storedBlock(entries: { networkAclId: string; ruleNumber: number; egress: boolean; cidr: string }[]) {
  const cidr = '203.0.113.0/24';
  table.set(key({ pk: `BLOCK#${home}#us-east-1#${vpcId}#${cidr}`, sk: 'OPEN' }), {
    pk: `BLOCK#${home}#us-east-1#${vpcId}#${cidr}`,
    sk: 'OPEN',
    caseId: blockCaseId,
  });
  table.set(key({ pk: `CASE#${blockCaseId}`, sk: 'CASE' }), {
    pk: `CASE#${blockCaseId}`,
    sk: 'CASE',
    caseId: blockCaseId,
    kind: 'block',
    accountId: home,
    region: 'us-east-1',
    vpcId,
    cidr,
    requestedBy: 'alice@example.com',
    reason: 'scanner',
    status: 'open',
    changes: { 'block-ip': { entries, expiresAt: '2026-11-28T20:10:03.000Z' } },
  });
}

const allAwsCalls = () => [cfn, sts, ec2, sns, ddb].reduce((n, stub) => n + stub.calls().length, 0);

beforeEach(() => {
  ec2.reset();
  sns.reset();
  ddb.reset();
  ({ cfn, sts } = mockDeployedStack());
  cfn.on(GetTemplateCommand).resolves({ TemplateBody: JSON.stringify(template) });
  fakeTable();
  ec2.on(DescribeVpcsCommand).resolves({ Vpcs: [{ VpcId: vpcId, CidrBlock: '10.60.0.0/16' }] });
  ec2.on(DescribeNetworkAclsCommand).resolves({
    NetworkAcls: [defaultAcl(aclA, ['subnet-a']), { ...defaultAcl(aclB, ['subnet-b']), IsDefault: false }],
  });
  ec2.on(CreateNetworkAclEntryCommand).resolves({ $metadata: { requestId: 'req-create' } });
  sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
});

describe('cordon block-ip and unblock: the command line is checked before any AWS call', () => {
  const vpc = ['--vpc', vpcId];
  const refusals: [string[], string][] = [
    [['block-ip', ...vpc], 'CIDR is missing'],
    [['block-ip', 'not-a-range', ...vpc], '"not-a-range" is not an IPv4 or IPv6 address range'],
    [['block-ip', '203.0.113.0/33', ...vpc], 'is not an IPv4 or IPv6 address range'],
    [['block-ip', '0.0.0.0/0', ...vpc], '0.0.0.0/0 is every IPv4 address: Cordon never blocks /0'],
    [['block-ip', '::/0', ...vpc], '::/0 is every IPv6 address: Cordon never blocks /0'],
    [
      ['block-ip', '10.0.0.0/7', ...vpc],
      '10.0.0.0/7 is too broad: Cordon blocks IPv4 ranges of /8 or narrower',
    ],
    [['block-ip', '2001:db8::/16', ...vpc], 'Cordon blocks IPv6 ranges of /24 or narrower'],
    [['block-ip', '203.0.113.0/24'], '--vpc is required'],
    [['block-ip', '203.0.113.0/24', '--vpc', 'vpc-123'], '--vpc is not a VPC id'],
    [['block-ip', '203.0.113.0/24', '--vpc', 'vpc-0a1b2c3d4e5f6071g'], '--vpc is not a VPC id'],
    [['block-ip', '203.0.113.0/24', '--vpc', 'sg-0a1b2c3d'], '--vpc is not a VPC id'],
    [['block-ip', '203.0.113.0/24', ...vpc, '--ttl', '24'], '--ttl is a number and m, h or d'],
    [['block-ip', '203.0.113.0/24', ...vpc, '--ttl', '1w'], '--ttl is a number and m, h or d'],
    [['block-ip', '203.0.113.0/24', ...vpc, '--ttl', '0h'], '--ttl is a number and m, h or d'],
    [['block-ip', '203.0.113.0/24', ...vpc, '--ttl', '366d'], 'at most 365d'],
    [['block-ip', '203.0.113.0/24', ...vpc, '--reason', '   '], '--reason is empty'],
    [['block-ip', '203.0.113.0/24', ...vpc, '--reason', 'x'.repeat(513)], '--reason is 513 characters long'],
    [['block-ip', '203.0.113.0/24', ...vpc, '--reason', 'red \u001b[31malert'], '--reason contains control'],
    [['block-ip', '203.0.113.0/24', ...vpc, '--reason', 'evil \u202egnp.exe'], '--reason contains control'],
    [['block-ip', '203.0.113.0/24', ...vpc, '--reason', 'two\nlines'], '--reason contains control'],
    [['block-ip', '203.0.113.0/24', ...vpc, '--account', '12345'], '--account is not a 12-digit account id'],
    [
      ['block-ip', '203.0.113.0/24', ...vpc, '--vpc-region', 'mars-north-1a'],
      '--vpc-region is not an AWS region',
    ],
    [['block-ip', '203.0.113.0/24', ...vpc, 'extra'], 'unexpected argument "extra"'],
    [['block-ip', '203.0.113.0/24', ...vpc, '--ttl'], "Option '--ttl'"],
    [['unblock'], 'CASE_ID or CIDR is missing'],
    [['unblock', 'garbage'], '"garbage" is not an IPv4 or IPv6 address range'],
    [['unblock', '203.0.113.0/24'], '--vpc is required'],
    [['unblock', '0.0.0.0/0', ...vpc], 'Cordon never blocks /0'],
    [['unblock', blockCaseId, ...vpc], '--vpc goes with a CIDR; a case id names its block'],
    [['unblock', blockCaseId, '--vpc-region', 'eu-west-1'], '--vpc-region goes with a CIDR'],
    [
      ['unblock', '20261127T201003Z-i-0123456789abcdef0-3fa9'],
      'is an instance case, not a block: cordon release',
    ],
    [['unblock', '20261127T201003Z-block-nothex-07be'], 'is not a block case id'],
    [['unblock', blockCaseId, '--reason', '\u0007'], '--reason contains control'],
  ];
  it.each(
    refusals.map(([args, message]) => [JSON.stringify(args.join(' ')).slice(0, 90), args, message] as const),
  )(
    'cordon %s is refused with exit 2, naming the problem, and calls nothing',
    async (_label, args, message) => {
      const { code, stdout, stderr } = await cordonOnAws(args);

      expect(code).toBe(2);
      expect(stderr).toContain(message);
      expect(stderr).not.toMatch(/\n\s+at /); // no stack trace without --debug
      expect(stdout).toBe('');
      expect(allAwsCalls()).toBe(0);
    },
  );

  it.each([['block-ip'], ['unblock']])(
    'cordon %s --help says how it runs against AWS, and calls nothing',
    async (cmd) => {
      const { code, stdout } = await cordonOnAws([cmd, '--help']);

      expect(code).toBe(0);
      expect(stdout).toContain(`usage: cordon ${cmd}`);
      expect(stdout).toContain(
        `does not invoke the Lambda function cordon-STAGE-${cmd === 'unblock' ? 'unblock-ip' : 'block-ip'}`,
      );
      expect(stdout).toContain('runs the same library in this process, with your credentials');
      expect(stdout).toContain('--endpoint URL');
      expect(allAwsCalls()).toBe(0);
    },
  );
});

describe('cordon block-ip', () => {
  it('denies the range inbound and outbound in every subnet ACL, recording who asked, and prints each entry', async () => {
    const { code, stdout, stderr } = await cordonOnAws([
      'block-ip',
      '203.0.113.7/24',
      '--vpc',
      vpcId,
      '--ttl',
      '24h',
      '--reason',
      'scanner hitting the web tier',
    ]);

    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(
      new RegExp(
        `^Case \\d{8}T\\d{6}Z-block-[0-9a-f]{8}-[0-9a-f]{4}: BLOCKED 203\\.0\\.113\\.0/24 \\(IPv4\\) in ${vpcId} \\(${home} us-east-1\\)$`,
        'm',
      ),
    );
    expect(stdout).toContain('Expires  2026-11-28T21:00:00.000Z');
    expect(stdout).toContain('Result   BLOCKED: 4 entries added, 0 already in force, in 2 subnet ACL(s)');
    for (const acl of [aclA, aclB]) {
      for (const direction of ['inbound', 'outbound']) {
        expect(stdout).toMatch(
          new RegExp(`^added\\s+${acl}\\s+99\\s+${direction}\\s+IPv4\\s+203\\.0\\.113\\.0/24\\s*$`, 'm'),
        );
      }
    }
    // The range as EC2 stores it (host bits cleared), a deny for all protocols.
    expect(ec2).toHaveReceivedCommandTimes(CreateNetworkAclEntryCommand, 4);
    expect(ec2).toHaveReceivedCommandWith(CreateNetworkAclEntryCommand, {
      NetworkAclId: aclA,
      RuleNumber: 99,
      Egress: true,
      Protocol: '-1',
      RuleAction: 'deny',
      CidrBlock: '203.0.113.0/24',
    });
    expect(sts).toHaveReceivedCommandTimes((await import('@aws-sdk/client-sts')).GetCallerIdentityCommand, 1);
    expect(cfn).toHaveReceivedCommandWith(GetTemplateCommand, {
      StackName: 'cordon-dev',
      TemplateStage: 'Processed',
    });
    const record = [...table.values()].find((i) => i.kind === 'block');
    expect(record).toMatchObject({
      requestedBy: callerArn,
      reason: 'scanner hitting the web tier',
      accountId: home,
      vpcId,
      cidr: '203.0.113.0/24',
      status: 'open',
    });
    expect(sns).toHaveReceivedCommandWith(PublishCommand, { TopicArn: deployed.AlertTopicArn });
  });

  it('keeps the expiry of a range already blocked when run again without --ttl', async () => {
    storedBlock(
      [false, true].map((egress) => ({ networkAclId: aclA, ruleNumber: 99, egress, cidr: '203.0.113.0/24' })),
    );

    const { code, stdout } = await cordonOnAws(['block-ip', '203.0.113.0/24', '--vpc', vpcId, '--json']);

    expect(code).toBe(0);
    // The block expires at 20:10:03 the next day; the playbook takes whole minutes, so it stays to 20:11
    // instead of becoming permanent (a request without a TTL).
    expect(JSON.parse(stdout)).toMatchObject({ decision: 'blocked', expiresAt: '2026-11-28T20:11:00.000Z' });
  });

  it('makes a block permanent only when asked with --ttl never', async () => {
    storedBlock(
      [false, true].map((egress) => ({ networkAclId: aclA, ruleNumber: 99, egress, cidr: '203.0.113.0/24' })),
    );

    const { code, stdout } = await cordonOnAws([
      'block-ip',
      '203.0.113.0/24',
      '--vpc',
      vpcId,
      '--ttl',
      'never',
    ]);

    expect(code).toBe(0);
    expect(stdout).toContain('Expires  never (until cordon unblock)');
  });

  it('prints one JSON document with --json', async () => {
    const { code, stdout } = await cordonOnAws(['block-ip', '2001:db8:7::/48', '--vpc', vpcId, '--json']);

    expect(code).toBe(0);
    const result = JSON.parse(stdout) as {
      decision: string;
      cidr: string;
      expiresAt?: string;
      added: unknown[];
    };
    expect(result).toMatchObject({ decision: 'blocked', cidr: '2001:db8:7::/48', vpcId, accountId: home });
    expect(result.expiresAt).toBeUndefined();
    expect(result.added).toContainEqual({
      networkAclId: aclB,
      ruleNumber: 99,
      egress: false,
      cidr: '2001:db8:7::/48',
    });
  });

  it('applies the deployed function’s settings: the forensic workstation range is never blocked', async () => {
    const { code, stdout } = await cordonOnAws(['block-ip', '198.51.100.0/24', '--vpc', vpcId]);

    expect(code).toBe(1);
    expect(stdout).toContain(
      `Block of 198.51.100.0/24 in ${vpcId} (${home} us-east-1): REFUSED - CIDR_FORENSIC`,
    );
    expect(ec2.calls()).toHaveLength(0);
    expect(sns.calls()).toHaveLength(0);
  });

  it('reports a refusal of the playbook (the VPC’s own range) with exit 1 and changes nothing', async () => {
    const { code, stdout } = await cordonOnAws(['block-ip', '10.60.4.0/24', '--vpc', vpcId]);

    expect(code).toBe(1);
    expect(stdout).toContain('REFUSED - CIDR_IN_VPC');
    expect(ec2).toHaveReceivedCommandTimes(CreateNetworkAclEntryCommand, 0);
  });

  it('exits 1 when some direction could not be denied (partial), listing what was skipped', async () => {
    ec2
      .on(CreateNetworkAclEntryCommand, { NetworkAclId: aclB, Egress: true })
      .rejects(Object.assign(new Error('Rule limit exceeded'), { name: 'NetworkAclEntryLimitExceeded' }));

    const { code, stdout } = await cordonOnAws(['block-ip', '203.0.113.0/24', '--vpc', vpcId]);

    expect(code).toBe(1);
    expect(stdout).toContain(': PARTIAL 203.0.113.0/24');
    expect(stdout).toMatch(
      new RegExp(
        `^failed\\s+${aclB}\\s+-\\s+outbound\\s+IPv4\\s+203\\.0\\.113\\.0/24\\s+the ACL's rule quota`,
        'm',
      ),
    );
  });

  it('says the block is in place, and what is recorded, when the alert cannot be published', async () => {
    sns.on(PublishCommand).rejects(
      Object.assign(new Error('User is not authorized to use the topic key'), {
        name: 'KMSAccessDenied',
        $metadata: { httpStatusCode: 400 },
      }),
    );

    const { code, stdout, stderr } = await cordonOnAws(['block-ip', '203.0.113.0/24', '--vpc', vpcId]);

    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^cordon: Case \S+-block-\S+: the block is in place, but it did not finish: KMSAccessDenied/,
    );
    expect(stderr).toContain('Take it out with cordon unblock ');
    expect(stdout).toContain('is denied by 4 recorded entries');
    expect(stdout).toMatch(new RegExp(`^recorded\\s+${aclA}\\s+99\\s+inbound\\s+IPv4`, 'm'));
  });

  it('explains a member account it cannot reach, and points at the function', async () => {
    ec2
      .on(DescribeVpcsCommand)
      .rejects(new AssumeRoleError('Cannot assume arn:aws:iam::444455556666:role/CordonResponder'));

    const { code, stderr } = await cordonOnAws([
      'block-ip',
      '203.0.113.0/24',
      '--vpc',
      vpcId,
      '--account',
      '444455556666',
    ]);

    expect(code).toBe(3);
    expect(stderr).toContain('the member role trusts only Cordon');
    expect(stderr).toContain('aws lambda invoke --function-name cordon-dev-block-ip');
    expect(ec2).toHaveReceivedCommandTimes(CreateNetworkAclEntryCommand, 0);
  });

  it('refuses to guess the function’s settings when the template does not show them', async () => {
    cfn.on(GetTemplateCommand).resolves({ TemplateBody: JSON.stringify({ Resources: {} }) });

    const { code, stderr } = await cordonOnAws(['block-ip', '203.0.113.0/24', '--vpc', vpcId]);

    expect(code).toBe(3);
    expect(stderr).toContain("does not show cordon-dev-block-ip's settings");
    expect(ec2.calls()).toHaveLength(0);
  });
});

describe('cordon unblock', () => {
  const entries = [false, true].map((egress) => ({
    networkAclId: aclA,
    ruleNumber: 99,
    egress,
    cidr: '203.0.113.0/24',
  }));

  beforeEach(() => {
    storedBlock(entries);
    ec2.on(DescribeNetworkAclsCommand, { NetworkAclIds: [aclA] }).resolves({
      NetworkAcls: [
        defaultAcl(
          aclA,
          ['subnet-a'],
          [false, true].map((Egress) => ({
            RuleNumber: 99,
            Egress,
            Protocol: '-1',
            RuleAction: 'deny' as const,
            CidrBlock: '203.0.113.0/24',
          })),
        ),
      ],
    });
    ec2.on(DeleteNetworkAclEntryCommand).resolves({ $metadata: { requestId: 'req-delete' } });
  });

  it('removes exactly the entries the block added, by case id, and prints them', async () => {
    const { code, stdout, stderr } = await cordonOnAws([
      'unblock',
      blockCaseId,
      '--reason',
      'false positive',
    ]);

    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain(`Case ${blockCaseId}: UNBLOCKED 203.0.113.0/24 in ${vpcId}`);
    expect(stdout).toContain('Result   2 removed, 0 already gone, 0 left alone');
    expect(stdout).toMatch(
      new RegExp(`^removed\\s+${aclA}\\s+99\\s+inbound\\s+IPv4\\s+203\\.0\\.113\\.0/24`, 'm'),
    );
    expect(stdout).toMatch(new RegExp(`^removed\\s+${aclA}\\s+99\\s+outbound\\s+IPv4`, 'm'));
    expect(ec2).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 2);
    expect(table.get(key({ pk: `CASE#${blockCaseId}`, sk: 'CASE' }))?.status).toBe('released');
    expect(table.has(key({ pk: `BLOCK#${home}#us-east-1#${vpcId}#203.0.113.0/24`, sk: 'OPEN' }))).toBe(false);
    const timeline = [...table.values()].filter((i) => String(i.sk).startsWith('T#'));
    expect(timeline).toContainEqual(
      expect.objectContaining({ action: 'unblock requested', detail: `${callerArn}: false positive` }),
    );
  });

  it('finds the open block of a range in a VPC', async () => {
    const { code, stdout } = await cordonOnAws(['unblock', '203.0.113.0/24', '--vpc', vpcId, '--json']);

    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ caseId: blockCaseId, status: 'released', removed: entries });
  });

  it('says so when the range has no open block, and changes nothing', async () => {
    const { code, stderr } = await cordonOnAws(['unblock', '192.0.2.0/24', '--vpc', vpcId]);

    expect(code).toBe(3);
    expect(stderr).toContain(
      `cordon: 192.0.2.0/24 has no open block in ${vpcId} (account ${home}, us-east-1).`,
    );
    expect(ec2.calls()).toHaveLength(0);
  });

  it('changes nothing for a block already taken out', async () => {
    await cordonOnAws(['unblock', blockCaseId]);
    ec2.resetHistory();

    const { code, stdout } = await cordonOnAws(['unblock', blockCaseId]);

    expect(code).toBe(0);
    expect(stdout).toContain('was already unblocked; nothing to remove');
    expect(ec2.calls()).toHaveLength(0);
  });

  it('exits 1, keeping the block open, when an entry cannot be deleted', async () => {
    ec2
      .on(DeleteNetworkAclEntryCommand, { Egress: true })
      .rejects(Object.assign(new Error('Request limit exceeded'), { name: 'InternalError' }));

    const { code, stderr } = await cordonOnAws(['unblock', blockCaseId]);

    expect(code).toBe(1);
    expect(stderr).toContain(`1 deny entry of ${blockCaseId} could not be removed`);
    expect(stderr).toContain('run the same command again');
    expect(table.get(key({ pk: `CASE#${blockCaseId}`, sk: 'CASE' }))?.status).toBe('open');
  });
});
