import {
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateNetworkAclEntryCommand,
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DescribeAddressesCommand,
  DescribeNetworkAclsCommand,
  DescribeNetworkInterfacesCommand,
  DescribePrefixListsCommand,
  DescribeSecurityGroupsCommand,
  DisassociateAddressCommand,
  type EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  type NetworkInterface,
  RevokeSecurityGroupEgressCommand,
  RevokeSecurityGroupIngressCommand,
  type SecurityGroup,
} from '@aws-sdk/client-ec2';
import { tagKeys } from '../../core/case.js';
import type { CaseStore, Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import {
  type ContainInput,
  changeKeys,
  changesOf,
  codeOf,
  containInputSchema,
  cordonGroupNames,
  type IsolateChanges,
  isolateChangesSchema,
  isTransient,
  previousContainment,
  progress,
  type Sleep,
} from '../../core/containment.js';
import {
  ConfigurationError,
  ContainmentError,
  describeError,
  IsolationVerificationError,
} from '../../core/errors.js';
import { aclView, hostCidr, planDenies } from '../../core/nacl.js';
import {
  conversionRules,
  gatewayPrefixListsNeeded,
  isolationRules,
  type Rule,
  ruleChanges,
  ruleKey,
  rulesKeepSsm,
  rulesOf,
  toIpPermissions,
} from './isolation-groups.js';

export const isolateInputSchema = containInputSchema;
export type IsolateInput = ContainInput;

export interface IsolateDeps {
  ec2: EC2Client;
  recorder: Recorder;
  cases: Pick<CaseStore, 'get' | 'saveChanges'>;
  config: Pick<
    Config,
    'CORDON_STAGE' | 'FORENSIC_CIDR' | 'CONNTRACK_WAIT_SECONDS' | 'BLOCK_REMOTE_IPS' | 'NACL_RULE_QUOTA'
  >;
  now: () => Date;
  sleep: Sleep;
}

export interface IsolateResult {
  instanceId: string;
  groups: IsolateChanges['groups'];
  enis: { networkInterfaceId: string; originalGroups: string[] | null; isolationGroupId: string }[];
  elasticIps: { allocationId: string; publicIp: string }[];
  naclEntries: IsolateChanges['naclEntries'];
  /** Seconds the interfaces held the conversion group before the isolation group replaced it. */
  waitedSeconds: number;
  /** Whether the isolation group lets the SSM agent reach SSM and S3 through the VPC's endpoints. */
  ssmEgress: boolean;
  verified: true;
  unavailable: { api: string; reason: string }[];
  warnings: string[];
  done: string[];
}

/**
 * The idle timeouts Cordon sets: the minimum EC2 allows for TCP established and UDP stream flows, and
 * UDP's own minimum. A tracked flow that stays idle this long is forgotten, and its next packet is
 * judged by the isolation group. (Nitro instances only; elsewhere the call fails and is recorded.)
 */
export const shortConntrack = { TcpEstablishedTimeout: 60, UdpStreamTimeout: 60, UdpTimeout: 30 } as const;

const verifyAttempts = 5;

/** What Isolate reads from the trigger and Triage's picture, and what its phases have done so far. */
interface IsolationRun {
  readonly case: IsolateInput['case'];
  readonly triage: IsolateInput['triage'];
  readonly deps: IsolateDeps;
  /** Saved on the case before each change it describes (`save`), for Release and for a re-run. */
  readonly changes: IsolateChanges;
  /** An earlier, unreleased case's changes: the instance's own originals where Cordon already holds it. */
  readonly inherited: IsolateChanges | undefined;
  readonly save: () => Promise<void>;
  interfaces: NetworkInterface[];
  /** The rules each VPC's pair of groups must hold, once the groups are ready. */
  desired: Map<string, { conversion: Rule[]; isolation: Rule[] }>;
  ssmEgress: boolean;
  /** The interfaces that did not already hold only the isolation group when read. */
  pending: NetworkInterface[];
  waitedSeconds: number;
  readonly unavailable: IsolateResult['unavailable'];
  readonly warnings: string[];
}

/** One phase of isolation; its name is what a failure reports as where isolation stopped. */
interface Phase {
  name: string;
  /** Whether this run takes the phase; a phase not taken is not reported as not applied either. */
  when?: (run: IsolationRun) => boolean;
  apply: (run: IsolationRun) => Promise<void>;
  /** Said once the phase is done, outside it: a disagreement to note is not the phase failing. */
  afterwards?: (run: IsolationRun) => Promise<void>;
}

const phases: Phase[] = [
  { name: 'read network interfaces', apply: readInterfaces },
  { name: 'isolation groups ready', apply: readyGroups, afterwards: noteIfPlanLosesSsm },
  { name: 'original groups recorded', apply: recordOriginalGroups },
  {
    name: 'network ACL denies for the remote addresses',
    when: (run) => run.deps.config.BLOCK_REMOTE_IPS && run.case.trigger.remoteIps.length > 0,
    apply: denyRemoteAddresses,
  },
  { name: 'Elastic IPs disassociated', apply: disassociateElasticIps },
  { name: 'connection-tracking timeouts shortened', apply: shortenConntrack },
  { name: 'conversion group applied', apply: applyConversionGroup },
  { name: 'conntrack wait', apply: waitForConntrack },
  { name: 'isolation group applied', apply: applyIsolationGroup },
  { name: 'isolation verified', apply: verify },
  { name: 'instance tagged isolated', apply: tagIsolated },
];

/**
 * Isolates every network interface of the instance: records its groups, shortens its connection-tracking
 * timeouts, moves it to the conversion group (which turns its flows untracked), waits, moves it to the
 * isolation group, then reads it back. Elastic IPs are disassociated and, by parameter, the remote
 * addresses named in the finding are denied in the subnets' network ACLs. Every change is saved on the
 * case before it is made, and a re-run picks up where an earlier attempt stopped.
 */
export async function isolateInstance(input: IsolateInput, deps: IsolateDeps): Promise<IsolateResult> {
  if (/\/0$/.test(deps.config.FORENSIC_CIDR)) {
    throw new ConfigurationError('FORENSIC_CIDR must name the forensic workstation, not the whole internet');
  }
  const run = await startRun(input, deps);
  const planned = phases.filter((p) => p.when?.(run) ?? true);
  const steps = progress(
    'Isolation',
    planned.map((p) => p.name),
  );
  for (const phase of planned) {
    await steps.phase(phase.name, () => phase.apply(run));
    await phase.afterwards?.(run);
  }
  for (const u of run.unavailable) {
    await deps.recorder.note(u.api, 'skipped', { detail: `unavailable: ${u.reason}` });
  }
  const { changes } = run;
  return {
    instanceId: run.case.instanceId,
    groups: changes.groups,
    enis: changes.enis.map((e) => ({
      networkInterfaceId: e.networkInterfaceId,
      originalGroups: e.originalGroups,
      isolationGroupId: pairOf(run, e.vpcId).isolationGroupId,
    })),
    elasticIps: changes.elasticIps.map((e) => ({ allocationId: e.allocationId, publicIp: e.publicIp })),
    naclEntries: changes.naclEntries,
    waitedSeconds: run.waitedSeconds,
    ssmEgress: run.ssmEgress,
    verified: true,
    unavailable: run.unavailable,
    warnings: run.warnings,
    done: steps.done,
  };
}

/** This case's own changes if an earlier attempt saved some, else a fresh record that keeps an earlier case's. */
async function startRun(input: IsolateInput, deps: IsolateDeps): Promise<IsolationRun> {
  const c = input.case;
  const record = await deps.cases.get(c.caseId);
  const own = changesOf(record, changeKeys.isolate, isolateChangesSchema);
  const previous = await previousContainment(deps.cases, record);
  const inherited = changesOf(previous, changeKeys.isolate, isolateChangesSchema);
  const changes: IsolateChanges = own ?? {
    ...(previous ? { previousCaseId: previous.caseId } : {}),
    groups: [],
    enis: [],
    elasticIps: [...(inherited?.elasticIps ?? [])],
    naclEntries: [...(inherited?.naclEntries ?? [])],
  };
  if (!own && previous) {
    await deps.recorder.note('take over earlier containment', 'info', {
      target: c.instanceId,
      detail: `case ${previous.caseId} still holds its changes on this instance; its originals are kept`,
    });
  }
  return {
    case: c,
    triage: input.triage,
    deps,
    changes,
    inherited,
    save: () => deps.cases.saveChanges(c.caseId, changeKeys.isolate, changes),
    interfaces: [],
    desired: new Map(),
    ssmEgress: false,
    pending: [],
    waitedSeconds: 0,
    unavailable: [],
    warnings: [],
  };
}

function pairOf(run: IsolationRun, vpcId: string): IsolateChanges['groups'][number] {
  const pair = run.changes.groups.find((g) => g.vpcId === vpcId);
  if (!pair) throw new ContainmentError(`no isolation groups for ${vpcId}`);
  return pair;
}

const isolationOf = (run: IsolationRun, n: NetworkInterface) =>
  pairOf(run, n.VpcId as string).isolationGroupId;

const holdsOnly = (n: NetworkInterface, groupId: string) =>
  (n.Groups ?? []).length === 1 && n.Groups?.[0]?.GroupId === groupId;

const eniEntry = (run: IsolationRun, n: NetworkInterface) =>
  run.changes.enis.find((e) => e.networkInterfaceId === n.NetworkInterfaceId);

async function readInterfaces(run: IsolationRun): Promise<void> {
  const found = await attachedInterfaces(run.deps.ec2, run.case.instanceId);
  if (found.length === 0) {
    throw new ContainmentError(`${run.case.instanceId} has no network interface to isolate`);
  }
  run.interfaces = found;
}

/**
 * The groups, per VPC. Only the instance's own VPC has endpoints in Triage's picture; an interface in
 * another VPC (a multi-VPC attachment) gets an isolation group without SSM egress.
 */
async function readyGroups(run: IsolationRun): Promise<void> {
  const { deps, changes } = run;
  const picture = run.triage.instance;
  const region = run.case.region;
  const names = cordonGroupNames(deps.config.CORDON_STAGE);
  const vpcs = [...new Set(run.interfaces.map((n) => n.VpcId as string))];
  const prefixLists = await s3PrefixLists(deps.ec2, picture.vpcEndpoints, region, run.unavailable);
  for (const vpcId of vpcs) {
    const settings = {
      forensicCidr: deps.config.FORENSIC_CIDR,
      endpoints: vpcId === picture.vpcId ? picture.vpcEndpoints : [],
      region,
      prefixLists,
    };
    const rules = { conversion: conversionRules(), isolation: isolationRules(settings) };
    run.desired.set(vpcId, rules);
    if (vpcId === picture.vpcId) run.ssmEgress = rulesKeepSsm(rules.isolation, settings);
    const conversionGroupId = await ensureGroup(
      deps,
      vpcId,
      names.conversion,
      'conversion',
      rules.conversion,
    );
    const isolationGroupId = await ensureGroup(deps, vpcId, names.isolation, 'isolation', rules.isolation);
    changes.groups = [
      ...changes.groups.filter((g) => g.vpcId !== vpcId),
      { vpcId, conversionGroupId, isolationGroupId },
    ];
  }
  await run.save();
}

async function noteIfPlanLosesSsm(run: IsolationRun): Promise<void> {
  if (!run.triage.plan.ssmSurvivesIsolation || run.ssmEgress) return;
  const warning =
    'the plan counted on SSM surviving isolation, but the isolation group could not allow every SSM and S3 endpoint';
  run.warnings.push(warning);
  await run.deps.recorder.note('isolation group and plan disagree', 'failed', {
    target: run.case.instanceId,
    detail: warning,
  });
}

async function recordOriginalGroups(run: IsolationRun): Promise<void> {
  const { changes } = run;
  const cordonIds = new Set(changes.groups.flatMap((g) => [g.conversionGroupId, g.isolationGroupId]));
  const isCordon = (g: { GroupId?: string; GroupName?: string }) =>
    cordonIds.has(g.GroupId ?? '') || /^cordon-[a-z0-9-]+-(?:untrack|isolation)$/.test(g.GroupName ?? '');
  for (const n of run.interfaces) {
    const id = n.NetworkInterfaceId as string;
    if (changes.enis.some((e) => e.networkInterfaceId === id)) continue;
    const live = (n.Groups ?? []).filter((g) => !isCordon(g)).map((g) => g.GroupId as string);
    const earlier = run.inherited?.enis.find((e) => e.networkInterfaceId === id);
    const fromTriage = run.triage.instance.enis
      .find((e) => e.networkInterfaceId === id)
      ?.groups.filter((g) => !cordonIds.has(g));
    const originalGroups = live.length
      ? live
      : (earlier?.originalGroups ?? (fromTriage?.length ? fromTriage : null));
    if (originalGroups === null) {
      run.warnings.push(
        `${id} already held only Cordon's groups and no record names its own: Release cannot restore them`,
      );
    }
    changes.enis.push({
      networkInterfaceId: id,
      vpcId: n.VpcId as string,
      originalGroups,
      // An earlier case already shortened the timeouts: its record holds the interface's own.
      ...(earlier?.originalConntrack !== undefined ? { originalConntrack: earlier.originalConntrack } : {}),
    });
  }
  await run.save();
}

async function disassociateElasticIps(run: IsolationRun): Promise<void> {
  const { ec2, recorder } = run.deps;
  const { changes } = run;
  const addresses = await ec2.send(
    new DescribeAddressesCommand({
      Filters: [
        { Name: 'network-interface-id', Values: run.interfaces.map((n) => n.NetworkInterfaceId as string) },
      ],
    }),
  );
  for (const a of addresses.Addresses ?? []) {
    if (!a.AssociationId || !a.AllocationId || !a.NetworkInterfaceId || !a.PrivateIpAddress || !a.PublicIp)
      continue;
    if (!changes.elasticIps.some((e) => e.allocationId === a.AllocationId)) {
      changes.elasticIps.push({
        allocationId: a.AllocationId,
        publicIp: a.PublicIp,
        networkInterfaceId: a.NetworkInterfaceId,
        privateIpAddress: a.PrivateIpAddress,
      });
      await run.save();
    }
    await recorder
      .run('ec2:DisassociateAddress', a.PublicIp, () =>
        ec2.send(new DisassociateAddressCommand({ AssociationId: a.AssociationId })),
      )
      .catch(async (error: unknown) => {
        // Already disassociated between our read and our call (a concurrent retry): nothing left to do.
        if (codeOf(error) === 'InvalidAssociationID.NotFound') return;
        if (isTransient(error)) throw error;
        // A refinement, not isolation itself: the isolation group drops the address's traffic anyway.
        const e = describeError(error);
        run.warnings.push(
          `${a.PublicIp} stays associated with ${a.NetworkInterfaceId}: ${e.name}: ${e.message}`,
        );
      });
  }
}

async function shortenConntrack(run: IsolationRun): Promise<void> {
  const { ec2, recorder } = run.deps;
  const entries = run.interfaces.flatMap((n) => {
    const entry = eniEntry(run, n);
    return entry ? [{ n, entry }] : [];
  });
  let recorded = false;
  for (const { n, entry } of entries) {
    if (entry.originalConntrack === undefined) {
      const live = n.ConnectionTrackingConfiguration;
      entry.originalConntrack = live
        ? {
            ...(live.TcpEstablishedTimeout !== undefined
              ? { tcpEstablishedTimeout: live.TcpEstablishedTimeout }
              : {}),
            ...(live.UdpStreamTimeout !== undefined ? { udpStreamTimeout: live.UdpStreamTimeout } : {}),
            ...(live.UdpTimeout !== undefined ? { udpTimeout: live.UdpTimeout } : {}),
          }
        : null;
      recorded = true;
    }
  }
  // Every interface's own timeouts are on the case before any of them changes; then all change at once.
  if (recorded) await run.save();
  await eachAtOnce(entries, async ({ entry }) => {
    try {
      await recorder.run(
        'ec2:ModifyNetworkInterfaceAttribute (conntrack timeouts)',
        entry.networkInterfaceId,
        () =>
          ec2.send(
            new ModifyNetworkInterfaceAttributeCommand({
              NetworkInterfaceId: entry.networkInterfaceId,
              ConnectionTrackingSpecification: { ...shortConntrack },
            }),
          ),
      );
    } catch (error) {
      // A refinement, not isolation itself: instances that are not Nitro-based (and the emulator)
      // refuse it. Tracked flows then keep their defaults; the timeline says so.
      const e = describeError(error);
      run.unavailable.push({
        api: `ec2:ModifyNetworkInterfaceAttribute ConnectionTrackingSpecification (${entry.networkInterfaceId})`,
        reason: `${e.name}: ${e.message}`,
      });
    }
  });
}

async function applyConversionGroup(run: IsolationRun): Promise<void> {
  const { ec2, recorder, now } = run.deps;
  run.pending = run.interfaces.filter((n) => !holdsOnly(n, isolationOf(run, n)));
  // Every interface at once: as many rounds for three interfaces as for one. When one fails, the
  // others' conversion times are saved all the same, so that a re-run does not wait for them again.
  await eachAtOnce(run.pending, async (n) => {
    const entry = eniEntry(run, n);
    if (!entry) return;
    const conversion = pairOf(run, entry.vpcId).conversionGroupId;
    if (!holdsOnly(n, conversion)) {
      await recorder.run(
        'ec2:ModifyNetworkInterfaceAttribute (conversion group)',
        entry.networkInterfaceId,
        () =>
          ec2.send(
            new ModifyNetworkInterfaceAttributeCommand({
              NetworkInterfaceId: entry.networkInterfaceId,
              Groups: [conversion],
            }),
          ),
      );
      entry.convertedAt = now().toISOString();
    }
    entry.convertedAt ??= now().toISOString();
  }).finally(() => run.save());
}

/** Waits out what is left of CONNTRACK_WAIT_SECONDS since the first interface took the conversion group. */
async function waitForConntrack(run: IsolationRun): Promise<void> {
  const { config, now } = run.deps;
  if (run.pending.length === 0) return;
  const started = Math.min(
    ...run.pending.map((n) => {
      const at = eniEntry(run, n)?.convertedAt;
      return at ? Date.parse(at) : now().getTime();
    }),
  );
  const remaining = Math.max(0, config.CONNTRACK_WAIT_SECONDS * 1000 - (now().getTime() - started));
  if (remaining > 0) await run.deps.sleep(remaining);
  await run.deps.recorder.note('conntrack wait', 'info', {
    target: run.case.instanceId,
    detail: `interfaces held the conversion group for ${config.CONNTRACK_WAIT_SECONDS} s before isolation`,
  });
  run.waitedSeconds = config.CONNTRACK_WAIT_SECONDS;
}

async function applyIsolationGroup(run: IsolationRun): Promise<void> {
  const { ec2, recorder } = run.deps;
  await eachAtOnce(run.pending, async (n) => {
    const id = n.NetworkInterfaceId as string;
    await recorder.run('ec2:ModifyNetworkInterfaceAttribute (isolation group)', id, () =>
      ec2.send(
        new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: id, Groups: [isolationOf(run, n)] }),
      ),
    );
  });
}

