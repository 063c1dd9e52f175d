import { IAMClient } from '@aws-sdk/client-iam';
import { configSlices } from '../../core/config.js';
import { credentialStateSchema, credentialSteps } from '../../core/credentials.js';
import { stepHandler } from '../../core/handler.js';
import { deactivateAccessKey } from './deactivate-access-key.js';

export const handler = stepHandler(
  credentialSteps.deactivate,
  configSlices.common,
  credentialStateSchema,
  (input, ctx) =>
    deactivateAccessKey(input, {
      iam: ctx.clientsFor({
        accountId: input.case.accountId,
        region: input.case.region,
        caseId: input.case.caseId,
      })(IAMClient),
      recorder: ctx.recorder(input.case.caseId, credentialSteps.deactivate),
      cases: ctx.cases,
    }),
);
