/**
 * `cordon start --dry-run`: what containment would do to one instance, decided by the functions the
 * steps themselves decide with (functions/core: `assessInstance`, isolation-groups.ts, revocation.ts,
 * protection.ts), from reads only. No case is opened, no execution started, nothing written.
 */
import {
  type AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
} from '@aws-sdk/client-auto-scaling';
import { DescribeAddressesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { partitionOf, tagKeys } from '../../functions/core/case.js';
import { cordonGroupNames } from '../../functions/core/containment.js';
import { instanceArnOf } from '../../functions/core/denies.js';
import { readAttribute, readInstance } from '../../functions/core/instance.js';
import {
  associatedElasticIps,
  attachedInterfaces,
  cordonGroups,
  cordonPairIn,
  isCordonGroup,
  isolationRules,
  ruleKey,
  rulesKeepSsm,
  s3PrefixLists,
  unmanagedCordonGroup,
} from '../../functions/core/isolation-groups.js';
import { assessInstance } from '../../functions/core/plan.js';
import { decideResponse, type PolicyResponse, type ResponsePolicy } from '../../functions/core/policy.js';
import {
  autoScalingLeaving,
  ebsMappings,
  outOfService,
  protectedAttributes,
  volumesToKeep,
} from '../../functions/core/protection.js';
import {
  type Imdsv2Outcome,
  imdsv2Outcome,
  liveAssociation,
  ownProfileArn,
  profileNameOf,
  roleDenies,
  rolesOf,
} from '../../functions/core/revocation.js';
import type { Plan } from '../../functions/core/state.js';
import { CliError } from './errors.js';
import { safe } from './output.js';

/** The settings of the containment functions the plan depends on, as the deployed functions have them. */
export interface DryRunSettings {
  stage: string;
  forensicCidr: string;
  revokeScope: 'instance' | 'role';
  requireImdsv2: boolean;
  quarantineProfileName: string;
  asgMode: 'standby' | 'detach';
  /** Intake's response policy (functions/core/policy.ts): whether a case would contain at all. */
  responsePolicy: ResponsePolicy;
}

/** Read-only clients for the instance's account and region. */
export interface DryRunClients {
  ec2: EC2Client;
  ssm: SSMClient;
  iam: IAMClient;
  autoscaling: AutoScalingClient;
}

/** The case id the deny policies' names would carry: it exists only once a case is opened. */
export const caseIdPlaceholder = '<case-id>';

/** The plan, as `--json` prints it. Every field is always present, so that scripts can rely on it. */
export interface ContainmentPlan {
  dryRun: true;
  instanceId: string;
  accountId: string;
  region: string;
  state: string;
  /** The case that holds the instance now (its tag), whose recorded originals a real run would keep. */
  heldByCase: string | null;
  plan: Pick<Plan, 'order' | 'memory' | 'reason' | 'platform' | 'ssmManaged' | 'ssmSurvivesIsolation'>;
  /**
   * What the response policy would decide for a case started by hand on this instance (by its account
   * and tags; a finding's type and severity may decide otherwise): the plan below applies as it stands
   * to `contain`, after an approval to `approve`, and not at all to `evidence-only` or `exempt`.
   */
  response: { action: PolicyResponse; rule: string; reason: string };
  isolation: {
    /** Why Isolate would refuse to go on (a group with Cordon's name that is not Cordon's), or null. */
    refused: string | null;
    groups: {
      vpcId: string;
      isolation: { name: string; groupId: string | null; wouldCreate: boolean };
      conversion: { name: string; groupId: string | null; wouldCreate: boolean };
      /** The isolation group's rules (`in|tcp|22-22|v4:…`), as Isolate would set them. */
      isolationRules: string[];
    }[];
    interfaces: {
      networkInterfaceId: string;
      vpcId: string;
      currentGroups: { groupId: string; groupName: string }[];
      /** The interface's own groups, recorded for Release: Cordon's never count. */
      originalGroups: string[];
      /** The group it would end with: the isolation group's id, or null while it would be created. */
      isolationGroupId: string | null;
      alreadyIsolated: boolean;
    }[];
    elasticIps: { publicIp: string; allocationId: string; networkInterfaceId: string }[];
    /** Whether the isolation group would still let the SSM agent reach SSM and S3. */
    ssmEgress: boolean;
  };
  revocation: {
    scope: 'instance' | 'role';
    cutoff: string;
    profile: { currentArn: string | null; replacedBy: string | null; note: string | null };
    roles: string[];
    denies: { roleName: string; policyName: string; document: string; until: string | null }[];
    imdsv2: Imdsv2Outcome;
  };
  protection: {
    attributes: { name: string; now: boolean | string | null; wanted: boolean | string; changes: boolean }[];
    volumes: { volumeId: string; deviceName: string; deleteOnTermination: boolean; kept: boolean }[];
    autoScaling: {
      groupName: string;
      state: string;
      action: 'standby' | 'detach' | 'left as found' | 'refused';
      decrementDesired: boolean | null;
      desiredBefore: number | null;
      minSize: number | null;
    } | null;
    /** Load balancers are found by Triage's full inventory, after containment: not read here. */
    loadBalancers: string;
  };
  snapshots: { volumes: { volumeId: string; deviceName: string }[] };
  unavailable: { api: string; reason: string }[];
}

/** The instance to plan for: its id, account and region (the CLI's defaults already applied). */
export interface DryRunTarget {
  instanceId: string;
  accountId: string;
  region: string;
}

/** A dry run on an instance that is not there to contain. */
export class InstanceNotFoundError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, hint);
    this.name = 'InstanceNotFoundError';
  }
}

