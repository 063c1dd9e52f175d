/**
 * Test doubles for the containment steps (Protect, Isolate, Revoke, Release): a case store kept in
 * memory, a small stateful EC2 account behind aws-sdk-client-mock, and builders for the case and
 * Triage's picture. The EC2 double keeps just enough state (interfaces, groups and their rules,
 * addresses, network ACLs, instance attributes, profile associations) for a step run twice to see
 * what its first run left, which is what the retry tests are about.
 */

import {
  AssociateAddressCommand,
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateNetworkAclEntryCommand,
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DeleteNetworkAclEntryCommand,
  DescribeAddressesCommand,
  DescribeIamInstanceProfileAssociationsCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeNetworkAclsCommand,
  DescribeNetworkInterfacesCommand,
  DescribePrefixListsCommand,
  DescribeSecurityGroupsCommand,
  DescribeVpcsCommand,
  DisassociateAddressCommand,
  type EC2Client,
  type Filter,
  type IpPermission,
  ModifyInstanceAttributeCommand,
  ModifyInstanceMetadataOptionsCommand,
  ModifyNetworkInterfaceAttributeCommand,
  type NetworkAclEntry,
  ReplaceIamInstanceProfileAssociationCommand,
  RevokeSecurityGroupEgressCommand,
  RevokeSecurityGroupIngressCommand,
} from '@aws-sdk/client-ec2';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import type { Case } from '../../functions/core/case.js';
import {
  type CaseRecord,
  type CaseStatus,
  instanceKey,
  Recorder,
  type TimelineEvent,
} from '../../functions/core/cases.js';
import type { TriagePicture } from '../../functions/core/containment.js';
import { sampleCase } from './core-fakes.js';

/** An EC2-style id: the prefix and 17 hex digits made from `n`. */
export const ec2Id = (prefix: string, n: number) => `${prefix}-${n.toString(16).padStart(17, '0')}`;

export const vpcId = ec2Id('vpc', 1);
export const subnetA = ec2Id('subnet', 1);
export const subnetB = ec2Id('subnet', 2);
export const appGroup = ec2Id('sg', 0xa1);
export const adminGroup = ec2Id('sg', 0xa2);
export const ssmEndpointGroup = ec2Id('sg', 0xe1);
export const eni = [ec2Id('eni', 1), ec2Id('eni', 2), ec2Id('eni', 3)] as const;
export const s3PrefixList = ec2Id('pl', 0x53);
export const aclA = ec2Id('acl', 1);
export const allocation = ec2Id('eipalloc', 1);

/** The case under test: two remote addresses, one IPv4 and one IPv6. */
export function containCase(overrides: Partial<Case> = {}): Case {
  return {
    ...sampleCase,
    trigger: { ...sampleCase.trigger, remoteIps: ['198.51.100.7', '2001:db8:bad::7'] },
    ...overrides,
  };
}

export const instanceArn = `arn:aws:ec2:${sampleCase.region}:${sampleCase.accountId}:instance/${sampleCase.instanceId}`;
export const appProfileArn = `arn:aws:iam::${sampleCase.accountId}:instance-profile/app-profile`;
export const quarantineProfile = 'cordon-quarantine-test';
export const quarantineProfileArn = `arn:aws:iam::${sampleCase.accountId}:instance-profile/${quarantineProfile}`;

/** IAM's answer to GetInstanceProfile: the profile and its one role. */
export function instanceProfileAnswer(name = 'app-profile', roleName = 'app-role') {
  return {
    InstanceProfile: {
      Path: '/',
      InstanceProfileName: name,
      InstanceProfileId: 'AIPAEXAMPLE',
      Arn: `arn:aws:iam::${sampleCase.accountId}:instance-profile/${name}`,
      CreateDate: new Date('2026-01-01T00:00:00Z'),
      Roles: [
        {
          Path: '/',
          RoleName: roleName,
          RoleId: 'AROAEXAMPLE',
          Arn: `arn:aws:iam::${sampleCase.accountId}:role/${roleName}`,
          CreateDate: new Date('2026-01-01T00:00:00Z'),
        },
      ],
    },
  };
}

