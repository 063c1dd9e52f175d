import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { IAMClient } from '@aws-sdk/client-iam';
import { SSMClient } from '@aws-sdk/client-ssm';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { triageInputSchema, triageInstance } from './triage-instance.js';

export const handler = stepHandler(
  'triage-instance',
  configSlices.common,
  triageInputSchema,
  (input, ctx) => {
    const member = ctx.clientsFor({
      accountId: input.case.accountId,
      region: input.case.region,
      caseId: input.case.caseId,
    });
    return triageInstance(input, {
      ec2: member(EC2Client),
      ssm: member(SSMClient),
      iam: member(IAMClient),
      autoscaling: member(AutoScalingClient),
      elbv2: member(ElasticLoadBalancingV2Client),
      elb: member(ElasticLoadBalancingClient),
      evidence: ctx.evidence,
      recorder: ctx.recorder(input.case.caseId, 'triage-instance'),
      cases: ctx.cases,
    });
  },
);
