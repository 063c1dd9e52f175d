import { configSlices } from '../../core/config.js';
import { credentialSteps } from '../../core/credentials.js';
import { stepHandler } from '../../core/handler.js';
import { securityHubOf } from '../../core/securityhub.js';
import { credentialNotify, credentialNotifyInputSchema } from './credential-notify.js';

export const handler = stepHandler(
  credentialSteps.notify,
  configSlices.notify,
  credentialNotifyInputSchema,
  (input, ctx) =>
    credentialNotify(input, {
      sns: ctx.home.sns,
      topicArn: ctx.config.ALERT_TOPIC_ARN,
      cases: ctx.cases,
      securityHub: { ...securityHubOf(ctx), resolveOnComplete: ctx.config.SECURITYHUB_RESOLVE_ON_COMPLETE },
      ...(input.case ? { recorder: ctx.recorder(input.case.caseId, credentialSteps.notify) } : {}),
    }),
);
