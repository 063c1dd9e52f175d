import { configSlices } from '../../core/config.js';
import { credentialSteps } from '../../core/credentials.js';
import { stepHandler } from '../../core/handler.js';
import { securityHubOf } from '../../core/securityhub.js';
import { credentialIntake, credentialIntakeInputSchema } from './credential-intake.js';

export const handler = stepHandler(
  credentialSteps.intake,
  configSlices.credentialIntake,
  credentialIntakeInputSchema,
  (input, ctx) =>
    credentialIntake(input, {
      cases: ctx.cases,
      evidence: ctx.evidence,
      recorder: ctx.recorder,
      config: ctx.config,
      now: ctx.now,
      securityHub: securityHubOf(ctx),
    }),
);
