import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { assessInstance } from '../../core/plan.js';
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
    // Read only, under the member account's Read role where the instance lives elsewhere.
    assess: (c) => {
      const member = ctx.clientsFor({ accountId: c.accountId, region: c.region, caseId: c.caseId });
      return assessInstance(c, { ec2: member(EC2Client), ssm: member(SSMClient) });
    },
    securityHub: securityHubOf(ctx),
  }),
);
