import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Sha256 } from '@aws-crypto/sha256-js';
import { EC2Client } from '@aws-sdk/client-ec2';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  PutObjectLockConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CreateDocumentCommand, SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { SignatureV4 } from '@smithy/signature-v4';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { compositeSha256, memoryReportSchema } from '../../functions/core/memory.js';
import type { MemoryRunning, MemoryUploaded } from '../../functions/core/state.js';
import { captureMemory } from '../../functions/forensics/capture-memory/capture-memory.js';
import { checkMemory } from '../../functions/forensics/check-memory/check-memory.js';
import { verifyMemory } from '../../functions/forensics/verify-memory/verify-memory.js';
import {
  installStandInTools,
  memoryDocuments,
  runEmulatedSsmAgent,
  standInToolPath,
  standInToolSha256,
} from '../../scripts/local/emulated-ssm-agent.js';
import { resetMoto } from '../../scripts/local/moto.js';
import { MemoryTimeline, sampleCase } from '../support/core-fakes.js';
import { captureScriptPath, evidenceConfig, runBash, triageFor } from '../support/evidence-fixtures.js';

const endpoint = inject('motoEndpoint');
const region = 'us-east-1';
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const s3 = new S3Client({ endpoint, region, credentials, forcePathStyle: true, maxAttempts: 1 });
const evidenceBucket = 'cordon-evidence-capture-test';
const toolsBucket = 'cordon-tools-capture-test';
const imageKey = `cases/${sampleCase.caseId}/memory/image.lime`;
const reportKey = `cases/${sampleCase.caseId}/memory/capture-report.json`;
const sessionKey = `sessions/${sampleCase.caseId}/memory-upload.env`;
const MiB = 1024 * 1024;

/** The bytes the stand-in tool writes for `bytes`, produced by running it here. */
async function standInImage(bytes: number): Promise<Buffer> {
  const out = await runBash(['-c', `"${standInToolPath}" /dev/stdout | base64 -w0`], {
    CORDON_STAND_IN_BYTES: String(bytes),
  });
  return Buffer.from(out.stdout, 'base64');
}

/** The buckets, the tool and the multipart upload exactly as Capture Memory leaves them. */
async function prepareCapture(options: { partSizeMiB: number; maxParts: number }) {
  await s3.send(new CreateBucketCommand({ Bucket: evidenceBucket, ObjectLockEnabledForBucket: true }));
  await s3.send(
    new PutObjectLockConfigurationCommand({
      Bucket: evidenceBucket,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } },
      },
    }),
  );
  await s3.send(new CreateBucketCommand({ Bucket: toolsBucket }));
  await s3.send(
    new PutBucketVersioningCommand({ Bucket: toolsBucket, VersioningConfiguration: { Status: 'Enabled' } }),
  );
  await s3.send(
    new PutObjectCommand({ Bucket: toolsBucket, Key: 'tools/avml', Body: readFileSync(standInToolPath) }),
  );
  const upload = await s3.send(
    new CreateMultipartUploadCommand({ Bucket: evidenceBucket, Key: imageKey, ChecksumAlgorithm: 'SHA256' }),
  );
  const session = [
    'version=1',
    `case_id=${sampleCase.caseId}`,
    `region=${region}`,
    `endpoint=${endpoint}`,
    `image_path=/${evidenceBucket}/${imageKey}`,
    `report_path=/${evidenceBucket}/${reportKey}`,
    `upload_id=${upload.UploadId}`,
    `part_size_mib=${options.partSizeMiB}`,
    `max_parts=${options.maxParts}`,
    'access_key_id=ASIAEXAMPLEEXAMPLE01',
    'secret_access_key=EXAMPLEsecretEXAMPLEsecretEXAMPLEsecret1',
    'session_token=EXAMPLEtokenEXAMPLEtokenEXAMPLEtoken==',
    'expires_at=2026-11-27T21:30:00Z',
    '',
  ].join('\n');
  await s3.send(new PutObjectCommand({ Bucket: toolsBucket, Key: sessionKey, Body: session }));
  const link = async (key: string) =>
    Buffer.from(
      await getSignedUrl(s3, new GetObjectCommand({ Bucket: toolsBucket, Key: key }), { expiresIn: 900 }),
    ).toString('base64');
  return {
    uploadId: upload.UploadId as string,
    toolUrl: await link('tools/avml'),
    sessionUrl: await link(sessionKey),
  };
}

function scriptEnv(links: { toolUrl: string; sessionUrl: string }, extra: Record<string, string>) {
  return {
    CORDON_CASE_ID: sampleCase.caseId,
    CORDON_TOOL_URL_B64: links.toolUrl,
    CORDON_TOOL_SHA256: standInToolSha256(),
    CORDON_SESSION_URL_B64: links.sessionUrl,
    CORDON_COMPRESS: 'false',
    CORDON_PART_SIZE_MIB: '5',
    CORDON_ALLOW_LOOPBACK_HTTP: '1',
    ...extra,
  };
}

