import { EC2Client } from '@aws-sdk/client-ec2';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { unblockInputSchema, unblockIp } from './unblock-ip.js';

export const handler = stepHandler('unblock-ip', configSlices.common, unblockInputSchema, (input, ctx) =>
  unblockIp(input, {
    ec2For: (target) => ctx.clientsFor(target)(EC2Client),
    cases: ctx.cases,
    recorder: ctx.recorder,
    home: { accountId: ctx.config.CORDON_ACCOUNT_ID, region: ctx.config.AWS_REGION },
  }),
);
