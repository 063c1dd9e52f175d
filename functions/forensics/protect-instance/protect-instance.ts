import {
  type AutoScalingClient,
  type AutoScalingGroup,
  type AutoScalingInstanceDetails,
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
  DetachInstancesCommand,
  EnterStandbyCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CreateTagsCommand,
  type EC2Client,
  type Instance,
  ModifyInstanceAttributeCommand,
} from '@aws-sdk/client-ec2';
import {
  DeregisterInstancesFromLoadBalancerCommand,
  type ElasticLoadBalancingClient,
} from '@aws-sdk/client-elastic-load-balancing';
import {
  DeregisterTargetsCommand,
  type ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { type ProtectChanges, protectAction } from '../../core/actions/protect.js';
import { tagKeys } from '../../core/case.js';
import type { CaseRecord, CaseStore, Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import {
  changeKeys,
  codeOf,
  type ProtectInput,
  progress,
  protectInputSchema,
  type Target,
} from '../../core/containment.js';
import { ContainmentError, describeError, InstanceNotFoundError } from '../../core/errors.js';
import {
  attributeChange,
  type InstanceAttribute,
  type InstanceAttributeValue,
  readAttribute,
  readInstance,
} from '../../core/instance.js';
import {
  autoScalingLeaving,
  ebsMappings,
  outOfService,
  volumesToKeep,
  protectedAttributes as wanted,
} from '../../core/protection.js';
import { mayHoldContainment } from '../../core/takeover.js';

export type { ProtectInput };
export { protectInputSchema };

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
  /** The target groups and Classic Load Balancers of Triage's picture: none when Protect runs before Triage. */
  targetGroups: (Target & { deregistered: boolean })[];
  classicLoadBalancers: string[];
  unavailable: { api: string; reason: string }[];
  done: string[];
}

const phases = {
  read: 'instance read',
  tagged: 'instance tagged with the case',
  attributes: 'termination and stop protection, shutdown behaviour stop',
  volumes: 'EBS volumes kept on termination',
  autoScaling: 'out of its Auto Scaling group',
  balancers: 'out of its load balancers',
} as const;

/**
 * Protects the instance and its evidence before isolation makes it fail health checks: tags it with
 * the case, turns on termination and stop protection, makes an OS shutdown stop rather than terminate
 * it, keeps every EBS volume on termination, takes it out of its Auto Scaling group (standby or detach)
 * and, given Triage's picture, out of every load balancer in it.
 *
 * It runs on the containment path, beside isolation, so its AWS calls go in as few rounds as their
 * dependencies allow: every read at once; the earlier case's record and the group's capacity, when
 * needed; one save of every original on the case; then every change at once, each only after the save
 * that records its original. Termination and stop protection, the shutdown behaviour and the volumes
 * are granted only on an instance that carries a case (resources/roles/protect-instance.yml): on an
 * instance that carries none yet, they wait for the case tag, and the save goes out at once, with the
 * group's capacity saved once more beside the tagging. Four rounds at most; three for an instance
 * already tagged, in no Auto Scaling group, with no earlier case to read.
 */
export async function protectInstance(input: ProtectInput, deps: ProtectDeps): Promise<ProtectResult> {
  if (input.markOnly) return markForEvidence(input, deps);
  const c = input.case;
  const balancers = input.triage?.instance;
  const { ec2, autoscaling, recorder } = deps;
  const unavailable: ProtectResult['unavailable'] = [];
  const steps = progress('Protection', [
    phases.read,
    phases.tagged,
    phases.attributes,
    phases.volumes,
    phases.autoScaling,
    ...(balancers ? [phases.balancers] : []),
  ]);
  // Timeline notes order nothing: each is written on its own and awaited once, when the step reports.
  const notes: Promise<void>[] = [];
  const note = (...args: Parameters<Recorder['note']>) => {
    const written = recorder.note(...args);
    written.catch(() => {
      // Awaited below, where its failure is reported; marked handled now so it is never lost.
    });
    notes.push(written);
  };

  try {
    const { live, earlier, groupRead } = await steps.phase(phases.read, async () => {
      const live = await readEverything(deps, c.instanceId, c.caseId);
      const heldBy = live.instance.Tags?.find((t) => t.Key === tagKeys.caseId)?.Value;
      const own = protectAction.read(live.record);
      // The second round: the case named on the instance, when it is not this one and this case has
      // no record yet; and the group's capacity, when the instance is in service in one.
      const member = live.member;
      const groupRead =
        member?.AutoScalingGroupName && member.LifecycleState === 'InService'
          ? describeGroup(autoscaling, member.AutoScalingGroupName)
          : undefined;
      groupRead?.catch(() => {
        // Awaited where the group is left, which reports its failure.
      });
      if (own || !heldBy || heldBy === c.caseId) return { live, earlier: undefined, groupRead };
      const [previous] = await Promise.allSettled([deps.cases.get(heldBy), groupRead]);
      if (previous.status === 'rejected') throw previous.reason;
      // The case named on the instance, if it was never released, contained the instance before:
      // what the instance shows now is its work, and its record holds the originals.
      const unreleased = previous.value && mayHoldContainment(previous.value) ? previous.value : undefined;
      return { live, earlier: unreleased, groupRead };
    });
    const { instance, member } = live;
    const tagOf = (key: string) => instance.Tags?.find((t) => t.Key === key)?.Value ?? null;
    const heldBy = tagOf(tagKeys.caseId);
    // Any case tag, this case's or an earlier one's, is what the protection attributes are granted on.
    const caseTagged = heldBy !== null;
    const changes = protectAction.read(live.record) ?? inherit(earlier);
    if (earlier) {
      note('take over earlier containment', 'info', {
        target: c.instanceId,
        detail: `case ${earlier.caseId} never released this instance; its recorded originals are kept`,
      });
    }

    for (const key of [tagKeys.caseId, tagKeys.status]) {
      if (!changes.tags.some((t) => t.key === key)) changes.tags.push({ key, original: tagOf(key) });
    }
    wanted.forEach(({ name }, i) => {
      const value = live.attributes[i];
      if (!changes.attributes.some((a) => a.name === name) && value !== undefined) {
        changes.attributes.push({ name, original: value });
      }
    });
    const mappings = ebsMappings(instance);
    for (const b of mappings) {
      if (changes.volumes.some((v) => v.volumeId === b.Ebs.VolumeId)) continue;
      changes.volumes.push({
        volumeId: b.Ebs.VolumeId,
        deviceName: b.DeviceName,
        originalDeleteOnTermination: b.Ebs.DeleteOnTermination ?? false,
      });
    }
    for (const t of balancers?.targetGroups ?? []) {
      const same = (r: Target) => r.arn === t.arn && r.id === t.id && r.port === t.port;
      if (!changes.targetGroups.some(same)) changes.targetGroups.push(t);
    }
    for (const name of balancers?.classicLoadBalancers ?? []) {
      if (!changes.classicLoadBalancers.includes(name)) changes.classicLoadBalancers.push(name);
    }

    // Saves go one after the other, each with the whole record as it stands when it is sent.
    let lastSave: Promise<void> = Promise.resolve();
    const save = () => {
      const record = structuredClone(changes);
      lastSave = lastSave.then(() => deps.cases.saveChanges(c.caseId, changeKeys.protect, record));
      return lastSave;
    };
    const recordLeaving = (group: AutoScalingGroup | undefined) => {
      if (!member?.AutoScalingGroupName) return;
      changes.autoScaling = autoScalingLeaving(member.AutoScalingGroupName, deps.config.ASG_MODE, group);
    };

    // On a tagged instance the changes wait for nothing but the save, which then waits for the group's
    // capacity: one save. On an untagged one the tag must come first, so the save goes at once and the
    // capacity follows in a second save, beside the tagging. A group that could not be described
    // holds back only the leaving of the group.
    let saved: Promise<void>;
    let leavingSaved: Promise<void>;
    if (!groupRead) {
      saved = save();
      leavingSaved = saved;
    } else if (caseTagged) {
      saved = Promise.allSettled([groupRead]).then(([read]) => {
        if (read.status === 'fulfilled') recordLeaving(read.value);
        return save();
      });
      leavingSaved = saved;
    } else {
      saved = save();
      leavingSaved = settleAll([saved, groupRead]).then(([, group]) => {
        recordLeaving(group);
        return save();
      });
    }

    const tagged = saved.then(() => tagWithTheCase(deps, c.caseId, c.instanceId, instance, heldBy));
    // Granted only on an instance that carries a case: on one that carries none, after the tag.
    const granted = caseTagged ? saved : tagged;
    let autoScaling: ProtectResult['autoScaling'];
    let targets: ProtectResult['targetGroups'] = [];

    await steps.together([
      { label: phases.tagged, work: () => tagged },
      {
        label: phases.attributes,
        work: async () => {
          await granted;
          await settleAll(
            wanted.map(({ name, value }, i) =>
              live.attributes[i] === value
                ? undefined
                : setAttribute(deps, c.instanceId, name, value, unavailable),
            ),
          );
        },
      },
      {
        label: phases.volumes,
        work: async () => {
          await granted;
          const toKeep = volumesToKeep(mappings);
          if (toKeep.length === 0) return;
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
        },
      },
      {
        label: phases.autoScaling,
        work: async () => {
          autoScaling = await leaveAutoScalingGroup(deps, c.instanceId, member, changes, {
            saved: groupRead ? settleAll([leavingSaved, groupRead]) : leavingSaved,
            note,
          });
        },
      },
      ...(balancers
        ? [
            {
              label: phases.balancers,
              work: async () => {
                await saved;
                targets = await leaveLoadBalancers(deps, c.instanceId, balancers, note);
              },
            },
          ]
        : []),
    ]);

    for (const u of unavailable) note(u.api, 'skipped', { detail: `unavailable: ${u.reason}` });
    await Promise.all(notes);
    await steps.recorded(recorder);
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
      classicLoadBalancers: balancers?.classicLoadBalancers ?? [],
      unavailable,
      done: steps.done,
    };
  } finally {
    // A note still being written when the step fails is waited for, never left to fail unheard.
    await Promise.allSettled(notes);
  }
}