/** Triage's picture of an instance with three interfaces, one IPv6, SSM and S3 endpoints in its VPC. */
export function picture(overrides: Partial<TriagePicture['instance']> = {}): TriagePicture {
  return {
    plan: { order: 'contain-first', ssmSurvivesIsolation: true, reason: 'endpoints present' },
    instance: {
      instanceId: sampleCase.instanceId,
      vpcId,
      volumes: [
        { volumeId: ec2Id('vol', 1), deviceName: '/dev/xvda', deleteOnTermination: true },
        { volumeId: ec2Id('vol', 2), deviceName: '/dev/sdf', deleteOnTermination: false },
      ],
      enis: [
        { networkInterfaceId: eni[0], subnetId: subnetA, vpcId, groups: [appGroup] },
        { networkInterfaceId: eni[1], subnetId: subnetA, vpcId, groups: [appGroup, adminGroup] },
        { networkInterfaceId: eni[2], subnetId: subnetB, vpcId, groups: [adminGroup] },
      ],
      targetGroups: [],
      classicLoadBalancers: [],
      vpcEndpoints: [
        ...['ssm', 'ssmmessages', 'ec2messages'].map((s, i) => ({
          id: ec2Id('vpce', i + 1),
          serviceName: `com.amazonaws.us-east-1.${s}`,
          type: 'Interface',
          groups: [ssmEndpointGroup],
        })),
        { id: ec2Id('vpce', 9), serviceName: 'com.amazonaws.us-east-1.s3', type: 'Gateway', groups: [] },
      ],
      ...overrides,
    },
  };
}

type StoredEvent = Omit<TimelineEvent, 'at'> & { at?: string; caseId: string };

/** The Cases table in memory: case records with their `changes`, the timeline, and the locks freed. */
export class MemoryCases {
  readonly records = new Map<string, CaseRecord>();
  readonly events: StoredEvent[] = [];
  readonly unlocked: string[] = [];

  /** The instance's cases, newest first, as the byInstance index lists them. */
  async byInstance(key: string): Promise<CaseRecord[]> {
    return [...this.records.values()]
      .filter((r) => instanceKey(r) === key)
      .sort((a, b) => b.openedAt.localeCompare(a.openedAt))
      .map((r) => structuredClone(r));
  }

  add(c: Case, status: CaseStatus = 'open', changes?: Record<string, unknown>): void {
    this.records.set(c.caseId, {
      ...c,
      status,
      updatedAt: c.openedAt,
      findingIds: [],
      ...(changes ? { changes: structuredClone(changes) } : {}),
    });
  }
  async get(caseId: string): Promise<CaseRecord | undefined> {
    const r = this.records.get(caseId);
    return r ? structuredClone(r) : undefined;
  }
  async saveChanges(caseId: string, step: string, changes: unknown): Promise<void> {
    const r = this.records.get(caseId);
    if (!r) throw new Error(`no case ${caseId}`);
    // DynamoDB stores no undefined: the same round trip as the real table's marshalling.
    r.changes = { ...(r.changes ?? {}), [step]: JSON.parse(JSON.stringify(changes)) };
  }
  async setStatus(caseId: string, status: CaseStatus): Promise<void> {
    const r = this.records.get(caseId);
    if (r) r.status = status;
  }
  async unlock(c: Pick<Case, 'caseId'>): Promise<void> {
    this.unlocked.push(c.caseId);
  }
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
  changes(caseId: string, step: string): unknown {
    return this.records.get(caseId)?.changes?.[step];
  }
}