/**
 * Reads the instance and everything containment reads of it, then decides as the steps would. Only
 * Describe and Get calls: the test in test/unit/cli-start-dry-run.test.ts records them.
 */
export async function planContainment(
  target: DryRunTarget,
  clients: DryRunClients,
  settings: DryRunSettings,
  now: Date,
): Promise<ContainmentPlan> {
  const { ec2, iam, autoscaling } = clients;
  const { instanceId, region } = target;
  const instance = await readInstance(ec2, instanceId);
  const state = instance?.State?.Name;
  if (!instance || state === 'terminated' || state === 'shutting-down') {
    throw new InstanceNotFoundError(
      `${instanceId} ${instance ? `is ${state}` : 'was not found'} in ${target.accountId} ${region}: there is nothing to contain.`,
      'Check the instance id, --account and --instance-region.',
    );
  }
  const unavailable: ContainmentPlan['unavailable'] = [];
  const [assessment, interfaces, addresses, association, attributes, membership] = await Promise.all([
    assessInstance({ instanceId, region }, { ec2, ssm: clients.ssm }),
    attachedInterfaces(ec2, instanceId),
    ec2.send(new DescribeAddressesCommand({})),
    liveAssociation(ec2, instanceId),
    Promise.all(protectedAttributes.map(({ name }) => readAttribute(ec2, instanceId, name))),
    autoscaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [instanceId] })),
  ]);
  if ('failed' in assessment) {
    throw new CliError(`No containment plan for ${instanceId}: ${assessment.failed}.`);
  }
  unavailable.push(...assessment.unavailable);
  const decided = decideResponse(
    {
      accountId: target.accountId,
      tags: assessment.tags ? { known: assessment.tags } : { unread: 'the first look returned no tags' },
    },
    settings.responsePolicy,
  );
  const response = { action: decided.response, rule: decided.rule, reason: decided.reason };
  const picture = assessment.instance;
  const vpcIds = [...new Set(interfaces.map((n) => n.VpcId as string))];
  const own = ownProfileArn(association, settings.quarantineProfileName);
  const member = membership.AutoScalingInstances?.find((i) => i.InstanceId === instanceId);
  const [found, prefixLists, roleNames, group] = await Promise.all([
    vpcIds.length ? cordonGroups(ec2, vpcIds, settings.stage) : [],
    s3PrefixLists(ec2, picture.vpcEndpoints, region, unavailable),
    own ? rolesOf(iam, profileNameOf(own)) : [],
    member?.AutoScalingGroupName && member.LifecycleState === 'InService'
      ? autoscaling
          .send(
            new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [member.AutoScalingGroupName] }),
          )
          .then((o) => o.AutoScalingGroups?.[0])
      : undefined,
  ]);

  // Isolation: the same pair, the same rules, the same own groups and addresses as Isolate's.
  const names = cordonGroupNames(settings.stage);
  const squatter = unmanagedCordonGroup(found);
  const cordonIds = new Set(found.map((g) => g.GroupId ?? ''));
  let ssmEgress = false;
  const groups = vpcIds.map((vpcId) => {
    const pair = cordonPairIn(found, vpcId, settings.stage);
    const rulesSettings = {
      forensicCidr: settings.forensicCidr,
      endpoints: vpcId === picture.vpcId ? picture.vpcEndpoints : [],
      region,
      prefixLists,
    };
    const rules = isolationRules(rulesSettings);
    if (vpcId === picture.vpcId) ssmEgress = rulesKeepSsm(rules, rulesSettings);
    return {
      vpcId,
      isolation: {
        name: names.isolation,
        groupId: pair.isolationGroupId ?? null,
        wouldCreate: !pair.isolationGroupId,
      },
      conversion: {
        name: names.conversion,
        groupId: pair.conversionGroupId ?? null,
        wouldCreate: !pair.conversionGroupId,
      },
      isolationRules: rules.map(ruleKey),
    };
  });
  const interfaceIds = new Set(interfaces.map((n) => n.NetworkInterfaceId as string));
  const isolationOf = (vpcId: string) => groups.find((g) => g.vpcId === vpcId)?.isolation.groupId ?? null;

  // Revocation: the roles of the profile of its own, their two denies each, the profile swap, IMDSv2.
  const cutoff = now.toISOString();
  const partition = partitionOf(region);
  const denies = roleDenies({
    caseId: caseIdPlaceholder,
    roleNames,
    scope: settings.revokeScope,
    instanceArn: instanceArnOf({ partition, region, accountId: target.accountId, instanceId }),
    cutoff,
  });
  const profileArn = association?.IamInstanceProfile?.Arn;
  const swapped = Boolean(association?.AssociationId && own);

  // Protection: the attributes that change, the volumes kept, the way out of the Auto Scaling group.
  const mappings = ebsMappings(instance);
  const toKeep = new Set(volumesToKeep(mappings).map((b) => b.Ebs.VolumeId));
  const lifecycle = member?.LifecycleState ?? 'unknown';
  const leaving =
    member?.AutoScalingGroupName && lifecycle === 'InService'
      ? autoScalingLeaving(member.AutoScalingGroupName, settings.asgMode, group)
      : undefined;

  return {
    dryRun: true,
    instanceId,
    accountId: target.accountId,
    region,
    state: state ?? 'unknown',
    heldByCase: instance.Tags?.find((t) => t.Key === tagKeys.caseId)?.Value ?? null,
    plan: {
      order: assessment.plan.order,
      memory: assessment.plan.memory,
      reason: assessment.plan.reason,
      platform: assessment.plan.platform,
      ssmManaged: assessment.plan.ssmManaged,
      ssmSurvivesIsolation: assessment.plan.ssmSurvivesIsolation,
    },
    response,
    isolation: {
      refused: squatter
        ? `a security group named ${squatter.GroupName} exists in ${squatter.VpcId} without Cordon's ${tagKeys.managed} tag; Isolate would refuse to use it`
        : null,
      groups,
      interfaces: interfaces.map((n) => {
        const vpcId = n.VpcId as string;
        const current = (n.Groups ?? []).map((g) => ({
          groupId: g.GroupId ?? '',
          groupName: g.GroupName ?? '',
        }));
        const isolationGroupId = isolationOf(vpcId);
        return {
          networkInterfaceId: n.NetworkInterfaceId as string,
          vpcId,
          currentGroups: current,
          originalGroups: (n.Groups ?? [])
            .filter((g) => !isCordonGroup(g, cordonIds, settings.stage))
            .map((g) => g.GroupId as string),
          isolationGroupId,
          alreadyIsolated:
            isolationGroupId !== null && current.length === 1 && current[0]?.groupId === isolationGroupId,
        };
      }),
      elasticIps: associatedElasticIps(addresses.Addresses ?? [], interfaceIds).map((a) => ({
        publicIp: a.PublicIp,
        allocationId: a.AllocationId,
        networkInterfaceId: a.NetworkInterfaceId,
      })),
      ssmEgress,
    },
    revocation: {
      scope: settings.revokeScope,
      cutoff,
      profile: {
        currentArn: profileArn ?? null,
        replacedBy: swapped ? settings.quarantineProfileName : null,
        note: !profileArn
          ? 'the instance has no instance profile'
          : !own
            ? "the instance already holds Cordon's quarantine profile"
            : roleNames.length === 0
              ? 'its instance profile has no role'
              : null,
      },
      roles: roleNames,
      denies: denies.map((d) => ({
        roleName: d.roleName,
        policyName: d.policyName,
        document: d.document,
        until: d.until ?? null,
      })),
      imdsv2: imdsv2Outcome(settings.requireImdsv2, instance.MetadataOptions?.HttpTokens),
    },
    protection: {
      attributes: protectedAttributes.map(({ name, value }, i) => ({
        name,
        now: attributes[i] ?? null,
        wanted: value,
        changes: attributes[i] !== value,
      })),
      volumes: mappings.map((b) => ({
        volumeId: b.Ebs.VolumeId,
        deviceName: b.DeviceName,
        deleteOnTermination: b.Ebs.DeleteOnTermination ?? false,
        kept: toKeep.has(b.Ebs.VolumeId),
      })),
      autoScaling: member?.AutoScalingGroupName
        ? {
            groupName: member.AutoScalingGroupName,
            state: lifecycle,
            action: leaving ? leaving.mode : outOfService.has(lifecycle) ? 'left as found' : 'refused',
            decrementDesired: leaving?.decremented ?? null,
            desiredBefore: leaving?.desiredBefore ?? null,
            minSize: leaving?.minSize ?? null,
          }
        : null,
      loadBalancers:
        "found by Triage's inventory after containment, then deregistered by Protect: not read by a dry run",
    },
    snapshots: {
      volumes: mappings.map((b) => ({ volumeId: b.Ebs.VolumeId, deviceName: b.DeviceName })),
    },
    unavailable,
  };
}

