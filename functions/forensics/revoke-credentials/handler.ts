import { EC2Client } from '@aws-sdk/client-ec2';
import { IAMClient } from '@aws-sdk/client-iam';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { revokeCredentials, revokeInputSchema } from './revoke-credentials.js';

export const handler = stepHandler(
  'revoke-credentials',
  configSlices.revoke,
  revokeInputSchema,
  (input, ctx) => {
    const member = ctx.clientsFor({
      accountId: input.case.accountId,
      region: input.case.region,
      caseId: input.case.caseId,
    });
    return revokeCredentials(input, {
      ec2: member(EC2Client),
      iam: member(IAMClient),
      recorder: ctx.recorder(input.case.caseId, 'revoke-credentials'),
      cases: ctx.cases,
      config: ctx.config,
      now: ctx.now,
    });
  },
);
