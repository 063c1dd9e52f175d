import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { stepHandler } from '../shared/handler.js';
import { captureInputSchema, captureMemory } from './capture-memory.js';

export const handler = stepHandler('capture-memory', captureInputSchema, (input, ctx) => {
  const { accountId, region, caseId } = input.case;
  const member = ctx.clientsFor({ accountId, region, caseId });
  return captureMemory(input, {
    ssm: member.ssm,
    ec2: member.ec2,
    s3: ctx.home.s3,
    sts: ctx.home.sts,
    presign: (command, expiresIn) => getSignedUrl(ctx.home.s3, command, { expiresIn }),
    recorder: ctx.recorder(caseId, 'capture-memory'),
    config: ctx.config,
    now: ctx.now,
  });
});
