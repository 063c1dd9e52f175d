import {
  CompleteMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CancelCommandCommand, GetCommandInvocationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  EvidenceIntegrityError,
  InvalidStepInputError,
  MemoryCaptureError,
  MemoryCaptureTimeoutError,
} from '../../../functions/core/errors.js';
import { compositeSha256, type MemoryReport } from '../../../functions/core/memory.js';
import { checkMemory } from '../../../functions/forensics/check-memory/check-memory.js';
import { handler } from '../../../functions/forensics/check-memory/handler.js';
import { MemoryTimeline, sampleCase } from '../../support/core-fakes.js';
import {
  evidenceConfig,
  fixedClock,
  hostReport,
  memoryKey,
  reportKey,
  runningCapture,
  s3Body,
} from '../../support/evidence-fixtures.js';

const ssm = mockClient(SSMClient);
const s3 = mockClient(S3Client);
const MiB = 1024 * 1024;

function deps(at?: string) {
  const timeline = new MemoryTimeline();
  return {
    timeline,
    deps: {
      ssm: new SSMClient({ region: 'us-east-1' }),
      s3: new S3Client({ region: 'us-east-1' }),
      recorder: timeline.recorder(sampleCase.caseId, 'check-memory'),
      config: evidenceConfig,
      now: fixedClock(at).now,
    },
  };
}

function invocation(Status: string, StatusDetails = Status, StandardErrorContent = '') {
  ssm
    .on(GetCommandInvocationCommand)
    .resolves({ Status: Status as never, StatusDetails, StandardErrorContent });
}

function hostReported(report: MemoryReport) {
  s3.on(GetObjectCommand, { Key: reportKey }).resolves({
    Body: s3Body(JSON.stringify(report)),
    VersionId: 'report-v1',
    ContentLength: Buffer.byteLength(JSON.stringify(report)),
  });
}

const report = hostReport([8 * MiB, 8 * MiB, 3 * MiB + 17]);
const completing = [CompleteMultipartUploadCommand] as const;

