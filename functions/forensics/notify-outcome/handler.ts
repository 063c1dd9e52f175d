import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { securityHubOf } from '../../core/securityhub.js';
import { type NotifyInput, notifyInputSchema, notifyOutcome } from './notify-outcome.js';

export const handler = stepHandler('notify-outcome', configSlices.notify, notifyInputSchema, (input, ctx) =>
  notifyOutcome(input as NotifyInput, {
    sns: ctx.home.sns,
    events: ctx.home.events,
    topicArn: ctx.config.ALERT_TOPIC_ARN,
    cases: ctx.cases,
    securityHub: {
      ...securityHubOf(ctx),
      resolveOnComplete: ctx.config.SECURITYHUB_RESOLVE_ON_COMPLETE,
      joined: (caseId) => ctx.cases.securityHubFindings(caseId),
    },
    ...(input.case ? { recorder: ctx.recorder(input.case.caseId, 'notify-outcome') } : {}),
  }),
);
