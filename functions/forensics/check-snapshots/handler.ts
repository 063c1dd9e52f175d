import { EC2Client } from '@aws-sdk/client-ec2';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { checkSnapshots, checkSnapshotsInputSchema, copyTarget } from './check-snapshots.js';

export const handler = stepHandler(
  'check-snapshots',
  configSlices.snapshots,
  checkSnapshotsInputSchema,
  (input, ctx) => {
    const { accountId, region, caseId } = input.case;
    const target = copyTarget(ctx.config);
    return checkSnapshots(input, {
      ec2: ctx.clientsFor({ accountId, region, caseId })(EC2Client),
      ...(target
        ? { copyEc2: ctx.clientsFor({ accountId: target.accountId, region, caseId })(EC2Client) }
        : {}),
      recorder: ctx.recorder(caseId, 'check-snapshots'),
      evidence: ctx.evidence,
      config: ctx.config,
      now: ctx.now,
    });
  },
);
