import { setTimeout as sleep } from 'node:timers/promises';
import { CloudTrailClient } from '@aws-sdk/client-cloudtrail';
import { configSlices } from '../../core/config.js';
import { credentialStateSchema, credentialSteps } from '../../core/credentials.js';
import { stepHandler } from '../../core/handler.js';
import { collectActivity } from './collect-activity.js';

export const handler = stepHandler(
  credentialSteps.activity,
  configSlices.credentialActivity,
  credentialStateSchema,
  (input, ctx) =>
    collectActivity(input, {
      cloudtrail: ctx.clientsFor({
        accountId: input.case.accountId,
        region: input.case.region,
        caseId: input.case.caseId,
      })(CloudTrailClient),
      evidence: ctx.evidence,
      recorder: ctx.recorder(input.case.caseId, credentialSteps.activity),
      days: ctx.config.CREDENTIAL_ACTIVITY_DAYS,
      maxEvents: ctx.config.CREDENTIAL_ACTIVITY_MAX_EVENTS,
      // The function's timeout is 300 s: page for at most four minutes, then store what was found.
      budgetMs: 240_000,
      now: ctx.now,
      clock: () => Date.now(),
      sleep: (ms) => sleep(ms).then(() => undefined),
    }),
);
