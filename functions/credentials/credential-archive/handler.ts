import { configSlices } from '../../core/config.js';
import { credentialStateSchema, credentialSteps } from '../../core/credentials.js';
import { stepHandler } from '../../core/handler.js';
import { credentialArchive } from './credential-archive.js';

export const handler = stepHandler(
  credentialSteps.archive,
  configSlices.common,
  credentialStateSchema,
  (input, ctx) =>
    credentialArchive(input, {
      s3: ctx.home.s3,
      kms: ctx.home.kms,
      bucket: ctx.config.EVIDENCE_BUCKET,
      signingKeyId: ctx.config.SIGNING_KEY_ID,
      cases: ctx.cases,
      evidence: ctx.evidence,
      recorder: ctx.recorder(input.case.caseId, credentialSteps.archive),
      now: ctx.now,
    }),
);
