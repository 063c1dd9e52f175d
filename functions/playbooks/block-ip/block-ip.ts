import { z } from 'zod';

/**
 * What the function takes: a block request or a GuardDuty finding event, each checked by `blockIp`
 * (functions/core/blocks.ts), which refuses a malformed one by name. Input that is neither (no range,
 * no VPC, no finding) is a wiring error or a forged invocation and fails the call.
 */
export const blockInputSchema = z
  .record(z.string(), z.unknown())
  .refine((o) => 'cidr' in o || 'vpcId' in o || 'detail' in o, {
    message: 'neither a block request (cidr, vpcId) nor a GuardDuty finding event (detail)',
  });
