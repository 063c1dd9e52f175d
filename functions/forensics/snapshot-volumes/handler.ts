import { EC2Client } from '@aws-sdk/client-ec2';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { snapshotInputSchema, snapshotVolumes } from './snapshot-volumes.js';

export const handler = stepHandler(
  'snapshot-volumes',
  configSlices.snapshots,
  snapshotInputSchema,
  (input, ctx) =>
    snapshotVolumes(input, {
      ec2: ctx.clientsFor({
        accountId: input.case.accountId,
        region: input.case.region,
        caseId: input.case.caseId,
      })(EC2Client),
      events: ctx.home.events,
      recorder: ctx.recorder(input.case.caseId, 'snapshot-volumes'),
      config: ctx.config,
      now: ctx.now,
    }),
);