/**
 * Waits for every call given (undefined: none) and only then fails, with the one failure or, for
 * several, an AggregateError of them all: no call is still in flight when the step reports.
 */
async function settleAll<const T extends readonly unknown[]>(calls: T) {
  return valuesOf(await Promise.allSettled(calls));
}

/** The values of settled calls, or the failure (an AggregateError for several) once all have settled. */
function valuesOf<const T extends readonly PromiseSettledResult<unknown>[]>(
  settled: T,
): { -readonly [K in keyof T]: T[K] extends PromiseSettledResult<infer V> ? V : never } {
  const failures = settled.flatMap((s) => {
    if (s.status === 'fulfilled') return [];
    return s.reason instanceof AggregateError ? (s.reason.errors as unknown[]) : [s.reason as unknown];
  });
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, 'several calls failed');
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as never;
}

/**
 * The first round: the case record, the instance with its tags, volumes and interfaces, the three
 * attributes Protect sets and the instance's Auto Scaling membership, all at once.
 */
/**
 * Puts the case on an instance whose evidence is gathered without containment: the `cordon:case-id`
 * tag, under which IAM grants the snapshots and the memory capture (resources/member-account.yml,
 * resources/roles/capture-memory.yml), and nothing else: no attribute, group, load balancer or status
 * tag changes. An instance that carries a case tag already (an earlier case's) is left as it is: the
 * grant holds, and the earlier case keeps its mark. The tag's original is saved before it goes on, so
 * that Release takes it off again.
 */
