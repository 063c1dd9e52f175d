import {
  type Address,
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateNetworkAclEntryCommand,
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DescribeAddressesCommand,
  DescribeNetworkAclsCommand,
  DescribeSecurityGroupsCommand,
  DescribeVpcsCommand,
  DisassociateAddressCommand,
  type EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  type NetworkInterface,
  RevokeSecurityGroupEgressCommand,
  RevokeSecurityGroupIngressCommand,
  type SecurityGroup,
} from '@aws-sdk/client-ec2';
import { type IsolateChanges, isolateAction } from '../../core/actions/isolate.js';
import { tagKeys } from '../../core/case.js';
import { type CaseStore, instanceKey, type Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import {
  type ContainInput,
  changeKeys,
  codeOf,
  containInputSchema,
  cordonGroupNames,
  isTransient,
  progress,
  type Sleep,
} from '../../core/containment.js';
import {
  ConfigurationError,
  ContainmentError,
  describeError,
  IsolationVerificationError,
} from '../../core/errors.js';
import {
  associatedElasticIps,
  attachedInterfaces,
  conversionRules,
  cordonGroups,
  cordonPairIn,
  isCordonGroup,
  isolationRules,
  type Rule,
  ruleChanges,
  ruleKey,
  rulesKeepSsm,
  rulesOf,
  s3PrefixLists,
  toIpPermissions,
  unmanagedCordonGroup,
} from '../../core/isolation-groups.js';
import { aclView, hostCidr, planDenies } from '../../core/nacl.js';
import { previousContainment } from '../../core/takeover.js';

export const isolateInputSchema = containInputSchema;
export type IsolateInput = ContainInput;

export interface IsolateDeps {
  ec2: EC2Client;
  recorder: Recorder;
  cases: Pick<CaseStore, 'get' | 'saveChanges' | 'byInstance'>;
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
  /** When the step finished: the end of containment, with Revoke's, for the time-to-containment metric. */
  finishedAt: string;
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
  /** Resolves once every save so far has been written. */
  readonly saved: () => Promise<void>;
  interfaces: NetworkInterface[];
  /** Cordon's groups as round 1 found them, in the VPCs of the interfaces. */
  readonly found: SecurityGroup[];
  readonly prefixLists: Map<string, string>;
  /** Whether the instance's VPC has IPv6: a group created there starts with an IPv6 egress rule too. */
  readonly ipv6: boolean;
  /** The Elastic IPs associated with the interfaces, as round 1 read them. */
  readonly addresses: Address[];
  /** Network ACL entries planned in round 2, added in round 4. */
  naclPlan: IsolateChanges['naclEntries'];
  /** The rules each VPC's pair of groups must hold, once the groups are ready. */
  desired: Map<string, { conversion: Rule[]; isolation: Rule[] }>;
  ssmEgress: boolean;
  /** The interfaces that did not already hold only the isolation group when read. */
  pending: NetworkInterface[];
  waitedSeconds: number;
  readonly unavailable: IsolateResult['unavailable'];
  readonly warnings: string[];
}

/**
 * Isolates every network interface of the instance in as few rounds of AWS calls as the changes allow,
 * every interface at once in each:
 *   1. everything read at once: the case, the interfaces, Cordon's groups in the VPC, the addresses, the
 *      S3 prefix lists, the VPC (whether it has IPv6);
 *   2. the interfaces' own groups, timeouts and addresses saved on the case, beside the isolation
 *      groups created where missing (or their rules put right);
 *   3. a new group's rules set, beside the save of the groups (a VPC that has them skips this round);
 *   4. the conversion group on every interface (its flows become untracked), beside the shorter
 *      connection-tracking timeouts, the Elastic IPs disassociated and, by parameter, the ACL denies;
 *   5. after the connection-tracking wait, the isolation group on every interface;
 * then every interface and the isolation group read back until they are exactly as meant, and the
 * instance tagged. Every change is saved on the case before it is made, and a re-run picks up where an
 * earlier attempt stopped.
 */
export async function isolateInstance(input: IsolateInput, deps: IsolateDeps): Promise<IsolateResult> {
  if (/\/0$/.test(deps.config.FORENSIC_CIDR)) {
    throw new ConfigurationError('FORENSIC_CIDR must name the forensic workstation, not the whole internet');
  }
  const denyRemote = deps.config.BLOCK_REMOTE_IPS && input.case.trigger.remoteIps.length > 0;
  const labels = {
    read: 'read network interfaces',
    groups: 'isolation groups ready',
    originals: 'original groups recorded',
    nacl: 'network ACL denies for the remote addresses',
    eips: 'Elastic IPs disassociated',
    conntrack: 'connection-tracking timeouts shortened',
    conversion: 'conversion group applied',
    wait: 'conntrack wait',
    isolation: 'isolation group applied',
    verified: 'isolation verified',
    tagged: 'instance tagged isolated',
  };
  const planned = Object.values(labels).filter((l) => denyRemote || l !== labels.nacl);
  const steps = progress('Isolation', planned);
  const run = await steps.phase(labels.read, () => startRun(input, deps));
  const prepared = prepare(run, denyRemote);
  await steps.together([
    { label: labels.groups, work: () => prepared.groupsReady },
    { label: labels.originals, work: () => prepared.recorded },
  ]);
  await noteIfPlanLosesSsm(run);
  await steps.together([
    ...(denyRemote ? [{ label: labels.nacl, work: () => addRemoteDenies(run) }] : []),
    { label: labels.eips, work: () => disassociateElasticIps(run) },
    { label: labels.conntrack, work: () => shortenConntrack(run) },
    { label: labels.conversion, work: () => applyConversionGroup(run) },
  ]);
  await steps.phase(labels.wait, () => waitForConntrack(run));
  await steps.phase(labels.isolation, () => applyIsolationGroup(run));
  await steps.phase(labels.verified, () => verify(run));
  await steps.phase(labels.tagged, () => tagIsolated(run));
  await run.saved();
  for (const u of run.unavailable) {
    await deps.recorder.note(u.api, 'skipped', { detail: `unavailable: ${u.reason}` });
  }
  await steps.recorded(deps.recorder);
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
    finishedAt: deps.now().toISOString(),
  };
}

