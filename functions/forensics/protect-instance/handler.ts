import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { protectInputSchema, protectInstance } from './protect-instance.js';

export const handler = stepHandler(
  'protect-instance',
  configSlices.protect,
  protectInputSchema,
  (input, ctx) => {
    const member = ctx.clientsFor({
      accountId: input.case.accountId,
      region: input.case.region,
      caseId: input.case.caseId,
    });
    return protectInstance(input, {
      ec2: member(EC2Client),
      autoscaling: member(AutoScalingClient),
      elbv2: member(ElasticLoadBalancingV2Client),
      elb: member(ElasticLoadBalancingClient),
      recorder: ctx.recorder(input.case.caseId, 'protect-instance'),
      cases: ctx.cases,
      config: ctx.config,
    });
  },
);
