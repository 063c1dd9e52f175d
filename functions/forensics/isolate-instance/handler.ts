import { EC2Client } from '@aws-sdk/client-ec2';
import { configSlices } from '../../core/config.js';
import { sleep } from '../../core/containment.js';
import { stepHandler } from '../../core/handler.js';
import { isolateInputSchema, isolateInstance } from './isolate-instance.js';

export const handler = stepHandler(
  'isolate-instance',
  configSlices.isolate,
  isolateInputSchema,
  (input, ctx) => {
    const member = ctx.clientsFor({
      accountId: input.case.accountId,
      region: input.case.region,
      caseId: input.case.caseId,
    });
    return isolateInstance(input, {
      ec2: member(EC2Client),
      recorder: ctx.recorder(input.case.caseId, 'isolate-instance'),
      cases: ctx.cases,
      config: ctx.config,
      now: ctx.now,
      sleep,
    });
  },
);