/**
 * Runs `work` for every item at once and waits for all of them, so that no call is still in flight
 * when the phase reports; then fails with the first failure, if any. A phase re-run after a failure
 * finds what already changed and does only the rest.
 */
async function eachAtOnce<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  const settled = await Promise.allSettled(items.map(work));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}

async function tagIsolated(run: IsolationRun): Promise<void> {
  const { ec2, recorder } = run.deps;
  const instanceId = run.case.instanceId;
  await recorder.run('ec2:CreateTags', instanceId, () =>
    ec2.send(
      new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: tagKeys.status, Value: 'isolated' }] }),
    ),
  );
}

async function attachedInterfaces(ec2: EC2Client, instanceId: string): Promise<NetworkInterface[]> {
  const out = await ec2.send(
    new DescribeNetworkInterfacesCommand({
      Filters: [{ Name: 'attachment.instance-id', Values: [instanceId] }],
    }),
  );
  return (out.NetworkInterfaces ?? []).filter((n) => n.NetworkInterfaceId && n.VpcId);
}

/** The prefix list of each S3 gateway endpoint Triage listed without one (AWS-managed, one per region). */
async function s3PrefixLists(
  ec2: EC2Client,
  endpoints: IsolateInput['triage']['instance']['vpcEndpoints'],
  region: string,
  unavailable: IsolateResult['unavailable'],
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

async function findGroup(ec2: EC2Client, vpcId: string, name: string): Promise<SecurityGroup | undefined> {
  const out = await ec2.send(
    new DescribeSecurityGroupsCommand({
      Filters: [
        { Name: 'vpc-id', Values: [vpcId] },
        { Name: 'group-name', Values: [name] },
      ],
    }),
  );
  return out.SecurityGroups?.find((g) => g.GroupName === name && g.VpcId === vpcId);
}

/**
 * Finds or creates one of Cordon's groups in a VPC and brings its rules to exactly `rules`. Safe when
 * cases race: a create that loses to another case's create uses the winner's group, and every case
 * converges the rules to the same set before it puts any interface in the group.
 */
async function ensureGroup(
  deps: IsolateDeps,
  vpcId: string,
  name: string,
  purpose: 'conversion' | 'isolation',
  rules: Rule[],
): Promise<string> {
  const { ec2, recorder } = deps;
  let group = await findGroup(ec2, vpcId, name);
  if (!group) {
    const description =
      purpose === 'isolation'
        ? 'Cordon isolation: no traffic but forensic access and the SSM and S3 endpoints'
        : 'Cordon conversion: allows everything so that existing flows become untracked';
    let created: string | undefined;
    try {
      created = (
        await recorder.run('ec2:CreateSecurityGroup', `${vpcId}/${name}`, () =>
          ec2.send(
            new CreateSecurityGroupCommand({
              GroupName: name,
              Description: description,
              VpcId: vpcId,
              TagSpecifications: [
                {
                  ResourceType: 'security-group',
                  Tags: [
                    { Key: tagKeys.managed, Value: 'true' },
                    { Key: tagKeys.purpose, Value: purpose },
                    { Key: 'Name', Value: name },
                  ],
                },
              ],
            }),
          ),
        )
      ).GroupId;
    } catch (error) {
      // Another case created it first: use theirs.
      if (codeOf(error) !== 'InvalidGroup.Duplicate') throw error;
    }
    group = created ? await readCreatedGroup(deps, created) : await findGroup(ec2, vpcId, name);
  }
  if (!group?.GroupId) throw new ContainmentError(`${name} could not be found or created in ${vpcId}`);
  const managed = group.Tags?.some((t) => t.Key === tagKeys.managed && t.Value === 'true');
  if (!managed) {
    throw new ContainmentError(
      `a security group named ${name} exists in ${vpcId} without Cordon's ${tagKeys.managed} tag; refusing to use it`,
    );
  }
  await converge(deps, group.GroupId, rules);
  return group.GroupId;
}

/** A group just created may take a moment to be readable (EC2 is eventually consistent). */
async function readCreatedGroup(deps: IsolateDeps, groupId: string): Promise<SecurityGroup | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      const out = await deps.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [groupId] }));
      return out.SecurityGroups?.[0];
    } catch (error) {
      if (codeOf(error) !== 'InvalidGroup.NotFound' || attempt >= 4) throw error;
      await deps.sleep(1000 * (attempt + 1));
    }
  }
}