describe('check memory', () => {
  beforeEach(() => {
    ssm.reset();
    s3.reset();
    s3.on(DeleteObjectCommand).resolves({});
    s3.on(CompleteMultipartUploadCommand).resolves({ VersionId: 'image-v1' });
    ssm.on(CancelCommandCommand).resolves({});
  });

  it('asks again after a doubled wait while the command is pending', async () => {
    // Prepare
    invocation('Pending');
    const { deps: d } = deps();

    // Act
    const next = await checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    expect(next).toMatchObject({ status: 'running', waitSeconds: 40, attempt: 1 });
    expect(ssm).toHaveReceivedCommandWith(GetCommandInvocationCommand, {
      CommandId: runningCapture().commandId,
      InstanceId: sampleCase.instanceId,
    });
    expect(s3.calls()).toHaveLength(0);
  });

  it('keeps waiting, never longer than two minutes, while the command is in progress', async () => {
    // Prepare
    invocation('InProgress', 'In Progress');
    const { deps: d } = deps();

    // Act
    const next = await checkMemory({ case: sampleCase, memory: runningCapture({ waitSeconds: 100 }) }, d);

    // Assess
    expect(next).toMatchObject({ status: 'running', waitSeconds: 120 });
  });

  it('treats an invocation SSM cannot show yet as pending', async () => {
    // Prepare
    ssm
      .on(GetCommandInvocationCommand)
      .rejects(Object.assign(new Error('no such invocation'), { name: 'InvocationDoesNotExist' }));
    const { deps: d } = deps();

    // Act
    const next = await checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    expect(next.status).toBe('running');
  });

  it('completes the upload with exactly the parts, ETags and checksums the host reported once the command succeeded', async () => {
    // Prepare
    invocation('Success');
    hostReported(report);
    const { deps: d } = deps();

    // Act
    await checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    expect(s3).toHaveReceivedCommandWith(CompleteMultipartUploadCommand, {
      Bucket: evidenceConfig.EVIDENCE_BUCKET,
      Key: memoryKey,
      UploadId: 'upload-1',
      IfNoneMatch: '*',
      MultipartUpload: {
        Parts: report.parts.map((p) => ({
          PartNumber: p.partNumber,
          ETag: `"${p.etag}"`,
          ChecksumSHA256: p.checksumSha256,
        })),
      },
    });
  });

  it("returns the uploaded image's version, size, host hash and the stored report", async () => {
    // Prepare
    invocation('Success');
    hostReported(report);
    const { deps: d } = deps();

    // Act
    const next = await checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    expect(next).toMatchObject({
      status: 'uploaded',
      versionId: 'image-v1',
      bytes: 19 * MiB + 17,
      hostSha256: report.image.sha256,
      parts: 3,
      report: { key: reportKey, versionId: 'report-v1', contentType: 'application/json' },
    });
  });

  it("deletes the host's upload credentials once the command has ended", async () => {
    // Prepare
    invocation('Success');
    hostReported(report);
    const { deps: d } = deps();

    // Act
    await checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    expect(s3).toHaveReceivedCommandWith(DeleteObjectCommand, {
      Bucket: evidenceConfig.TOOLS_BUCKET,
      Key: runningCapture().sessionKey,
    });
  });

  it("fails with MemoryCaptureError when the command failed, quoting the start of the host's error output", async () => {
    // Prepare
    invocation('Failed', 'Failed', "cordon-capture: error: the tool's SHA-256 is not the pinned one\n");
    const { deps: d } = deps();

    // Act
    const run = checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    await expect(run).rejects.toThrow(MemoryCaptureError);
    await expect(run).rejects.toThrow(/the tool's SHA-256 is not the pinned one/);
    expect(s3).toHaveReceivedCommandTimes(CompleteMultipartUploadCommand, 0);
  });

  it('fails with MemoryCaptureError when the command ran out of time on the host', async () => {
    // Prepare
    invocation('TimedOut', 'Execution Timed Out');
    const { deps: d } = deps();

    // Act
    const run = checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    await expect(run).rejects.toThrow(MemoryCaptureError);
    await expect(run).rejects.toThrow(/Execution Timed Out/);
  });

  it('fails with MemoryCaptureError when the command could not be delivered to the instance', async () => {
    // Prepare
    invocation('Failed', 'Undeliverable');
    const { deps: d } = deps();

    // Act
    const run = checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    await expect(run).rejects.toThrow(/Undeliverable/);
    await expect(run).rejects.toBeInstanceOf(MemoryCaptureError);
  });

  it('fails with MemoryCaptureError when the command was cancelled', async () => {
    // Prepare
    invocation('Cancelled');
    const { deps: d } = deps();

    // Act
    const run = checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(MemoryCaptureError);
  });

  it('cancels the command and fails with MemoryCaptureTimeoutError once the budget is spent', async () => {
    // Prepare
    invocation('InProgress', 'In Progress');
    const { deps: d } = deps('2026-11-27T21:30:00.000Z');

    // Act
    const run = checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(MemoryCaptureTimeoutError);
    expect(ssm).toHaveReceivedCommandWith(CancelCommandCommand, {
      CommandId: runningCapture().commandId,
      InstanceIds: [sampleCase.instanceId],
    });
  });

  it('fails with MemoryCaptureError when the host reports success but left no report', async () => {
    // Prepare
    invocation('Success');
    s3.on(GetObjectCommand).rejects(Object.assign(new Error('no such key'), { name: 'NoSuchKey' }));
    const { deps: d } = deps();

    // Act
    const run = checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(MemoryCaptureError);
    expect(s3).toHaveReceivedCommandTimes(CompleteMultipartUploadCommand, 0);
  });

  it('refuses a report whose parts do not add up to the image, and completes nothing', async () => {
    // Prepare
    invocation('Success');
    hostReported({ ...report, image: { ...report.image, bytes: report.image.bytes + 1 } });
    const { deps: d } = deps();

    // Act
    const run = checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(EvidenceIntegrityError);
    for (const command of completing) expect(s3).toHaveReceivedCommandTimes(command, 0);
  });

  it('refuses a report that names a tool other than the pinned one, and completes nothing', async () => {
    // Prepare
    invocation('Success');
    hostReported({ ...report, tool: { name: 'avml', sha256: 'f'.repeat(64) } });
    const { deps: d } = deps();

    // Act
    const run = checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(EvidenceIntegrityError);
    expect(s3).toHaveReceivedCommandTimes(CompleteMultipartUploadCommand, 0);
  });

  it('refuses a report with a shell command where an ETag should be, and completes nothing', async () => {
    // Prepare
    invocation('Success');
    const [first, ...rest] = report.parts;
    hostReported({
      ...report,
      parts: [{ ...(first as MemoryReport['parts'][number]), etag: '$(reboot)' }, ...rest],
    });
    const { deps: d } = deps();

    // Act
    const run = checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(EvidenceIntegrityError);
    expect(s3).toHaveReceivedCommandTimes(CompleteMultipartUploadCommand, 0);
  });

  it("turns S3's refusal of a reported part into EvidenceIntegrityError", async () => {
    // Prepare
    invocation('Success');
    hostReported(report);
    s3.on(CompleteMultipartUploadCommand).rejects(
      Object.assign(new Error('part not found'), { name: 'InvalidPart' }),
    );
    const { deps: d } = deps();

    // Act
    const run = checkMemory({ case: sampleCase, memory: runningCapture() }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(EvidenceIntegrityError);
  });

  const s3Error = (name: string, status: number) =>
    Object.assign(new Error(`S3 said ${name}`), { name, $metadata: { httpStatusCode: status } });
  const composite = (parts: { checksumSha256: string }[]) =>
    `${compositeSha256(parts.map((p) => p.checksumSha256))}-${parts.length}`;

  it.each([
    ['PreconditionFailed', 412],
    ['NoSuchUpload', 404],
  ] as const)(
    'takes the image its own earlier completion made, when a retry hears %s and the object is exactly the reported parts',
    async (name, status) => {
      invocation('Success');
      hostReported(report);
      s3.on(CompleteMultipartUploadCommand).rejects(s3Error(name, status));
      s3.on(HeadObjectCommand).resolves({ VersionId: 'image-v1', ChecksumSHA256: composite(report.parts) });
      const { deps: d } = deps();

      const result = await checkMemory({ case: sampleCase, memory: runningCapture() }, d);

      expect(result).toMatchObject({ status: 'uploaded', versionId: 'image-v1' });
      expect(s3).toHaveReceivedCommandWith(HeadObjectCommand, { Key: memoryKey, ChecksumMode: 'ENABLED' });
    },
  );

  it.each([
    ['PreconditionFailed', 412],
    ['NoSuchUpload', 404],
  ] as const)(
    'refuses, as EvidenceIntegrityError, an image someone else completed first with other parts (S3: %s)',
    async (name, status) => {
      invocation('Success');
      hostReported(report);
      s3.on(CompleteMultipartUploadCommand).rejects(s3Error(name, status));
      s3.on(HeadObjectCommand).resolves({
        VersionId: 'planted',
        ChecksumSHA256: composite(report.parts.slice(0, 2)),
      });
      const { deps: d } = deps();

      const error = await checkMemory({ case: sampleCase, memory: runningCapture() }, d).catch(
        (e: unknown) => e,
      );

      expect(error).toBeInstanceOf(EvidenceIntegrityError);
      expect((error as Error).message).toContain(
        `was written before Cordon completed the capture's upload (S3: ${name}), and it is not made of the parts the host reported`,
      );
    },
  );

  it('refuses, as EvidenceIntegrityError, a completion another write to the key raced (S3: 409)', async () => {
    invocation('Success');
    hostReported(report);
    s3.on(CompleteMultipartUploadCommand).rejects(s3Error('ConditionalRequestConflict', 409));
    const { deps: d } = deps();

    const error = await checkMemory({ case: sampleCase, memory: runningCapture() }, d).catch(
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(EvidenceIntegrityError);
    expect((error as Error).message).toContain('another write to the key raced');
    expect(s3).toHaveReceivedCommandTimes(HeadObjectCommand, 0);
  });

  it("refuses a capture whose image key is outside the case's memory folder, and sends nothing", async () => {
    // Prepare
    const memory = runningCapture({ key: `cases/${sampleCase.caseId}/../other/image.lime` });

    // Act
    const run = handler({ case: sampleCase, memory }, {} as never);

    // Assess
    await expect(run).rejects.toBeInstanceOf(InvalidStepInputError);
    expect(ssm.calls()).toHaveLength(0);
    expect(s3.calls()).toHaveLength(0);
  });
});
