import {
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateNetworkAclEntryCommand,
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DisassociateAddressCommand,
  EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  RevokeSecurityGroupEgressCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { IsolateChanges } from '../../../functions/core/actions/isolate.js';
import { changeKeys } from '../../../functions/core/containment.js';
import {
  AwsServiceError,
  AwsThrottlingError,
  ConfigurationError,
  ContainmentError,
  IsolationVerificationError,
} from '../../../functions/core/errors.js';
import {
  conversionRules,
  isolationRules,
  ruleChanges,
  ruleKey,
  rulesKeepSsm,
  ssmSurvivesIsolation,
} from '../../../functions/core/isolation-groups.js';
import {
  type IsolateDeps,
  isolateInstance,
} from '../../../functions/forensics/isolate-instance/isolate-instance.js';
import {
  aclA,
  adminGroup,
  allocation,
  appGroup,
  awsError,
  containCase,
  ec2Id,
  eni,
  FakeEc2,
  MemoryCases,
  picture,
  s3PrefixList,
  ssmEndpointGroup,
  vpcId,
} from '../../support/containment-fixtures.js';

const ec2Mock = mockClient(EC2Client);
const c = containCase();
const isolation = 'cordon-test-isolation';
const conversion = 'cordon-test-untrack';
const now = () => new Date('2026-11-27T20:15:00.000Z');

let fake: FakeEc2;
let cases: MemoryCases;
let slept: number[];

function deps(config: Partial<IsolateDeps['config']> = {}): IsolateDeps {
  return {
    ec2: new EC2Client({ region: 'us-east-1' }),
    recorder: cases.recorder(c.caseId, 'isolate-instance'),
    cases,
    config: {
      CORDON_STAGE: 'test',
      FORENSIC_CIDR: '203.0.113.0/28',
      CONNTRACK_WAIT_SECONDS: 60,
      BLOCK_REMOTE_IPS: true,
      NACL_RULE_QUOTA: 20,
      ...config,
    },
    now,
    sleep: async (ms) => {
      slept.push(ms);
      fake.log.push(`sleep ${ms}`);
    },
  };
}

const groupIdOf = (name: string) => fake.groupNamed(name)?.id ?? 'missing';
const mutations = [
  CreateSecurityGroupCommand,
  AuthorizeSecurityGroupIngressCommand,
  AuthorizeSecurityGroupEgressCommand,
  RevokeSecurityGroupEgressCommand,
  ModifyNetworkInterfaceAttributeCommand,
  DisassociateAddressCommand,
  CreateNetworkAclEntryCommand,
  CreateTagsCommand,
];

beforeEach(() => {
  ec2Mock.reset();
  fake = FakeEc2.standard().install(ec2Mock);
  cases = new MemoryCases();
  cases.add(c);
  slept = [];
});

describe('the isolation groups', () => {
  const endpoints = picture().instance.vpcEndpoints;
  const prefixLists = new Map([['com.amazonaws.us-east-1.s3', s3PrefixList]]);

  it('make the conversion group allow every protocol in and out, over IPv4 and IPv6', () => {
    expect(conversionRules().map(ruleKey).sort()).toEqual(
      ['in|-1||v4:0.0.0.0/0', 'in|-1||v6:::/0', 'out|-1||v4:0.0.0.0/0', 'out|-1||v6:::/0'].sort(),
    );
  });

  it('let the isolation group reach only the SSM endpoints and S3 over HTTPS, and admit SSH and RDP from the workstation', () => {
    const rules = isolationRules({
      forensicCidr: '203.0.113.0/28',
      endpoints,
      region: 'us-east-1',
      prefixLists,
    });

    expect(rules.map(ruleKey).sort()).toEqual(
      [
        'in|tcp|22-22|v4:203.0.113.0/28',
        'in|tcp|3389-3389|v4:203.0.113.0/28',
        `out|tcp|443-443|sg:${ssmEndpointGroup}`,
        `out|tcp|443-443|pl:${s3PrefixList}`,
      ].sort(),
    );
  });

  it('give the isolation group no ingress at all when no forensic workstation is configured', () => {
    const rules = isolationRules({ forensicCidr: '', endpoints, region: 'us-east-1', prefixLists });

    expect(rules.filter((r) => !r.egress)).toEqual([]);
  });

  it('admit an IPv6 forensic workstation through IPv6 rules', () => {
    const rules = isolationRules({ forensicCidr: '2001:db8:f::/48', endpoints: [], region: 'us-east-1' });

    expect(rules.map(ruleKey)).toEqual([
      'in|tcp|22-22|v6:2001:db8:f::/48',
      'in|tcp|3389-3389|v6:2001:db8:f::/48',
    ]);
  });

  it("open nothing for another service's endpoint or another region's", () => {
    const others = [
      {
        id: ec2Id('vpce', 20),
        serviceName: 'com.amazonaws.us-east-1.kms',
        type: 'Interface',
        groups: [appGroup],
      },
      {
        id: ec2Id('vpce', 21),
        serviceName: 'com.amazonaws.eu-west-1.ssm',
        type: 'Interface',
        groups: [appGroup],
      },
    ];

    expect(isolationRules({ forensicCidr: '', endpoints: others, region: 'us-east-1' })).toEqual([]);
  });

  it('agree with the plan: whenever Triage counts on SSM surviving isolation, the isolation rules let the agent through', () => {
    const service = fc.constantFrom('ssm', 'ssmmessages', 'ec2messages', 's3', 'kms', 'logs');
    const endpoint = fc.record({
      n: fc.integer({ min: 1, max: 1000 }),
      service,
      type: fc.constantFrom('Interface', 'Gateway'),
      groups: fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 3 }),
    });
    fc.assert(
      fc.property(fc.array(endpoint, { maxLength: 8 }), (drawn) => {
        const list = drawn
          // EC2 offers gateway endpoints for S3 (and DynamoDB) only; interface endpoints always have groups.
          .filter((e) => e.type === 'Interface' || e.service === 's3')
          .map((e) => ({
            id: ec2Id('vpce', e.n),
            serviceName: `com.amazonaws.us-east-1.${e.service}`,
            type: e.type,
            groups: e.type === 'Interface' ? e.groups.map((g) => ec2Id('sg', g)) : [],
          }));
        const settings = { forensicCidr: '', endpoints: list, region: 'us-east-1', prefixLists };
        if (ssmSurvivesIsolation(list, 'us-east-1')) {
          expect(rulesKeepSsm(isolationRules(settings), settings)).toBe(true);
        }
      }),
    );
  });

  it('list exactly the rules to revoke and to add', () => {
    const desired = isolationRules({ forensicCidr: '', endpoints, region: 'us-east-1', prefixLists });
    const changes = ruleChanges(conversionRules(), desired);

    expect(changes.revoke.map(ruleKey).sort()).toEqual(conversionRules().map(ruleKey).sort());
    expect(changes.add.map(ruleKey).sort()).toEqual(desired.map(ruleKey).sort());
  });
});