async function converge(deps: IsolateDeps, groupId: string, rules: Rule[]): Promise<void> {
  const { ec2, recorder } = deps;
  for (let attempt = 0; attempt < 4; attempt++) {
    const group = (await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [groupId] })))
      .SecurityGroups?.[0];
    if (!group) throw new ContainmentError(`${groupId} disappeared while its rules were being set`);
    const { revoke, add } = ruleChanges(rulesOf(group), rules);
    if (revoke.length === 0 && add.length === 0) return;
    try {
      // Extra rules go first: a permissive leftover (a new group's default egress) must not outlive the check.
      const revokeIn = revoke.filter((r) => !r.egress);
      const revokeOut = revoke.filter((r) => r.egress);
      const addIn = add.filter((r) => !r.egress);
      const addOut = add.filter((r) => r.egress);
      if (revokeIn.length)
        await recorder.run('ec2:RevokeSecurityGroupIngress', groupId, () =>
          ec2.send(
            new RevokeSecurityGroupIngressCommand({
              GroupId: groupId,
              IpPermissions: toIpPermissions(revokeIn),
            }),
          ),
        );
      if (revokeOut.length)
        await recorder.run('ec2:RevokeSecurityGroupEgress', groupId, () =>
          ec2.send(
            new RevokeSecurityGroupEgressCommand({
              GroupId: groupId,
              IpPermissions: toIpPermissions(revokeOut),
            }),
          ),
        );
      if (addIn.length)
        await recorder.run('ec2:AuthorizeSecurityGroupIngress', groupId, () =>
          ec2.send(
            new AuthorizeSecurityGroupIngressCommand({
              GroupId: groupId,
              IpPermissions: toIpPermissions(addIn),
            }),
          ),
        );
      if (addOut.length)
        await recorder.run('ec2:AuthorizeSecurityGroupEgress', groupId, () =>
          ec2.send(
            new AuthorizeSecurityGroupEgressCommand({
              GroupId: groupId,
              IpPermissions: toIpPermissions(addOut),
            }),
          ),
        );
    } catch (error) {
      // A concurrent case changed the same rules between our read and our write: read again.
      if (!['InvalidPermission.Duplicate', 'InvalidPermission.NotFound'].includes(codeOf(error))) throw error;
    }
  }
  throw new ContainmentError(`the rules of ${groupId} did not settle; no interface was moved into it`);
}

