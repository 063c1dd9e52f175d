import { EC2Client } from '@aws-sdk/client-ec2';
import { blockIp } from '../../core/blocks.js';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { blockInputSchema } from './block-ip.js';

export const handler = stepHandler('block-ip', configSlices.blocks, blockInputSchema, (input, ctx) =>
  blockIp(input, {
    ec2For: (target) => ctx.clientsFor(target)(EC2Client),
    cases: ctx.cases,
    recorder: ctx.recorder,
    sns: ctx.home.sns,
    config: ctx.config,
    now: ctx.now,
  }),
);
