import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { securityHubOf } from '../../core/securityhub.js';
import { intakeFinding, intakeInputSchema, intakeStep } from './intake-finding.js';

export const handler = stepHandler(intakeStep, configSlices.intake, intakeInputSchema, (input, ctx) =>
  intakeFinding(input, {
    cases: ctx.cases,
    evidence: ctx.evidence,
    recorder: ctx.recorder,
    config: ctx.config,
    now: ctx.now,
    events: ctx.home.events,
    securityHub: securityHubOf(ctx),
  }),
);
