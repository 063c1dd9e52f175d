import {
  AttachInstancesCommand,
  type AutoScalingClient,
  DescribeAutoScalingInstancesCommand,
  ExitStandbyCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  AssociateAddressCommand,
  CreateTagsCommand,
  DeleteNetworkAclEntryCommand,
  DescribeAddressesCommand,
  DescribeIamInstanceProfileAssociationsCommand,
  DescribeNetworkAclsCommand,
  DescribeNetworkInterfacesCommand,
  type EC2Client,
  type Instance,
  ModifyInstanceAttributeCommand,
  ModifyInstanceMetadataOptionsCommand,
  ModifyNetworkInterfaceAttributeCommand,
  type NetworkAcl,
  ReplaceIamInstanceProfileAssociationCommand,
} from '@aws-sdk/client-ec2';
import {
  type ElasticLoadBalancingClient,
  RegisterInstancesWithLoadBalancerCommand,
} from '@aws-sdk/client-elastic-load-balancing';
import {
  type ElasticLoadBalancingV2Client,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { DeleteRolePolicyCommand, type IAMClient } from '@aws-sdk/client-iam';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { type IsolateChanges, isolateAction } from '../../core/actions/isolate.js';
import { type ProtectChanges, protectAction } from '../../core/actions/protect.js';
import { type RevokeChanges, revokeAction } from '../../core/actions/revoke.js';
import { caseIdSchema, tagKeys } from '../../core/case.js';
import type { CaseRecord, CaseStore, Recorder } from '../../core/cases.js';
import {
  changeKeys,
  changesOf,
  codeOf,
  isTransient,
  longestRoleSessionMs,
  releaseProgressSchema,
} from '../../core/containment.js';
import { instanceArnOf, putDeny, releasedDeny } from '../../core/denies.js';
import {
  AwsServiceError,
  AwsThrottlingError,
  CaseNotFoundError,
  ContainmentError,
  describeError,
  normaliseError,
  ReleaseRefusedError,
} from '../../core/errors.js';
import { emitCaseEvent } from '../../core/events.js';
import { attributeChange, readAttribute, readInstance } from '../../core/instance.js';
import { oneLine } from '../../core/text.js';

export const releaseInputSchema = z.object({ caseId: caseIdSchema });
export type ReleaseInput = z.infer<typeof releaseInputSchema>;

export interface ReleaseClients {
  ec2: EC2Client;
  iam: IAMClient;
  autoscaling: AutoScalingClient;
  elbv2: ElasticLoadBalancingV2Client;
  elb: ElasticLoadBalancingClient;
}

export interface ReleaseDeps {
  cases: Pick<CaseStore, 'get' | 'saveChanges' | 'setStatus' | 'unlock'>;
  /** Clients for the case's account and region, known only once the case is read. */
  clientsFor: (target: { accountId: string; region: string; caseId: string }) => ReleaseClients;
  recorder: Recorder;
  sns: SNSClient;
  topicArn: string;
  quarantineProfileName: string;
  now: () => Date;
  /** Where the "released" event goes; one that cannot be sent is recorded and the release stands. */
  events: EventBridgeClient;
}

export interface ReleaseResult {
  caseId: string;
  instanceId: string;
  restored: string[];
  /** Already as they were before containment: nothing to do. */
  unchanged: string[];
  /** Left as they are, with the reason; none of them blocks the release. */
  notes: string[];
  messageId?: string;
}

/** What EC2 documents as the interface defaults, for interfaces that had no timeouts of their own. */
const defaultConntrack = { TcpEstablishedTimeout: 432_000, UdpStreamTimeout: 180, UdpTimeout: 30 };

type Outcome = 'restored' | 'unchanged' | { note: string };

/**
 * Undoes Cordon's containment of one instance after a false positive, from what the case recorded:
 * the instance profile, IMDS setting and role denies; the network ACL entries, interface groups,
 * connection-tracking timeouts and Elastic IPs; the protection attributes, Auto Scaling membership and
 * load balancer registrations. Evidence is never touched. Every restore compares with the live state
 * first, so a release that stopped half-way can run again; a case already released is refused.
 */
export async function releaseInstance(input: ReleaseInput, deps: ReleaseDeps): Promise<ReleaseResult> {
  const { caseId } = input;
  const record = await deps.cases.get(caseId);
  if (!record) throw new CaseNotFoundError(`no case ${caseId}`);
  if (record.status !== 'contained' && record.status !== 'partial') {
    throw new ReleaseRefusedError(
      `case ${caseId} is ${record.status}: only a contained or partially contained case is released`,
    );
  }
  const clients = deps.clientsFor({ accountId: record.accountId, region: record.region, caseId });
  const { recorder } = deps;
  const protect = protectAction.read(record);
  const isolate = isolateAction.read(record);
  const revoke = revokeAction.read(record);
  const live = await readInstance(clients.ec2, record.instanceId);
  const instance = live?.State?.Name === 'terminated' ? undefined : live;
  const holder = instance?.Tags?.find((t) => t.Key === tagKeys.caseId)?.Value;
  if (holder && holder !== caseId) {
    throw new ReleaseRefusedError(
      `${record.instanceId} is held by a later case, ${holder}: release that case instead`,
    );
  }

  const result: ReleaseResult = {
    caseId,
    instanceId: record.instanceId,
    restored: [],
    unchanged: [],
    notes: [],
  };
  const failures: { label: string; error: unknown }[] = [];
  // What an earlier, interrupted run of this release already put back still counts as restored.
  const progress = changesOf(record, changeKeys.release, releaseProgressSchema);
  const before = progress?.restored ?? [];
  const cutoff = progress?.cutoff ?? deps.now().toISOString();
  if (revoke?.denies.some((d) => !d.until) && !progress?.cutoff) {
    await deps.cases.saveChanges(caseId, changeKeys.release, { restored: before, notRestored: [], cutoff });
  }
  const attempt = async (label: string, work: () => Promise<Outcome>) => {
    try {
      const outcome = await work();
      if (outcome === 'restored' || (outcome === 'unchanged' && before.includes(label)))
        result.restored.push(label);
      else if (outcome === 'unchanged') result.unchanged.push(label);
      else result.notes.push(`${label}: ${outcome.note}`);
    } catch (error) {
      failures.push({ label, error });
    }
  };
  const gone = { note: `${record.instanceId} no longer exists` } as const;

  if (revoke) await restoreCredentials(clients, deps, record, revoke, cutoff, instance, attempt, gone);
  if (isolate) await restoreNetwork(clients, recorder, isolate, instance, attempt, gone);
  if (protect)
    await restoreProtection(clients, recorder, record.instanceId, protect, instance, attempt, gone);
  if (instance) {
    await attempt(`${record.instanceId} tagged ${tagKeys.status}=released`, async () => {
      await recorder.run('ec2:CreateTags', record.instanceId, () =>
        clients.ec2.send(
          new CreateTagsCommand({
            Resources: [record.instanceId],
            Tags: [{ Key: tagKeys.status, Value: 'released' }],
          }),
        ),
      );
      return 'restored';
    });
  }

  const notRestored = failures.map((f) => {
    const e = describeError(f.error);
    return `${f.label}: ${e.name}: ${e.message}`;
  });
  await deps.cases.saveChanges(caseId, changeKeys.release, {
    restored: result.restored,
    notRestored: [...notRestored, ...result.notes],
    cutoff,
  });
  if (failures.length > 0) {
    const message = oneLine(
      `Release of ${record.instanceId} (case ${caseId}) is incomplete. Restored: ${
        result.restored.join('; ') || 'nothing'
      }. Not restored: ${notRestored.join('; ')}.`,
      1800,
    );
    // Only when every failure is one that may pass on its own does the workflow retry the release.
    if (failures.every((f) => isTransient(f.error))) {
      throw failures.some((f) => normaliseError(f.error) instanceof AwsThrottlingError)
        ? new AwsThrottlingError(message, { cause: failures[0]?.error })
        : new AwsServiceError(message, { cause: failures[0]?.error });
    }
    await publish(deps, record, `Cordon: release of ${record.instanceId} incomplete`, message).catch(() => {
      // The error below still reaches the state machine; the alert is a courtesy.
    });
    throw new ContainmentError(message, { cause: failures[0]?.error });
  }

  const body = [
    `Cordon released ${record.instanceId} (case ${caseId}, account ${record.accountId}, ${record.region}).`,
    'Evidence (snapshots, memory image, manifest) was not touched.',
    '',
    'Restored:',
    ...(result.restored.length ? result.restored.map((r) => `- ${r}`) : ['- nothing needed restoring']),
    ...(result.notes.length ? ['', 'Left as they are:', ...result.notes.map((n) => `- ${n}`)] : []),
  ].join('\n');
  // Published before the case is marked released: if publishing fails, the retried release finds
  // everything already restored and publishes again, instead of being refused as already released.
  const messageId = await publish(deps, record, `Cordon: ${record.instanceId} released`, body);
  await deps.cases.setStatus(caseId, 'released');
  await deps.cases.unlock(record);
  await recorder.note('released', 'ok', {
    target: record.instanceId,
    detail: `restored ${result.restored.length}, already as before ${result.unchanged.length}, notes ${result.notes.length}`,
  });
  await emitCaseEvent(record, 'released', { events: deps.events, recorder, now: deps.now });
  return { ...result, ...(messageId ? { messageId } : {}) };
}

async function publish(
  deps: ReleaseDeps,
  record: CaseRecord,
  subject: string,
  message: string,
): Promise<string | undefined> {
  const out = await deps.recorder.run('sns:Publish', deps.topicArn, () =>
    deps.sns.send(
      new PublishCommand({
        TopicArn: deps.topicArn,
        Subject: subject.slice(0, 100),
        Message: message,
        MessageAttributes: {
          caseId: { DataType: 'String', StringValue: record.caseId },
          event: { DataType: 'String', StringValue: 'released' },
        },
      }),
    ),
  );
  return out.MessageId;
}

type Attempt = (label: string, work: () => Promise<Outcome>) => Promise<void>;

/**
 * A read several restores depend on. Its failure must not stop the other restores: each restore that
 * needs it fails with the read's error instead, and the release says so.
 */
async function read<T>(load: () => Promise<T>): Promise<() => T> {
  try {
    const value = await load();
    return () => value;
  } catch (error) {
    return () => {
      throw error;
    };
  }
}

async function restoreCredentials(
  clients: ReleaseClients,
  deps: ReleaseDeps,
  record: CaseRecord,
  revoke: RevokeChanges,
  cutoff: string,
  instance: Instance | undefined,
  attempt: Attempt,
  gone: Outcome,
): Promise<void> {
  const { ec2, iam } = clients;
  const { recorder, now } = deps;
  const profile = revoke.profile;
  if (profile) {
    await attempt(`instance profile ${profile.originalArn.split('/').pop()}`, async () => {
      if (!instance) return gone;
      const live = (
        await ec2.send(
          new DescribeIamInstanceProfileAssociationsCommand({
            Filters: [{ Name: 'instance-id', Values: [record.instanceId] }],
          }),
        )
      ).IamInstanceProfileAssociations?.find((a) => a.State === 'associated' || a.State === 'associating');
      const arn = live?.IamInstanceProfile?.Arn;
      if (arn === profile.originalArn) return 'unchanged';
      if (!live?.AssociationId || arn?.split('/').pop() !== deps.quarantineProfileName) {
        return { note: `the instance now holds ${arn ?? 'no profile'}, not Cordon's: left as it is` };
      }
      await recorder.run('ec2:ReplaceIamInstanceProfileAssociation', record.instanceId, () =>
        ec2.send(
          new ReplaceIamInstanceProfileAssociationCommand({
            AssociationId: live.AssociationId,
            IamInstanceProfile: { Arn: profile.originalArn },
          }),
        ),
      );
      return 'restored';
    });
  }
  const metadata = revoke.metadata;
  if (metadata) {
    await attempt(`instance metadata HttpTokens=${metadata.originalHttpTokens}`, async () => {
      if (!instance) return gone;
      if (instance.MetadataOptions?.HttpTokens === metadata.originalHttpTokens) return 'unchanged';
      await recorder.run('ec2:ModifyInstanceMetadataOptions', record.instanceId, () =>
        ec2.send(
          new ModifyInstanceMetadataOptionsCommand({
            InstanceId: record.instanceId,
            HttpTokens: metadata.originalHttpTokens,
          }),
        ),
      );
      return 'restored';
    });
  }
  // Containment's deny becomes a deny on this instance's sessions issued before the release: the
  // credentials the host held while contained (its own role's, if the profile swap failed or lagged)
  // never work again, and those it is issued from now on do. Kept, like the deny on sessions issued
  // before containment, until every session it denies has expired.
  const narrowed = releasedDeny(instanceArnOf(record), cutoff);
  const narrowedUntil = new Date(Date.parse(cutoff) + longestRoleSessionMs).toISOString();
  for (const deny of revoke.denies) {
    if (!deny.until) {
      await attempt(`deny ${deny.policyName} on ${deny.roleName}`, async () => {
        try {
          await putDeny({ iam, recorder, now }, deny.roleName, deny.policyName, narrowed);
        } catch (error) {
          if (codeOf(error) === 'NoSuchEntity' || codeOf(error) === 'NoSuchEntityException') {
            return { note: `${deny.roleName} no longer exists: nothing to narrow` };
          }
          throw error;
        }
        return {
          note: `narrowed to this instance's sessions issued before the release (${cutoff}), kept until ${narrowedUntil}, when Cordon removes it as spent; credentials the instance still holds from before the release stay denied until its metadata service hands it new ones (at least five minutes before the old ones expire)`,
        };
      });
      continue;
    }
    // The deny on sessions issued before containment stays while any of them may still be valid:
    // releasing the instance must not bring back credentials stolen before it was contained.
    if (now().getTime() < Date.parse(deny.until)) {
      await attempt(`deny ${deny.policyName} on ${deny.roleName}`, async () => ({
        note: `kept until ${deny.until}: sessions issued before containment stay denied until they have expired`,
      }));
      continue;
    }
    await attempt(`deny ${deny.policyName} removed from ${deny.roleName}`, async () => {
      try {
        await recorder.run('iam:DeleteRolePolicy', `${deny.roleName}/${deny.policyName}`, () =>
          iam.send(new DeleteRolePolicyCommand({ RoleName: deny.roleName, PolicyName: deny.policyName })),
        );
        return 'restored';
      } catch (error) {
        if (codeOf(error) === 'NoSuchEntity' || codeOf(error) === 'NoSuchEntityException') return 'unchanged';
        throw error;
      }
    });
  }
}

async function restoreNetwork(
  clients: ReleaseClients,
  recorder: Recorder,
  isolate: IsolateChanges,
  instance: Instance | undefined,
  attempt: Attempt,
  gone: Outcome,
): Promise<void> {
  const { ec2 } = clients;
  const aclIds = [...new Set(isolate.naclEntries.map((e) => e.networkAclId))];
  // One ACL per call: an ACL deleted since would fail a call naming several.
  const acls = await read(async () => {
    const found: NetworkAcl[] = [];
    for (const id of aclIds) {
      try {
        found.push(
          ...((await ec2.send(new DescribeNetworkAclsCommand({ NetworkAclIds: [id] }))).NetworkAcls ?? []),
        );
      } catch (error) {
        if (codeOf(error) !== 'InvalidNetworkAclID.NotFound') throw error;
      }
    }
    return found;
  });
  for (const entry of isolate.naclEntries) {
    const direction = entry.egress ? 'outbound' : 'inbound';
    await attempt(
      `network ACL deny ${entry.cidr} ${direction} (${entry.networkAclId} #${entry.ruleNumber})`,
      async () => {
        const live = acls()
          .find((a) => a.NetworkAclId === entry.networkAclId)
          ?.Entries?.find((e) => e.RuleNumber === entry.ruleNumber && e.Egress === entry.egress);
        // Gone already, or the number now holds someone else's rule: not ours to delete.
        const ours =
          live?.RuleAction === 'deny' &&
          (live.CidrBlock === entry.cidr || live.Ipv6CidrBlock?.toLowerCase() === entry.cidr);
        if (!ours) return 'unchanged';
        await recorder.run('ec2:DeleteNetworkAclEntry', `${entry.networkAclId}#${entry.ruleNumber}`, () =>
          ec2.send(
            new DeleteNetworkAclEntryCommand({
              NetworkAclId: entry.networkAclId,
              RuleNumber: entry.ruleNumber,
              Egress: entry.egress,
            }),
          ),
        );
        return 'restored';
      },
    );
  }

  const interfaces = await read(async () =>
    isolate.enis.length
      ? ((
          await ec2.send(
            new DescribeNetworkInterfacesCommand({
              Filters: [
                { Name: 'network-interface-id', Values: isolate.enis.map((e) => e.networkInterfaceId) },
              ],
            }),
          )
        ).NetworkInterfaces ?? [])
      : [],
  );
  for (const eni of isolate.enis) {
    const live = () => interfaces().find((n) => n.NetworkInterfaceId === eni.networkInterfaceId);
    await attempt(`${eni.networkInterfaceId} groups`, async () => {
      const n = live();
      if (!n) return { note: 'the interface no longer exists' };
      if (eni.originalGroups === null) {
        return { note: 'its own groups were never known (it held only Cordon groups when this case began)' };
      }
      const original = eni.originalGroups;
      const groups = (n.Groups ?? []).map((g) => g.GroupId);
      if (groups.length === original.length && original.every((g) => groups.includes(g))) return 'unchanged';
      await recorder.run(
        'ec2:ModifyNetworkInterfaceAttribute (original groups)',
        eni.networkInterfaceId,
        () =>
          ec2.send(
            new ModifyNetworkInterfaceAttributeCommand({
              NetworkInterfaceId: eni.networkInterfaceId,
              Groups: original,
            }),
          ),
      );
      return 'restored';
    });
    if (eni.originalConntrack !== undefined) {
      await attempt(`${eni.networkInterfaceId} connection-tracking timeouts`, async () => {
        if (!live()) return { note: 'the interface no longer exists' };
        const o = eni.originalConntrack;
        const spec = {
          TcpEstablishedTimeout: o?.tcpEstablishedTimeout ?? defaultConntrack.TcpEstablishedTimeout,
          UdpStreamTimeout: o?.udpStreamTimeout ?? defaultConntrack.UdpStreamTimeout,
          UdpTimeout: o?.udpTimeout ?? defaultConntrack.UdpTimeout,
        };
        try {
          await recorder.run(
            'ec2:ModifyNetworkInterfaceAttribute (conntrack timeouts)',
            eni.networkInterfaceId,
            () =>
              ec2.send(
                new ModifyNetworkInterfaceAttributeCommand({
                  NetworkInterfaceId: eni.networkInterfaceId,
                  ConnectionTrackingSpecification: spec,
                }),
              ),
          );
          return 'restored';
        } catch (error) {
          // Isolation could not shorten them either (not a Nitro instance, or the emulator): nothing to undo.
          const e = describeError(error);
          return { note: `not set (${e.name}): the interface keeps its current timeouts` };
        }
      });
    }
  }

  for (const eip of isolate.elasticIps) {
    await attempt(`Elastic IP ${eip.publicIp} on ${eip.networkInterfaceId}`, async () => {
      if (!instance) return gone;
      let address:
        | { AssociationId?: string; NetworkInterfaceId?: string; PrivateIpAddress?: string }
        | undefined;
      try {
        address = (await ec2.send(new DescribeAddressesCommand({ AllocationIds: [eip.allocationId] })))
          .Addresses?.[0];
      } catch (error) {
        if (codeOf(error) === 'InvalidAllocationID.NotFound')
          return { note: 'the address was released from the account' };
        throw error;
      }
      if (!address) return { note: 'the address was released from the account' };
      if (address.AssociationId) {
        return address.NetworkInterfaceId === eip.networkInterfaceId &&
          address.PrivateIpAddress === eip.privateIpAddress
          ? 'unchanged'
          : {
              note: `it is now associated with ${address.NetworkInterfaceId ?? 'another resource'}: not taken back`,
            };
      }
      await recorder.run('ec2:AssociateAddress', eip.publicIp, () =>
        ec2.send(
          new AssociateAddressCommand({
            AllocationId: eip.allocationId,
            NetworkInterfaceId: eip.networkInterfaceId,
            PrivateIpAddress: eip.privateIpAddress,
            AllowReassociation: false,
          }),
        ),
      );
      return 'restored';
    });
  }
}

async function restoreProtection(
  clients: ReleaseClients,
  recorder: Recorder,
  instanceId: string,
  protect: ProtectChanges,
  instance: Instance | undefined,
  attempt: Attempt,
  gone: Outcome,
): Promise<void> {
  const { ec2, autoscaling } = clients;
  for (const a of protect.attributes) {
    await attempt(`${a.name}=${a.original}`, async () => {
      if (!instance) return gone;
      if ((await readAttribute(ec2, instanceId, a.name)) === a.original) return 'unchanged';
      await recorder.run(`ec2:ModifyInstanceAttribute ${a.name}`, instanceId, () =>
        ec2.send(new ModifyInstanceAttributeCommand(attributeChange(instanceId, a.name, a.original))),
      );
      return 'restored';
    });
  }

  const mappings = instance?.BlockDeviceMappings ?? [];
  const toRestore = protect.volumes.filter((v) => {
    const live = mappings.find((b) => b.Ebs?.VolumeId === v.volumeId);
    return live && live.Ebs?.DeleteOnTermination !== v.originalDeleteOnTermination;
  });
  if (protect.volumes.length) {
    await attempt(`DeleteOnTermination of ${protect.volumes.map((v) => v.volumeId).join(', ')}`, async () => {
      if (!instance) return gone;
      if (toRestore.length === 0) return 'unchanged';
      await recorder.run('ec2:ModifyInstanceAttribute BlockDeviceMappings', instanceId, () =>
        ec2.send(
          new ModifyInstanceAttributeCommand({
            InstanceId: instanceId,
            BlockDeviceMappings: toRestore.map((v) => ({
              DeviceName: v.deviceName,
              Ebs: { DeleteOnTermination: v.originalDeleteOnTermination },
            })),
          }),
        ),
      );
      return 'restored';
    });
  }

  const asg = protect.autoScaling;
  if (asg) {
    await attempt(`Auto Scaling group ${asg.groupName} (${asg.mode})`, async () => {
      if (!instance) return gone;
      const member = (
        await autoscaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [instanceId] }))
      ).AutoScalingInstances?.find((i) => i.InstanceId === instanceId);
      const capacity = asg.decremented
        ? ''
        : `; the group launched a replacement, so its desired capacity is now one above ${asg.desiredBefore}`;
      if (asg.mode === 'standby') {
        if (member?.AutoScalingGroupName !== asg.groupName) {
          return { note: 'the instance is no longer in the group: not put back' };
        }
        if (member.LifecycleState !== 'Standby') return 'unchanged';
        await recorder.run('autoscaling:ExitStandby', asg.groupName, () =>
          autoscaling.send(
            new ExitStandbyCommand({ AutoScalingGroupName: asg.groupName, InstanceIds: [instanceId] }),
          ),
        );
      } else {
        if (member) return 'unchanged';
        await recorder.run('autoscaling:AttachInstances', asg.groupName, () =>
          autoscaling.send(
            new AttachInstancesCommand({ AutoScalingGroupName: asg.groupName, InstanceIds: [instanceId] }),
          ),
        );
      }
      if (capacity)
        await recorder.note('auto scaling capacity', 'info', {
          target: asg.groupName,
          detail: capacity.slice(2),
        });
      return 'restored';
    });
  }

  for (const t of protect.targetGroups) {
    await attempt(`target ${t.id}${t.port ? `:${t.port}` : ''} in ${t.arn.split(':').pop()}`, async () => {
      if (!instance) return gone;
      await recorder.run('elasticloadbalancing:RegisterTargets', `${t.arn} ${t.id}`, () =>
        clients.elbv2.send(
          new RegisterTargetsCommand({
            TargetGroupArn: t.arn,
            Targets: [
              {
                Id: t.id,
                ...(t.port ? { Port: t.port } : {}),
                ...(t.availabilityZone ? { AvailabilityZone: t.availabilityZone } : {}),
              },
            ],
          }),
        ),
      );
      return 'restored';
    });
  }
  for (const name of protect.classicLoadBalancers) {
    await attempt(`Classic Load Balancer ${name}`, async () => {
      if (!instance) return gone;
      await recorder.run('elasticloadbalancing:RegisterInstancesWithLoadBalancer', name, () =>
        clients.elb.send(
          new RegisterInstancesWithLoadBalancerCommand({
            LoadBalancerName: name,
            Instances: [{ InstanceId: instanceId }],
          }),
        ),
      );
      return 'restored';
    });
  }
}
