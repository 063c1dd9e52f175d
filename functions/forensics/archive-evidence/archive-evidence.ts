import { z } from 'zod';
import { caseSchema } from '../../core/case.js';
import { type OutcomeState, summarise } from '../../core/outcome.js';
import { type SealDeps, sealCase } from '../../core/seal.js';
import type { ArchiveResult } from '../../core/state.js';

/** Archive reads the whole workflow state: what each step did decides the outcome. */
export const archiveInputSchema = z.looseObject({ case: caseSchema });
export type ArchiveInput = z.infer<typeof archiveInputSchema> &
  OutcomeState & {
    response?: { disk?: { snapshots?: unknown } };
  };

export type ArchiveDeps = SealDeps;

/**
 * Seals the case: the timeline as `timeline.jsonl`, then `manifest.json` listing every artifact (key,
 * version, bytes, SHA-256), the snapshots, the steps and the execution, then `manifest.sig`, a KMS
 * signature over the manifest's hash. Manifest and signature carry a legal hold.
 */
export async function archiveEvidence(input: ArchiveInput, deps: ArchiveDeps): Promise<ArchiveResult> {
  const c = input.case;
  const { outcome, steps } = summarise(input);
  const sealed = await sealCase(
    c.caseId,
    {
      instanceId: c.instanceId,
      accountId: c.accountId,
      region: c.region,
      executionArn: c.executionArn,
      openedAt: c.openedAt,
      trigger: c.trigger,
      outcome,
      steps,
      snapshots: input.response?.disk?.snapshots ?? null,
      memory: input.memory ?? null,
    },
    deps,
  );
  return { outcome, manifest: sealed.manifest, signature: sealed.signature, artifacts: sealed.artifacts };
}
