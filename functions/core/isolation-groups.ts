import {
  type Address,
  DescribeNetworkInterfacesCommand,
  DescribePrefixListsCommand,
  DescribeSecurityGroupsCommand,
  type EC2Client,
  type GroupIdentifier,
  type IpPermission,
  type NetworkInterface,
  type SecurityGroup,
} from '@aws-sdk/client-ec2';
import { tagKeys } from './case.js';
import { cordonGroupNames } from './containment.js';
import { serviceOf, ssmEndpointServices, ssmSurvivesIsolation } from './endpoints.js';
import { describeError } from './errors.js';
import type { TriageResult } from './state.js';

/**
 * The two security groups Isolate puts on every network interface, as plain data: the rules each must
 * hold, how to compare them with what EC2 reports, and how to send them; which group each interface
 * ends with, and which Elastic IPs leave it. Isolate and `cordon start --dry-run` decide with these
 * same functions; the only AWS calls here are the two reads both make (at the end).
 */

type Endpoint = TriageResult['instance']['vpcEndpoints'][number];

/** Re-exported so that Triage's plan and the groups built here come from one definition. */
export { ssmSurvivesIsolation };

export type Peer = { cidr4: string } | { cidr6: string } | { group: string } | { prefixList: string };

export interface Rule {
  egress: boolean;
  /** `-1` (every protocol) or `tcp`. */
  protocol: string;
  fromPort?: number;
  toPort?: number;
  peer: Peer;
}

const everywhere: Peer[] = [{ cidr4: '0.0.0.0/0' }, { cidr6: '::/0' }];
const https = { protocol: 'tcp', fromPort: 443, toPort: 443 } as const;

/**
 * The conversion group: every protocol, every port, in and out, from and to 0.0.0.0/0 and ::/0. AWS
 * tracks no flow that such rules allow in both directions (except flows through NAT gateways, NLBs,
 * PrivateLink and the like, which are always tracked), so once an interface holds it, its flows are
 * untracked and the next group change stops them at once instead of letting them live on.
 */
export function conversionRules(): Rule[] {
  return [false, true].flatMap((egress) => everywhere.map((peer) => ({ egress, protocol: '-1', peer })));
}

export interface IsolationSettings {
  /** `''` for none, else an IPv4 or IPv6 CIDR (config FORENSIC_CIDR). */
  forensicCidr: string;
  endpoints: readonly Endpoint[];
  region: string;
  /** Prefix lists of S3 gateway endpoints by service name, for endpoints Triage gave none for. */
  prefixLists?: ReadonlyMap<string, string>;
}

/**
 * The isolation group: no ingress but SSH and RDP from the forensic workstation, if one is configured;
 * no egress but HTTPS to the interface endpoints of ssm, ssmmessages and ec2messages (by their
 * security groups) and to S3 (the gateway endpoint's prefix list, or the interface endpoint's groups).
 * That egress is exactly what `ssmSurvivesIsolation` counts on.
 */
export function isolationRules(settings: IsolationSettings): Rule[] {
  const rules: Rule[] = [];
  const cidr = settings.forensicCidr;
  if (cidr) {
    const peer: Peer = cidr.includes(':') ? { cidr6: cidr } : { cidr4: cidr };
    for (const port of [22, 3389])
      rules.push({ egress: false, protocol: 'tcp', fromPort: port, toPort: port, peer });
  }
  for (const endpoint of settings.endpoints) {
    const service = serviceOf(endpoint, settings.region);
    const ssm = (ssmEndpointServices as readonly string[]).includes(service ?? '');
    if (!ssm && service !== 's3') continue;
    if (endpoint.type === 'Gateway') {
      const prefixList = endpoint.prefixListId ?? settings.prefixLists?.get(endpoint.serviceName);
      if (service === 's3' && prefixList) rules.push({ egress: true, ...https, peer: { prefixList } });
      continue;
    }
    for (const group of endpoint.groups) rules.push({ egress: true, ...https, peer: { group } });
  }
  return unique(rules);
}

/** S3 gateway endpoints whose prefix list Isolate must look up (Triage does not record it). */
export function gatewayPrefixListsNeeded(endpoints: readonly Endpoint[], region: string): string[] {
  return [
    ...new Set(
      endpoints
        .filter((e) => e.type === 'Gateway' && !e.prefixListId && serviceOf(e, region) === 's3')
        .map((e) => e.serviceName),
    ),
  ];
}