async function markForEvidence(input: ProtectInput, deps: ProtectDeps): Promise<ProtectResult> {
  const c = input.case;
  const steps = progress('Marking', [phases.read, phases.tagged]);
  const { record, instance } = await steps.phase(phases.read, async () => {
    const [record, instance] = await settleAll([
      deps.cases.get(c.caseId),
      readInstance(deps.ec2, c.instanceId),
    ]);
    const state = instance?.State?.Name;
    if (!instance || state === 'terminated' || state === 'shutting-down') {
      throw new InstanceNotFoundError(`${c.instanceId} is gone or terminating: there is no instance to mark`);
    }
    return { record, instance };
  });
  const heldBy = instance.Tags?.find((t) => t.Key === tagKeys.caseId)?.Value;
  await steps.phase(phases.tagged, async () => {
    if (heldBy) {
      await deps.recorder.note('mark for evidence', 'info', {
        target: c.instanceId,
        detail:
          heldBy === c.caseId
            ? 'the instance carries this case already'
            : `the instance carries case ${heldBy}, which is kept; the evidence is this case's`,
      });
      return;
    }
    const changes = protectAction.read(record) ?? inherit(undefined);
    if (!changes.tags.some((t) => t.key === tagKeys.caseId)) {
      changes.tags.push({ key: tagKeys.caseId, original: null });
    }
    await deps.cases.saveChanges(c.caseId, changeKeys.protect, changes);
    await deps.recorder.run('ec2:CreateTags', c.instanceId, () =>
      deps.ec2.send(
        new CreateTagsCommand({
          Resources: [c.instanceId],
          Tags: [{ Key: tagKeys.caseId, Value: c.caseId }],
        }),
      ),
    );
  });
  await steps.recorded(deps.recorder);
  return {
    instanceId: c.instanceId,
    attributes: [],
    volumes: [],
    targetGroups: [],
    classicLoadBalancers: [],
    unavailable: [],
    done: steps.done,
  };
}