/**
 * Round 1: the case (this case's own changes if an earlier attempt saved some, else a fresh record that
 * keeps an earlier case's) and everything isolation needs of AWS, read at once.
 */
async function startRun(input: IsolateInput, deps: IsolateDeps): Promise<IsolationRun> {
  const c = input.case;
  const { ec2 } = deps;
  const unavailable: IsolateResult['unavailable'] = [];
  const vpcId = input.triage.instance.vpcId;
  const [record, recent, interfaces, prefixLists, groups, addresses, ipv6] = await Promise.all([
    deps.cases.get(c.caseId),
    deps.cases.byInstance(instanceKey(c)),
    attachedInterfaces(ec2, c.instanceId),
    s3PrefixLists(ec2, input.triage.instance.vpcEndpoints, c.region, unavailable),
    vpcId ? cordonGroups(ec2, [vpcId], deps.config.CORDON_STAGE) : [],
    ec2.send(new DescribeAddressesCommand({})),
    vpcId ? hasIpv6(ec2, vpcId) : false,
  ]);
  if (interfaces.length === 0)
    throw new ContainmentError(`${c.instanceId} has no network interface to isolate`);
  // Interfaces in another VPC (a multi-VPC attachment): their groups are read now, one more round.
  const others = [...new Set(interfaces.map((n) => n.VpcId as string))].filter((v) => v !== vpcId);
  const found = others.length
    ? [...groups, ...(await cordonGroups(ec2, others, deps.config.CORDON_STAGE))]
    : groups;
  const own = isolateAction.read(record);
  const previous = await previousContainment(
    deps.cases,
    record ?? { caseId: c.caseId, openedAt: c.openedAt },
    recent,
  );
  const inherited = isolateAction.read(previous);
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
  const ids = new Set(interfaces.map((n) => n.NetworkInterfaceId as string));
  // One save at a time, each sending the record as it is then: a later save never loses an earlier one.
  let saving: Promise<void> = Promise.resolve();
  const save = () => {
    saving = saving.then(
      () => deps.cases.saveChanges(c.caseId, changeKeys.isolate, structuredClone(changes)),
      () => deps.cases.saveChanges(c.caseId, changeKeys.isolate, structuredClone(changes)),
    );
    return saving;
  };
  return {
    case: c,
    triage: input.triage,
    deps,
    changes,
    inherited,
    save,
    saved: () => saving,
    interfaces,
    found,
    prefixLists,
    ipv6,
    addresses: associatedElasticIps(addresses.Addresses ?? [], ids),
    desired: new Map(),
    ssmEgress: false,
    pending: [],
    naclPlan: [],
    waitedSeconds: 0,
    unavailable,
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

/**
 * Rounds 2 and 3. Round 2: the interfaces' own groups, timeouts and addresses saved, beside the
 * isolation groups created where missing (rules put right where they exist) and, by parameter, the
 * subnets' ACLs read. Round 3, where it is needed: a new group's rules set beside the save of the groups
 * and the ACL entries about to be added. No interface moves before both.
 */
function prepare(
  run: IsolationRun,
  denyRemote: boolean,
): { recorded: Promise<void>; groupsReady: Promise<void> } {
  // A group with Cordon's name that is not Cordon's: refused before anything is written or created.
  const squatter = unmanagedCordonGroup(run.found);
  if (squatter) {
    const refused = Promise.reject(
      new ContainmentError(
        `a security group named ${squatter.GroupName} exists in ${squatter.VpcId} without Cordon's ${tagKeys.managed} tag; refusing to use it`,
      ),
    );
    refused.catch(() => undefined);
    return { recorded: refused, groupsReady: refused };
  }
  recordOriginals(run);
  const vpcs = [...new Set(run.interfaces.map((n) => n.VpcId as string))];
  const ready = vpcs.map((vpcId) => readyPair(run, vpcId));
  const setGroups = (pairs: IsolateChanges['groups']) => {
    run.changes.groups = [
      ...run.changes.groups.filter((g) => !pairs.some((p) => p.vpcId === g.vpcId)),
      ...pairs,
    ];
  };
  // Groups found in round 1 go into the first save; only created ones need a second.
  setGroups(ready.flatMap((r) => (r.known ? [r.known] : [])));
  const recorded = run.save();
  const acls = denyRemote ? planRemoteDenies(run) : Promise.resolve(false);
  const groupsReady = (async () => {
    setGroups(await Promise.all(ready.map((r) => r.ids)));
    const planned = await acls;
    const again = ready.some((r) => !r.known) || planned;
    // The groups (and ACL entries) are on the case before any interface moves into them.
    await Promise.all([again ? run.save() : recorded, ...ready.map((r) => r.rules)]);
  })();
  // Each is awaited above or by the caller; one that a failure before it leaves unawaited is not lost.
  for (const p of [acls, ...ready.flatMap((r) => [r.ids, r.rules])]) p.catch(() => undefined);
  return { recorded, groupsReady };
}

/**
 * A VPC's pair of groups: their ids (found in round 1, or created now) and, once known, their rules
 * brought to exactly what they must hold. Only the instance's own VPC has endpoints in the picture; an
 * interface in another VPC gets an isolation group without SSM egress.
 */
function readyPair(
  run: IsolationRun,
  vpcId: string,
): {
  known: IsolateChanges['groups'][number] | undefined;
  ids: Promise<IsolateChanges['groups'][number]>;
  rules: Promise<void>;
} {
  const { deps } = run;
  const picture = run.triage.instance;
  const names = cordonGroupNames(deps.config.CORDON_STAGE);
  const settings = {
    forensicCidr: deps.config.FORENSIC_CIDR,
    endpoints: vpcId === picture.vpcId ? picture.vpcEndpoints : [],
    region: run.case.region,
    prefixLists: run.prefixLists,
  };
  const rules = { conversion: conversionRules(), isolation: isolationRules(settings) };
  run.desired.set(vpcId, rules);
  if (vpcId === picture.vpcId) run.ssmEgress = rulesKeepSsm(rules.isolation, settings);
  const conversion = readyGroup(run, vpcId, names.conversion, 'conversion', rules.conversion);
  const isolation = readyGroup(run, vpcId, names.isolation, 'isolation', rules.isolation);
  const { conversionGroupId, isolationGroupId } = cordonPairIn(run.found, vpcId, deps.config.CORDON_STAGE);
  return {
    known: conversionGroupId && isolationGroupId ? { vpcId, conversionGroupId, isolationGroupId } : undefined,
    ids: Promise.all([conversion.id, isolation.id]).then(([conversionGroupId, isolationGroupId]) => ({
      vpcId,
      conversionGroupId,
      isolationGroupId,
    })),
    rules: Promise.all([conversion.rules, isolation.rules]).then(() => undefined),
  };
}

/**
 * One of Cordon's groups in a VPC. Found in round 1: its rules are put right at once (usually nothing
 * to do). Missing: created, tagged in the same call, then its rules set from what a new group holds
 * (egress to everywhere, IPv6 too where the VPC has it). Safe when cases race: a create that loses to
 * another case's create, or rules that change under us, fall back to reading the group and converging
 * its rules (`ensureGroup`), and every interface is read back against the rules before isolation is
 * declared.
 */
function readyGroup(
  run: IsolationRun,
  vpcId: string,
  name: string,
  purpose: 'conversion' | 'isolation',
  rules: Rule[],
): { id: Promise<string>; rules: Promise<void> } {
  const { deps } = run;
  const found = run.found.find((g) => g.GroupName === name && g.VpcId === vpcId);
  if (found?.GroupId) {
    const id = found.GroupId;
    const managed = found.Tags?.some((t) => t.Key === tagKeys.managed && t.Value === 'true');
    if (!managed) {
      const refused = Promise.reject(
        new ContainmentError(
          `a security group named ${name} exists in ${vpcId} without Cordon's ${tagKeys.managed} tag; refusing to use it`,
        ),
      );
      refused.catch(() => undefined);
      return { id: refused, rules: refused.then(() => undefined) };
    }
    return { id: Promise.resolve(id), rules: setRules(deps, id, rulesOf(found), rules) };
  }
  // Another VPC than the instance's own: whether it has IPv6 is not known, so read before writing.
  if (vpcId !== run.triage.instance.vpcId) {
    const id = ensureGroup(deps, vpcId, name, purpose, rules);
    return { id, rules: id.then(() => undefined) };
  }
  const created = createGroup(deps, vpcId, name, purpose);
  const id = created.then((c) => c ?? ensureGroup(deps, vpcId, name, purpose, rules));
  const ruled = created.then(async (c) => {
    if (!c) return; // ensureGroup converged it
    const fresh: Rule[] = [
      { egress: true, protocol: '-1', peer: { cidr4: '0.0.0.0/0' } },
      ...(run.ipv6 ? [{ egress: true, protocol: '-1', peer: { cidr6: '::/0' } }] : []),
    ];
    await setRules(deps, c, fresh, rules);
  });
  // Awaited by the caller; a rejection it does not reach is not left unhandled.
  for (const p of [created, id, ruled]) p.catch(() => undefined);
  return { id, rules: ruled };
}

/** Creates a group tagged as Cordon's; undefined when another case created it first. */
async function createGroup(
  deps: IsolateDeps,
  vpcId: string,
  name: string,
  purpose: 'conversion' | 'isolation',
): Promise<string | undefined> {
  const description =
    purpose === 'isolation'
      ? 'Cordon isolation: no traffic but forensic access and the SSM and S3 endpoints'
      : 'Cordon conversion: allows everything so that existing flows become untracked';
  try {
    const out = await deps.recorder.run('ec2:CreateSecurityGroup', `${vpcId}/${name}`, () =>
      deps.ec2.send(
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
    );
    return out.GroupId;
  } catch (error) {
    // Another case created it first: use theirs.
    if (codeOf(error) === 'InvalidGroup.Duplicate') return undefined;
    throw error;
  }
}

/**
 * Brings a group's rules from `current` to `rules`, every change at once. A change that finds the
 * rules not as read (a concurrent case changed them) falls back to reading and converging.
 */
async function setRules(deps: IsolateDeps, groupId: string, current: Rule[], rules: Rule[]): Promise<void> {
  const { revoke, add } = ruleChanges(current, rules);
  if (revoke.length === 0 && add.length === 0) return;
  try {
    await eachAtOnce(ruleCalls(deps, groupId, revoke, add), async (call) => {
      await call();
    });
  } catch (error) {
    if (!['InvalidPermission.Duplicate', 'InvalidPermission.NotFound'].includes(codeOf(error))) throw error;
    await converge(deps, groupId, rules);
  }
}

/** The calls that revoke and add rules on a group, one per direction and kind. */
function ruleCalls(
  deps: IsolateDeps,
  groupId: string,
  revoke: Rule[],
  add: Rule[],
): (() => Promise<unknown>)[] {
  const { ec2, recorder } = deps;
  const calls: (() => Promise<unknown>)[] = [];
  const revokeIn = revoke.filter((r) => !r.egress);
  const revokeOut = revoke.filter((r) => r.egress);
  const addIn = add.filter((r) => !r.egress);
  const addOut = add.filter((r) => r.egress);
  if (revokeIn.length)
    calls.push(() =>
      recorder.run('ec2:RevokeSecurityGroupIngress', groupId, () =>
        ec2.send(
          new RevokeSecurityGroupIngressCommand({
            GroupId: groupId,
            IpPermissions: toIpPermissions(revokeIn),
          }),
        ),
      ),
    );
  if (revokeOut.length)
    calls.push(() =>
      recorder.run('ec2:RevokeSecurityGroupEgress', groupId, () =>
        ec2.send(
          new RevokeSecurityGroupEgressCommand({
            GroupId: groupId,
            IpPermissions: toIpPermissions(revokeOut),
          }),
        ),
      ),
    );
  if (addIn.length)
    calls.push(() =>
      recorder.run('ec2:AuthorizeSecurityGroupIngress', groupId, () =>
        ec2.send(
          new AuthorizeSecurityGroupIngressCommand({
            GroupId: groupId,
            IpPermissions: toIpPermissions(addIn),
          }),
        ),
      ),
    );
  if (addOut.length)
    calls.push(() =>
      recorder.run('ec2:AuthorizeSecurityGroupEgress', groupId, () =>
        ec2.send(
          new AuthorizeSecurityGroupEgressCommand({
            GroupId: groupId,
            IpPermissions: toIpPermissions(addOut),
          }),
        ),
      ),
    );
  return calls;
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

/**
 * The interfaces' own groups, connection-tracking timeouts and Elastic IPs, into the record saved in
 * round 2. Cordon's own groups never count as an interface's own: an interface that already holds only
 * those keeps what an earlier case recorded, or what Triage saw.
 */
function recordOriginals(run: IsolationRun): void {
  const { changes } = run;
  const stage = run.deps.config.CORDON_STAGE;
  const cordonIds = new Set([
    ...changes.groups.flatMap((g) => [g.conversionGroupId, g.isolationGroupId]),
    ...run.found.map((g) => g.GroupId ?? ''),
  ]);
  const isCordon = (g: { GroupId?: string; GroupName?: string }) => isCordonGroup(g, cordonIds, stage);
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
    const conntrack = n.ConnectionTrackingConfiguration;
    changes.enis.push({
      networkInterfaceId: id,
      vpcId: n.VpcId as string,
      originalGroups,
      // An earlier case already shortened the timeouts: its record holds the interface's own.
      originalConntrack:
        earlier?.originalConntrack !== undefined
          ? earlier.originalConntrack
          : conntrack
            ? {
                ...(conntrack.TcpEstablishedTimeout !== undefined
                  ? { tcpEstablishedTimeout: conntrack.TcpEstablishedTimeout }
                  : {}),
                ...(conntrack.UdpStreamTimeout !== undefined
                  ? { udpStreamTimeout: conntrack.UdpStreamTimeout }
                  : {}),
                ...(conntrack.UdpTimeout !== undefined ? { udpTimeout: conntrack.UdpTimeout } : {}),
              }
            : null,
    });
  }
  for (const a of run.addresses) {
    if (!a.AssociationId || !a.AllocationId || !a.NetworkInterfaceId || !a.PrivateIpAddress || !a.PublicIp)
      continue;
    if (changes.elasticIps.some((e) => e.allocationId === a.AllocationId)) continue;
    changes.elasticIps.push({
      allocationId: a.AllocationId,
      publicIp: a.PublicIp,
      networkInterfaceId: a.NetworkInterfaceId,
      privateIpAddress: a.PrivateIpAddress,
    });
  }
}

/** Round 4: every Elastic IP recorded in round 2 leaves its interface, all at once. */
async function disassociateElasticIps(run: IsolationRun): Promise<void> {
  const { ec2, recorder } = run.deps;
  await eachAtOnce(run.addresses, async (a) => {
    if (!a.AssociationId || !a.AllocationId || !a.NetworkInterfaceId || !a.PrivateIpAddress || !a.PublicIp)
      return;
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
  });
}

/** Round 4: the shorter timeouts on every interface at once; their own were saved in round 2. */
async function shortenConntrack(run: IsolationRun): Promise<void> {
  const { ec2, recorder } = run.deps;
  const entries = run.interfaces.flatMap((n) => {
    const entry = eniEntry(run, n);
    return entry ? [entry] : [];
  });
  await eachAtOnce(entries, async (entry) => {
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
  }).then(
    // When each interface took the conversion group, so that a re-run does not wait again: written
    // behind the wait and the isolation group, and awaited before the step reports.
    () => void run.save().catch(() => undefined),
    async (error: unknown) => {
      await run.save().catch(() => undefined);
      throw error;
    },
  );
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

/** Whether the VPC has an IPv6 block: a group created in it then starts with IPv6 egress too. */
async function hasIpv6(ec2: EC2Client, vpcId: string): Promise<boolean> {
  const out = await ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] }));
  return (out.Vpcs?.[0]?.Ipv6CidrBlockAssociationSet ?? []).some(
    (a) => a.Ipv6CidrBlockState?.State === 'associated' || a.Ipv6CidrBlockState?.State === 'associating',
  );
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
  const { ec2 } = deps;
  for (let attempt = 0; attempt < 4; attempt++) {
    const group = (await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [groupId] })))
      .SecurityGroups?.[0];
    if (!group) throw new ContainmentError(`${groupId} disappeared while its rules were being set`);
    const { revoke, add } = ruleChanges(rulesOf(group), rules);
    if (revoke.length === 0 && add.length === 0) return;
    try {
      // Extra rules go first: a permissive leftover (a new group's default egress) must not outlive the check.
      for (const call of ruleCalls(deps, groupId, revoke, add)) await call();
    } catch (error) {
      // A concurrent case changed the same rules between our read and our write: read again.
      if (!['InvalidPermission.Duplicate', 'InvalidPermission.NotFound'].includes(codeOf(error))) throw error;
    }
  }
  throw new ContainmentError(`the rules of ${groupId} did not settle; no interface was moved into it`);
}

