import { stepHandler } from '../shared/handler.js';
import { triageInputSchema, triageInstance } from './triage-instance.js';

export const handler = stepHandler('triage-instance', triageInputSchema, (input, ctx) =>
  triageInstance(input, {
    ...ctx.clientsFor({
      accountId: input.case.accountId,
      region: input.case.region,
      caseId: input.case.caseId,
    }),
    evidence: ctx.evidence,
    recorder: ctx.recorder(input.case.caseId, 'triage-instance'),
  }),
);