/** The plan as a person reads it; every value from AWS goes through `safe`. */
export function planText(p: ContainmentPlan): string {
  const lines: string[] = [];
  const add = (line = '') => lines.push(line);
  add(
    `Dry run for ${safe(p.instanceId)} in ${safe(p.accountId)} ${safe(p.region)} (${safe(p.state)}): nothing was changed.`,
  );
  if (p.heldByCase)
    add(`  Held by case ${safe(p.heldByCase, 80)}: a real run would keep that case's recorded originals.`);
  add();
  add(
    `Plan: ${p.plan.order}, memory ${p.plan.memory === 'capture' ? 'captured' : 'skipped'} (${safe(p.plan.reason, 300)})`,
  );
  const contains: Record<PolicyResponse, string> = {
    contain: 'containment at once, as below',
    approve: 'evidence at once; what follows only once a person approves',
    'evidence-only': 'evidence only: nothing below would be changed',
    exempt: 'no case at all: nothing below would be changed',
  };
  add(
    `Response policy: ${p.response.action} by ${p.response.rule === 'default' ? 'its default' : `rule "${safe(p.response.rule, 64)}"`}, ${contains[p.response.action]} (${safe(p.response.reason, 300)}; a finding's type and severity may decide otherwise)`,
  );
  add();
  add('Isolate');
  if (p.isolation.refused) add(`  REFUSED: ${safe(p.isolation.refused, 300)}`);
  for (const g of p.isolation.groups) {
    const shown = (x: { name: string; groupId: string | null }) =>
      x.groupId ? `${safe(x.groupId)} (${x.name})` : `would be created: ${x.name} in ${safe(g.vpcId)}`;
    add(`  ${safe(g.vpcId)}: isolation group ${shown(g.isolation)}; conversion group ${shown(g.conversion)}`);
    add(
      `    isolation rules: ${g.isolationRules.length ? g.isolationRules.map((r) => safe(r)).join(', ') : 'none (no traffic at all)'}`,
    );
  }
  for (const n of p.isolation.interfaces) {
    const now =
      n.currentGroups.map((g) => `${safe(g.groupId)} (${safe(g.groupName, 80)})`).join(', ') || 'no group';
    const group = p.isolation.groups.find((g) => g.vpcId === n.vpcId)?.isolation;
    const then = n.isolationGroupId
      ? safe(n.isolationGroupId)
      : `${group?.name ?? 'the isolation group'} (to be created)`;
    add(`  ${safe(n.networkInterfaceId)}: ${now} -> ${n.alreadyIsolated ? 'already isolated' : then}`);
  }
  add(
    `  Elastic IPs disassociated: ${p.isolation.elasticIps.map((e) => `${safe(e.publicIp)} (${safe(e.networkInterfaceId)})`).join(', ') || 'none'}`,
  );
  add(`  SSM and S3 reachable under isolation: ${p.isolation.ssmEgress ? 'yes' : 'no'}`);
  add();
  add(`Revoke (scope ${p.revocation.scope}, sessions issued before ${p.revocation.cutoff})`);
  if (p.revocation.roles.length === 0)
    add(`  no role to deny: ${safe(p.revocation.profile.note ?? 'none', 200)}`);
  for (const role of p.revocation.roles) {
    const names = p.revocation.denies.filter((d) => d.roleName === role).map((d) => safe(d.policyName, 128));
    add(`  role ${safe(role, 64)}: inline denies ${names.join(', ')}`);
  }
  add(
    `  instance profile: ${
      p.revocation.profile.replacedBy
        ? `${safe(p.revocation.profile.currentArn, 300)} replaced by ${safe(p.revocation.profile.replacedBy)}`
        : `left as it is (${safe(p.revocation.profile.note ?? 'nothing to replace', 200)})`
    }`,
  );
  add(`  IMDSv2: ${p.revocation.imdsv2}`);
  add();
  add('Protect');
  for (const a of p.protection.attributes) {
    add(
      `  ${a.name}: ${a.now === null ? 'unknown' : String(a.now)} -> ${String(a.wanted)}${a.changes ? '' : ' (already)'}`,
    );
  }
  for (const v of p.protection.volumes) {
    add(
      `  ${safe(v.volumeId)} (${safe(v.deviceName, 40)}): ${v.kept ? 'would be kept on termination' : 'already kept on termination'}`,
    );
  }
  const asg = p.protection.autoScaling;
  if (!asg) add('  Auto Scaling: in no group');
  else if (asg.action === 'standby' || asg.action === 'detach') {
    add(
      `  Auto Scaling: ${asg.action} from ${safe(asg.groupName, 255)}, desired capacity ${asg.decrementDesired ? `${asg.desiredBefore} -> ${(asg.desiredBefore ?? 1) - 1}` : `kept at the minimum ${asg.minSize} (the group launches a replacement)`}`,
    );
  } else if (asg.action === 'left as found') {
    add(`  Auto Scaling: already ${safe(asg.state, 40)} in ${safe(asg.groupName, 255)}: left as found`);
  } else {
    add(
      `  Auto Scaling: ${safe(asg.state, 40)} in ${safe(asg.groupName, 255)}: Protect would fail (not in service)`,
    );
  }
  add(`  Load balancers: ${p.protection.loadBalancers}`);
  add();
  add(
    `Snapshot: ${p.snapshots.volumes.map((v) => `${safe(v.volumeId)} (${safe(v.deviceName, 40)})`).join(', ') || 'no EBS volume'}`,
  );
  for (const u of p.unavailable) add(`Could not read ${safe(u.api)}: ${safe(u.reason, 300)}`);
  return `${lines.join('\n')}\n`;
}
