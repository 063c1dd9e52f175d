import { EC2Client } from '@aws-sdk/client-ec2';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { policyViolation, violationInputSchema, violationStep } from './policy-violation.js';

export const handler = stepHandler(violationStep, configSlices.policy, violationInputSchema, (input, ctx) =>
  policyViolation(input, {
    ec2For: (target) => ctx.clientsFor(target)(EC2Client),
    sns: ctx.home.sns,
    cases: ctx.cases,
    recorder: ctx.recorder,
    config: ctx.config,
    now: ctx.now,
  }),
);
