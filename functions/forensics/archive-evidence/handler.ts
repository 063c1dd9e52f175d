import { configSlices } from '../../core/config.js';
import { stepHandler } from '../../core/handler.js';
import { type ArchiveInput, archiveEvidence, archiveInputSchema } from './archive-evidence.js';

export const handler = stepHandler(
  'archive-evidence',
  configSlices.common,
  archiveInputSchema,
  (input, ctx) =>
    archiveEvidence(input as ArchiveInput, {
      s3: ctx.home.s3,
      kms: ctx.home.kms,
      bucket: ctx.config.EVIDENCE_BUCKET,
      signingKeyId: ctx.config.SIGNING_KEY_ID,
      cases: ctx.cases,
      evidence: ctx.evidence,
      recorder: ctx.recorder(input.case.caseId, 'archive-evidence'),
      now: ctx.now,
      events: ctx.home.events,
    }),
);
