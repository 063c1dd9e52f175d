import { EC2Client } from '@aws-sdk/client-ec2';
import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { stopAfterEvidence, stopInputSchema, stopStep } from './ids-alert-stop.js';

export const handler = stepHandler(stopStep, configSlices.ids, stopInputSchema, (input, ctx) =>
  stopAfterEvidence(input, {
    sfn: ctx.home.sfn,
    ec2For: (target) => ctx.clientsFor(target)(EC2Client),
    sns: ctx.home.sns,
    topicArn: ctx.config.ALERT_TOPIC_ARN,
    stateMachineArn: ctx.config.FORENSICS_STATE_MACHINE_ARN,
    cases: ctx.cases,
    recorder: ctx.recorder,
  }),
);
