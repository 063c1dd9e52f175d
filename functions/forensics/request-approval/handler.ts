import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { requestApproval, requestApprovalInputSchema } from './request-approval.js';

export const handler = stepHandler(
  'request-approval',
  configSlices.common,
  requestApprovalInputSchema,
  (input, ctx) =>
    requestApproval(input, {
      ddb: ctx.home.ddb,
      table: ctx.config.CASES_TABLE,
      sns: ctx.home.sns,
      topicArn: ctx.config.ALERT_TOPIC_ARN,
      recorder: ctx.recorder(input.case.caseId, 'request-approval'),
      now: ctx.now,
    }),
);
