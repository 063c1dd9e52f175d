import { SQSClient } from '@aws-sdk/client-sqs';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { holdInputSchema, holdTrigger } from './hold-trigger.js';

export const handler = stepHandler('hold-trigger', configSlices.hold, holdInputSchema, (input, ctx) =>
  holdTrigger(input, {
    sqs: ctx.homeClient(SQSClient),
    queueUrl: ctx.config.REDRIVE_QUEUE_URL,
    cases: ctx.cases,
    recorder: (caseId) => ctx.recorder(caseId, 'hold-trigger'),
  }),
);