describe('the Linux capture script, run for real against the emulator', () => {
  beforeEach(async () => {
    await resetMoto(endpoint);
  });

  it('streams the stand-in image in three checksummed parts that complete into exactly the bytes written', async () => {
    // Prepare
    const bytes = 13 * MiB + 123;
    const links = await prepareCapture({ partSizeMiB: 5, maxParts: 4 });
    const expected = await standInImage(bytes);

    // Act
    const run = await runBash(
      [captureScriptPath],
      scriptEnv(links, { CORDON_STAND_IN_BYTES: String(bytes) }),
    );
    if (run.code !== 0) throw new Error(`the capture script failed:\n${run.stderr}`);
    const reportObject = await s3.send(new GetObjectCommand({ Bucket: evidenceBucket, Key: reportKey }));
    const report = memoryReportSchema.parse(
      JSON.parse(await (reportObject.Body as { transformToString(): Promise<string> }).transformToString()),
    );
    const completed = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: evidenceBucket,
        Key: imageKey,
        UploadId: links.uploadId,
        MultipartUpload: {
          Parts: report.parts.map((p) => ({
            PartNumber: p.partNumber,
            ETag: `"${p.etag}"`,
            ChecksumSHA256: p.checksumSha256,
          })),
        },
      }),
    );
    const stored = await s3.send(
      new GetObjectCommand({ Bucket: evidenceBucket, Key: imageKey, VersionId: completed.VersionId }),
    );
    const storedBytes = Buffer.from(
      await (stored.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
    const head = await s3.send(
      new HeadObjectCommand({
        Bucket: evidenceBucket,
        Key: imageKey,
        VersionId: completed.VersionId,
        ChecksumMode: 'ENABLED',
      }),
    );

    // Assess
    expect(report.parts.map((p) => p.bytes)).toEqual([5 * MiB, 5 * MiB, 3 * MiB + 123]);
    expect(report.image).toEqual({
      bytes,
      sha256: createHash('sha256').update(expected).digest('hex'),
      format: 'lime',
    });
    expect(storedBytes.equals(expected)).toBe(true);
    expect(head.ChecksumSHA256?.split('-')[0]).toBe(
      compositeSha256(report.parts.map((p) => p.checksumSha256)),
    );
  }, 180_000);

  it('refuses a tool whose SHA-256 is not the pinned one, and uploads nothing', async () => {
    // Prepare
    const links = await prepareCapture({ partSizeMiB: 5, maxParts: 4 });

    // Act
    const run = await runBash([captureScriptPath], scriptEnv(links, { CORDON_TOOL_SHA256: 'f'.repeat(64) }));
    const parts = await s3.send(
      new ListPartsCommand({ Bucket: evidenceBucket, Key: imageKey, UploadId: links.uploadId }),
    );
    const report = s3.send(new HeadObjectCommand({ Bucket: evidenceBucket, Key: reportKey }));

    // Assess
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain("the tool's SHA-256 is not the pinned one");
    expect(parts.Parts ?? []).toEqual([]);
    await expect(report).rejects.toMatchObject({ name: 'NotFound' });
  });

  it('stops when the image needs more parts than were planned', async () => {
    // Prepare
    const links = await prepareCapture({ partSizeMiB: 5, maxParts: 2 });

    // Act
    const run = await runBash(
      [captureScriptPath],
      scriptEnv(links, { CORDON_STAND_IN_BYTES: String(13 * MiB) }),
    );
    const report = s3.send(new HeadObjectCommand({ Bucket: evidenceBucket, Key: reportKey }));

    // Assess
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('larger than the 2 parts planned');
    await expect(report).rejects.toMatchObject({ name: 'NotFound' });
  }, 180_000);
});

