import { IAMClient } from '@aws-sdk/client-iam';
import { configSlices } from '../../core/config.js';
import { credentialStateSchema, credentialSteps } from '../../core/credentials.js';
import { stepHandler } from '../../core/handler.js';
import { revokeSessions } from './revoke-sessions.js';

export const handler = stepHandler(
  credentialSteps.revoke,
  configSlices.common,
  credentialStateSchema,
  (input, ctx) =>
    revokeSessions(input, {
      iam: ctx.clientsFor({
        accountId: input.case.accountId,
        region: input.case.region,
        caseId: input.case.caseId,
      })(IAMClient),
      recorder: ctx.recorder(input.case.caseId, credentialSteps.revoke),
      cases: ctx.cases,
      memberRoleName: ctx.config.MEMBER_ROLE_NAME,
      now: ctx.now,
    }),
);