/**
 * Whether `rules` let the SSM agent through: HTTPS to a group of each SSM interface endpoint and to S3
 * (an S3 gateway endpoint's prefix list or an S3 interface endpoint's group). Isolate compares this with
 * Triage's plan and says so when the two differ.
 */
export function rulesKeepSsm(rules: readonly Rule[], settings: IsolationSettings): boolean {
  const allowed = new Set(rules.filter((r) => r.egress && r.fromPort === 443).map((r) => peerKey(r.peer)));
  const reaches = (e: Endpoint) => {
    if (e.type !== 'Gateway') return e.groups.some((group) => allowed.has(peerKey({ group })));
    const prefixList = e.prefixListId ?? settings.prefixLists?.get(e.serviceName);
    return prefixList !== undefined && allowed.has(peerKey({ prefixList }));
  };
  const of = (service: string) => settings.endpoints.filter((e) => serviceOf(e, settings.region) === service);
  return [...ssmEndpointServices, 's3'].every((s) => of(s).some(reaches));
}

function peerKey(p: Peer): string {
  if ('cidr4' in p) return `v4:${p.cidr4}`;
  if ('cidr6' in p) return `v6:${p.cidr6.toLowerCase()}`;
  if ('group' in p) return `sg:${p.group}`;
  return `pl:${p.prefixList}`;
}

/** One string per rule, the same for a rule we mean to write and the rule EC2 reports back. */
export function ruleKey(rule: Rule): string {
  const ports = rule.protocol === '-1' ? '' : `${rule.fromPort ?? ''}-${rule.toPort ?? ''}`;
  return `${rule.egress ? 'out' : 'in'}|${rule.protocol}|${ports}|${peerKey(rule.peer)}`;
}

function unique(rules: Rule[]): Rule[] {
  const seen = new Map<string, Rule>();
  for (const r of rules) seen.set(ruleKey(r), r);
  return [...seen.values()];
}

function protocolName(p: string | undefined): string {
  if (p === undefined || p === '-1' || p === 'all') return '-1';
  if (p === '6') return 'tcp';
  if (p === '17') return 'udp';
  if (p === '1') return 'icmp';
  return p.toLowerCase();
}

/** The rules a group holds, one per peer, as DescribeSecurityGroups reports them. */
export function rulesOf(group: Pick<SecurityGroup, 'IpPermissions' | 'IpPermissionsEgress'>): Rule[] {
  const flatten = (permissions: IpPermission[] | undefined, egress: boolean): Rule[] =>
    (permissions ?? []).flatMap((p) => {
      const protocol = protocolName(p.IpProtocol);
      const base =
        protocol === '-1'
          ? { egress, protocol }
          : { egress, protocol, fromPort: p.FromPort ?? -1, toPort: p.ToPort ?? -1 };
      const peers: Peer[] = [
        ...(p.IpRanges ?? []).map((r) => ({ cidr4: r.CidrIp ?? '' })),
        ...(p.Ipv6Ranges ?? []).map((r) => ({ cidr6: r.CidrIpv6 ?? '' })),
        ...(p.UserIdGroupPairs ?? []).map((g) => ({ group: g.GroupId ?? '' })),
        ...(p.PrefixListIds ?? []).map((l) => ({ prefixList: l.PrefixListId ?? '' })),
      ];
      return peers.map((peer) => ({ ...base, peer }));
    });
  return [...flatten(group.IpPermissions, false), ...flatten(group.IpPermissionsEgress, true)];
}

/** The IpPermissions that add (or revoke) exactly these rules. */
export function toIpPermissions(rules: readonly Rule[]): IpPermission[] {
  return rules.map((r) => {
    const p: IpPermission = { IpProtocol: r.protocol };
    if (r.protocol !== '-1') {
      p.FromPort = r.fromPort;
      p.ToPort = r.toPort;
    }
    const peer = r.peer;
    if ('cidr4' in peer) p.IpRanges = [{ CidrIp: peer.cidr4 }];
    else if ('cidr6' in peer) p.Ipv6Ranges = [{ CidrIpv6: peer.cidr6 }];
    else if ('group' in peer) p.UserIdGroupPairs = [{ GroupId: peer.group }];
    else p.PrefixListIds = [{ PrefixListId: peer.prefixList }];
    return p;
  });
}

