import type { KMSClient } from '@aws-sdk/client-kms';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Outcome } from '../../core/case.js';
import type { CaseStore, Recorder } from '../../core/cases.js';
import {
  type CredentialOutcomeState,
  type CredentialState,
  credentialOutcome,
} from '../../core/credentials.js';
import type { Artifact, EvidenceStore } from '../../core/evidence.js';
import { sealCase } from '../../core/seal.js';

export interface CredentialArchiveDeps {
  s3: S3Client;
  kms: KMSClient;
  bucket: string;
  signingKeyId: string;
  cases: Pick<CaseStore, 'timeline'>;
  evidence: Pick<EvidenceStore, 'put'>;
  recorder: Recorder;
  now: () => Date;
}

export interface CredentialArchiveResult {
  outcome: Outcome;
  manifest: Artifact;
  signature: Artifact;
  artifacts: Artifact[];
}

/**
 * Seals the credential case like any Cordon case: the timeline, every artifact checked against S3,
 * `manifest.json` (what the principal is, what was done to it, the outcome) and its KMS signature,
 * under Object Lock with a legal hold. `instanceId` names the exfiltrating instance, or is empty: the
 * case is about a principal, not an instance.
 */
export async function credentialArchive(
  state: CredentialState & CredentialOutcomeState,
  deps: CredentialArchiveDeps,
): Promise<CredentialArchiveResult> {
  const c = state.case;
  const { outcome, steps } = credentialOutcome(state);
  const sealed = await sealCase(
    c.caseId,
    {
      kind: 'credential',
      instanceId: c.finding.instanceId ?? '',
      accountId: c.accountId,
      region: c.region,
      executionArn: c.executionArn,
      openedAt: c.openedAt,
      principal: c.principal,
      finding: c.finding,
      trigger: c.trigger,
      outcome,
      steps,
    },
    deps,
  );
  return { outcome, manifest: sealed.manifest, signature: sealed.signature, artifacts: sealed.artifacts };
}
