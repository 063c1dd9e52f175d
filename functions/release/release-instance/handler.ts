import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { IAMClient } from '@aws-sdk/client-iam';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { releaseInputSchema, releaseInstance } from './release-instance.js';

export const handler = stepHandler(
  'release-instance',
  configSlices.release,
  releaseInputSchema,
  (input, ctx) =>
    releaseInstance(input, {
      cases: ctx.cases,
      clientsFor: (target) => {
        const member = ctx.clientsFor(target);
        return {
          ec2: member(EC2Client),
          iam: member(IAMClient),
          autoscaling: member(AutoScalingClient),
          elbv2: member(ElasticLoadBalancingV2Client),
          elb: member(ElasticLoadBalancingClient),
        };
      },
      recorder: ctx.recorder(input.caseId, 'release-instance'),
      sns: ctx.home.sns,
      topicArn: ctx.config.ALERT_TOPIC_ARN,
      quarantineProfileName: ctx.config.QUARANTINE_PROFILE_NAME,
      now: ctx.now,
      events: ctx.home.events,
    }),
);