async function readEverything(deps: ProtectDeps, instanceId: string, caseId: string) {
  const { ec2, autoscaling } = deps;
  const settled = await Promise.allSettled([
    deps.cases.get(caseId),
    readInstance(ec2, instanceId),
    settleAll(wanted.map(({ name }) => readAttribute(ec2, instanceId, name))),
    autoscaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [instanceId] })),
  ]);
  // A gone instance is said as such, whatever the other reads made of it.
  const found = settled[1];
  if (found.status === 'fulfilled') {
    const state = found.value?.State?.Name;
    if (!found.value || state === 'terminated' || state === 'shutting-down') {
      throw new InstanceNotFoundError(`${instanceId} is gone or terminating: nothing left to protect`);
    }
  }
  const [record, instance, attributes, membership] = valuesOf(settled);
  return {
    record,
    instance: instance as Instance,
    attributes,
    member: membership.AutoScalingInstances?.find((i) => i.InstanceId === instanceId),
  };
}

async function describeGroup(autoscaling: AutoScalingClient, groupName: string) {
  const out = await autoscaling.send(
    new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [groupName] }),
  );
  return out.AutoScalingGroups?.[0];
}

/** A fresh record, or the earlier case's originals, which are the instance's true ones. */
function inherit(earlier: CaseRecord | undefined): ProtectChanges {
  const inherited = protectAction.read(earlier);
  return {
    ...(earlier ? { previousCaseId: earlier.caseId } : {}),
    tags: inherited?.tags ?? [],
    attributes: inherited?.attributes ?? [],
    volumes: inherited?.volumes ?? [],
    ...(inherited?.autoScaling ? { autoScaling: inherited.autoScaling } : {}),
    targetGroups: inherited?.targetGroups ?? [],
    classicLoadBalancers: inherited?.classicLoadBalancers ?? [],
  };
}

/**
 * Tags the instance with the case, and its interfaces too (the case's own resources are found by it).
 * The status `protected` goes only on an instance that does not carry this case yet: once it does, its
 * status is this case's own, and may already say more (`isolated`).
 */
async function tagWithTheCase(
  deps: ProtectDeps,
  caseId: string,
  instanceId: string,
  instance: Instance,
  heldBy: string | null,
): Promise<void> {
  const { ec2, recorder } = deps;
  const interfaces = (instance.NetworkInterfaces ?? []).map((n) => n.NetworkInterfaceId as string);
  await settleAll([
    recorder.run('ec2:CreateTags', instanceId, () =>
      ec2.send(
        new CreateTagsCommand({
          Resources: [instanceId],
          Tags: [
            { Key: tagKeys.caseId, Value: caseId },
            ...(heldBy === caseId ? [] : [{ Key: tagKeys.status, Value: 'protected' }]),
          ],
        }),
      ),
    ),
    interfaces.length
      ? recorder.run('ec2:CreateTags', interfaces.join(','), () =>
          ec2.send(
            new CreateTagsCommand({ Resources: interfaces, Tags: [{ Key: tagKeys.caseId, Value: caseId }] }),
          ),
        )
      : undefined,
  ]);
}

