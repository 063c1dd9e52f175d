import { stepHandler } from '../shared/handler.js';
import { releaseInputSchema, releaseInstance } from './release-instance.js';

export const handler = stepHandler('release-instance', releaseInputSchema, (input, ctx) =>
  releaseInstance(input, {
    cases: ctx.cases,
    clientsFor: ctx.clientsFor,
    recorder: ctx.recorder(input.caseId, 'release-instance'),
    sns: ctx.home.sns,
    topicArn: ctx.config.ALERT_TOPIC_ARN,
    quarantineProfileName: ctx.config.QUARANTINE_PROFILE_NAME,
  }),
);
