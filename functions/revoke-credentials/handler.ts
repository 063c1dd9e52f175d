import { stepHandler } from '../shared/handler.js';
import { revokeCredentials, revokeInputSchema } from './revoke-credentials.js';

export const handler = stepHandler('revoke-credentials', revokeInputSchema, (input, ctx) =>
  revokeCredentials(input, {
    ...ctx.clientsFor({
      accountId: input.case.accountId,
      region: input.case.region,
      caseId: input.case.caseId,
    }),
    recorder: ctx.recorder(input.case.caseId, 'revoke-credentials'),
    cases: ctx.cases,
    config: ctx.config,
    now: ctx.now,
  }),
);