/**
 * Denies each remote address of the finding, in and out, in the network ACL of every subnet the
 * instance has an interface in: stateless, so unlike a security group it cuts tracked flows too,
 * including those through NAT gateways. Placement (a free number ahead of the first allow, within the
 * per-direction quota) is functions/core/nacl.ts's. An equivalent deny someone else added is not
 * relied on: the IP-block playbook expires its own, and that must not lift this case's.
 */
async function denyRemoteAddresses(run: IsolationRun): Promise<void> {
  const { deps, changes, save, warnings } = run;
  const { ec2, recorder } = deps;
  const subnets = [...new Set(run.interfaces.map((n) => n.SubnetId as string).filter(Boolean))];
  const ranges = run.case.trigger.remoteIps
    .map((ip) => hostCidr(ip)?.cidr)
    .filter((r): r is string => r !== undefined);
  const skipped = new Set<string>();
  for (let attempt = 0; attempt < 3; attempt++) {
    const acls =
      (
        await ec2.send(
          new DescribeNetworkAclsCommand({ Filters: [{ Name: 'association.subnet-id', Values: subnets }] }),
        )
      ).NetworkAcls ?? [];
    let raced = false;
    for (const acl of acls) {
      const placements = planDenies(aclView(acl), ranges, {
        quota: deps.config.NACL_RULE_QUOTA,
        owned: changes.naclEntries,
      });
      for (const p of placements) {
        if (p.kind === 'present') continue;
        const direction = p.kind === 'skip' ? (p.egress ? 'outbound' : 'inbound') : '';
        if (p.kind === 'skip') {
          const warning = `${p.cidr} not denied ${direction} in ${p.networkAclId}: ${p.detail}`;
          if (!skipped.has(warning)) {
            skipped.add(warning);
            warnings.push(warning);
            await recorder.note('network ACL deny skipped', 'failed', {
              target: p.networkAclId,
              detail: warning,
            });
          }
          continue;
        }
        const entry = p.entry;
        changes.naclEntries.push(entry);
        await save();
        try {
          await recorder.run(
            `ec2:CreateNetworkAclEntry (${entry.egress ? 'outbound' : 'inbound'} deny)`,
            `${entry.networkAclId}#${entry.ruleNumber}`,
            () =>
              ec2.send(
                new CreateNetworkAclEntryCommand({
                  NetworkAclId: entry.networkAclId,
                  RuleNumber: entry.ruleNumber,
                  Egress: entry.egress,
                  Protocol: '-1',
                  RuleAction: 'deny',
                  ...(entry.cidr.includes(':') ? { Ipv6CidrBlock: entry.cidr } : { CidrBlock: entry.cidr }),
                }),
              ),
          );
        } catch (error) {
          changes.naclEntries.splice(changes.naclEntries.indexOf(entry), 1);
          await save();
          // Another change took the number between our read and our write: read the ACLs again.
          if (codeOf(error) === 'NetworkAclEntryAlreadyExists') {
            raced = true;
            break;
          }
          if (isTransient(error)) throw error;
          // A refinement, not isolation itself: say what is missing and go on isolating.
          const e = describeError(error);
          warnings.push(`${entry.cidr} not denied in ${entry.networkAclId}: ${e.name}: ${e.message}`);
        }
      }
      if (raced) break;
    }
    if (!raced) return;
  }
  warnings.push(
    'network ACL rule numbers kept being taken by concurrent changes: some denies were not added',
  );
}

