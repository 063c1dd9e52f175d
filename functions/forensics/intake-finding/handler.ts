import { stepHandler } from '../../core/handler.js';
import { intakeFinding, intakeInputSchema, intakeStep } from './intake-finding.js';

export const handler = stepHandler(intakeStep, intakeInputSchema, (input, ctx) =>
  intakeFinding(input, {
    cases: ctx.cases,
    evidence: ctx.evidence,
    recorder: ctx.recorder,
    config: ctx.config,
    now: ctx.now,
  }),
);
