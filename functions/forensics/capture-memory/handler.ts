import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { captureInputSchema, captureMemory } from './capture-memory.js';

export const handler = stepHandler(
  'capture-memory',
  configSlices.memory,
  captureInputSchema,
  (input, ctx) => {
    const { accountId, region, caseId } = input.case;
    const member = ctx.clientsFor({ accountId, region, caseId });
    return captureMemory(input, {
      ssm: member(SSMClient),
      ec2: member(EC2Client),
      s3: ctx.home.s3,
      sts: ctx.home.sts,
      presign: (command, expiresIn) => getSignedUrl(ctx.home.s3, command, { expiresIn }),
      recorder: ctx.recorder(caseId, 'capture-memory'),
      config: ctx.config,
      now: ctx.now,
    });
  },
);
