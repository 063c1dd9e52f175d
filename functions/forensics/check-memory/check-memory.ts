import {
  CompleteMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { z } from 'zod';
import { caseSchema } from '../../core/case.js';
import type { Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import {
  awsErrorCode,
  describeError,
  EvidenceIntegrityError,
  MemoryCaptureError,
  MemoryCaptureTimeoutError,
} from '../../core/errors.js';
import {
  compositeDigest,
  compositeSha256,
  memoryRunningSchema,
  memoryWait,
  nextWaitSeconds,
  readReport,
} from '../../core/memory.js';
import type { MemoryRunning, MemoryUploaded } from '../../core/state.js';
import { oneLine } from '../../core/text.js';

export const checkMemoryInputSchema = z.object({ case: caseSchema, memory: memoryRunningSchema });
export type CheckMemoryInput = z.infer<typeof checkMemoryInputSchema>;

export interface CheckMemoryDeps {
  /** SSM in the instance's account. */
  ssm: SSMClient;
  /** S3 in Cordon's account: the evidence and tools buckets. */
  s3: S3Client;
  recorder: Recorder;
  config: Pick<Config, 'TOOLS_BUCKET'>;
  now: () => Date;
}

/** Invocation states in which the command may still finish. */
const stillGoing = new Set(['Pending', 'InProgress', 'Delayed']);
/**
 * StatusDetails that end an invocation whatever its Status says: Undeliverable, for one, is terminal
 * while the agent is unreachable. SSM spells most of them with spaces ("Delivery Timed Out").
 */
const finalDetails = new Set(
  [
    'Undeliverable',
    'Delivery Timed Out',
    'Execution Timed Out',
    'Terminated',
    'Failed',
    'Cancelled',
    'Canceled',
    'Access Denied',
    'Invalid Platform',
  ].flatMap((d) => [d, d.replaceAll(' ', '')]),
);

export type InvocationOutcome = 'running' | 'succeeded' | 'failed';

/** Reads an SSM invocation's status and details as running, succeeded or failed. */
export function invocationOutcome(
  status: string | undefined,
  details: string | undefined,
): InvocationOutcome {
  if (details && finalDetails.has(details)) return 'failed';
  if (status === 'Success') return 'succeeded';
  if (status === undefined || stillGoing.has(status)) return 'running';
  return 'failed';
}

async function invocation(
  deps: CheckMemoryDeps,
  memory: MemoryRunning,
): Promise<GetCommandInvocationCommandOutput | undefined> {
  try {
    return await deps.ssm.send(
      new GetCommandInvocationCommand({ CommandId: memory.commandId, InstanceId: memory.instanceId }),
    );
  } catch (error) {
    // Just after SendCommand the invocation may not be readable yet.
    if (awsErrorCode(error) === 'InvocationDoesNotExist') return undefined;
    throw error;
  }
}

/** The upload credentials are of no further use once the command has ended: remove them. */
async function dropSession(deps: CheckMemoryDeps, memory: MemoryRunning): Promise<void> {
  await deps.recorder
    .run('s3:DeleteObject', `${deps.config.TOOLS_BUCKET}/${memory.sessionKey}`, () =>
      deps.s3.send(new DeleteObjectCommand({ Bucket: deps.config.TOOLS_BUCKET, Key: memory.sessionKey })),
    )
    .catch(() => {
      // The credentials expire within the hour regardless; a failed delete is on the timeline.
    });
}

/**
 * After a completion S3 answered 412 or 404: the object now at the image's key, if it is exactly the
 * parts the host reported (S3's composite SHA-256 of them, and their number), which a retry of
 * Cordon's own completion finds; anything else is refused. Verify Memory checks that version again.
 */
async function completedEarlier(
  deps: CheckMemoryDeps,
  memory: MemoryRunning,
  report: { parts: { checksumSha256: string }[] },
  code: string,
  cause: unknown,
): Promise<string> {
  const refused = (why: string) =>
    new EvidenceIntegrityError(
      `${memory.key} was written before Cordon completed the capture's upload (S3: ${code}), and ${why}: an image Cordon did not complete is never sealed`,
      { cause },
    );
  const stored = await deps.s3
    .send(new HeadObjectCommand({ Bucket: memory.bucket, Key: memory.key, ChecksumMode: 'ENABLED' }))
    .catch(() => undefined);
  if (!stored?.VersionId) throw refused('no version of it can be read');
  const expected = compositeSha256(report.parts.map((p) => p.checksumSha256));
  if (compositeDigest(stored.ChecksumSHA256, report.parts.length) !== expected) {
    throw refused('it is not made of the parts the host reported');
  }
  await deps.recorder.note('s3:CompleteMultipartUpload', 'info', {
    target: memory.key,
    detail: `completed on an earlier attempt (S3: ${code}); version ${stored.VersionId} holds exactly the reported parts`,
  });
  return stored.VersionId;
}

/** S3's answers to a CompleteMultipartUpload whose parts are not what the host said it sent. */
const partMismatch = new Set([
  'InvalidPart',
  'InvalidPartOrder',
  'EntityTooSmall',
  'BadDigest',
  'InvalidRequest',
]);

/**
 * One round of the memory loop. While SSM reports the command pending or in progress, returns the next
 * wait (doubled up to a cap) until the budget is spent, then cancels the command and fails with
 * MemoryCaptureTimeoutError. A command that failed, timed out, was cancelled or could not be delivered
 * is a MemoryCaptureError carrying SSM's status and the start of the host's error output. On success it
 * reads the host's report and completes the multipart upload with exactly the parts the host reported
 * (ETag and SHA-256 each), so S3 itself checks that every part it holds is the one the host hashed,
 * and only if no object is at the image's key yet: an image anyone else completed is refused.
 */
export async function checkMemory(
  input: CheckMemoryInput,
  deps: CheckMemoryDeps,
): Promise<MemoryRunning | MemoryUploaded> {
  const c = input.case;
  const memory = input.memory as MemoryRunning;
  const now = deps.now();
  const got = await invocation(deps, memory);
  const outcome = invocationOutcome(got?.Status, got?.StatusDetails);
  const remainingSeconds = (new Date(memory.deadline).getTime() - now.getTime()) / 1000;

  if (outcome === 'running') {
    if (remainingSeconds > 0) {
      return {
        ...memory,
        attempt: memory.attempt + 1,
        waitSeconds: nextWaitSeconds(memory.waitSeconds, { cap: memoryWait.capSeconds, remainingSeconds }),
      };
    }
    await deps.recorder
      .run('ssm:CancelCommand', memory.commandId, () =>
        deps.ssm.send(
          new CancelCommandCommand({ CommandId: memory.commandId, InstanceIds: [memory.instanceId] }),
        ),
      )
      .catch(() => {
        // Recorded; the upload credentials expire with the budget regardless.
      });
    await dropSession(deps, memory);
    throw new MemoryCaptureTimeoutError(
      `Memory capture on ${memory.instanceId} was still ${got?.Status ?? 'not started'} when its budget ran out`,
    );
  }

  if (outcome === 'failed') {
    await dropSession(deps, memory);
    const hostSaid = got?.StandardErrorContent
      ? `; the host said: ${oneLine(got.StandardErrorContent, 300)}`
      : '';
    const detail = `SSM command ${memory.commandId} ended ${got?.Status ?? 'unknown'} (${got?.StatusDetails ?? 'no details'})${hostSaid}`;
    await deps.recorder.note('memory:capture', 'failed', { target: memory.instanceId, detail });
    throw new MemoryCaptureError(`Memory capture on ${memory.instanceId} failed: ${detail}`);
  }

  await dropSession(deps, memory);
  const { report, artifact } = await readReport(deps.s3, { ...memory, caseId: c.caseId });
  await deps.recorder.note('memory:report', 'ok', {
    target: memory.reportKey,
    artifact,
    detail: `${report.parts.length} parts, ${report.image.bytes} bytes, host SHA-256 ${report.image.sha256}`,
  });
  let versionId: string | undefined;
  try {
    const done = await deps.recorder.run('s3:CompleteMultipartUpload', memory.key, () =>
      deps.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: memory.bucket,
          Key: memory.key,
          UploadId: memory.uploadId,
          // Only Cordon's completion makes the image: whoever held the upload session could start
          // and complete an upload of its own on this key first (S3 authorises both as PutObject).
          IfNoneMatch: '*',
          MultipartUpload: {
            Parts: report.parts.map((p) => ({
              PartNumber: p.partNumber,
              ETag: p.etag.startsWith('"') ? p.etag : `"${p.etag}"`,
              ChecksumSHA256: p.checksumSha256,
            })),
          },
        }),
      ),
    );
    versionId = done.VersionId;
  } catch (error) {
    const code = awsErrorCode(error);
    if (code === 'PreconditionFailed' || code === 'NoSuchUpload') {
      // 412: an object is there already; 404: the upload is no longer open. Either this very
      // completion succeeded on an earlier attempt whose answer was lost (a retry), or someone
      // completed an upload on the key first: only an image of exactly the reported parts is taken.
      versionId = await completedEarlier(deps, memory, report, code, error);
    } else if (code === 'ConditionalRequestConflict') {
      // 409: another write to the key raced this one (S3 says to start the upload again).
      throw new EvidenceIntegrityError(
        `${memory.key}: another write to the key raced Cordon's completion (S3: ${code}); the image is not taken`,
        { cause: error },
      );
    } else if (code && partMismatch.has(code)) {
      const e = describeError(error);
      throw new EvidenceIntegrityError(
        `S3 refused the parts the host reported for ${memory.key}: ${e.message}`,
        {
          cause: error,
        },
      );
    } else {
      throw error;
    }
  }
  if (!versionId)
    throw new EvidenceIntegrityError(`${memory.key} was stored without a version: is versioning on?`);
  return {
    ...memory,
    status: 'uploaded',
    attempt: memory.attempt + 1,
    waitSeconds: 0,
    versionId,
    bytes: report.image.bytes,
    hostSha256: report.image.sha256,
    parts: report.parts.length,
    report: artifact,
  };
}
