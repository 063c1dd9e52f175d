import { stepHandler } from '../shared/handler.js';
import { protectInputSchema, protectInstance } from './protect-instance.js';

export const handler = stepHandler('protect-instance', protectInputSchema, (input, ctx) =>
  protectInstance(input, {
    ...ctx.clientsFor({
      accountId: input.case.accountId,
      region: input.case.region,
      caseId: input.case.caseId,
    }),
    recorder: ctx.recorder(input.case.caseId, 'protect-instance'),
    cases: ctx.cases,
    config: ctx.config,
  }),
);