/** Reads every interface and group back until they are exactly as meant, or says what differs. */
async function verify(run: IsolationRun): Promise<void> {
  const { deps, changes, desired } = run;
  const { ec2 } = deps;
  const instanceId = run.case.instanceId;
  let problems: string[] = [];
  for (let attempt = 0; attempt < verifyAttempts; attempt++) {
    if (attempt > 0) await deps.sleep(1000 * attempt);
    problems = [];
    // Read by attachment, not by the ids we moved: an interface attached meanwhile must show up too.
    for (const n of await attachedInterfaces(ec2, instanceId)) {
      const pair = changes.groups.find((g) => g.vpcId === n.VpcId);
      const groups = (n.Groups ?? []).map((g) => g.GroupId);
      if (!pair || groups.length !== 1 || groups[0] !== pair.isolationGroupId) {
        problems.push(`${n.NetworkInterfaceId} holds ${groups.join(', ') || 'no group'}`);
      }
    }
    for (const pair of changes.groups) {
      const want = desired.get(pair.vpcId)?.isolation ?? [];
      const group = (await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [pair.isolationGroupId] })))
        .SecurityGroups?.[0];
      const have = new Set(rulesOf(group ?? {}).map(ruleKey));
      if (have.size !== want.length || want.some((r) => !have.has(ruleKey(r)))) {
        problems.push(`${pair.isolationGroupId} does not hold exactly the isolation rules`);
      }
    }
    if (problems.length === 0) return;
  }
  throw new IsolationVerificationError(
    `isolation of ${instanceId} could not be proven: ${problems.join('; ')}`,
  );
}