/** An error shaped like the SDK's: the code as `name`, the HTTP status in `$metadata`. */
export function awsError(code: string, status = 400, message = `${code} (test)`): Error {
  return Object.assign(new Error(message), { name: code, $metadata: { httpStatusCode: status } });
}

interface Interface {
  id: string;
  vpcId: string;
  subnetId: string;
  groups: string[];
  instanceId?: string;
  conntrack?: { TcpEstablishedTimeout?: number; UdpStreamTimeout?: number; UdpTimeout?: number };
  privateIp: string;
  tags: Record<string, string>;
}
interface Group {
  id: string;
  name: string;
  vpcId: string;
  tags: Record<string, string>;
  /** `in|tcp|22-22|v4:1.2.3.4/32`: the same granularity EC2 keeps rules at. */
  rules: Set<string>;
}
interface Address {
  allocationId: string;
  publicIp: string;
  associationId?: string;
  networkInterfaceId?: string;
  privateIp?: string;
}
interface Acl {
  id: string;
  subnets: string[];
  entries: NetworkAclEntry[];
}
interface InstanceState {
  id: string;
  tags: Record<string, string>;
  disableApiTermination: boolean;
  disableApiStop: boolean;
  shutdownBehavior: 'stop' | 'terminate';
  volumes: { volumeId: string; deviceName: string; deleteOnTermination: boolean }[];
  httpTokens: 'optional' | 'required';
  profile?: { associationId: string; arn: string };
}

type Handler = (input: never) => unknown;

const ruleStrings = (permissions: IpPermission[] | undefined, egress: boolean): string[] =>
  (permissions ?? []).flatMap((p) => {
    const proto = p.IpProtocol === '-1' ? '-1' : String(p.IpProtocol);
    const ports = proto === '-1' ? '' : `${p.FromPort}-${p.ToPort}`;
    const peers = [
      ...(p.IpRanges ?? []).map((r) => `v4:${r.CidrIp}`),
      ...(p.Ipv6Ranges ?? []).map((r) => `v6:${r.CidrIpv6}`),
      ...(p.UserIdGroupPairs ?? []).map((g) => `sg:${g.GroupId}`),
      ...(p.PrefixListIds ?? []).map((l) => `pl:${l.PrefixListId}`),
    ];
    return peers.map((peer) => `${egress ? 'out' : 'in'}|${proto}|${ports}|${peer}`);
  });

function toPermissions(rules: Iterable<string>, egress: boolean): IpPermission[] {
  return [...rules]
    .filter((r) => r.startsWith(egress ? 'out|' : 'in|'))
    .map((r) => {
      const [, proto, ports, peer] = r.split('|') as [string, string, string, string];
      const [from, to] = ports ? ports.split('-').map(Number) : [];
      const colon = peer.indexOf(':');
      const kind = peer.slice(0, colon);
      const value = peer.slice(colon + 1);
      return {
        IpProtocol: proto,
        ...(ports ? { FromPort: from, ToPort: to } : {}),
        IpRanges: kind === 'v4' ? [{ CidrIp: value }] : [],
        Ipv6Ranges: kind === 'v6' ? [{ CidrIpv6: value }] : [],
        UserIdGroupPairs: kind === 'sg' ? [{ GroupId: value }] : [],
        PrefixListIds: kind === 'pl' ? [{ PrefixListId: value }] : [],
      };
    });
}

const filterValues = (filters: Filter[] | undefined, name: string) =>
  filters?.find((f) => f.Name === name)?.Values;

/**
 * A small EC2 account. `install` wires it behind an aws-sdk-client-mock stub; `failNext` makes the next
 * call(s) of one command fail with a given error before touching any state, as AWS would.
 */