/**
 * Round 2, by parameter: the network ACL entries that deny each remote address of the finding, in and
 * out, in the ACL of every subnet the instance has an interface in (stateless, so unlike a security
 * group they cut tracked flows too, including those through NAT gateways). Planned against the ACLs as
 * read (functions/core/nacl.ts: a free number ahead of the first allow, within the per-direction quota)
 * and recorded with the groups in round 3; added in round 4. True when there is something to add.
 */
async function planRemoteDenies(run: IsolationRun): Promise<boolean> {
  const { deps, changes, warnings } = run;
  const subnets = [...new Set(run.interfaces.map((n) => n.SubnetId as string).filter(Boolean))];
  const ranges = run.case.trigger.remoteIps
    .map((ip) => hostCidr(ip)?.cidr)
    .filter((r): r is string => r !== undefined);
  const acls =
    (
      await deps.ec2.send(
        new DescribeNetworkAclsCommand({ Filters: [{ Name: 'association.subnet-id', Values: subnets }] }),
      )
    ).NetworkAcls ?? [];
  // An entry an earlier attempt recorded but never added (it stopped between the two) is not ours.
  const added = (e: IsolateChanges['naclEntries'][number]) =>
    acls.some(
      (acl) =>
        acl.NetworkAclId === e.networkAclId &&
        (acl.Entries ?? []).some((x) => x.RuleNumber === e.ruleNumber && x.Egress === e.egress),
    );
  const stale = changes.naclEntries.filter(
    (e) => acls.some((acl) => acl.NetworkAclId === e.networkAclId) && !added(e),
  );
  for (const e of stale) changes.naclEntries.splice(changes.naclEntries.indexOf(e), 1);
  for (const acl of acls) {
    for (const p of planDenies(aclView(acl), ranges, {
      quota: deps.config.NACL_RULE_QUOTA,
      owned: changes.naclEntries,
    })) {
      if (p.kind === 'present') continue;
      if (p.kind === 'skip') {
        const warning = `${p.cidr} not denied ${p.egress ? 'outbound' : 'inbound'} in ${p.networkAclId}: ${p.detail}`;
        if (!warnings.includes(warning)) {
          warnings.push(warning);
          await deps.recorder.note('network ACL deny skipped', 'failed', {
            target: p.networkAclId,
            detail: warning,
          });
        }
        continue;
      }
      changes.naclEntries.push(p.entry);
      run.naclPlan.push(p.entry);
    }
  }
  return run.naclPlan.length > 0;
}

