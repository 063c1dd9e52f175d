import { configSlices } from '../../core/config.js';
import { credentialStateSchema, credentialSteps } from '../../core/credentials.js';
import { stepHandler } from '../../core/handler.js';
import { startInstanceResponse } from './start-instance-response.js';

export const handler = stepHandler(
  credentialSteps.instance,
  configSlices.startForensics,
  credentialStateSchema,
  (input, ctx) =>
    startInstanceResponse(input, {
      sfn: ctx.home.sfn,
      stateMachineArn: ctx.config.FORENSICS_STATE_MACHINE_ARN,
      recorder: ctx.recorder(input.case.caseId, credentialSteps.instance),
    }),
);