export class FakeEc2 {
  readonly interfaces = new Map<string, Interface>();
  readonly groups = new Map<string, Group>();
  readonly addresses: Address[] = [];
  readonly acls: Acl[] = [];
  readonly log: string[] = [];
  instance: InstanceState;
  private nextId = 0x100;
  private readonly failures: {
    command: string;
    error: Error;
    times: number;
    when: (input: never) => boolean;
  }[] = [];
  /** When set, connection-tracking changes fail with it, as on instances that are not Nitro-based. */
  refuseConntrack?: Error;
  /** The instance's state as DescribeInstances reports it; `terminated` makes it gone for the steps. */
  instanceState = 'running';
  /** Called after each ModifyNetworkInterfaceAttribute: lets a test look at the case store mid-run. */
  onModify?: (networkInterfaceId: string, groups: string[] | undefined) => void;

  constructor(instanceId = sampleCase.instanceId) {
    this.instance = {
      id: instanceId,
      tags: {},
      disableApiTermination: false,
      disableApiStop: false,
      shutdownBehavior: 'terminate',
      volumes: [
        { volumeId: ec2Id('vol', 1), deviceName: '/dev/xvda', deleteOnTermination: true },
        { volumeId: ec2Id('vol', 2), deviceName: '/dev/sdf', deleteOnTermination: false },
      ],
      httpTokens: 'optional',
    };
  }

  /** The three-interface instance of `picture()`, its groups, an Elastic IP and the subnets' ACL. */
  static standard(): FakeEc2 {
    const ec2 = new FakeEc2();
    for (const [id, name] of [
      [appGroup, 'app'],
      [adminGroup, 'admin'],
      [ssmEndpointGroup, 'endpoints'],
    ] as const) {
      ec2.groups.set(id, { id, name, vpcId, tags: {}, rules: new Set() });
    }
    const groupsOf = [[appGroup], [appGroup, adminGroup], [adminGroup]];
    eni.forEach((id, i) => {
      ec2.interfaces.set(id, {
        id,
        vpcId,
        subnetId: i === 2 ? subnetB : subnetA,
        groups: groupsOf[i] ?? [],
        instanceId: ec2.instance.id,
        privateIp: `10.0.${i + 1}.5`,
        tags: {},
      });
    });
    ec2.addresses.push({
      allocationId: allocation,
      publicIp: '203.0.113.9',
      associationId: ec2Id('eipassoc', 1),
      networkInterfaceId: eni[0],
      privateIp: '10.0.1.5',
    });
    ec2.acls.push({
      id: aclA,
      subnets: [subnetA, subnetB],
      entries: [false, true].flatMap((egress) => [
        { RuleNumber: 100, Egress: egress, Protocol: '-1', RuleAction: 'allow', CidrBlock: '0.0.0.0/0' },
        { RuleNumber: 101, Egress: egress, Protocol: '-1', RuleAction: 'allow', Ipv6CidrBlock: '::/0' },
        { RuleNumber: 32767, Egress: egress, Protocol: '-1', RuleAction: 'deny', CidrBlock: '0.0.0.0/0' },
        { RuleNumber: 32768, Egress: egress, Protocol: '-1', RuleAction: 'deny', Ipv6CidrBlock: '::/0' },
      ]),
    });
    ec2.instance.profile = { associationId: ec2Id('iip-assoc', 1), arn: appProfileArn };
    return ec2;
  }

  /**
   * Makes the next `times` calls of `command` (e.g. 'CreateSecurityGroupCommand') for which `when`
   * holds fail with `error`, before any state changes.
   */
  failNext(command: string, error: Error, times = 1, when: (input: never) => boolean = () => true): void {
    this.failures.push({ command, error, times, when });
  }

  groupNamed(name: string): Group | undefined {
    return [...this.groups.values()].find((g) => g.name === name);
  }

  private newId(prefix: string): string {
    this.nextId += 1;
    return ec2Id(prefix, this.nextId);
  }

  private maybeFail(command: string, input: unknown): void {
    const f = this.failures.find((x) => x.command === command && x.times > 0 && x.when(input as never));
    if (!f) return;
    f.times -= 1;
    throw f.error;
  }

