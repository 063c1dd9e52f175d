import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { z } from 'zod';
import { caseSchema } from '../../core/case.js';
import { emitCaseEvent } from '../../core/events.js';
import { type OutcomeState, summarise } from '../../core/outcome.js';
import { type SealDeps, sealCase } from '../../core/seal.js';
import type { ArchiveResult } from '../../core/state.js';

/** Archive reads the whole workflow state: what each step did decides the outcome. */
export const archiveInputSchema = z.looseObject({ case: caseSchema });
export type ArchiveInput = z.infer<typeof archiveInputSchema> &
  OutcomeState & {
    response?: { disk?: { snapshots?: unknown } };
  };

export type ArchiveDeps = SealDeps & {
  /** Where the "evidence sealed" event goes; one that cannot be sent is recorded and the case goes on. */
  events: EventBridgeClient;
};

/**
 * Seals the case: the timeline as `timeline.jsonl`, then `manifest.json` listing every artifact (key,
 * version, bytes, SHA-256), the snapshots, the steps and the execution, then `manifest.sig`, a KMS
 * signature over the manifest's hash. Manifest and signature carry a legal hold. Then the case's
 * "evidence sealed" event (after the seal: the event is not in the sealed timeline, only the case's).
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
  await emitCaseEvent(c, 'sealed', { events: deps.events, recorder: deps.recorder, now: deps.now });
  return { outcome, manifest: sealed.manifest, signature: sealed.signature, artifacts: sealed.artifacts };
}
