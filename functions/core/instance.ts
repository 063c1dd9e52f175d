/**
 * The instance as EC2 describes it, and the attributes Protect sets and Release puts back: one mapping
 * between an attribute's name and the API's fields, read and written the same way by both.
 */
import {
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  type EC2Client,
  type Instance,
  type ModifyInstanceAttributeCommandInput,
} from '@aws-sdk/client-ec2';
import type { ProtectChanges } from './actions/protect.js';
import { awsErrorCode } from './errors.js';

/** The instance in whatever state it is in; undefined when EC2 does not know the id, or no longer does. */
export async function readInstance(ec2: EC2Client, instanceId: string): Promise<Instance | undefined> {
  const out = await ec2
    .send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))
    .catch((error: unknown) => {
      if (awsErrorCode(error)?.startsWith('InvalidInstanceID')) return undefined;
      throw error;
    });
  return out?.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
}

export type InstanceAttribute = ProtectChanges['attributes'][number]['name'];
export type InstanceAttributeValue = ProtectChanges['attributes'][number]['original'];

/** One attribute's live value; undefined when EC2 leaves it out (or answers a shutdown behaviour it has no name for). */
export async function readAttribute(
  ec2: EC2Client,
  instanceId: string,
  name: InstanceAttribute,
): Promise<InstanceAttributeValue | undefined> {
  const out = await ec2.send(
    new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: name }),
  );
  if (name === 'disableApiTermination') return out.DisableApiTermination?.Value;
  if (name === 'disableApiStop') return out.DisableApiStop?.Value;
  const v = out.InstanceInitiatedShutdownBehavior?.Value;
  return v === 'stop' || v === 'terminate' ? v : undefined;
}

/** The ModifyInstanceAttribute request that sets one attribute to `value`. */
export function attributeChange(
  instanceId: string,
  name: InstanceAttribute,
  value: InstanceAttributeValue,
): ModifyInstanceAttributeCommandInput {
  if (name === 'instanceInitiatedShutdownBehavior') {
    return { InstanceId: instanceId, InstanceInitiatedShutdownBehavior: { Value: String(value) } };
  }
  if (name === 'disableApiStop') return { InstanceId: instanceId, DisableApiStop: { Value: value === true } };
  return { InstanceId: instanceId, DisableApiTermination: { Value: value === true } };
}