describe('the capture script signs as the AWS SDK does', () => {
  it('encodes a digest holding NUL, newline and backslash bytes as the base64 S3 expects', async () => {
    // Prepare
    const hex = '000a0d2500ff5c785c00000000000000000000000000000000000000000000ff';

    // Act
    const run = await runBash(['-c', `source "${captureScriptPath}"; hex_to_b64 ${hex}`], {
      CORDON_CAPTURE_LIBRARY: '1',
    });

    // Assess
    expect(run.stdout).toBe(Buffer.from(hex, 'hex').toString('base64'));
  });

  it('computes the same SigV4 authorization as the SDK for an UploadPart with a checksum', async () => {
    // Prepare
    const amzDate = '20261127T203000Z';
    const payload = createHash('sha256').update('part one').digest('hex');
    const checksum = createHash('sha256').update('part one').digest('base64');
    const path = '/cases/20261127T201003Z-i-0123456789abcdef0-3fa9/memory/image.lime';
    const host = 'cordon-evidence.s3.eu-west-1.amazonaws.com';
    const token = 'EXAMPLEtokenEXAMPLEtokenEXAMPLEtoken==';
    const signer = new SignatureV4({
      service: 's3',
      region: 'eu-west-1',
      sha256: Sha256,
      uriEscapePath: false,
      applyChecksum: false,
      credentials: {
        accessKeyId: 'ASIAEXAMPLEEXAMPLE01',
        secretAccessKey: 'EXAMPLE/secret+EXAMPLEsecretEXAMPLEsecre',
      },
    });
    const signed = await signer.sign(
      {
        method: 'PUT',
        protocol: 'https:',
        hostname: host,
        path,
        query: { partNumber: '7', uploadId: 'Ab.c_d-e~f+g/h=' },
        headers: {
          host,
          'x-amz-checksum-sha256': checksum,
          'x-amz-content-sha256': payload,
          'x-amz-sdk-checksum-algorithm': 'SHA256',
          'x-amz-security-token': token,
        },
      },
      { signingDate: new Date('2026-11-27T20:30:00Z') },
    );

    // Act
    const script = [
      `source "${captureScriptPath}"`,
      's_region=eu-west-1',
      's_access_key=ASIAEXAMPLEEXAMPLE01',
      "s_secret='EXAMPLE/secret+EXAMPLEsecretEXAMPLEsecre'",
      `sigv4_authorization PUT "${path}" "partNumber=7&uploadId=$(uri_encode 'Ab.c_d-e~f+g/h=')" ${amzDate} ${payload} \\`,
      `  "host:${host}" "x-amz-checksum-sha256:${checksum}" "x-amz-content-sha256:${payload}" \\`,
      `  "x-amz-date:${amzDate}" "x-amz-sdk-checksum-algorithm:SHA256" "x-amz-security-token:${token}"`,
    ].join('\n');
    const run = await runBash(['-c', script], { CORDON_CAPTURE_LIBRARY: '1' });

    // Assess
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(signed.headers.authorization);
  });
});

describe('Capture Memory, the emulated SSM agent, Check Memory and Verify Memory together', () => {
  beforeEach(async () => {
    await resetMoto(endpoint);
  });

  it('leave a verified, locked image in the evidence bucket that holds exactly the bytes the tool wrote', async () => {
    // Prepare
    const config = {
      ...evidenceConfig,
      EVIDENCE_BUCKET: evidenceBucket,
      TOOLS_BUCKET: toolsBucket,
      AVML_SHA256: standInToolSha256(),
      WINPMEM_SHA256: '',
    };
    await s3.send(new CreateBucketCommand({ Bucket: evidenceBucket, ObjectLockEnabledForBucket: true }));
    await s3.send(new CreateBucketCommand({ Bucket: toolsBucket }));
    await s3.send(
      new PutBucketVersioningCommand({ Bucket: toolsBucket, VersioningConfiguration: { Status: 'Enabled' } }),
    );
    await installStandInTools({ endpoint, region, bucket: toolsBucket });
    const ssm = new SSMClient({ endpoint, region, credentials, maxAttempts: 1 });
    await ssm.send(
      new CreateDocumentCommand({
        Name: config.MEMORY_DOCUMENT_LINUX,
        DocumentType: 'Command',
        DocumentFormat: 'JSON',
        Content: JSON.stringify(memoryDocuments().linux),
      }),
    );
    const timeline = new MemoryTimeline();
    const clients = {
      ssm,
      ec2: new EC2Client({ endpoint, region, credentials, maxAttempts: 1 }),
      s3,
      sts: new STSClient({ endpoint, region, credentials, maxAttempts: 1 }),
    };
    const now = () => new Date();
    const imageBytes = 9 * MiB + 5;
    const expected = await standInImage(imageBytes);

    // Act
    const running = (await captureMemory(
      { case: sampleCase, triage: triageFor() },
      {
        ...clients,
        presign: (command, expiresIn) => getSignedUrl(s3, command, { expiresIn }),
        recorder: timeline.recorder(sampleCase.caseId, 'capture-memory'),
        config,
        now,
      },
    )) as MemoryRunning;
    const agent = await runEmulatedSsmAgent({
      endpoint,
      region,
      instanceId: sampleCase.instanceId,
      imageBytes,
    });
    const uploaded = (await checkMemory(
      { case: sampleCase, memory: running },
      { ...clients, recorder: timeline.recorder(sampleCase.caseId, 'check-memory'), config, now },
    )) as MemoryUploaded;
    const verified = await verifyMemory(
      { case: sampleCase, memory: uploaded },
      { s3, recorder: timeline.recorder(sampleCase.caseId, 'verify-memory'), config, now },
    );

    // Assess
    expect(agent).toMatchObject({ commandId: running.commandId, ran: true, exitCode: 0 });
    expect(verified).toMatchObject({
      status: 'verified',
      bytes: imageBytes,
      parts: 2,
      wholeImageSha256: 'recomputed',
      lock: { mode: 'GOVERNANCE', legalHold: 'ON' },
      artifact: { key: imageKey, sha256: createHash('sha256').update(expected).digest('hex') },
    });
  }, 180_000);
});
