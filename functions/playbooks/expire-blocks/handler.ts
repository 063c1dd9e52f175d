import { EC2Client } from '@aws-sdk/client-ec2';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { expireBlocks, expireInputSchema } from './expire-blocks.js';

export const handler = stepHandler('expire-blocks', configSlices.blocks, expireInputSchema, (_input, ctx) =>
  expireBlocks({
    ec2For: (target) => ctx.clientsFor(target)(EC2Client),
    cases: ctx.cases,
    recorder: ctx.recorder,
    sns: ctx.home.sns,
    topicArn: ctx.config.ALERT_TOPIC_ARN,
    now: ctx.now,
  }),
);