  private describeInterface(n: Interface) {
    return {
      NetworkInterfaceId: n.id,
      VpcId: n.vpcId,
      SubnetId: n.subnetId,
      PrivateIpAddress: n.privateIp,
      Groups: n.groups.map((g) => ({ GroupId: g, GroupName: this.groups.get(g)?.name ?? 'unknown' })),
      ...(n.instanceId ? { Attachment: { InstanceId: n.instanceId } } : {}),
      ...(n.conntrack ? { ConnectionTrackingConfiguration: n.conntrack } : {}),
    };
  }

  private describeGroup(g: Group) {
    return {
      GroupId: g.id,
      GroupName: g.name,
      VpcId: g.vpcId,
      Tags: Object.entries(g.tags).map(([Key, Value]) => ({ Key, Value })),
      IpPermissions: toPermissions(g.rules, false),
      IpPermissionsEgress: toPermissions(g.rules, true),
    };
  }

  /** Awaited before each command is answered: a test can hold calls to see which are in flight together. */
  gate?: (command: string, input: unknown) => Promise<void>;

  /** Wires every command the containment steps send to this account. */
  install(stub: AwsClientStub<EC2Client>): this {
    for (const [command, handler] of this.handlers()) {
      const name = (command as { name: string }).name;
      stub.on(command as never).callsFake(async (input: unknown) => {
        await this.gate?.(name, input);
        this.maybeFail(name, input);
        return handler(input as never);
      });
    }
    return this;
  }

