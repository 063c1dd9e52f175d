import { IAMClient } from '@aws-sdk/client-iam';
import { configSlices } from '../../core/config.js';
import { credentialStateSchema, credentialSteps } from '../../core/credentials.js';
import { stepHandler } from '../../core/handler.js';
import { quarantinePrincipal } from './quarantine-principal.js';

export const handler = stepHandler(
  credentialSteps.quarantine,
  configSlices.common,
  credentialStateSchema,
  (input, ctx) =>
    quarantinePrincipal(input, {
      iam: ctx.clientsFor({
        accountId: input.case.accountId,
        region: input.case.region,
        caseId: input.case.caseId,
      })(IAMClient),
      recorder: ctx.recorder(input.case.caseId, credentialSteps.quarantine),
      cases: ctx.cases,
    }),
);
