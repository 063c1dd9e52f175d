import { SSMClient } from '@aws-sdk/client-ssm';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { checkMemory, checkMemoryInputSchema } from './check-memory.js';

export const handler = stepHandler(
  'check-memory',
  configSlices.memory,
  checkMemoryInputSchema,
  (input, ctx) => {
    const { accountId, region, caseId } = input.case;
    return checkMemory(input, {
      ssm: ctx.clientsFor({ accountId, region, caseId })(SSMClient),
      s3: ctx.home.s3,
      recorder: ctx.recorder(caseId, 'check-memory'),
      config: ctx.config,
      now: ctx.now,
    });
  },
);
