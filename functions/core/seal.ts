/**
 * Sealing a case: the chain of custody every Cordon case ends with, whatever the case is about. The
 * timeline becomes `timeline.jsonl`; every artifact the timeline names is checked against S3 (version,
 * size, SHA-256, lock); `manifest.json` lists them; `manifest.sig` holds a KMS signature over a short
 * statement naming the manifest's SHA-256 (functions/core/manifest.ts). Manifest and signature carry
 * a legal hold. The instance workflow's Archive step and the playbooks' archive steps seal the same way.
 */
import { GetPublicKeyCommand, type KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { CaseStore, Recorder, TimelineEvent } from './cases.js';
import { describeError, EvidenceIntegrityError, SigningError } from './errors.js';
import { type Artifact, type EvidenceStore, evidenceJson, sha256 } from './evidence.js';
import { manifestSchemaVersion, signingAlgorithm, signingStatement } from './manifest.js';

export interface SealDeps {
  s3: S3Client;
  kms: KMSClient;
  bucket: string;
  signingKeyId: string;
  cases: Pick<CaseStore, 'timeline'>;
  evidence: Pick<EvidenceStore, 'put'>;
  recorder: Recorder;
  now: () => Date;
}

export interface Sealed {
  manifest: Artifact;
  signature: Artifact;
  timeline: Artifact;
  /** Every artifact the manifest lists, the timeline last. */
  artifacts: Artifact[];
}

/** Every artifact the case stored, once each, in the order it was stored. */
export function storedArtifacts(events: readonly TimelineEvent[]): Artifact[] {
  const seen = new Map<string, Artifact>();
  for (const e of events) {
    if (e.status === 'ok' && e.artifact) seen.set(`${e.artifact.key}#${e.artifact.versionId}`, e.artifact);
  }
  return [...seen.values()];
}

/** Checks an artifact against what S3 holds now: the version exists, its size and hash match, it is locked. */
export async function confirmArtifact(s3: S3Client, bucket: string, artifact: Artifact): Promise<void> {
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
  // parts were checked on arrival (and the memory step proved the whole), so only single-part objects
  // compare here. The ETag's `-N` also tells a multipart object where the checksum does not.
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
 * Seals `caseId`. `fields` are the case's own facts (what it is about, its outcome, its steps) and go
 * into the manifest between its schema and its artifact list. Idempotent for a retried step only as
 * far as the evidence store is: a second seal with different fields is an EvidenceConflictError.
 */
export async function sealCase(
  caseId: string,
  fields: Record<string, unknown>,
  deps: SealDeps,
): Promise<Sealed> {
  // The sealing step's own earlier attempts are left out of the exported timeline: a retried seal must
  // write byte-identical evidence; those attempts stay on the case record.
  const events = (await deps.cases.timeline(caseId)).filter((e) => e.step !== deps.recorder.step);
  const timeline = await deps.evidence.put(
    deps.recorder,
    'timeline.jsonl',
    events.map((e) => JSON.stringify(e)).join('\n') + (events.length ? '\n' : ''),
    { contentType: 'application/x-ndjson' },
  );
  const artifacts = storedArtifacts(events).filter((a) => a.key !== timeline.key);
  artifacts.push(timeline);
  for (const artifact of artifacts) await confirmArtifact(deps.s3, deps.bucket, artifact);

  const manifestBody = evidenceJson({
    schema: manifestSchemaVersion,
    caseId,
    ...fields,
    sealedAt: deps.now().toISOString(),
    bucket: deps.bucket,
    artifacts,
    timeline: { key: timeline.key, versionId: timeline.versionId, events: events.length },
    signature: { key: `cases/${caseId}/manifest.sig`, keyId: deps.signingKeyId, algorithm: signingAlgorithm },
  });
  const manifest = await deps.evidence.put(deps.recorder, 'manifest.json', manifestBody, {
    contentType: 'application/json',
    legalHold: true,
  });

  const statement = signingStatement(caseId, sha256(manifestBody).hex);
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
    const e = describeError(error);
    throw new SigningError(
      `Cannot sign the manifest of ${caseId} with ${deps.signingKeyId}: ${e.name}: ${e.message}`,
      { cause: error },
    );
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
      manifest: { key: manifest.key, versionId: manifest.versionId, sha256: manifest.sha256 },
      signature: Buffer.from(signature).toString('base64'),
      // For reference only: a verifier takes the public key from KMS or from its own trusted copy.
      publicKey: publicKey ? Buffer.from(publicKey).toString('base64') : null,
    }),
    { contentType: 'application/json', legalHold: true },
  );
  return { manifest, signature: signatureArtifact, timeline, artifacts };
}
