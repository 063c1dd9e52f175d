import { createHash } from 'node:crypto';
import {
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { EvidenceIntegrityError } from '../../../functions/core/errors.js';
import { compositeSha256, type MemoryReport } from '../../../functions/core/memory.js';
import { verifyMemory } from '../../../functions/forensics/verify-memory/verify-memory.js';
import { MemoryTimeline, sampleCase } from '../../support/core-fakes.js';
import {
  evidenceConfig,
  fixedClock,
  memoryKey,
  reportKey,
  reportOf,
  s3Body,
  uploadedCapture,
} from '../../support/evidence-fixtures.js';

const s3 = mockClient(S3Client);
const MiB = 1024 * 1024;

// Two real parts: 8 MiB of one pattern, then a short last part.
const parts = [Buffer.alloc(8 * MiB, 0x41), Buffer.from('the last, short part of a memory image')];
const image = Buffer.concat(parts);
const report = reportOf(parts, 8 * MiB);
const reportBody = JSON.stringify(report);
const composite = compositeSha256(report.parts.map((p) => p.checksumSha256));
const locked = {
  ObjectLockMode: 'GOVERNANCE' as const,
  ObjectLockRetainUntilDate: new Date('2026-11-28T20:29:00Z'),
  ObjectLockLegalHoldStatus: 'ON' as const,
};

function stored(overrides: Record<string, unknown> = {}) {
  return {
    ContentLength: image.byteLength,
    ChecksumSHA256: `${composite}-2`,
    VersionId: 'image-v1',
    ...locked,
    ...overrides,
  };
}

function serve(options: { report?: MemoryReport; image?: Buffer } = {}) {
  const body = options.report ? JSON.stringify(options.report) : reportBody;
  s3.on(GetObjectCommand, { Key: reportKey }).callsFake(() => ({
    Body: s3Body(body),
    VersionId: 'report-v1',
    ContentLength: Buffer.byteLength(body),
  }));
  s3.on(GetObjectCommand, { Key: memoryKey }).callsFake(() => ({ Body: s3Body(options.image ?? image) }));
}

function deps(rehashLimitBytes?: number) {
  const timeline = new MemoryTimeline();
  return {
    timeline,
    deps: {
      s3: new S3Client({ region: 'us-east-1' }),
      recorder: timeline.recorder(sampleCase.caseId, 'verify-memory'),
      config: evidenceConfig,
      now: fixedClock().now,
      ...(rehashLimitBytes !== undefined ? { rehashLimitBytes } : {}),
    },
  };
}

const memory = uploadedCapture(report, reportBody);

describe('verify memory', () => {
  beforeEach(() => {
    s3.reset();
    s3.on(HeadObjectCommand).resolves(stored());
    s3.on(PutObjectRetentionCommand).resolves({});
    s3.on(PutObjectLegalHoldCommand).resolves({});
    serve();
  });

  it("verifies an image whose size, composite checksum and read-back SHA-256 agree with the host's report", async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    const verified = await verifyMemory({ case: sampleCase, memory }, d);

    // Assess
    expect(verified).toMatchObject({
      status: 'verified',
      artifact: {
        key: memoryKey,
        versionId: 'image-v1',
        bytes: image.byteLength,
        sha256: createHash('sha256').update(image).digest('hex'),
        contentType: 'application/octet-stream',
      },
      report: { key: reportKey, versionId: 'report-v1' },
      s3ChecksumSha256: `${composite}-2`,
      parts: 2,
      wholeImageSha256: 'recomputed',
      lock: { mode: 'GOVERNANCE', legalHold: 'ON' },
    });
  });

  it('reads the exact image version and report version that Check Memory completed', async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    await verifyMemory({ case: sampleCase, memory }, d);

    // Assess
    expect(s3).toHaveReceivedCommandWith(HeadObjectCommand, {
      Bucket: evidenceConfig.EVIDENCE_BUCKET,
      Key: memoryKey,
      VersionId: 'image-v1',
      ChecksumMode: 'ENABLED',
    });
    expect(s3).toHaveReceivedCommandWith(GetObjectCommand, { Key: reportKey, VersionId: 'report-v1' });
    expect(s3).toHaveReceivedCommandWith(GetObjectCommand, { Key: memoryKey, VersionId: 'image-v1' });
  });

  it('fails with EvidenceIntegrityError when the host-reported SHA-256 does not match the stored image', async () => {
    // Prepare
    const lying = reportOf(parts, 8 * MiB, { image: { ...report.image, sha256: 'e'.repeat(64) } });
    const body = JSON.stringify(lying);
    serve({ report: lying });
    const { deps: d } = deps();

    // Act
    const run = verifyMemory({ case: sampleCase, memory: uploadedCapture(lying, body) }, d);

    // Assess
    await expect(run).rejects.toThrow(EvidenceIntegrityError);
    await expect(run).rejects.toThrow(/hashes to .* the host reported e{64}/);
  });

  it('fails with EvidenceIntegrityError when the stored image is not the size the host reported', async () => {
    // Prepare
    s3.on(HeadObjectCommand).resolves(stored({ ContentLength: image.byteLength - 1 }));
    const { deps: d } = deps();

    // Act
    const run = verifyMemory({ case: sampleCase, memory }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(EvidenceIntegrityError);
  });

  it("fails with EvidenceIntegrityError when S3's composite checksum is not the one of the parts the host hashed", async () => {
    // Prepare
    s3.on(HeadObjectCommand).resolves(
      stored({ ChecksumSHA256: `${createHash('sha256').update('other').digest('base64')}-2` }),
    );
    const { deps: d } = deps();

    // Act
    const run = verifyMemory({ case: sampleCase, memory }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(EvidenceIntegrityError);
  });

  it('fails with EvidenceIntegrityError when S3 counts another number of parts than the host reported', async () => {
    // Prepare
    s3.on(HeadObjectCommand).resolves(stored({ ChecksumSHA256: `${composite}-3` }));
    const { deps: d } = deps();

    // Act
    const run = verifyMemory({ case: sampleCase, memory }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(EvidenceIntegrityError);
  });

  it('fails with EvidenceIntegrityError when the report changed after Check Memory read it', async () => {
    // Prepare
    const { deps: d } = deps();
    const changed = { ...memory, report: { ...memory.report, sha256: 'd'.repeat(64) } };

    // Act
    const run = verifyMemory({ case: sampleCase, memory: changed }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(EvidenceIntegrityError);
  });

  it('rests on the per-part checksums, without reading the image back, above the read-back limit', async () => {
    // Prepare
    const { deps: d } = deps(1024);

    // Act
    const verified = await verifyMemory({ case: sampleCase, memory }, d);

    // Assess
    expect(verified.wholeImageSha256).toBe('host-reported');
    expect(s3.commandCalls(GetObjectCommand, { Key: memoryKey })).toHaveLength(0);
  });

  it("locks an image that arrived without a lock, with the stage's retention and a legal hold, then confirms it", async () => {
    // Prepare
    s3.on(HeadObjectCommand)
      .resolvesOnce(
        stored({
          ObjectLockMode: undefined,
          ObjectLockRetainUntilDate: undefined,
          ObjectLockLegalHoldStatus: undefined,
        }),
      )
      .resolves(stored());
    const { deps: d } = deps();

    // Act
    await verifyMemory({ case: sampleCase, memory }, d);

    // Assess
    expect(s3).toHaveReceivedCommandWith(PutObjectRetentionCommand, {
      Bucket: evidenceConfig.EVIDENCE_BUCKET,
      Key: memoryKey,
      VersionId: 'image-v1',
      Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date('2026-11-28T20:30:00.000Z') },
    });
    expect(s3).toHaveReceivedCommandWith(PutObjectLegalHoldCommand, {
      Bucket: evidenceConfig.EVIDENCE_BUCKET,
      Key: memoryKey,
      VersionId: 'image-v1',
      LegalHold: { Status: 'ON' },
    });
    expect(s3).toHaveReceivedCommandTimes(HeadObjectCommand, 2);
  });

  it("changes nothing on an image already locked for the stage's period and held", async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    await verifyMemory({ case: sampleCase, memory }, d);

    // Assess
    expect(s3).toHaveReceivedCommandTimes(PutObjectRetentionCommand, 0);
    expect(s3).toHaveReceivedCommandTimes(PutObjectLegalHoldCommand, 0);
  });

  it('fails with EvidenceIntegrityError when the image is still unlocked after Cordon locked it', async () => {
    // Prepare
    s3.on(HeadObjectCommand).resolves(
      stored({ ObjectLockMode: undefined, ObjectLockRetainUntilDate: undefined }),
    );
    const { deps: d } = deps();

    // Act
    const run = verifyMemory({ case: sampleCase, memory }, d);

    // Assess
    await expect(run).rejects.toThrow(/not locked/);
  });

  it('records the verified image on the case timeline as an artifact, for the manifest', async () => {
    // Prepare
    const { deps: d, timeline } = deps();

    // Act
    const verified = await verifyMemory({ case: sampleCase, memory }, d);

    // Assess
    expect(timeline.events).toContainEqual(
      expect.objectContaining({
        step: 'verify-memory',
        status: 'ok',
        target: memoryKey,
        artifact: verified.artifact,
      }),
    );
  });
});