/** What to revoke and what to add so that a group holds exactly `desired`. */
export function ruleChanges(
  actual: readonly Rule[],
  desired: readonly Rule[],
): { revoke: Rule[]; add: Rule[] } {
  const want = new Set(desired.map(ruleKey));
  const have = new Set(actual.map(ruleKey));
  return {
    revoke: actual.filter((r) => !want.has(ruleKey(r))),
    add: desired.filter((r) => !have.has(ruleKey(r))),
  };
}

/** Whether a group belongs to Cordon (either of its pairs, in any stage), not to the instance. */
export function isCordonGroup(
  group: Pick<GroupIdentifier, 'GroupId' | 'GroupName'>,
  cordonIds: ReadonlySet<string>,
  stage: string,
): boolean {
  const names = cordonGroupNames(stage);
  return (
    cordonIds.has(group.GroupId ?? '') ||
    group.GroupName === names.conversion ||
    group.GroupName === names.isolation ||
    /^cordon-[a-z0-9-]+-(?:untrack|isolation)$/.test(group.GroupName ?? '')
  );
}

/** The ids of Cordon's pair of groups in one VPC, as read: undefined for one that does not exist yet. */
export function cordonPairIn(
  found: readonly SecurityGroup[],
  vpcId: string,
  stage: string,
): { conversionGroupId: string | undefined; isolationGroupId: string | undefined } {
  const names = cordonGroupNames(stage);
  const id = (name: string) => found.find((g) => g.GroupName === name && g.VpcId === vpcId)?.GroupId;
  return { conversionGroupId: id(names.conversion), isolationGroupId: id(names.isolation) };
}

/** A group bearing Cordon's name without Cordon's managed tag: Isolate refuses to use it. */
export function unmanagedCordonGroup(found: readonly SecurityGroup[]): SecurityGroup | undefined {
  return found.find((g) => !g.Tags?.some((t) => t.Key === tagKeys.managed && t.Value === 'true'));
}

/** The Elastic IPs associated with these interfaces, each with what disassociating and restoring it needs. */
export function associatedElasticIps(addresses: readonly Address[], interfaceIds: ReadonlySet<string>) {
  return addresses.filter(
    (
      a,
    ): a is Address & {
      AssociationId: string;
      AllocationId: string;
      NetworkInterfaceId: string;
      PrivateIpAddress: string;
      PublicIp: string;
    } =>
      Boolean(a.AssociationId && a.AllocationId && a.PrivateIpAddress && a.PublicIp) &&
      interfaceIds.has(a.NetworkInterfaceId ?? ''),
  );
}

/** The interfaces attached to the instance (each with an id and a VPC): the ones Isolate moves. */
export async function attachedInterfaces(ec2: EC2Client, instanceId: string): Promise<NetworkInterface[]> {
  const out = await ec2.send(
    new DescribeNetworkInterfacesCommand({
      Filters: [{ Name: 'attachment.instance-id', Values: [instanceId] }],
    }),
  );
  return (out.NetworkInterfaces ?? []).filter((n) => n.NetworkInterfaceId && n.VpcId);
}

/** Cordon's groups of this stage in the given VPCs, with their rules and tags: one call. */
export async function cordonGroups(
  ec2: EC2Client,
  vpcIds: string[],
  stage: string,
): Promise<SecurityGroup[]> {
  const names = cordonGroupNames(stage);
  const out = await ec2.send(
    new DescribeSecurityGroupsCommand({
      Filters: [
        { Name: 'vpc-id', Values: vpcIds },
        { Name: 'group-name', Values: [names.conversion, names.isolation] },
      ],
    }),
  );
  return out.SecurityGroups ?? [];
}

/**
 * The prefix list of each S3 gateway endpoint the picture lists without one (AWS-managed, one per
 * region). A refused read is added to `unavailable`: the isolation group then has no S3 egress.
 */
export async function s3PrefixLists(
  ec2: EC2Client,
  endpoints: readonly Endpoint[],
  region: string,
  unavailable: { api: string; reason: string }[],
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const names = gatewayPrefixListsNeeded(endpoints, region);
  if (names.length === 0) return found;
  try {
    const out = await ec2.send(
      new DescribePrefixListsCommand({ Filters: [{ Name: 'prefix-list-name', Values: names }] }),
    );
    for (const l of out.PrefixLists ?? []) {
      if (l.PrefixListName && l.PrefixListId) found.set(l.PrefixListName, l.PrefixListId);
    }
  } catch (error) {
    const e = describeError(error);
    unavailable.push({ api: 'ec2:DescribePrefixLists', reason: `${e.name}: ${e.message}` });
  }
  return found;
}
