/**
 * Isolate's action: every interface in Cordon's isolation group, its connection-tracking timeouts
 * shortened, its Elastic IPs taken off, and network ACL denies for the finding's addresses.
 */
import { z } from 'zod';
import { caseIdSchema } from '../case.js';
import {
  allocationIdSchema,
  changeKeys,
  eniIdSchema,
  groupIdSchema,
  networkAclIdSchema,
  vpcIdSchema,
} from '../containment.js';
import { containmentAction } from './action.js';

// Every entry is written BEFORE the change it describes is made, so that a step that dies half-way
// still leaves Release a record of everything it may have applied; Release compares each entry with
// the live state and only restores what still differs.

const conntrackSchema = z.object({
  tcpEstablishedTimeout: z.number().int().optional(),
  udpStreamTimeout: z.number().int().optional(),
  udpTimeout: z.number().int().optional(),
});
export type Conntrack = z.infer<typeof conntrackSchema>;

export const isolateChangesSchema = z.object({
  previousCaseId: caseIdSchema.optional(),
  groups: z.array(
    z.object({ vpcId: vpcIdSchema, conversionGroupId: groupIdSchema, isolationGroupId: groupIdSchema }),
  ),
  enis: z.array(
    z.object({
      networkInterfaceId: eniIdSchema,
      vpcId: vpcIdSchema,
      /** null when the ENI already held Cordon's groups and no earlier record named its own. */
      originalGroups: z.array(groupIdSchema).nullable(),
      /** Connection-tracking timeouts before Cordon shortened them; null: the interface's defaults. */
      originalConntrack: conntrackSchema.nullable().optional(),
      convertedAt: z.string().optional(),
    }),
  ),
  elasticIps: z.array(
    z.object({
      allocationId: allocationIdSchema,
      publicIp: z.ipv4(),
      networkInterfaceId: eniIdSchema,
      privateIpAddress: z.ipv4(),
    }),
  ),
  naclEntries: z.array(
    z.object({
      networkAclId: networkAclIdSchema,
      ruleNumber: z.number().int().min(1).max(32766),
      egress: z.boolean(),
      cidr: z.string().regex(/^[0-9a-f:.]+\/\d{1,3}$/),
    }),
  ),
});
export type IsolateChanges = z.infer<typeof isolateChangesSchema>;

export const isolateAction = containmentAction({
  key: changeKeys.isolate,
  step: 'isolate-instance',
  description: 'interface groups, connection-tracking timeouts, Elastic IPs, network ACL denies',
  schema: isolateChangesSchema,
});