  private handlers(): [unknown, Handler][] {
    const ok = { $metadata: { requestId: 'req-test' } };
    const edit =
      (egress: boolean, add: boolean) => (input: { GroupId: string; IpPermissions: IpPermission[] }) => {
        const g = this.groups.get(input.GroupId);
        if (!g) throw awsError('InvalidGroup.NotFound');
        const rules = ruleStrings(input.IpPermissions, egress);
        if (add && rules.some((r) => g.rules.has(r))) throw awsError('InvalidPermission.Duplicate');
        if (!add && rules.some((r) => !g.rules.has(r))) throw awsError('InvalidPermission.NotFound');
        for (const r of rules) {
          if (add) g.rules.add(r);
          else g.rules.delete(r);
        }
        this.log.push(`${add ? 'authorize' : 'revoke'}-${egress ? 'egress' : 'ingress'} ${g.id}`);
        return ok;
      };
    const instance = this.instance;
    return [
      [
        DescribeVpcsCommand,
        (input: { VpcIds?: string[] }) => ({
          ...ok,
          // The fake's VPCs have no IPv6 block: a new group's default egress is IPv4 only.
          Vpcs: (input.VpcIds ?? []).map((VpcId) => ({ VpcId, Ipv6CidrBlockAssociationSet: [] })),
        }),
      ],
      [
        DescribeNetworkInterfacesCommand,
        (input: { Filters?: Filter[] }) => {
          const byInstance = filterValues(input.Filters, 'attachment.instance-id');
          const byId = filterValues(input.Filters, 'network-interface-id');
          const found = [...this.interfaces.values()].filter(
            (n) => (!byInstance || byInstance.includes(n.instanceId ?? '')) && (!byId || byId.includes(n.id)),
          );
          return { ...ok, NetworkInterfaces: found.map((n) => this.describeInterface(n)) };
        },
      ],
      [
        DescribeSecurityGroupsCommand,
        (input: { Filters?: Filter[]; GroupIds?: string[] }) => {
          const vpc = filterValues(input.Filters, 'vpc-id');
          const name = filterValues(input.Filters, 'group-name');
          const found = [...this.groups.values()].filter(
            (g) =>
              (!input.GroupIds || input.GroupIds.includes(g.id)) &&
              (!vpc || vpc.includes(g.vpcId)) &&
              (!name || name.includes(g.name)),
          );
          return { ...ok, SecurityGroups: found.map((g) => this.describeGroup(g)) };
        },
      ],
      [
        CreateSecurityGroupCommand,
        (input: {
          GroupName: string;
          VpcId: string;
          TagSpecifications?: { Tags?: { Key?: string; Value?: string }[] }[];
        }) => {
          if ([...this.groups.values()].some((g) => g.name === input.GroupName && g.vpcId === input.VpcId)) {
            throw awsError('InvalidGroup.Duplicate');
          }
          const id = this.newId('sg');
          const tags = Object.fromEntries(
            (input.TagSpecifications?.[0]?.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']),
          );
          // A new group comes with EC2's default egress rule: everything, IPv4.
          const rules = new Set(['out|-1||v4:0.0.0.0/0']);
          this.groups.set(id, { id, name: input.GroupName, vpcId: input.VpcId, tags, rules });
          this.log.push(`create-group ${input.GroupName}`);
          return { ...ok, GroupId: id };
        },
      ],
      [AuthorizeSecurityGroupIngressCommand, edit(false, true)],
      [AuthorizeSecurityGroupEgressCommand, edit(true, true)],
      [RevokeSecurityGroupIngressCommand, edit(false, false)],
      [RevokeSecurityGroupEgressCommand, edit(true, false)],
      [
        ModifyNetworkInterfaceAttributeCommand,
        (input: {
          NetworkInterfaceId: string;
          Groups?: string[];
          ConnectionTrackingSpecification?: Interface['conntrack'];
        }) => {
          const n = this.interfaces.get(input.NetworkInterfaceId);
          if (!n) throw awsError('InvalidNetworkInterfaceID.NotFound');
          if (input.Groups) {
            for (const g of input.Groups) if (!this.groups.has(g)) throw awsError('InvalidGroup.NotFound');
            n.groups = [...input.Groups];
            this.log.push(`groups ${n.id} ${input.Groups.map((g) => this.groups.get(g)?.name).join('+')}`);
          }
          if (input.ConnectionTrackingSpecification) {
            if (this.refuseConntrack) throw this.refuseConntrack;
            n.conntrack = { ...input.ConnectionTrackingSpecification };
            this.log.push(`conntrack ${n.id}`);
          }
          this.onModify?.(n.id, input.Groups);
          return ok;
        },
      ],
      [
        DescribeAddressesCommand,
        (input: { Filters?: Filter[]; AllocationIds?: string[] }) => {
          const byEni = filterValues(input.Filters, 'network-interface-id');
          if (input.AllocationIds?.some((id) => !this.addresses.some((a) => a.allocationId === id))) {
            throw awsError('InvalidAllocationID.NotFound');
          }
          const found = this.addresses.filter(
            (a) =>
              (!byEni || byEni.includes(a.networkInterfaceId ?? '')) &&
              (!input.AllocationIds || input.AllocationIds.includes(a.allocationId)),
          );
          return {
            ...ok,
            Addresses: found.map((a) => ({
              AllocationId: a.allocationId,
              PublicIp: a.publicIp,
              Domain: 'vpc',
              ...(a.associationId
                ? {
                    AssociationId: a.associationId,
                    NetworkInterfaceId: a.networkInterfaceId,
                    PrivateIpAddress: a.privateIp,
                  }
                : {}),
            })),
          };
        },
      ],
      [
        DisassociateAddressCommand,
        (input: { AssociationId: string }) => {
          const a = this.addresses.find((x) => x.associationId === input.AssociationId);
          if (!a) throw awsError('InvalidAssociationID.NotFound');
          a.associationId = undefined;
          a.networkInterfaceId = undefined;
          a.privateIp = undefined;
          this.log.push(`disassociate ${a.publicIp}`);
          return ok;
        },
      ],
      [
        AssociateAddressCommand,
        (input: { AllocationId: string; NetworkInterfaceId: string; PrivateIpAddress?: string }) => {
          const a = this.addresses.find((x) => x.allocationId === input.AllocationId);
          if (!a) throw awsError('InvalidAllocationID.NotFound');
          if (a.associationId) throw awsError('Resource.AlreadyAssociated');
          a.associationId = this.newId('eipassoc');
          a.networkInterfaceId = input.NetworkInterfaceId;
          a.privateIp = input.PrivateIpAddress;
          this.log.push(`associate ${a.publicIp}`);
          return { ...ok, AssociationId: a.associationId };
        },
      ],
      [
        DescribeNetworkAclsCommand,
        (input: { Filters?: Filter[]; NetworkAclIds?: string[] }) => {
          const bySubnet = filterValues(input.Filters, 'association.subnet-id');
          const byId = input.NetworkAclIds;
          if (byId?.some((id) => !this.acls.some((a) => a.id === id)))
            throw awsError('InvalidNetworkAclID.NotFound');
          const found = this.acls.filter(
            (a) =>
              (!bySubnet || a.subnets.some((s) => bySubnet.includes(s))) && (!byId || byId.includes(a.id)),
          );
          return {
            ...ok,
            NetworkAcls: found.map((a) => ({
              NetworkAclId: a.id,
              Entries: structuredClone(a.entries),
              Associations: a.subnets.map((s) => ({ SubnetId: s, NetworkAclId: a.id })),
            })),
          };
        },
      ],
      [
        CreateNetworkAclEntryCommand,
        (input: NetworkAclEntry & { NetworkAclId: string }) => {
          const acl = this.acls.find((a) => a.id === input.NetworkAclId);
          if (!acl) throw awsError('InvalidNetworkAclID.NotFound');
          if (acl.entries.some((e) => e.RuleNumber === input.RuleNumber && e.Egress === input.Egress)) {
            throw awsError('NetworkAclEntryAlreadyExists');
          }
          const { NetworkAclId: _id, ...entry } = input;
          acl.entries.push(entry);
          this.log.push(`acl-entry ${input.Egress ? 'out' : 'in'} ${input.RuleNumber}`);
          return ok;
        },
      ],
      [
        DeleteNetworkAclEntryCommand,
        (input: { NetworkAclId: string; RuleNumber: number; Egress: boolean }) => {
          const acl = this.acls.find((a) => a.id === input.NetworkAclId);
          const at = acl?.entries.findIndex(
            (e) => e.RuleNumber === input.RuleNumber && e.Egress === input.Egress,
          );
          if (!acl || at === undefined || at < 0) throw awsError('InvalidNetworkAclEntry.NotFound');
          acl.entries.splice(at, 1);
          this.log.push(`acl-delete ${input.Egress ? 'out' : 'in'} ${input.RuleNumber}`);
          return ok;
        },
      ],
      [
        DescribePrefixListsCommand,
        (input: { Filters?: Filter[] }) => {
          const names = filterValues(input.Filters, 'prefix-list-name') ?? [];
          return {
            ...ok,
            PrefixLists: names
              .filter((n) => n === 'com.amazonaws.us-east-1.s3')
              .map((n) => ({ PrefixListName: n, PrefixListId: s3PrefixList })),
          };
        },
      ],
      [
        CreateTagsCommand,
        (input: { Resources: string[]; Tags: { Key: string; Value: string }[] }) => {
          for (const r of input.Resources) {
            const target =
              r === instance.id ? instance.tags : (this.interfaces.get(r)?.tags ?? this.groups.get(r)?.tags);
            if (!target) throw awsError('InvalidID');
            for (const t of input.Tags) target[t.Key] = t.Value;
          }
          this.log.push(
            `tag ${input.Resources.join(',')} ${input.Tags.map((t) => `${t.Key}=${t.Value}`).join(',')}`,
          );
          return ok;
        },
      ],
      [
        DescribeInstancesCommand,
        (input: { InstanceIds?: string[] }) => {
          if (input.InstanceIds && !input.InstanceIds.includes(instance.id)) {
            throw awsError('InvalidInstanceID.NotFound');
          }
          return {
            ...ok,
            Reservations: [
              {
                Instances: [
                  {
                    InstanceId: instance.id,
                    State: { Name: this.instanceState },
                    Tags: Object.entries(instance.tags).map(([Key, Value]) => ({ Key, Value })),
                    BlockDeviceMappings: instance.volumes.map((v) => ({
                      DeviceName: v.deviceName,
                      Ebs: { VolumeId: v.volumeId, DeleteOnTermination: v.deleteOnTermination },
                    })),
                    NetworkInterfaces: [...this.interfaces.values()]
                      .filter((n) => n.instanceId === instance.id)
                      .map((n) => this.describeInterface(n)),
                    MetadataOptions: { HttpTokens: instance.httpTokens, HttpEndpoint: 'enabled' },
                  },
                ],
              },
            ],
          };
        },
      ],
      [
        DescribeInstanceAttributeCommand,
        (input: { Attribute: string }) => {
          if (input.Attribute === 'disableApiTermination') {
            return { ...ok, DisableApiTermination: { Value: instance.disableApiTermination } };
          }
          if (input.Attribute === 'disableApiStop')
            return { ...ok, DisableApiStop: { Value: instance.disableApiStop } };
          return { ...ok, InstanceInitiatedShutdownBehavior: { Value: instance.shutdownBehavior } };
        },
      ],
      [
        ModifyInstanceAttributeCommand,
        (input: {
          DisableApiTermination?: { Value: boolean };
          DisableApiStop?: { Value: boolean };
          InstanceInitiatedShutdownBehavior?: { Value: 'stop' | 'terminate' };
          BlockDeviceMappings?: { DeviceName: string; Ebs: { DeleteOnTermination: boolean } }[];
        }) => {
          if (input.DisableApiTermination) instance.disableApiTermination = input.DisableApiTermination.Value;
          if (input.DisableApiStop) instance.disableApiStop = input.DisableApiStop.Value;
          if (input.InstanceInitiatedShutdownBehavior) {
            instance.shutdownBehavior = input.InstanceInitiatedShutdownBehavior.Value;
          }
          for (const b of input.BlockDeviceMappings ?? []) {
            const v = instance.volumes.find((x) => x.deviceName === b.DeviceName);
            if (v) v.deleteOnTermination = b.Ebs.DeleteOnTermination;
          }
          this.log.push('modify-instance');
          return ok;
        },
      ],
      [
        DescribeIamInstanceProfileAssociationsCommand,
        () => ({
          ...ok,
          IamInstanceProfileAssociations: instance.profile
            ? [
                {
                  AssociationId: instance.profile.associationId,
                  InstanceId: instance.id,
                  State: 'associated',
                  IamInstanceProfile: { Arn: instance.profile.arn },
                },
              ]
            : [],
        }),
      ],
      [
        ReplaceIamInstanceProfileAssociationCommand,
        (input: { AssociationId: string; IamInstanceProfile: { Name?: string; Arn?: string } }) => {
          if (!instance.profile || instance.profile.associationId !== input.AssociationId) {
            throw awsError('InvalidAssociationID.NotFound');
          }
          const arn =
            input.IamInstanceProfile.Arn ??
            `arn:aws:iam::${sampleCase.accountId}:instance-profile/${input.IamInstanceProfile.Name}`;
          instance.profile = { associationId: this.newId('iip-assoc'), arn };
          this.log.push(`profile ${arn.split('/').pop()}`);
          return ok;
        },
      ],
      [
        ModifyInstanceMetadataOptionsCommand,
        (input: { HttpTokens: 'optional' | 'required' }) => {
          instance.httpTokens = input.HttpTokens;
          this.log.push(`imds ${input.HttpTokens}`);
          return ok;
        },
      ],
    ];
  }
}
