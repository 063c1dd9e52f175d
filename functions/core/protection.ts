/**
 * What Protect decides before it changes anything: the attributes it sets, the volumes it keeps on
 * termination, and how the instance leaves its Auto Scaling group. Protect and `cordon start --dry-run`
 * decide with these same functions.
 */
import type { AutoScalingGroup } from '@aws-sdk/client-auto-scaling';
import type { Instance, InstanceBlockDeviceMapping } from '@aws-sdk/client-ec2';
import type { ProtectChanges } from './actions/protect.js';
import type { InstanceAttribute } from './instance.js';

/** What Protect sets, and why: nothing the instance or an API caller does may destroy the evidence. */
export const protectedAttributes: readonly { name: InstanceAttribute; value: boolean | 'stop' }[] = [
  { name: 'disableApiTermination', value: true },
  { name: 'disableApiStop', value: true },
  { name: 'instanceInitiatedShutdownBehavior', value: 'stop' },
];

/** Auto Scaling states in which the instance is already out of service by Cordon's hand. */
export const outOfService: ReadonlySet<string> = new Set([
  'Standby',
  'EnteringStandby',
  'Detaching',
  'Detached',
]);

/** The instance's EBS volumes as its block device mappings list them (each with a volume and a device). */
export function ebsMappings(instance: Pick<Instance, 'BlockDeviceMappings'>) {
  return (instance.BlockDeviceMappings ?? []).filter(
    (b): b is InstanceBlockDeviceMapping & { DeviceName: string; Ebs: { VolumeId: string } } =>
      Boolean(b.Ebs?.VolumeId && b.DeviceName),
  );
}

/** The mappings whose volume would be deleted with the instance: Protect turns that off. */
export function volumesToKeep<M extends InstanceBlockDeviceMapping>(mappings: readonly M[]): M[] {
  return mappings.filter((b) => b.Ebs?.DeleteOnTermination !== false);
}

/**
 * How the instance leaves its group: desired capacity goes down by one only while it stays at or above
 * the group's minimum; at the minimum it is kept, and the group launches a replacement.
 */
export function autoScalingLeaving(
  groupName: string,
  mode: 'standby' | 'detach',
  group: Pick<AutoScalingGroup, 'DesiredCapacity' | 'MinSize'> | undefined,
): NonNullable<ProtectChanges['autoScaling']> {
  const desired = group?.DesiredCapacity ?? 0;
  const minSize = group?.MinSize ?? 0;
  return { groupName, mode, decremented: desired > minSize, desiredBefore: desired, minSize };
}
