import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { verifyMemory, verifyMemoryInputSchema } from './verify-memory.js';

export const handler = stepHandler(
  'verify-memory',
  configSlices.memory,
  verifyMemoryInputSchema,
  (input, ctx) =>
    verifyMemory(input, {
      s3: ctx.home.s3,
      recorder: ctx.recorder(input.case.caseId, 'verify-memory'),
      config: ctx.config,
      now: ctx.now,
    }),
);