describe('isolateInstance', () => {
  it("creates the two groups tagged as Cordon's and leaves each holding exactly its rules", async () => {
    await isolateInstance({ case: c, triage: picture() }, deps());

    expect(ec2Mock).toHaveReceivedCommandWith(CreateSecurityGroupCommand, {
      GroupName: isolation,
      VpcId: vpcId,
      TagSpecifications: [
        {
          ResourceType: 'security-group',
          Tags: [
            { Key: 'cordon:managed', Value: 'true' },
            { Key: 'cordon:purpose', Value: 'isolation' },
            { Key: 'Name', Value: isolation },
          ],
        },
      ],
    });
    expect(ec2Mock).toHaveReceivedCommandWith(RevokeSecurityGroupEgressCommand, {
      GroupId: groupIdOf(isolation),
      IpPermissions: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] }],
    });
    expect([...(fake.groupNamed(isolation)?.rules ?? [])].sort()).toEqual(
      [
        'in|tcp|22-22|v4:203.0.113.0/28',
        'in|tcp|3389-3389|v4:203.0.113.0/28',
        `out|tcp|443-443|sg:${ssmEndpointGroup}`,
        `out|tcp|443-443|pl:${s3PrefixList}`,
      ].sort(),
    );
    expect([...(fake.groupNamed(conversion)?.rules ?? [])].sort()).toEqual(
      ['in|-1||v4:0.0.0.0/0', 'in|-1||v6:::/0', 'out|-1||v4:0.0.0.0/0', 'out|-1||v6:::/0'].sort(),
    );
  });

  it('moves every interface, not only the primary, through the conversion group, waits, then into the isolation group', async () => {
    const result = await isolateInstance({ case: c, triage: picture() }, deps());

    const moves = fake.log.filter((l) => l.startsWith('groups ') || l.startsWith('sleep '));
    expect(moves).toEqual([
      `groups ${eni[0]} ${conversion}`,
      `groups ${eni[1]} ${conversion}`,
      `groups ${eni[2]} ${conversion}`,
      'sleep 60000',
      `groups ${eni[0]} ${isolation}`,
      `groups ${eni[1]} ${isolation}`,
      `groups ${eni[2]} ${isolation}`,
    ]);
    for (const id of eni) {
      expect(ec2Mock).toHaveReceivedCommandWith(ModifyNetworkInterfaceAttributeCommand, {
        NetworkInterfaceId: id,
        Groups: [groupIdOf(isolation)],
      });
    }
    expect(result.verified).toBe(true);
    expect(result.waitedSeconds).toBe(60);
  });

  it('moves every interface at once: as many rounds for three interfaces as for one', async () => {
    // Each group change is held until all three of its round have arrived; a one-by-one loop would
    // never get past the first.
    const rounds: string[][] = [];
    let waiting: { id: string; release: () => void }[] = [];
    fake.gate = async (command, input) => {
      const { NetworkInterfaceId: id, Groups } = input as { NetworkInterfaceId: string; Groups?: string[] };
      if (command !== 'ModifyNetworkInterfaceAttributeCommand' || !Groups) return;
      await new Promise<void>((release) => {
        waiting.push({ id, release });
        if (waiting.length === eni.length) {
          rounds.push(waiting.map((w) => w.id).sort());
          for (const w of waiting) w.release();
          waiting = [];
        }
      });
    };

    const result = await isolateInstance({ case: c, triage: picture() }, deps());

    expect(rounds).toEqual([[...eni].sort(), [...eni].sort()]);
    expect(result.verified).toBe(true);
  });

  it('isolates three interfaces in five rounds of AWS calls the first time in a VPC, four once its groups exist', async () => {
    // Every call is held until the test lets the whole round through: a round is what is in flight
    // together. The round count runs until every interface holds the isolation group.
    const isolated = () =>
      eni.every((id) => fake.interfaces.get(id)?.groups.join() === fake.groupNamed(isolation)?.id);
    async function countRounds(): Promise<{ rounds: string[][]; toIsolation: number }> {
      const rounds: string[][] = [];
      let held: { command: string; release: () => void }[] = [];
      let toIsolation = 0;
      fake.gate = (command) => new Promise<void>((release) => held.push({ command, release }));
      let finished = false;
      // The case record is an AWS call too (DynamoDB): held like the others.
      const d = deps();
      const gated = {
        get: (id: string) => (fake.gate?.('GetItem', id) ?? Promise.resolve()).then(() => cases.get(id)),
        byInstance: (key: string) =>
          (fake.gate?.('Query', key) ?? Promise.resolve()).then(() => cases.byInstance(key)),
        saveChanges: (...a: Parameters<IsolateDeps['cases']['saveChanges']>) =>
          (fake.gate?.('UpdateItem', a) ?? Promise.resolve()).then(() => cases.saveChanges(...a)),
      };
      const running = isolateInstance({ case: c, triage: picture() }, { ...d, cases: gated }).finally(() => {
        finished = true;
      });
      while (!finished) {
        // Let the step issue everything it will issue before the round is answered.
        for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
        if (held.length === 0) continue;
        const round = held;
        held = [];
        rounds.push(round.map((h) => h.command).sort());
        for (const h of round) h.release();
        for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
        if (!toIsolation && isolated()) toIsolation = rounds.length;
      }
      await running;
      fake.gate = undefined;
      return { rounds, toIsolation };
    }

    const first = await countRounds();
    expect(first.toIsolation).toBe(5);
    // Round 2: both groups created beside the save of the interfaces' own groups (and the ACLs read).
    expect(first.rounds[1]).toEqual([
      'CreateSecurityGroupCommand',
      'CreateSecurityGroupCommand',
      'DescribeNetworkAclsCommand',
      'UpdateItem',
    ]);
    expect(first.rounds[3]?.filter((x) => x === 'ModifyNetworkInterfaceAttributeCommand')).toHaveLength(
      2 * eni.length,
    );

    // Run again once the groups exist (as a second case in the VPC finds them): no round to create
    // them or set their rules; the ACL denies are in place already.
    for (const id of eni) {
      const n = fake.interfaces.get(id);
      if (n) n.groups = [appGroup];
    }
    const second = await countRounds();
    expect(second.toIsolation).toBe(4);
  });

  it('records each interface’s own groups before it changes any of them', async () => {
    const seen: unknown[] = [];
    fake.onModify = (_id, groups) => {
      if (groups) seen.push(structuredClone(cases.changes(c.caseId, changeKeys.isolate)));
    };

    await isolateInstance({ case: c, triage: picture() }, deps());

    const first = seen[0] as IsolateChanges;
    expect(first.enis.map((e) => [e.networkInterfaceId, e.originalGroups])).toEqual([
      [eni[0], [appGroup]],
      [eni[1], [appGroup, adminGroup]],
      [eni[2], [adminGroup]],
    ]);
  });

  it('shortens the TCP established and UDP idle timeouts of every interface to the minimum EC2 allows', async () => {
    await isolateInstance({ case: c, triage: picture() }, deps());

    for (const id of eni) {
      expect(ec2Mock).toHaveReceivedCommandWith(ModifyNetworkInterfaceAttributeCommand, {
        NetworkInterfaceId: id,
        ConnectionTrackingSpecification: { TcpEstablishedTimeout: 60, UdpStreamTimeout: 60, UdpTimeout: 30 },
      });
    }
  });

  it('isolates all the same, and says so, when EC2 refuses to shorten the timeouts', async () => {
    fake.refuseConntrack = awsError('UnsupportedOperation');

    const result = await isolateInstance({ case: c, triage: picture() }, deps());

    expect(result.unavailable).toHaveLength(3);
    expect(result.unavailable[0]?.reason).toContain('UnsupportedOperation');
    expect([...fake.interfaces.values()].map((n) => n.groups)).toEqual([
      [groupIdOf(isolation)],
      [groupIdOf(isolation)],
      [groupIdOf(isolation)],
    ]);
  });

  it('disassociates the Elastic IP and records where it was for release', async () => {
    const result = await isolateInstance({ case: c, triage: picture() }, deps());

    expect(ec2Mock).toHaveReceivedCommandWith(DisassociateAddressCommand, {
      AssociationId: ec2Id('eipassoc', 1),
    });
    expect(result.elasticIps).toEqual([{ allocationId: allocation, publicIp: '203.0.113.9' }]);
    expect((cases.changes(c.caseId, changeKeys.isolate) as IsolateChanges).elasticIps).toEqual([
      {
        allocationId: allocation,
        publicIp: '203.0.113.9',
        networkInterfaceId: eni[0],
        privateIpAddress: '10.0.1.5',
      },
    ]);
  });

  it('denies each remote address in and out, IPv4 and IPv6, at free numbers ahead of the first allow', async () => {
    await isolateInstance({ case: c, triage: picture() }, deps());

    const entries = ec2Mock.commandCalls(CreateNetworkAclEntryCommand).map((call) => call.args[0].input);
    expect(entries).toEqual([
      {
        NetworkAclId: aclA,
        RuleNumber: 99,
        Egress: false,
        Protocol: '-1',
        RuleAction: 'deny',
        CidrBlock: '198.51.100.7/32',
      },
      {
        NetworkAclId: aclA,
        RuleNumber: 98,
        Egress: false,
        Protocol: '-1',
        RuleAction: 'deny',
        Ipv6CidrBlock: '2001:db8:bad::7/128',
      },
      {
        NetworkAclId: aclA,
        RuleNumber: 99,
        Egress: true,
        Protocol: '-1',
        RuleAction: 'deny',
        CidrBlock: '198.51.100.7/32',
      },
      {
        NetworkAclId: aclA,
        RuleNumber: 98,
        Egress: true,
        Protocol: '-1',
        RuleAction: 'deny',
        Ipv6CidrBlock: '2001:db8:bad::7/128',
      },
    ]);
  });

  it('adds its own deny even where an equivalent one exists, so that lifting that one never lifts isolation', async () => {
    fake.acls[0]?.entries.push({
      RuleNumber: 10,
      Egress: false,
      Protocol: '-1',
      RuleAction: 'deny',
      CidrBlock: '198.51.100.7/32',
    });

    const result = await isolateInstance({ case: c, triage: picture() }, deps());

    expect(result.naclEntries).toContainEqual({
      networkAclId: aclA,
      ruleNumber: 99,
      egress: false,
      cidr: '198.51.100.7/32',
    });
  });

  it('adds no second deny of its own when run again', async () => {
    await isolateInstance({ case: c, triage: picture() }, deps());
    ec2Mock.resetHistory();

    const again = await isolateInstance({ case: c, triage: picture() }, deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(CreateNetworkAclEntryCommand, 0);
    expect(again.naclEntries).toHaveLength(4);
  });

  it('skips a deny, and says why, when the ACL is at its rule quota', async () => {
    for (let n = 1; n <= 18; n++) {
      fake.acls[0]?.entries.push({
        RuleNumber: 200 + n,
        Egress: false,
        Protocol: '6',
        RuleAction: 'allow',
        CidrBlock: `10.${n}.0.0/16`,
      });
    }

    const result = await isolateInstance({ case: c, triage: picture() }, deps());

    expect(ec2Mock).not.toHaveReceivedCommandWith(CreateNetworkAclEntryCommand, {
      Egress: false,
      CidrBlock: '198.51.100.7/32',
    });
    expect(result.warnings).toContain(
      `198.51.100.7/32 not denied inbound in ${aclA}: the inbound ipv4 rules of ${aclA} are at the quota of 20`,
    );
    expect(result.verified).toBe(true);
  });

  it('isolates all the same, and says so, when a network ACL refuses the deny for good', async () => {
    fake.failNext('CreateNetworkAclEntryCommand', awsError('UnauthorizedOperation'), 99);

    const result = await isolateInstance({ case: c, triage: picture() }, deps());

    expect(result.verified).toBe(true);
    expect(result.naclEntries).toEqual([]);
    expect(result.warnings[0]).toContain(`198.51.100.7/32 not denied in ${aclA}: AwsAccessDeniedError`);
  });

  it('isolates all the same, and says so, when EC2 refuses to take the Elastic IP off for good', async () => {
    fake.failNext('DisassociateAddressCommand', awsError('InvalidParameterValue'), 99);

    const result = await isolateInstance({ case: c, triage: picture() }, deps());

    expect(result.verified).toBe(true);
    expect(result.warnings).toContain(
      `203.0.113.9 stays associated with ${eni[0]}: AwsServiceError: InvalidParameterValue: InvalidParameterValue (test)`,
    );
  });

  it('sends no network ACL command unless blockRemoteIps is on', async () => {
    await isolateInstance({ case: c, triage: picture() }, deps({ BLOCK_REMOTE_IPS: false }));

    expect(ec2Mock).toHaveReceivedCommandTimes(CreateNetworkAclEntryCommand, 0);
  });

  it("leaves alone an instance an earlier case isolated, and keeps that case's record of its own groups", async () => {
    const earlier = containCase({ caseId: '20261127T100000Z-i-0123456789abcdef0-0001' });
    cases.add(earlier);
    await isolateInstance(
      { case: earlier, triage: picture() },
      { ...deps(), recorder: cases.recorder(earlier.caseId, 'isolate-instance') },
    );
    cases.add(c, 'open', {
      [changeKeys.protect]: {
        previousCaseId: earlier.caseId,
        tags: [],
        attributes: [],
        volumes: [],
        targetGroups: [],
        classicLoadBalancers: [],
      },
    });
    const isolatedPicture = picture({
      enis: picture().instance.enis.map((e) => ({ ...e, groups: [groupIdOf(isolation)] })),
    });
    ec2Mock.resetHistory();

    const result = await isolateInstance({ case: c, triage: isolatedPicture }, deps());

    expect(ec2Mock).not.toHaveReceivedCommandWith(ModifyNetworkInterfaceAttributeCommand, {
      Groups: [groupIdOf(conversion)],
    });
    expect(ec2Mock).not.toHaveReceivedCommandWith(ModifyNetworkInterfaceAttributeCommand, {
      Groups: [groupIdOf(isolation)],
    });
    expect(result.enis.map((e) => e.originalGroups)).toEqual([
      [appGroup],
      [appGroup, adminGroup],
      [adminGroup],
    ]);
    expect(result.elasticIps).toEqual([{ allocationId: allocation, publicIp: '203.0.113.9' }]);
  });

  it('takes over an earlier unreleased case by the instance itself when Protect, running beside it, has not saved yet', async () => {
    const earlier = containCase({
      caseId: '20261127T100000Z-i-0123456789abcdef0-0001',
      openedAt: '2026-11-27T10:00:00.000Z',
    });
    cases.add(earlier);
    await isolateInstance(
      { case: earlier, triage: picture() },
      { ...deps(), recorder: cases.recorder(earlier.caseId, 'isolate-instance') },
    );
    // This case's record holds nothing of Protect's yet: no previousCaseId to go by.
    cases.add(c, 'open');
    const isolatedPicture = picture({
      enis: picture().instance.enis.map((e) => ({ ...e, groups: [] })),
    });

    const result = await isolateInstance({ case: c, triage: isolatedPicture }, deps());

    expect(result.enis.map((e) => e.originalGroups)).toEqual([
      [appGroup],
      [appGroup, adminGroup],
      [adminGroup],
    ]);
    expect(result.warnings).toEqual([]);
  });

  it('does not take over a released earlier case', async () => {
    const earlier = containCase({
      caseId: '20261127T100000Z-i-0123456789abcdef0-0001',
      openedAt: '2026-11-27T10:00:00.000Z',
    });
    cases.add(earlier);
    await isolateInstance(
      { case: earlier, triage: picture() },
      { ...deps(), recorder: cases.recorder(earlier.caseId, 'isolate-instance') },
    );
    const released = cases.records.get(earlier.caseId);
    if (released) released.status = 'released';
    cases.add(c, 'open');

    const result = await isolateInstance({ case: c, triage: picture({ enis: [] }) }, deps());

    // The interfaces hold only Cordon's groups and no live record names their own.
    expect(result.enis.map((e) => e.originalGroups)).toEqual([null, null, null]);
  });

  it('picks up after a throttled isolation call without re-recording Cordon’s groups as the originals', async () => {
    fake.failNext(
      'ModifyNetworkInterfaceAttributeCommand',
      awsError('RequestLimitExceeded'),
      1,
      (input: { Groups?: string[] }) => input.Groups?.[0] === fake.groupNamed(isolation)?.id,
    );

    const first = await isolateInstance({ case: c, triage: picture() }, deps()).catch((e: unknown) => e);
    const second = await isolateInstance({ case: c, triage: picture() }, deps());

    expect(first).toBeInstanceOf(AwsThrottlingError);
    expect((first as Error).message).toContain('stopped at "isolation group applied"');
    expect(second.enis.map((e) => e.originalGroups)).toEqual([
      [appGroup],
      [appGroup, adminGroup],
      [adminGroup],
    ]);
    expect(fake.log.filter((l) => l.startsWith('groups ') && l.endsWith(conversion))).toHaveLength(3);
    expect([...fake.interfaces.values()].every((n) => n.groups.join() === groupIdOf(isolation))).toBe(true);
  });

  it.each([
    ['DescribeNetworkInterfacesCommand', () => true],
    ['DescribeSecurityGroupsCommand', () => true],
    ['CreateSecurityGroupCommand', () => true],
    ['RevokeSecurityGroupEgressCommand', () => true],
    ['AuthorizeSecurityGroupIngressCommand', () => true],
    ['AuthorizeSecurityGroupEgressCommand', () => true],
    ['CreateNetworkAclEntryCommand', () => true],
    ['DisassociateAddressCommand', () => true],
    ['ModifyNetworkInterfaceAttributeCommand', (input: { Groups?: string[] }) => input.Groups !== undefined],
    ['CreateTagsCommand', () => true],
  ] as [string, (input: never) => boolean][])(
    'completes on the retry when %s fails once',
    async (command, when) => {
      fake.failNext(command, awsError('InternalError', 500), 1, when);

      const first = await isolateInstance({ case: c, triage: picture() }, deps()).catch((e: unknown) => e);
      const second = await isolateInstance({ case: c, triage: picture() }, deps());

      expect(first).toBeInstanceOf(AwsServiceError);
      expect(second.verified).toBe(true);
      expect(second.enis.map((e) => e.originalGroups)).toEqual([
        [appGroup],
        [appGroup, adminGroup],
        [adminGroup],
      ]);
      expect(second.elasticIps).toHaveLength(1);
      expect(second.naclEntries).toHaveLength(4);
      expect(
        fake.acls[0]?.entries.filter((e) => e.RuleAction === 'deny' && (e.RuleNumber ?? 0) < 100),
      ).toHaveLength(4);
    },
  );

  it('stops with a ContainmentError naming what was and was not applied when EC2 refuses for good', async () => {
    fake.failNext(
      'ModifyNetworkInterfaceAttributeCommand',
      awsError('UnauthorizedOperation'),
      99,
      (input: { Groups?: string[] }) => input.Groups?.[0] === fake.groupNamed(isolation)?.id,
    );

    const error = await isolateInstance({ case: c, triage: picture() }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ContainmentError);
    const message = (error as Error).message;
    expect(message).toContain(
      'Applied: read network interfaces; isolation groups ready; original groups recorded',
    );
    expect(message).toContain('conversion group applied; conntrack wait.');
    expect(message).toContain(
      'Not applied: isolation group applied; isolation verified; instance tagged isolated.',
    );
    expect((cases.changes(c.caseId, changeKeys.isolate) as IsolateChanges).enis).toHaveLength(3);
  });

  it('fails naming everything it applied when the case timeline cannot record it', async () => {
    const denied = awsError('AccessDeniedException', 400);
    vi.spyOn(cases, 'recordMany').mockRejectedValue(denied);

    const error = await isolateInstance({ case: c, triage: picture() }, deps()).catch((e: unknown) => e);

    const message = (error as Error).message;
    expect(message).toMatch(/^Isolation stopped at "actions recorded on the case timeline": /);
    expect(message).toContain('could not record it: AwsAccessDeniedError: AccessDeniedException');
    expect(message).toContain('isolation group applied; isolation verified; instance tagged isolated.');
    expect(message).toMatch(/Not applied: actions recorded on the case timeline\.$/);
    expect(fake.interfaces.get(eni[0] as string)?.groups).toEqual([groupIdOf(isolation)]);
  });

  it('fails with an IsolationVerificationError when an interface does not read back isolated', async () => {
    fake.onModify = (id, groups) => {
      const n = fake.interfaces.get(id);
      if (n && id === eni[1] && groups?.[0] === fake.groupNamed(isolation)?.id) n.groups = [appGroup];
    };

    const error = await isolateInstance({ case: c, triage: picture() }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(IsolationVerificationError);
    expect((error as Error).message).toContain(`${eni[1]} holds ${appGroup}`);
    expect(ec2Mock).not.toHaveReceivedCommandWith(CreateTagsCommand, {
      Tags: [{ Key: 'cordon:status', Value: 'isolated' }],
    });
  });

  it("refuses a group that has Cordon's name but not its tag, and moves no interface", async () => {
    const squatter = ec2Id('sg', 0xbad);
    fake.groups.set(squatter, { id: squatter, name: conversion, vpcId, tags: {}, rules: new Set() });

    const error = await isolateInstance({ case: c, triage: picture() }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ContainmentError);
    expect((error as Error).message).toContain('without Cordon');
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifyNetworkInterfaceAttributeCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(AuthorizeSecurityGroupIngressCommand, 0);
  });

  it('refuses to open SSH and RDP to the whole internet and sends no command', async () => {
    const error = await isolateInstance(
      { case: c, triage: picture() },
      deps({ FORENSIC_CIDR: '0.0.0.0/0' }),
    ).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConfigurationError);
    for (const command of mutations) expect(ec2Mock).toHaveReceivedCommandTimes(command as never, 0);
  });

  it('uses the group another case created first', async () => {
    const theirs = ec2Id('sg', 0xc0de);
    fake.failNext(
      'CreateSecurityGroupCommand',
      awsError('InvalidGroup.Duplicate'),
      1,
      (input: { GroupName: string }) => {
        if (input.GroupName !== isolation) return false;
        fake.groups.set(theirs, {
          id: theirs,
          name: isolation,
          vpcId,
          tags: { 'cordon:managed': 'true' },
          rules: new Set(),
        });
        return true;
      },
    );

    const result = await isolateInstance({ case: c, triage: picture() }, deps());

    expect(result.groups[0]?.isolationGroupId).toBe(theirs);
    expect(result.enis.every((e) => e.isolationGroupId === theirs)).toBe(true);
  });

  it('warns when the plan counts on SSM surviving isolation but the VPC has no S3 endpoint to allow', async () => {
    const noS3 = picture({
      vpcEndpoints: picture().instance.vpcEndpoints.filter((e) => !e.serviceName.endsWith('s3')),
    });

    const result = await isolateInstance({ case: c, triage: noS3 }, deps());

    expect(result.ssmEgress).toBe(false);
    expect(result.warnings[0]).toContain('the plan counted on SSM surviving isolation');
  });

  it('tags the instance isolated once the isolation is proven', async () => {
    await isolateInstance({ case: c, triage: picture() }, deps());

    expect(ec2Mock).toHaveReceivedCommandWith(CreateTagsCommand, {
      Resources: [c.instanceId],
      Tags: [{ Key: 'cordon:status', Value: 'isolated' }],
    });
    expect(fake.log.at(-1)).toBe(`tag ${c.instanceId} cordon:status=isolated`);
  });
});
