import { DescribeInstanceTypesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  CreateMultipartUploadCommand,
  type GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { DescribeDocumentCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryCaptureError } from '../../../functions/core/errors.js';
import { GiB, MiB, planParts, s3Multipart } from '../../../functions/core/memory.js';
import { captureMemory } from '../../../functions/forensics/capture-memory/capture-memory.js';
import { MemoryTimeline, sampleCase } from '../../support/core-fakes.js';
import { evidenceConfig, fixedClock, triageFor, uploadRoleArn } from '../../support/evidence-fixtures.js';

const ssm = mockClient(SSMClient);
const ec2 = mockClient(EC2Client);
const s3 = mockClient(S3Client);
const sts = mockClient(STSClient);

const imageKey = `cases/${sampleCase.caseId}/memory/image.lime`;
const reportKey = `cases/${sampleCase.caseId}/memory/capture-report.json`;
const sessionKey = `sessions/${sampleCase.caseId}/memory-upload.env`;

/** A presigner that returns recognisable, deterministic links. */
async function presign(command: GetObjectCommand | PutObjectCommand, expiresIn: number): Promise<string> {
  const input = command.input as { Bucket: string; Key: string; VersionId?: string };
  const version = input.VersionId ? `&versionId=${input.VersionId}` : '';
  return `https://${input.Bucket}.s3.us-east-1.amazonaws.com/${input.Key}?X-Amz-Expires=${expiresIn}${version}`;
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

function deps(config: Partial<typeof evidenceConfig> = {}) {
  const timeline = new MemoryTimeline();
  return {
    timeline,
    deps: {
      ssm: new SSMClient({ region: 'us-east-1' }),
      ec2: new EC2Client({ region: 'us-east-1' }),
      s3: new S3Client({ region: 'us-east-1' }),
      sts: new STSClient({ region: 'us-east-1' }),
      presign,
      recorder: timeline.recorder(sampleCase.caseId, 'capture-memory'),
      config: { ...evidenceConfig, ...config },
      now: fixedClock().now,
    },
  };
}

function expectNothingSent() {
  expect(s3).toHaveReceivedCommandTimes(CreateMultipartUploadCommand, 0);
  expect(s3).toHaveReceivedCommandTimes(PutObjectCommand, 0);
  expect(sts).toHaveReceivedCommandTimes(AssumeRoleCommand, 0);
  expect(ssm).toHaveReceivedCommandTimes(SendCommandCommand, 0);
}

describe('planning the parts of a memory image', () => {
  it('cuts a 1 GiB image into 144 parts of 8 MiB', () => {
    expect(planParts(1 * GiB)).toMatchObject({ partSizeMiB: 8, maxParts: 144 });
  });

  it('cuts a 64 GiB image into 8,712 parts of 8 MiB', () => {
    expect(planParts(64 * GiB)).toMatchObject({ partSizeMiB: 8, maxParts: 8712 });
  });

  it('keeps a 512 GiB image within 10,000 parts by growing them to 64 MiB', () => {
    expect(planParts(512 * GiB)).toMatchObject({ partSizeMiB: 64, maxParts: 8705 });
  });

  it('plans enough parts for the image to be larger than the memory (format overhead and headroom)', () => {
    const plan = planParts(512 * GiB);
    expect(plan.partSizeBytes * plan.maxParts).toBeGreaterThanOrEqual(512 * GiB + (512 * GiB) / 16);
  });

  it("stays within S3's limits for the largest memory there is", () => {
    const plan = planParts(32 * 1024 * GiB);
    expect(plan.maxParts).toBeLessThanOrEqual(s3Multipart.maxParts);
    expect(plan.partSizeBytes).toBeLessThanOrEqual(s3Multipart.maxPartBytes);
  });

  it("never plans parts smaller than S3's 5 MiB minimum", () => {
    expect(planParts(256 * MiB).partSizeBytes).toBeGreaterThanOrEqual(s3Multipart.minPartBytes);
  });
});

describe('capture memory', () => {
  beforeEach(() => {
    ssm.reset();
    ec2.reset();
    s3.reset();
    sts.reset();
    ssm.on(DescribeDocumentCommand).resolves({
      Document: {
        Name: evidenceConfig.MEMORY_DOCUMENT_LINUX,
        DocumentVersion: '3',
        Status: 'Active',
        Hash: 'c'.repeat(64),
        HashType: 'Sha256',
      },
    });
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: '5c1f3a2e-8d9b-4c7a-9e6f-0a1b2c3d4e5f' } });
    s3.on(HeadObjectCommand).resolves({ VersionId: 'tool-v7' });
    s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-1' });
    s3.on(PutObjectCommand).resolves({ VersionId: 'session-v1' });
    sts.on(AssumeRoleCommand).resolves({
      Credentials: {
        AccessKeyId: 'ASIAEXAMPLEEXAMPLE01',
        SecretAccessKey: 'EXAMPLEsecretEXAMPLEsecretEXAMPLEsecret1',
        SessionToken: 'EXAMPLEtokenEXAMPLEtoken==',
        Expiration: new Date('2026-11-27T21:30:00Z'),
      },
    });
  });

  it('sends the pinned document version and hash with the tool link, its pinned hash, the session link and the part size', async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    await captureMemory({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    expect(ssm).toHaveReceivedCommandWith(SendCommandCommand, {
      InstanceIds: [sampleCase.instanceId],
      DocumentName: evidenceConfig.MEMORY_DOCUMENT_LINUX,
      DocumentVersion: '3',
      DocumentHash: 'c'.repeat(64),
      DocumentHashType: 'Sha256',
      TimeoutSeconds: 600,
      Parameters: {
        CaseId: [sampleCase.caseId],
        ToolUrl: [
          b64(
            'https://cordon-tools-dev.s3.us-east-1.amazonaws.com/tools/avml?X-Amz-Expires=900&versionId=tool-v7',
          ),
        ],
        ToolSha256: [evidenceConfig.AVML_SHA256],
        SessionUrl: [
          b64(`https://cordon-tools-dev.s3.us-east-1.amazonaws.com/${sessionKey}?X-Amz-Expires=900`),
        ],
        PartSizeMiB: ['8'],
        ExecutionTimeout: ['3600'],
        Compress: ['false'],
      },
    });
  });

  it('opens a multipart upload with SHA-256 part checksums, the stage lock and a legal hold', async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    await captureMemory({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    expect(s3).toHaveReceivedCommandWith(CreateMultipartUploadCommand, {
      Bucket: evidenceConfig.EVIDENCE_BUCKET,
      Key: imageKey,
      ChecksumAlgorithm: 'SHA256',
      ObjectLockMode: 'GOVERNANCE',
      ObjectLockRetainUntilDate: new Date('2026-11-28T20:30:00.000Z'),
      ObjectLockLegalHoldStatus: 'ON',
    });
  });

  it("gets upload credentials that can write this capture's image and report and nothing else, for at most an hour", async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    await captureMemory({ case: sampleCase, triage: triageFor() }, d);
    const call = sts.commandCalls(AssumeRoleCommand)[0]?.args[0].input;

    // Assess
    expect(call).toMatchObject({
      RoleArn: uploadRoleArn,
      RoleSessionName: `cordon-memory-${sampleCase.caseId}`,
      DurationSeconds: 3600,
    });
    expect(JSON.parse(call?.Policy ?? '{}').Statement).toEqual([
      {
        Sid: 'WriteThisCaptureOnly',
        Effect: 'Allow',
        Action: 's3:PutObject',
        Resource: [
          `arn:aws:s3:::${evidenceConfig.EVIDENCE_BUCKET}/${imageKey}`,
          `arn:aws:s3:::${evidenceConfig.EVIDENCE_BUCKET}/${reportKey}`,
        ],
      },
      {
        Sid: 'EncryptThroughS3',
        Effect: 'Allow',
        Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
        Resource: '*',
        Condition: { StringEquals: { 'kms:ViaService': 's3.us-east-1.amazonaws.com' } },
      },
    ]);
  });

  it('puts the upload session in the tools bucket for the host to fetch once, never in the evidence', async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    await captureMemory({ case: sampleCase, triage: triageFor() }, d);
    const put = s3.commandCalls(PutObjectCommand)[0]?.args[0].input;

    // Assess
    expect(s3).toHaveReceivedCommandTimes(PutObjectCommand, 1);
    expect(put).toMatchObject({ Bucket: evidenceConfig.TOOLS_BUCKET, Key: sessionKey });
    expect(String(put?.Body).split('\n')).toEqual([
      'version=1',
      `case_id=${sampleCase.caseId}`,
      'region=us-east-1',
      `endpoint=https://${evidenceConfig.EVIDENCE_BUCKET}.s3.us-east-1.amazonaws.com`,
      `image_path=/${imageKey}`,
      `report_path=/${reportKey}`,
      'upload_id=upload-1',
      'part_size_mib=8',
      'max_parts=1096',
      'access_key_id=ASIAEXAMPLEEXAMPLE01',
      'secret_access_key=EXAMPLEsecretEXAMPLEsecretEXAMPLEsecret1',
      'session_token=EXAMPLEtokenEXAMPLEtoken==',
      'expires_at=2026-11-27T21:30:00.000Z',
      '',
    ]);
  });

  it('returns a running capture with everything Check and Verify need and the first wait', async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    const running = await captureMemory({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    expect(running).toEqual({
      status: 'running',
      platform: 'linux',
      tool: { name: 'avml', key: 'tools/avml', sha256: evidenceConfig.AVML_SHA256 },
      document: { name: evidenceConfig.MEMORY_DOCUMENT_LINUX, version: '3', hash: 'c'.repeat(64) },
      commandId: '5c1f3a2e-8d9b-4c7a-9e6f-0a1b2c3d4e5f',
      instanceId: sampleCase.instanceId,
      bucket: evidenceConfig.EVIDENCE_BUCKET,
      key: imageKey,
      reportKey,
      sessionKey,
      uploadId: 'upload-1',
      partSize: 8 * MiB,
      maxParts: 1096,
      compress: false,
      startedAt: '2026-11-27T20:30:00.000Z',
      deadline: '2026-11-27T21:30:00.000Z',
      waitSeconds: 20,
      attempt: 0,
    });
  });

  it('asks AVML for its compressed format, under its own name, when the stage says so', async () => {
    // Prepare
    const { deps: d } = deps({ MEMORY_COMPRESS: true });

    // Act
    const running = await captureMemory({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    expect(running).toMatchObject({ compress: true, key: `cases/${sampleCase.caseId}/memory/image.avml` });
    expect(ssm).toHaveReceivedCommandWith(SendCommandCommand, {
      Parameters: expect.objectContaining({ Compress: ['true'] }),
    });
  });

  it("sizes the parts from the instance type's memory when triage read none", async () => {
    // Prepare
    ec2
      .on(DescribeInstanceTypesCommand)
      .resolves({ InstanceTypes: [{ MemoryInfo: { SizeInMiB: 524_288 } }] });
    const triage = triageFor({ instance: { memoryGiB: undefined as never, instanceType: 'r5.16xlarge' } });
    const { deps: d } = deps();

    // Act
    await captureMemory({ case: sampleCase, triage }, d);

    // Assess
    expect(ec2).toHaveReceivedCommandWith(DescribeInstanceTypesCommand, { InstanceTypes: ['r5.16xlarge'] });
    expect(ssm).toHaveReceivedCommandWith(SendCommandCommand, {
      Parameters: expect.objectContaining({ PartSizeMiB: ['64'] }),
    });
  });

  it("runs the security account's shared document, by ARN, on an instance in a member account", async () => {
    // Prepare
    const memberCase = { ...sampleCase, accountId: '345678901234' };
    const arn = `arn:aws:ssm:us-east-1:123456789012:document/${evidenceConfig.MEMORY_DOCUMENT_LINUX}`;
    const { deps: d } = deps();

    // Act
    await captureMemory({ case: memberCase, triage: triageFor() }, d);

    // Assess
    expect(ssm).toHaveReceivedCommandWith(DescribeDocumentCommand, { Name: arn });
    expect(ssm).toHaveReceivedCommandWith(SendCommandCommand, { DocumentName: arn });
  });

  it('records the command and the upload on the case timeline', async () => {
    // Prepare
    ssm.on(SendCommandCommand).resolves({
      Command: { CommandId: '5c1f3a2e-8d9b-4c7a-9e6f-0a1b2c3d4e5f' },
      $metadata: { requestId: 'req-send' },
    });
    const { deps: d, timeline } = deps();

    // Act
    await captureMemory({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    expect(timeline.events.map((e) => [e.action, e.status])).toEqual([
      ['memory:plan', 'info'],
      ['s3:CreateMultipartUpload', 'ok'],
      ['sts:AssumeRole', 'ok'],
      ['s3:PutObject', 'ok'],
      ['ssm:SendCommand', 'ok'],
    ]);
    expect(timeline.events.at(-1)).toMatchObject({ target: sampleCase.instanceId, requestId: 'req-send' });
  });

  it("skips, with Triage's reason and nothing sent, an instance the plan says not to capture", async () => {
    // Prepare
    const triage = triageFor({ plan: { memory: 'skip', reason: 'the instance is not managed by SSM' } });
    const { deps: d, timeline } = deps();

    // Act
    const result = await captureMemory({ case: sampleCase, triage }, d);

    // Assess
    expect(result).toEqual({ status: 'skipped', reason: 'the instance is not managed by SSM' });
    expect(timeline.events).toContainEqual(
      expect.objectContaining({ action: 'memory:capture', status: 'skipped' }),
    );
    expectNothingSent();
  });

  it('skips a platform for which the stage pins no tool, and sends nothing', async () => {
    // Prepare
    const { deps: d } = deps({ WINPMEM_SHA256: '' });

    // Act
    const result = await captureMemory(
      { case: sampleCase, triage: triageFor({ plan: { platform: 'windows' } }) },
      d,
    );

    // Assess
    expect(result).toEqual({
      status: 'skipped',
      reason: expect.stringContaining('no winpmem binary is pinned'),
    });
    expectNothingSent();
  });

  it('skips an instance whose platform is unknown, and sends nothing', async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    const result = await captureMemory(
      { case: sampleCase, triage: triageFor({ plan: { platform: 'unknown' } }) },
      d,
    );

    // Assess
    expect(result.status).toBe('skipped');
    expectNothingSent();
  });

  it('skips an instance SSM does not manage, and sends nothing', async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    const result = await captureMemory(
      { case: sampleCase, triage: triageFor({ plan: { ssmManaged: false } }) },
      d,
    );

    // Assess
    expect(result).toEqual({ status: 'skipped', reason: 'the instance is not managed by SSM' });
    expectNothingSent();
  });

  it('fails before opening an upload or sending a command when the tools bucket lacks the tool', async () => {
    // Prepare
    s3.on(HeadObjectCommand).rejects(Object.assign(new Error('Not Found'), { name: 'NotFound' }));
    const { deps: d } = deps();

    // Act
    const run = captureMemory({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(MemoryCaptureError);
    expectNothingSent();
  });

  it('fails before sending anything when the capture document is not active', async () => {
    // Prepare
    ssm.on(DescribeDocumentCommand).resolves({ Document: { DocumentVersion: '3', Status: 'Failed' } });
    const { deps: d } = deps();

    // Act
    const run = captureMemory({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(MemoryCaptureError);
    expectNothingSent();
  });
});
