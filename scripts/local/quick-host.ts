/**
 * A QUICK HOST DOUBLE, for runs of many cases or of large images (the fault matrix, the benchmark's
 * evidence I/O). It plays the instance's part of a memory capture the way the capture script does
 * (capture/linux/capture-memory.sh, which the emulated SSM agent runs in the demo and in
 * test/integration/capture-script.test.ts), with the SDK instead of a shell: it reads the upload session
 * the Lambda left in the tools bucket, uploads a synthetic image in the planned parts with their
 * SHA-256 under the session's credentials, and writes the capture report, checked against the schema
 * Check Memory reads. The script costs seconds of CPU per capture (it forks openssl for every
 * signature); this costs milliseconds. Nothing here is used on AWS.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { type MemoryReport, memoryReportSchema, memoryRunningSchema } from '../../functions/core/memory.js';

const iso = (d: Date) => `${d.toISOString().slice(0, 19)}Z`;

/** Returns a host for `runWorkflowLocally`'s `host` option, writing an image of `imageBytes` bytes. */
export function quickHost(settings: {
  endpoint: string;
  region: string;
  toolsBucket: string;
  imageBytes: number;
}) {
  const admin = new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  return async (output: unknown): Promise<void> => {
    const capture = memoryRunningSchema.parse(output);
    const started = new Date();
    // The session, fetched as the host fetches it (the script uses the presigned link; same object).
    const got = await admin.send(
      new GetObjectCommand({ Bucket: settings.toolsBucket, Key: capture.sessionKey }),
    );
    const session = Object.fromEntries(
      (await (got.Body as { transformToString(): Promise<string> }).transformToString())
        .split('\n')
        .filter(Boolean)
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    const s3 = new S3Client({
      endpoint: settings.endpoint,
      region: settings.region,
      forcePathStyle: true,
      credentials: {
        accessKeyId: session.access_key_id ?? '',
        secretAccessKey: session.secret_access_key ?? '',
        sessionToken: session.session_token ?? '',
      },
    });
    // The image in the planned parts, each numbered in its first bytes so that no two are alike.
    const imageHash = createHash('sha256');
    const parts: MemoryReport['parts'] = [];
    for (let offset = 0, n = 1; offset < settings.imageBytes; offset += capture.partSize, n += 1) {
      const body = Buffer.alloc(
        Math.min(capture.partSize, settings.imageBytes - offset),
        'cordon quick host double\n',
      );
      body.write(`part ${n}\n`, 0);
      imageHash.update(body);
      const digest = createHash('sha256').update(body).digest();
      const out = await s3.send(
        new UploadPartCommand({
          Bucket: capture.bucket,
          Key: capture.key,
          UploadId: capture.uploadId,
          PartNumber: n,
          Body: body,
          ChecksumSHA256: digest.toString('base64'),
        }),
      );
      parts.push({
        partNumber: n,
        bytes: body.byteLength,
        sha256: digest.toString('hex'),
        checksumSha256: digest.toString('base64'),
        etag: (out.ETag ?? '').replaceAll('"', ''),
      });
    }
    const report: MemoryReport = memoryReportSchema.parse({
      schema: 'cordon.memory-report/1',
      caseId: capture.key.split('/')[1],
      tool: { name: capture.tool.name, sha256: capture.tool.sha256 },
      image: { bytes: settings.imageBytes, sha256: imageHash.digest('hex'), format: 'lime' },
      partSize: capture.partSize,
      parts,
      host: { kernel: 'quick-host-double', machine: 'x86_64', clockSkewSeconds: 0 },
      startedAt: iso(started),
      finishedAt: iso(new Date()),
    });
    await s3.send(
      new PutObjectCommand({
        Bucket: capture.bucket,
        Key: capture.reportKey,
        Body: `${JSON.stringify(report)}\n`,
        ContentType: 'application/json',
        ChecksumAlgorithm: 'SHA256',
        IfNoneMatch: '*',
      }),
    );
  };
}
