import { createHash } from 'node:crypto';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type Recorder, unrecorded } from './cases.js';
import { awsErrorCode, describeError, EvidenceConflictError, EvidenceIntegrityError } from './errors.js';

export interface Artifact {
  key: string;
  versionId: string;
  bytes: number;
  sha256: string;
  contentType: string;
}

export interface LockSettings {
  mode: 'COMPLIANCE' | 'GOVERNANCE';
  days: number;
}

/** `triage.json`, `memory/image.lime`: lower case, no `..`, no leading slash. */
const artifactNamePattern = /^(?!.*\.\.)[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)*$/;

export const caseFolder = (caseId: string) => `cases/${caseId}/`;

export function sha256(body: Uint8Array | string): { hex: string; base64: string } {
  const digest = createHash('sha256').update(body).digest();
  return { hex: digest.toString('hex'), base64: digest.toString('base64') };
}

/**
 * Writes evidence so that it cannot be lost or quietly replaced: S3 checks the SHA-256 we send, the
 * write is refused if the key already exists (`If-None-Match: *`), the object is locked on arrival,
 * and the write is recorded on the case timeline. A retried step that writes the same bytes again gets
 * the existing object back; different bytes under the same key are an `EvidenceConflictError`.
 */
export class EvidenceStore {
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
    private readonly lock: LockSettings,
    private readonly now: () => Date = () => new Date(),
  ) {}

  key(caseId: string, name: string): string {
    if (!artifactNamePattern.test(name))
      throw new EvidenceIntegrityError(`Refusing artifact name ${JSON.stringify(name)}`);
    return `${caseFolder(caseId)}${name}`;
  }

  async put(
    recorder: Recorder,
    name: string,
    body: Uint8Array | string,
    options: { contentType: string; legalHold?: boolean },
  ): Promise<Artifact> {
    const key = this.key(recorder.caseId, name);
    const hash = sha256(body);
    const bytes = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
    const retainUntil = new Date(this.now().getTime() + this.lock.days * 86_400_000);
    let artifact: Artifact;
    let requestId: string | undefined;
    try {
      const out = await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: options.contentType,
          ChecksumAlgorithm: 'SHA256',
          ChecksumSHA256: hash.base64,
          IfNoneMatch: '*',
          ObjectLockMode: this.lock.mode,
          ObjectLockRetainUntilDate: retainUntil,
          ...(options.legalHold ? { ObjectLockLegalHoldStatus: 'ON' as const } : {}),
          Metadata: { 'sha256-hex': hash.hex },
        }),
      );
      if (!out.VersionId)
        throw new EvidenceIntegrityError(`${key} was stored without a version: is versioning on?`);
      requestId = out.$metadata.requestId;
      artifact = { key, versionId: out.VersionId, bytes, sha256: hash.hex, contentType: options.contentType };
    } catch (error) {
      const code = awsErrorCode(error);
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (code !== 'PreconditionFailed' && status !== 412) {
        const e = describeError(error);
        await recorder
          .note('s3:PutObject', 'failed', { target: key, detail: `${e.name}: ${e.message}` })
          .catch(() => undefined);
        throw error;
      }
      artifact = await this.existing(key, hash.hex, bytes, options.contentType);
    }
    await recorder.note('s3:PutObject', 'ok', { target: key, requestId, artifact });
    try {
      // The manifest is built from the timeline: a piece of evidence is not stored until it is listed.
      await recorder.flush();
    } catch (error) {
      // Stored but not on the timeline: the manifest, built from the timeline, would not list it.
      throw unrecorded(`${key} was stored (version ${artifact.versionId})`, (error as Error).cause ?? error);
    }
    return artifact;
  }

  /** The artifact already stored under `key`, if it holds exactly the bytes we meant to write. */
  private async existing(key: string, hex: string, bytes: number, contentType: string): Promise<Artifact> {
    const head = await this.s3.send(
      new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }),
    );
    const stored = head.Metadata?.['sha256-hex'];
    if (stored !== hex || head.ContentLength !== bytes || !head.VersionId) {
      throw new EvidenceConflictError(`${key} already holds different evidence; it was not replaced`);
    }
    return { key, versionId: head.VersionId, bytes, sha256: hex, contentType };
  }
}

/** JSON as evidence: stable key order is not needed, but one trailing newline and two-space indent are. */
export function evidenceJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** How many differing observations of one name a case keeps (a step's retries are fewer). */
const maxObservations = 10;

/**
 * `put`, for an observation a retried step makes again (what an instance looked like): when an
 * earlier attempt stored different bytes under `name`, this attempt's are kept beside them as
 * `<name>.attempt-N` instead of failing, so neither observation is lost or replaced.
 */
export async function putObservation(
  store: Pick<EvidenceStore, 'put'>,
  recorder: Recorder,
  name: string,
  body: Uint8Array | string,
  options: { contentType: string; legalHold?: boolean },
): Promise<Artifact> {
  const dot = name.lastIndexOf('.');
  for (let attempt = 1; ; attempt += 1) {
    const suffix = `.attempt-${attempt}`;
    const candidate =
      attempt === 1
        ? name
        : dot > 0
          ? `${name.slice(0, dot)}${suffix}${name.slice(dot)}`
          : `${name}${suffix}`;
    try {
      return await store.put(recorder, candidate, body, options);
    } catch (error) {
      if (!(error instanceof EvidenceConflictError) || attempt >= maxObservations) throw error;
    }
  }
}
