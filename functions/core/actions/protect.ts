/**
 * Protect's action: the instance kept from being destroyed or replaced (termination and stop
 * protection, shutdown behaviour, volumes kept on termination), out of its Auto Scaling group and its
 * load balancers, and tagged with the case.
 */
import {
  AttachInstancesCommand,
  DescribeAutoScalingInstancesCommand,
  ExitStandbyCommand,
} from '@aws-sdk/client-auto-scaling';
import { ModifyInstanceAttributeCommand } from '@aws-sdk/client-ec2';
import { RegisterInstancesWithLoadBalancerCommand } from '@aws-sdk/client-elastic-load-balancing';
import { RegisterTargetsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { z } from 'zod';
import { caseIdSchema } from '../case.js';
import {
  autoScalingGroupNameSchema,
  changeKeys,
  classicLoadBalancerNameSchema,
  deviceNameSchema,
  targetSchema,
  volumeIdSchema,
} from '../containment.js';
import { attributeChange, readAttribute } from '../instance.js';
import { containmentAction, type ReleaseContext } from './action.js';

// Every entry is written BEFORE the change it describes is made, so that a step that dies half-way
// still leaves Release a record of everything it may have applied; Release compares each entry with
// the live state and only restores what still differs.

export const protectChangesSchema = z.object({
  /** The case that held the instance before this one and had not released it: its originals are ours. */
  previousCaseId: caseIdSchema.optional(),
  /** The values the instance's Cordon tags had before (null: the tag was absent). */
  tags: z.array(z.object({ key: z.string(), original: z.string().nullable() })),
  attributes: z.array(
    z.object({
      name: z.enum(['disableApiTermination', 'disableApiStop', 'instanceInitiatedShutdownBehavior']),
      original: z.union([z.boolean(), z.enum(['stop', 'terminate'])]),
    }),
  ),
  volumes: z.array(
    z.object({
      volumeId: volumeIdSchema,
      deviceName: deviceNameSchema,
      originalDeleteOnTermination: z.boolean(),
    }),
  ),
  autoScaling: z
    .object({
      groupName: autoScalingGroupNameSchema,
      mode: z.enum(['standby', 'detach']),
      /** Whether the group's desired capacity went down by one (false: the group launched a replacement). */
      decremented: z.boolean(),
      desiredBefore: z.number().int().min(0),
      minSize: z.number().int().min(0),
    })
    .optional(),
  targetGroups: z.array(targetSchema),
  classicLoadBalancers: z.array(classicLoadBalancerNameSchema),
});
export type ProtectChanges = z.infer<typeof protectChangesSchema>;

export const protectAction = containmentAction({
  key: changeKeys.protect,
  step: 'protect-instance',
  description:
    'termination and stop protection, shutdown behaviour, volumes kept on termination, Auto Scaling membership, load balancer registrations',
  schema: protectChangesSchema,
  restore: restoreProtection,
});

async function restoreProtection(protect: ProtectChanges, release: ReleaseContext): Promise<void> {
  const { clients, recorder, instance, attempt, gone } = release;
  const { instanceId } = release.record;
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
