import { EC2Client } from '@aws-sdk/client-ec2';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { idsAlert, idsInputSchema, idsStep } from './ids-alert.js';

export const handler = stepHandler(idsStep, configSlices.ids, idsInputSchema, async (input, ctx) => {
  const result = await idsAlert(input, {
    ec2For: (target) => ctx.clientsFor(target)(EC2Client),
    sfn: ctx.home.sfn,
    sns: ctx.home.sns,
    config: ctx.config,
  });
  // Counts only: the lines themselves came from a host that may be compromised.
  const { started, notified, ...counts } = result;
  ctx.log.info('ids batch', { ...counts, started: started.length, notified: notified.length });
  return result;
});