/** Round 4: the planned entries, all at once. A number taken meanwhile sends the rest the slow way. */
async function addRemoteDenies(run: IsolationRun): Promise<void> {
  const { deps, changes, warnings } = run;
  let raced = false;
  const before = changes.naclEntries.length;
  await eachAtOnce(run.naclPlan, async (entry) => {
    try {
      await deps.recorder.run(
        `ec2:CreateNetworkAclEntry (${entry.egress ? 'outbound' : 'inbound'} deny)`,
        `${entry.networkAclId}#${entry.ruleNumber}`,
        () =>
          deps.ec2.send(
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
      if (codeOf(error) === 'NetworkAclEntryAlreadyExists') {
        raced = true;
        return;
      }
      if (isTransient(error)) throw error;
      // A refinement, not isolation itself: say what is missing and go on isolating.
      const e = describeError(error);
      warnings.push(`${entry.cidr} not denied in ${entry.networkAclId}: ${e.name}: ${e.message}`);
    }
  }).finally(async () => {
    // Entries that did not go in leave the record (they were saved in round 3 as about to be added).
    if (changes.naclEntries.length !== before) await run.save();
  });
  if (raced) await denyRemoteAddresses(run);
}

/**
 * The slow way, when another change took a planned rule number: read the ACLs again, place what is
 * still missing, record each entry before adding it, and try again on another race. An equivalent deny
 * someone else added is not relied on: the IP-block playbook expires its own, and that must not lift
 * this case's.
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
        // Changed under us (a concurrent case, someone's hand): put them right, then read again.
        if (group) await converge(deps, pair.isolationGroupId, want).catch(() => undefined);
      }
    }
    if (problems.length === 0) return;
  }
  throw new IsolationVerificationError(
    `isolation of ${instanceId} could not be proven: ${problems.join('; ')}`,
  );
}
