import { HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { Recorder } from '../../../functions/core/cases.js';
import { EvidenceConflictError, EvidenceIntegrityError } from '../../../functions/core/errors.js';
import { EvidenceStore, sha256 } from '../../../functions/core/evidence.js';
import { MemoryTimeline, sampleCase } from '../../support/core-fakes.js';

const s3 = mockClient(S3Client);
const now = () => new Date('2026-11-27T20:00:00Z');
const store = () => new EvidenceStore(new S3Client({}), 'evidence', { mode: 'COMPLIANCE', days: 30 }, now);
const key = `cases/${sampleCase.caseId}/triage.json`;

function preconditionFailed() {
  return new S3ServiceException({
    name: 'PreconditionFailed',
    $fault: 'client',
    $metadata: { httpStatusCode: 412 },
  });
}

beforeEach(() => s3.reset());

describe('EvidenceStore.put', () => {
  it('sends the SHA-256, refuses to overwrite, and locks the object on arrival', async () => {
    s3.on(PutObjectCommand).resolves({ VersionId: 'v1', $metadata: { requestId: 'req-1' } });
    const timeline = new MemoryTimeline();
    const artifact = await store().put(
      timeline.recorder(sampleCase.caseId, 'triage'),
      'triage.json',
      '{}\n',
      {
        contentType: 'application/json',
        legalHold: true,
      },
    );
    expect(s3).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: 'evidence',
      Key: key,
      ChecksumAlgorithm: 'SHA256',
      ChecksumSHA256: sha256('{}\n').base64,
      IfNoneMatch: '*',
      ObjectLockMode: 'COMPLIANCE',
      ObjectLockRetainUntilDate: new Date('2026-12-27T20:00:00Z'),
      ObjectLockLegalHoldStatus: 'ON',
    });
    expect(artifact).toEqual({
      key,
      versionId: 'v1',
      bytes: 3,
      sha256: sha256('{}\n').hex,
      contentType: 'application/json',
    });
    expect(timeline.events).toEqual([
      {
        caseId: sampleCase.caseId,
        step: 'triage',
        action: 's3:PutObject',
        status: 'ok',
        target: key,
        requestId: 'req-1',
        artifact,
      },
    ]);
  });

  it('returns the stored object when a retried step writes the same bytes again', async () => {
    s3.on(PutObjectCommand).rejects(preconditionFailed());
    s3.on(HeadObjectCommand).resolves({
      VersionId: 'v1',
      ContentLength: 3,
      Metadata: { 'sha256-hex': sha256('{}\n').hex },
    });
    const artifact = await store().put(
      new MemoryTimeline().recorder(sampleCase.caseId, 't'),
      'triage.json',
      '{}\n',
      {
        contentType: 'application/json',
      },
    );
    expect(artifact.versionId).toBe('v1');
  });

  it('refuses, without replacing anything, when different bytes already hold the key', async () => {
    s3.on(PutObjectCommand).rejects(preconditionFailed());
    s3.on(HeadObjectCommand).resolves({
      VersionId: 'v1',
      ContentLength: 3,
      Metadata: { 'sha256-hex': 'b'.repeat(64) },
    });
    await expect(
      store().put(new MemoryTimeline().recorder(sampleCase.caseId, 't'), 'triage.json', '{}\n', {
        contentType: 'x',
      }),
    ).rejects.toBeInstanceOf(EvidenceConflictError);
    expect(s3).toHaveReceivedCommandTimes(PutObjectCommand, 1);
  });

  it.each(['../escape.json', '/abs.json', 'UPPER.json', 'a/../b', 'new\nline'])(
    'refuses the artifact name %j before any call',
    async (name) => {
      await expect(
        store().put(new MemoryTimeline().recorder(sampleCase.caseId, 't'), name, 'x', { contentType: 'x' }),
      ).rejects.toBeInstanceOf(EvidenceIntegrityError);
      expect(s3).toHaveReceivedCommandTimes(PutObjectCommand, 0);
    },
  );

  it('records a failed write on the timeline and rethrows it', async () => {
    s3.on(PutObjectCommand).rejects(
      Object.assign(new Error('denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }),
    );
    const timeline = new MemoryTimeline();
    await expect(
      store().put(timeline.recorder(sampleCase.caseId, 't'), 'triage.json', 'x', { contentType: 'x' }),
    ).rejects.toThrow('denied');
    expect(timeline.events).toMatchObject([
      { action: 's3:PutObject', status: 'failed', detail: 'AwsAccessDeniedError: AccessDenied: denied' },
    ]);
  });

  it('says the object was stored when only its record on the timeline fails', async () => {
    s3.on(PutObjectCommand).resolves({ VersionId: 'v1', $metadata: { requestId: 'req-1' } });
    const timeline = {
      recordMany: async () => {
        throw Object.assign(new Error('not authorized'), {
          name: 'AccessDeniedException',
          $metadata: { httpStatusCode: 400 },
        });
      },
    };
    const failure = await store()
      .put(new Recorder(timeline, sampleCase.caseId, 't'), 'triage.json', 'x', { contentType: 'x' })
      .then(
        () => expect.unreachable('it succeeded'),
        (error: unknown) => error as Error,
      );
    expect(failure).toMatchObject({ name: 'AwsAccessDeniedError' });
    expect(failure.message).toBe(
      `${key} was stored (version v1), but the case timeline could not record it: AwsAccessDeniedError: AccessDeniedException: not authorized`,
    );
  });
});
