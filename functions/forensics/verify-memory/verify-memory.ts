import { createHash } from 'node:crypto';
import {
  GetObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { z } from 'zod';
import { caseSchema } from '../../core/case.js';
import type { Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import { EvidenceIntegrityError } from '../../core/errors.js';
import type { Artifact } from '../../core/evidence.js';
import {
  compositeDigest,
  compositeSha256,
  GiB,
  memoryUploadedSchema,
  readReport,
} from '../../core/memory.js';
import type { MemoryUploaded, MemoryVerified } from '../../core/state.js';

export const verifyMemoryInputSchema = z.object({ case: caseSchema, memory: memoryUploadedSchema });
export type VerifyMemoryInput = z.infer<typeof verifyMemoryInputSchema>;

/**
 * Up to this size Verify reads the image back and hashes it itself; above it a single run could not
 * finish within the function's timeout, and the proof rests on the per-part checksums (docs/evidence.md).
 */
export const rehashLimitBytes = 1 * GiB;

export interface VerifyMemoryDeps {
  s3: S3Client;
  recorder: Recorder;
  config: Pick<Config, 'OBJECT_LOCK_MODE' | 'OBJECT_LOCK_DAYS'>;
  now: () => Date;
  rehashLimitBytes?: number;
}

const day = 86_400_000;

function head(s3: S3Client, memory: MemoryUploaded): Promise<HeadObjectCommandOutput> {
  return s3.send(
    new HeadObjectCommand({
      Bucket: memory.bucket,
      Key: memory.key,
      VersionId: memory.versionId,
      ChecksumMode: 'ENABLED',
    }),
  );
}

/** Reads the stored image back and hashes it, a stream at a time. */
async function rehash(s3: S3Client, memory: MemoryUploaded): Promise<string> {
  const out = await s3.send(
    new GetObjectCommand({ Bucket: memory.bucket, Key: memory.key, VersionId: memory.versionId }),
  );
  if (!out.Body) throw new EvidenceIntegrityError(`${memory.key} has no body`);
  const hash = createHash('sha256');
  for await (const chunk of out.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
  return hash.digest('hex');
}

/** Whether the object's lock is at least the stage's: its mode (or a stricter one) until `required`. */
function lockHolds(h: HeadObjectCommandOutput, mode: string, required: Date): boolean {
  const strongEnough = h.ObjectLockMode === mode || h.ObjectLockMode === 'COMPLIANCE';
  const until = h.ObjectLockRetainUntilDate ? new Date(h.ObjectLockRetainUntilDate) : undefined;
  return strongEnough && until !== undefined && until.getTime() >= required.getTime();
}

/**
 * Proves that the memory image in the evidence bucket is the one the host captured, and that it
 * cannot be changed: the stored version exists with the size the host reported; S3's composite
 * SHA-256 equals the one computed from the per-part digests in the host's report (S3 checked every part
 * against its digest on arrival); for images up to `rehashLimitBytes` the whole image is read back and
 * its SHA-256 compared with the host's; and the version carries at least the stage's Object Lock
 * retention and a legal hold. A multipart upload may arrive without the bucket's default lock (the
 * emulator never applies it), so a missing or weaker lock is applied here and then read back. Any
 * disagreement is an EvidenceIntegrityError.
 */
export async function verifyMemory(
  input: VerifyMemoryInput,
  deps: VerifyMemoryDeps,
): Promise<MemoryVerified> {
  const c = input.case;
  const memory = input.memory as MemoryUploaded;
  const now = deps.now();
  const stored = await head(deps.s3, memory);
  if (stored.ContentLength !== memory.bytes) {
    throw new EvidenceIntegrityError(
      `${memory.key}: S3 holds ${stored.ContentLength} bytes, the host reported ${memory.bytes}`,
    );
  }

  const { report, artifact: reportArtifact } = await readReport(
    deps.s3,
    { ...memory, caseId: c.caseId },
    memory.report.versionId,
  );
  if (reportArtifact.sha256 !== memory.report.sha256) {
    throw new EvidenceIntegrityError(`${memory.reportKey} changed after Check Memory read it`);
  }
  if (report.image.sha256 !== memory.hostSha256 || report.image.bytes !== memory.bytes) {
    throw new EvidenceIntegrityError(`${memory.reportKey} no longer matches what Check Memory completed`);
  }
  const expected = compositeSha256(report.parts.map((p) => p.checksumSha256));
  const actual = compositeDigest(stored.ChecksumSHA256, report.parts.length);
  if (!stored.ChecksumSHA256) {
    throw new EvidenceIntegrityError(`${memory.key}: S3 holds no SHA-256 checksum for the image`);
  }
  if (actual !== expected) {
    throw new EvidenceIntegrityError(
      `${memory.key}: S3's composite SHA-256 ${stored.ChecksumSHA256} is not the ${expected}-${report.parts.length} of the parts the host hashed`,
    );
  }

  let wholeImageSha256: MemoryVerified['wholeImageSha256'] = 'host-reported';
  if (memory.bytes <= (deps.rehashLimitBytes ?? rehashLimitBytes)) {
    const hex = await rehash(deps.s3, memory);
    if (hex !== memory.hostSha256) {
      throw new EvidenceIntegrityError(
        `${memory.key}: the stored image hashes to ${hex}, the host reported ${memory.hostSha256}`,
      );
    }
    wholeImageSha256 = 'recomputed';
  }

  const mode = deps.config.OBJECT_LOCK_MODE;
  const wanted = new Date(now.getTime() + deps.config.OBJECT_LOCK_DAYS * day);
  // The bucket default counts days from the upload's completion, minutes before now; a day's slack
  // keeps that from looking like a weaker lock.
  const required = new Date(wanted.getTime() - day);
  let locked = stored;
  if (!lockHolds(stored, mode, required)) {
    await deps.recorder.run('s3:PutObjectRetention', memory.key, () =>
      deps.s3.send(
        new PutObjectRetentionCommand({
          Bucket: memory.bucket,
          Key: memory.key,
          VersionId: memory.versionId,
          Retention: { Mode: mode, RetainUntilDate: wanted },
        }),
      ),
    );
  }
  if (stored.ObjectLockLegalHoldStatus !== 'ON') {
    await deps.recorder.run('s3:PutObjectLegalHold', memory.key, () =>
      deps.s3.send(
        new PutObjectLegalHoldCommand({
          Bucket: memory.bucket,
          Key: memory.key,
          VersionId: memory.versionId,
          LegalHold: { Status: 'ON' },
        }),
      ),
    );
  }
  if (!lockHolds(stored, mode, required) || stored.ObjectLockLegalHoldStatus !== 'ON') {
    locked = await head(deps.s3, memory);
    if (!lockHolds(locked, mode, required) || locked.ObjectLockLegalHoldStatus !== 'ON') {
      throw new EvidenceIntegrityError(`${memory.key} is not locked after Cordon locked it`);
    }
  }

  const artifact: Artifact = {
    key: memory.key,
    versionId: memory.versionId,
    bytes: memory.bytes,
    sha256: memory.hostSha256,
    contentType: 'application/octet-stream',
  };
  await deps.recorder.note('memory:verify', 'ok', {
    target: memory.key,
    artifact,
    detail: `${report.parts.length} parts; composite SHA-256 ${expected}; whole-image SHA-256 ${wholeImageSha256}`,
  });
  return {
    status: 'verified',
    artifact,
    report: memory.report,
    hostSha256: memory.hostSha256,
    s3ChecksumSha256: `${expected}-${report.parts.length}`,
    bytes: memory.bytes,
    parts: report.parts.length,
    partSize: memory.partSize,
    wholeImageSha256,
    lock: {
      mode: locked.ObjectLockMode ?? mode,
      retainUntil: new Date(locked.ObjectLockRetainUntilDate ?? wanted).toISOString(),
      legalHold: locked.ObjectLockLegalHoldStatus === 'ON' ? 'ON' : 'OFF',
    },
    platform: memory.platform,
    tool: memory.tool,
    document: memory.document,
    commandId: memory.commandId,
  };
}
