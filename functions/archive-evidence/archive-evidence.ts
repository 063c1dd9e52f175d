import { GetPublicKeyCommand, type KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { caseSchema } from '../shared/case.js';
import type { CaseStore, Recorder, TimelineEvent } from '../shared/cases.js';
import { EvidenceIntegrityError, SigningError } from '../shared/errors.js';
import { type Artifact, type EvidenceStore, evidenceJson, sha256 } from '../shared/evidence.js';
import { manifestSchemaVersion, signingAlgorithm, signingStatement } from '../shared/manifest.js';
import { type OutcomeState, summarise } from '../shared/outcome.js';
import type { ArchiveResult } from '../shared/state.js';

/** Archive reads the whole workflow state: what each step did decides the outcome. */
export const archiveInputSchema = z.looseObject({ case: caseSchema });
export type ArchiveInput = z.infer<typeof archiveInputSchema> &
  OutcomeState & {
    response?: { disk?: { snapshots?: unknown } };
  };

export interface ArchiveDeps {
  s3: S3Client;
  kms: KMSClient;
  bucket: string;
  signingKeyId: string;
  cases: Pick<CaseStore, 'timeline'>;
  evidence: Pick<EvidenceStore, 'put'>;
  recorder: Recorder;
  now: () => Date;
}

/** Every artifact the case stored, once each, in the order it was stored. */
export function artifactsFrom(events: readonly TimelineEvent[]): Artifact[] {
  const seen = new Map<string, Artifact>();
  for (const e of events) {
    if (e.status === 'ok' && e.artifact) seen.set(`${e.artifact.key}#${e.artifact.versionId}`, e.artifact);
  }
  return [...seen.values()];
}

/** Checks an artifact against what S3 holds now: the version exists, its size matches, it is locked. */
async function confirm(s3: S3Client, bucket: string, artifact: Artifact): Promise<void> {
  const head = await s3.send(
    new HeadObjectCommand({
      Bucket: bucket,
      Key: artifact.key,
      VersionId: artifact.versionId,
      ChecksumMode: 'ENABLED',
    }),
  );
  if (head.ContentLength !== artifact.bytes) {
    throw new EvidenceIntegrityError(
      `${artifact.key}: S3 holds ${head.ContentLength} bytes, the case recorded ${artifact.bytes}`,
    );
  }
  // A multipart object's checksum is a checksum of its parts' checksums, not the object's SHA-256: its
  // parts were checked on arrival and the memory step proved the whole; here only single-part objects.
  const multipart =
    head.ETag?.includes('-') || head.ChecksumType === 'COMPOSITE' || head.ChecksumSHA256?.includes('-');
  if (head.ChecksumSHA256 && !multipart) {
    const hex = Buffer.from(head.ChecksumSHA256, 'base64').toString('hex');
    if (hex !== artifact.sha256) {
      throw new EvidenceIntegrityError(
        `${artifact.key}: S3's SHA-256 ${hex} differs from the recorded ${artifact.sha256}`,
      );
    }
  }
  if (!head.ObjectLockMode && head.ObjectLockLegalHoldStatus !== 'ON') {
    throw new EvidenceIntegrityError(`${artifact.key} is not under Object Lock`);
  }
}

/**
 * Seals the case: the timeline as `timeline.jsonl`, then `manifest.json` listing every artifact (key,
 * version, bytes, SHA-256), the snapshots, the steps and the execution, then `manifest.sig`, a KMS
 * signature over the manifest's hash. Manifest and signature carry a legal hold.
 */
export async function archiveEvidence(input: ArchiveInput, deps: ArchiveDeps): Promise<ArchiveResult> {
  const c = input.case;
  const { outcome, steps } = summarise(input);
  // The archive's own actions (and Notify's, after it) are left out of the exported timeline: a
  // retried Archive must write byte-identical evidence, and its own calls are on the case record.
  const events = (await deps.cases.timeline(c.caseId)).filter(
    (e) => e.step !== 'archive-evidence' && e.step !== 'notify-outcome',
  );
  const timeline = await deps.evidence.put(
    deps.recorder,
    'timeline.jsonl',
    events.map((e) => JSON.stringify(e)).join('\n') + (events.length ? '\n' : ''),
    { contentType: 'application/x-ndjson' },
  );
  const artifacts = artifactsFrom(events).filter((a) => a.key !== timeline.key);
  artifacts.push(timeline);
  for (const artifact of artifacts) await confirm(deps.s3, deps.bucket, artifact);

  const manifest = {
    schema: manifestSchemaVersion,
    caseId: c.caseId,
    instanceId: c.instanceId,
    accountId: c.accountId,
    region: c.region,
    executionArn: c.executionArn,
    openedAt: c.openedAt,
    sealedAt: deps.now().toISOString(),
    trigger: c.trigger,
    outcome,
    steps,
    bucket: deps.bucket,
    artifacts,
    snapshots: input.response?.disk?.snapshots ?? null,
    memory: input.memory ?? null,
    timeline: { key: timeline.key, versionId: timeline.versionId, events: events.length },
    signature: {
      key: `cases/${c.caseId}/manifest.sig`,
      keyId: deps.signingKeyId,
      algorithm: signingAlgorithm,
    },
  };
  const manifestBody = evidenceJson(manifest);
  const manifestArtifact = await deps.evidence.put(deps.recorder, 'manifest.json', manifestBody, {
    contentType: 'application/json',
    legalHold: true,
  });

  const statement = signingStatement(c.caseId, sha256(manifestBody).hex);
  let signature: Uint8Array;
  let publicKey: Uint8Array | undefined;
  try {
    const signed = await deps.recorder.run('kms:Sign', deps.signingKeyId, () =>
      deps.kms.send(
        new SignCommand({
          KeyId: deps.signingKeyId,
          Message: Buffer.from(statement),
          MessageType: 'RAW',
          SigningAlgorithm: signingAlgorithm,
        }),
      ),
    );
    if (!signed.Signature) throw new SigningError('KMS returned no signature');
    signature = signed.Signature;
    publicKey = (await deps.kms.send(new GetPublicKeyCommand({ KeyId: deps.signingKeyId }))).PublicKey;
  } catch (error) {
    if (error instanceof SigningError) throw error;
    throw new SigningError(`Cannot sign the manifest of ${c.caseId} with ${deps.signingKeyId}`, {
      cause: error,
    });
  }
  const signatureArtifact = await deps.evidence.put(
    deps.recorder,
    'manifest.sig',
    evidenceJson({
      schema: manifestSchemaVersion,
      keyId: deps.signingKeyId,
      signingAlgorithm,
      messageType: 'RAW',
      message: statement,
      manifest: {
        key: manifestArtifact.key,
        versionId: manifestArtifact.versionId,
        sha256: manifestArtifact.sha256,
      },
      signature: Buffer.from(signature).toString('base64'),
      // For reference only: a verifier takes the public key from KMS or from its own trusted copy.
      publicKey: publicKey ? Buffer.from(publicKey).toString('base64') : null,
    }),
    { contentType: 'application/json', legalHold: true },
  );
  return { outcome, manifest: manifestArtifact, signature: signatureArtifact, artifacts };
}