async function setAttribute(
  deps: ProtectDeps,
  instanceId: string,
  name: InstanceAttribute,
  value: InstanceAttributeValue,
  unavailable: ProtectResult['unavailable'],
): Promise<void> {
  try {
    await deps.recorder.run(`ec2:ModifyInstanceAttribute ${name}`, instanceId, () =>
      deps.ec2.send(new ModifyInstanceAttributeCommand(attributeChange(instanceId, name, value))),
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

/**
 * Takes the instance out of service in its Auto Scaling group, by standby or detach (ASG_MODE), so that
 * failing health checks cannot get it replaced and terminated. Desired capacity goes down by one only
 * while it stays at or above the group's minimum; at the minimum it is kept, and the group launches a
 * replacement instead of refusing the call.
 */
async function leaveAutoScalingGroup(
  deps: ProtectDeps,
  instanceId: string,
  member: AutoScalingInstanceDetails | undefined,
  changes: ProtectChanges,
  leaving: {
    /** Settles once the group's capacity is read and saved on the case; fails if either failed. */
    saved: Promise<unknown>;
    note: (...args: Parameters<Recorder['note']>) => void;
  },
): Promise<ProtectResult['autoScaling']> {
  const { autoscaling, recorder } = deps;
  const done = changes.autoScaling
    ? { ...changes.autoScaling, replacementLaunched: !changes.autoScaling.decremented }
    : undefined;
  if (!member?.AutoScalingGroupName) return done;
  const groupName = member.AutoScalingGroupName;
  const state = member.LifecycleState ?? 'unknown';
  if (outOfService.has(state)) {
    if (!done) {
      leaving.note('auto scaling left as found', 'info', {
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
  await leaving.saved;
  const record = changes.autoScaling as NonNullable<ProtectChanges['autoScaling']>;
  if (!record.decremented) {
    leaving.note('auto scaling minimum kept', 'info', {
      target: groupName,
      detail: `desired capacity ${record.desiredBefore} is the group's minimum: it is kept, so the group launches a replacement`,
    });
  }
  const request = {
    AutoScalingGroupName: groupName,
    InstanceIds: [instanceId],
    ShouldDecrementDesiredCapacity: record.decremented,
  };
  if (record.mode === 'standby') {
    await recorder.run('autoscaling:EnterStandby', groupName, () =>
      autoscaling.send(new EnterStandbyCommand(request)),
    );
  } else {
    await recorder.run('autoscaling:DetachInstances', groupName, () =>
      autoscaling.send(new DetachInstancesCommand(request)),
    );
  }
  return { ...record, replacementLaunched: !record.decremented };
}

/**
 * Deregisters the instance from every target group and Classic Load Balancer in Triage's picture, all
 * at once. A target no longer registered (the Auto Scaling group took it out, or an earlier attempt
 * did) is said, not a failure.
 */
async function leaveLoadBalancers(
  deps: ProtectDeps,
  instanceId: string,
  balancers: NonNullable<ProtectInput['triage']>['instance'],
  note: (...args: Parameters<Recorder['note']>) => void,
): Promise<ProtectResult['targetGroups']> {
  const { recorder } = deps;
  const [targets] = await settleAll([
    settleAll(
      balancers.targetGroups.map(async (t) => {
        const target = {
          Id: t.id,
          ...(t.port ? { Port: t.port } : {}),
          ...(t.availabilityZone ? { AvailabilityZone: t.availabilityZone } : {}),
        };
        try {
          await recorder.run('elasticloadbalancing:DeregisterTargets', `${t.arn} ${t.id}`, () =>
            deps.elbv2.send(new DeregisterTargetsCommand({ TargetGroupArn: t.arn, Targets: [target] })),
          );
          return { ...t, deregistered: true };
        } catch (error) {
          if (codeOf(error) !== 'InvalidTargetException' && codeOf(error) !== 'InvalidTarget') throw error;
          note('target already deregistered', 'skipped', { target: `${t.arn} ${t.id}` });
          return { ...t, deregistered: false };
        }
      }),
    ),
    settleAll(
      balancers.classicLoadBalancers.map((name) =>
        recorder.run('elasticloadbalancing:DeregisterInstancesFromLoadBalancer', name, () =>
          deps.elb.send(
            new DeregisterInstancesFromLoadBalancerCommand({
              LoadBalancerName: name,
              Instances: [{ InstanceId: instanceId }],
            }),
          ),
        ),
      ),
    ),
  ]);
  return (targets ?? []).filter((t) => t !== undefined);
}
