import { stepHandler } from '../shared/handler.js';
import { checkSnapshots, checkSnapshotsInputSchema, copyTarget } from './check-snapshots.js';

export const handler = stepHandler('check-snapshots', checkSnapshotsInputSchema, (input, ctx) => {
  const { accountId, region, caseId } = input.case;
  const target = copyTarget(ctx.config);
  return checkSnapshots(input, {
    ec2: ctx.clientsFor({ accountId, region, caseId }).ec2,
    ...(target ? { copyEc2: ctx.clientsFor({ accountId: target.accountId, region, caseId }).ec2 } : {}),
    recorder: ctx.recorder(caseId, 'check-snapshots'),
    evidence: ctx.evidence,
    config: ctx.config,
    now: ctx.now,
  });
});
