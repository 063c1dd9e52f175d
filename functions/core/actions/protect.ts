/**
 * Protect's action: the instance kept from being destroyed or replaced (termination and stop
 * protection, shutdown behaviour, volumes kept on termination), out of its Auto Scaling group and its
 * load balancers, and tagged with the case.
 */
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
import { containmentAction } from './action.js';

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
});
