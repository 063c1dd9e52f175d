import {
  type AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
  DetachInstancesCommand,
  EnterStandbyCommand,
} from '@aws-sdk/client-auto-scaling';
import { CreateTagsCommand, type EC2Client, ModifyInstanceAttributeCommand } from '@aws-sdk/client-ec2';
import {
  DeregisterInstancesFromLoadBalancerCommand,
  type ElasticLoadBalancingClient,
} from '@aws-sdk/client-elastic-load-balancing';
import {
  DeregisterTargetsCommand,
  type ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { tagKeys } from '../../core/case.js';
import type { CaseStore, Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import {
  type ContainInput,
  changeKeys,
  changesOf,
  codeOf,
  containInputSchema,
  type ProtectChanges,
  progress,
  protectChangesSchema,
  type Target,
} from '../../core/containment.js';
import { ContainmentError, describeError, InstanceNotFoundError } from '../../core/errors.js';
import { attributeChange, type InstanceAttribute, readAttribute, readInstance } from '../../core/instance.js';

export const protectInputSchema = containInputSchema;
export type ProtectInput = ContainInput;

export interface ProtectDeps {
  ec2: EC2Client;
  autoscaling: AutoScalingClient;
  elbv2: ElasticLoadBalancingV2Client;
  elb: ElasticLoadBalancingClient;
  recorder: Recorder;
  cases: Pick<CaseStore, 'get' | 'saveChanges'>;
  config: Pick<Config, 'ASG_MODE'>;
}

export interface ProtectResult {
  instanceId: string;
  /** The earlier, unreleased case whose containment this case took over. */
  previousCaseId?: string;
  attributes: { name: string; original: boolean | string; now: boolean | string }[];
  volumes: { volumeId: string; originalDeleteOnTermination: boolean }[];
  autoScaling?: ProtectChanges['autoScaling'] & { replacementLaunched: boolean };
  targetGroups: (Target & { deregistered: boolean })[];
  classicLoadBalancers: string[];
  unavailable: { api: string; reason: string }[];
  done: string[];
}

/** What Protect sets, and why: nothing the instance or an API caller does may destroy the evidence. */
const wanted: { name: InstanceAttribute; value: boolean | 'stop' }[] = [
  { name: 'disableApiTermination', value: true },
  { name: 'disableApiStop', value: true },
  { name: 'instanceInitiatedShutdownBehavior', value: 'stop' },
];

/** Auto Scaling states in which the instance is already out of service by Cordon's hand. */
const outOfService = new Set(['Standby', 'EnteringStandby', 'Detaching', 'Detached']);

/**
 * Protects the instance and its evidence before isolation makes it fail health checks: tags it with
 * the case, turns on termination and stop protection, makes an OS shutdown stop rather than terminate
 * it, keeps every EBS volume on termination, takes it out of its Auto Scaling group (standby or detach)
 * and out of every load balancer. Each original value is saved on the case before it is changed.
 */
export async function protectInstance(input: ProtectInput, deps: ProtectDeps): Promise<ProtectResult> {
  const c = input.case;
  const picture = input.triage.instance;
  const { ec2, recorder } = deps;
  const record = await deps.cases.get(c.caseId);
  const own = changesOf(record, changeKeys.protect, protectChangesSchema);
  const unavailable: ProtectResult['unavailable'] = [];
  const steps = progress('Protection', [
    'instance read',
    'instance tagged with the case',
    'termination and stop protection, shutdown behaviour stop',
    'EBS volumes kept on termination',
    'out of its Auto Scaling group',
    'out of its load balancers',
  ]);

  const instance = await steps.phase('instance read', async () => {
    const found = await readInstance(ec2, c.instanceId);
    if (!found || found.State?.Name === 'terminated' || found.State?.Name === 'shutting-down') {
      throw new InstanceNotFoundError(`${c.instanceId} is gone or terminating: nothing left to protect`);
    }
    return found;
  });
  const tagOf = (key: string) => instance.Tags?.find((t) => t.Key === key)?.Value ?? null;

  // The case named on the instance, if it is not this one and was never released, contained the
  // instance before: what the instance shows now is its work, and its record holds the originals.
  let changes: ProtectChanges;
  if (own) {
    changes = own;
  } else {
    const heldBy = tagOf(tagKeys.caseId);
    const previous = heldBy && heldBy !== c.caseId ? await deps.cases.get(heldBy) : undefined;
    const earlier = previous && previous.status !== 'released' ? previous : undefined;
    const inherited = changesOf(earlier, changeKeys.protect, protectChangesSchema);
    changes = {
      ...(earlier ? { previousCaseId: earlier.caseId } : {}),
      tags: inherited?.tags ?? [],
      attributes: inherited?.attributes ?? [],
      volumes: inherited?.volumes ?? [],
      ...(inherited?.autoScaling ? { autoScaling: inherited.autoScaling } : {}),
      targetGroups: inherited?.targetGroups ?? [],
      classicLoadBalancers: inherited?.classicLoadBalancers ?? [],
    };
    if (earlier) {
      await recorder.note('take over earlier containment', 'info', {
        target: c.instanceId,
        detail: `case ${earlier.caseId} never released this instance; its recorded originals are kept`,
      });
    }
  }
  const save = () => deps.cases.saveChanges(c.caseId, changeKeys.protect, changes);

  await steps.phase('instance tagged with the case', async () => {
    for (const key of [tagKeys.caseId, tagKeys.status]) {
      if (!changes.tags.some((t) => t.key === key)) changes.tags.push({ key, original: tagOf(key) });
    }
    await save();
    await recorder.run('ec2:CreateTags', c.instanceId, () =>
      ec2.send(
        new CreateTagsCommand({
          Resources: [c.instanceId],
          Tags: [
            { Key: tagKeys.caseId, Value: c.caseId },
            { Key: tagKeys.status, Value: 'protected' },
          ],
        }),
      ),
    );
    // The interfaces carry the case too: the isolating role may only modify interfaces so tagged.
    const interfaces = (instance.NetworkInterfaces ?? []).map((n) => n.NetworkInterfaceId as string);
    if (interfaces.length) {
      await recorder.run('ec2:CreateTags', interfaces.join(','), () =>
        ec2.send(
          new CreateTagsCommand({ Resources: interfaces, Tags: [{ Key: tagKeys.caseId, Value: c.caseId }] }),
        ),
      );
    }
  });

  await steps.phase('termination and stop protection, shutdown behaviour stop', async () => {
    for (const { name, value } of wanted) {
      const live = await readAttribute(ec2, c.instanceId, name);
      if (!changes.attributes.some((a) => a.name === name) && live !== undefined) {
        changes.attributes.push({ name, original: live });
        await save();
      }
      if (live === value) continue;
      try {
        await recorder.run(`ec2:ModifyInstanceAttribute ${name}`, c.instanceId, () =>
          ec2.send(new ModifyInstanceAttributeCommand(attributeChange(c.instanceId, name, value))),
        );
      } catch (error) {
        // Stop protection does not exist for Spot and instance-store-backed instances: said, not fatal.
        if (name !== 'disableApiStop' || codeOf(error) !== 'UnsupportedOperation') throw error;
        const e = describeError(error);
        unavailable.push({
          api: 'ec2:ModifyInstanceAttribute DisableApiStop',
          reason: `${e.name}: ${e.message}`,
        });
      }
    }
  });

  await steps.phase('EBS volumes kept on termination', async () => {
    const mappings = (instance.BlockDeviceMappings ?? []).filter((b) => b.Ebs?.VolumeId && b.DeviceName);
    for (const b of mappings) {
      if (changes.volumes.some((v) => v.volumeId === b.Ebs?.VolumeId)) continue;
      changes.volumes.push({
        volumeId: b.Ebs?.VolumeId as string,
        deviceName: b.DeviceName as string,
        originalDeleteOnTermination: b.Ebs?.DeleteOnTermination ?? false,
      });
    }
    await save();
    const toKeep = mappings.filter((b) => b.Ebs?.DeleteOnTermination !== false);
    if (toKeep.length) {
      await recorder.run('ec2:ModifyInstanceAttribute BlockDeviceMappings', c.instanceId, () =>
        ec2.send(
          new ModifyInstanceAttributeCommand({
            InstanceId: c.instanceId,
            BlockDeviceMappings: toKeep.map((b) => ({
              DeviceName: b.DeviceName,
              Ebs: { DeleteOnTermination: false },
            })),
          }),
        ),
      );
    }
  });

  const autoScaling = await steps.phase('out of its Auto Scaling group', () =>
    leaveAutoScalingGroup(deps, c.instanceId, changes, save),
  );

  const targets = await steps.phase('out of its load balancers', async () => {
    for (const t of picture.targetGroups) {
      const same = (r: Target) => r.arn === t.arn && r.id === t.id && r.port === t.port;
      if (!changes.targetGroups.some(same)) changes.targetGroups.push(t);
    }
    for (const name of picture.classicLoadBalancers) {
      if (!changes.classicLoadBalancers.includes(name)) changes.classicLoadBalancers.push(name);
    }
    await save();
    const results: ProtectResult['targetGroups'] = [];
    for (const t of picture.targetGroups) {
      const target = {
        Id: t.id,
        ...(t.port ? { Port: t.port } : {}),
        ...(t.availabilityZone ? { AvailabilityZone: t.availabilityZone } : {}),
      };
      try {
        await recorder.run('elasticloadbalancing:DeregisterTargets', `${t.arn} ${t.id}`, () =>
          deps.elbv2.send(new DeregisterTargetsCommand({ TargetGroupArn: t.arn, Targets: [target] })),
        );
        results.push({ ...t, deregistered: true });
      } catch (error) {
        // No longer registered (the Auto Scaling group deregistered it, or an earlier attempt did).
        if (codeOf(error) !== 'InvalidTargetException' && codeOf(error) !== 'InvalidTarget') throw error;
        await recorder.note('target already deregistered', 'skipped', { target: `${t.arn} ${t.id}` });
        results.push({ ...t, deregistered: false });
      }
    }
    for (const name of picture.classicLoadBalancers) {
      await recorder.run('elasticloadbalancing:DeregisterInstancesFromLoadBalancer', name, () =>
        deps.elb.send(
          new DeregisterInstancesFromLoadBalancerCommand({
            LoadBalancerName: name,
            Instances: [{ InstanceId: c.instanceId }],
          }),
        ),
      );
    }
    return results;
  });

  for (const u of unavailable) await recorder.note(u.api, 'skipped', { detail: `unavailable: ${u.reason}` });
  return {
    instanceId: c.instanceId,
    ...(changes.previousCaseId ? { previousCaseId: changes.previousCaseId } : {}),
    attributes: changes.attributes.map((a) => ({
      name: a.name,
      original: a.original,
      now: wanted.find((w) => w.name === a.name)?.value ?? a.original,
    })),
    volumes: changes.volumes.map((v) => ({
      volumeId: v.volumeId,
      originalDeleteOnTermination: v.originalDeleteOnTermination,
    })),
    ...(autoScaling ? { autoScaling } : {}),
    targetGroups: targets,
    classicLoadBalancers: picture.classicLoadBalancers,
    unavailable,
    done: steps.done,
  };
}

/**
 * Takes the instance out of service in its Auto Scaling group, by standby or detach (ASG_MODE), so that
 * failing health checks cannot get it replaced and terminated. Desired capacity goes down by one only
 * while it stays at or above the group's minimum; at the minimum it is kept, and the group launches a
 * replacement instead of refusing the call.
 */
async function leaveAutoScalingGroup(
  deps: ProtectDeps,
  instanceId: string,
  changes: ProtectChanges,
  save: () => Promise<void>,
): Promise<ProtectResult['autoScaling']> {
  const { autoscaling, recorder } = deps;
  const member = (
    await autoscaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [instanceId] }))
  ).AutoScalingInstances?.find((i) => i.InstanceId === instanceId);
  const done = changes.autoScaling
    ? { ...changes.autoScaling, replacementLaunched: !changes.autoScaling.decremented }
    : undefined;
  if (!member?.AutoScalingGroupName) return done;
  const groupName = member.AutoScalingGroupName;
  const state = member.LifecycleState ?? 'unknown';
  if (outOfService.has(state)) {
    if (!done) {
      await recorder.note('auto scaling left as found', 'info', {
        target: groupName,
        detail: `${instanceId} was already ${state}, not by Cordon: Release will leave it so`,
      });
    }
    return done;
  }
  if (state !== 'InService') {
    throw new ContainmentError(
      `${instanceId} is ${state} in its Auto Scaling group and cannot be taken out of service now`,
    );
  }
  const group = (
    await autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [groupName] }))
  ).AutoScalingGroups?.[0];
  const desired = group?.DesiredCapacity ?? 0;
  const minSize = group?.MinSize ?? 0;
  const decrement = desired > minSize;
  const mode = deps.config.ASG_MODE;
  changes.autoScaling = { groupName, mode, decremented: decrement, desiredBefore: desired, minSize };
  await save();
  if (!decrement) {
    await recorder.note('auto scaling minimum kept', 'info', {
      target: groupName,
      detail: `desired capacity ${desired} is the group's minimum: it is kept, so the group launches a replacement`,
    });
  }
  if (mode === 'standby') {
    await recorder.run('autoscaling:EnterStandby', groupName, () =>
      autoscaling.send(
        new EnterStandbyCommand({
          AutoScalingGroupName: groupName,
          InstanceIds: [instanceId],
          ShouldDecrementDesiredCapacity: decrement,
        }),
      ),
    );
  } else {
    await recorder.run('autoscaling:DetachInstances', groupName, () =>
      autoscaling.send(
        new DetachInstancesCommand({
          AutoScalingGroupName: groupName,
          InstanceIds: [instanceId],
          ShouldDecrementDesiredCapacity: decrement,
        }),
      ),
    );
  }
  return { ...changes.autoScaling, replacementLaunched: !decrement };
}
