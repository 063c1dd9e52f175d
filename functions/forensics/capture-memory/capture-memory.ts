import { type _InstanceType, DescribeInstanceTypesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DescribeDocumentCommand, SendCommandCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import { z } from 'zod';
import { caseSchema, instanceIdSchema, partitionOf } from '../../core/case.js';
import type { Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import { awsErrorCode, MemoryCaptureError } from '../../core/errors.js';
import { caseFolder } from '../../core/evidence.js';
import {
  assumedMaxMemoryGiB,
  GiB,
  MiB,
  memoryUploadRoleName,
  memoryWait,
  type PartPlan,
  planParts,
} from '../../core/memory.js';
import type { MemoryCapture, MemoryPlatform, MemoryRunning, MemorySkipped } from '../../core/state.js';

/** What Capture Memory reads of the workflow state: the case, Triage's plan and the instance's size. */
export const captureInputSchema = z.object({
  case: caseSchema,
  triage: z.looseObject({
    plan: z.looseObject({
      memory: z.enum(['capture', 'skip']),
      reason: z.string().max(2000),
      platform: z.enum(['linux', 'windows', 'unknown']),
      ssmManaged: z.union([z.boolean(), z.literal('unknown')]),
    }),
    instance: z.looseObject({
      instanceId: instanceIdSchema,
      instanceType: z
        .string()
        .regex(/^[a-z0-9-]{1,32}\.[a-z0-9-]{1,32}$/)
        .optional(),
      memoryGiB: z.number().positive().max(1_000_000).optional(),
    }),
  }),
});
export type CaptureInput = z.infer<typeof captureInputSchema>;

export type CaptureConfig = Pick<
  Config,
  | 'CORDON_STAGE'
  | 'CORDON_ACCOUNT_ID'
  | 'AWS_REGION'
  | 'EVIDENCE_BUCKET'
  | 'TOOLS_BUCKET'
  | 'TOOLS_PREFIX'
  | 'AVML_SHA256'
  | 'WINPMEM_SHA256'
  | 'MEMORY_DOCUMENT_LINUX'
  | 'MEMORY_DOCUMENT_WINDOWS'
  | 'MEMORY_BUDGET_SECONDS'
  | 'MEMORY_COMPRESS'
  | 'OBJECT_LOCK_MODE'
  | 'OBJECT_LOCK_DAYS'
>;

/** Presigns one S3 request with the function's own credentials (injected so that tests can see the URLs). */
export type Presign = (
  command: GetObjectCommand | PutObjectCommand,
  expiresInSeconds: number,
) => Promise<string>;

export interface CaptureDeps {
  /** SSM and EC2 in the instance's account. */
  ssm: SSMClient;
  ec2: EC2Client;
  /** S3 and STS in Cordon's own account: the evidence and tools buckets, the upload role. */
  s3: S3Client;
  sts: STSClient;
  presign: Presign;
  recorder: Recorder;
  config: CaptureConfig;
  now: () => Date;
}

/** SSM's delivery timeout: the agent must pick the command up within this, or it is undeliverable. */
export const deliveryTimeoutSeconds = 600;
/** The host fetches the tool and its session right after delivery; the links die soon after. */
export const linkLifetimeSeconds = 900;
/** AssumeRole from a Lambda role is role chaining, which AWS caps at one hour. */
export const maxUploadCredentialSeconds = 3600;

export const tools = {
  linux: { name: 'avml', file: 'avml' },
  windows: { name: 'winpmem', file: 'winpmem.exe' },
} as const;

function skipped(reason: string): MemorySkipped {
  return { status: 'skipped', reason };
}

/** Why this instance's memory is not captured, or undefined when it can be. */
export function skipReason(input: CaptureInput, config: CaptureConfig): string | undefined {
  const { plan } = input.triage;
  if (plan.memory === 'skip') return plan.reason;
  if (plan.platform === 'unknown') return 'the platform is unknown, so no acquisition tool fits it';
  if (plan.ssmManaged === false) return 'the instance is not managed by SSM';
  const hash = plan.platform === 'linux' ? config.AVML_SHA256 : config.WINPMEM_SHA256;
  if (!hash)
    return `no ${tools[plan.platform].name} binary is pinned for this stage (${plan.platform} capture is off)`;
  if (input.case.region !== config.AWS_REGION) {
    return `Cordon's capture documents and evidence bucket are in ${config.AWS_REGION}, the instance in ${input.case.region}`;
  }
  return undefined;
}

/** The image's size bound: what Triage read, else the instance type's memory, else the largest there is. */
async function memoryBytes(
  input: CaptureInput,
  deps: CaptureDeps,
): Promise<{ bytes: number; source: string }> {
  const { memoryGiB, instanceType } = input.triage.instance;
  if (memoryGiB) return { bytes: Math.ceil(memoryGiB * GiB), source: 'triage' };
  if (instanceType) {
    try {
      const out = await deps.ec2.send(
        new DescribeInstanceTypesCommand({ InstanceTypes: [instanceType as _InstanceType] }),
      );
      const mib = out.InstanceTypes?.[0]?.MemoryInfo?.SizeInMiB;
      if (mib) return { bytes: mib * MiB, source: `the ${instanceType} instance type` };
    } catch {
      // Planning for the largest instance below is safe, only coarser.
    }
  }
  return {
    bytes: assumedMaxMemoryGiB * GiB,
    source: 'the largest EC2 memory size (the real size is unknown)',
  };
}

/** The evidence-bucket names of one capture's objects. */
export function memoryKeys(
  caseId: string,
  platform: MemoryPlatform,
  compress: boolean,
): { image: string; report: string } {
  const folder = `${caseFolder(caseId)}memory/`;
  const image = platform === 'windows' ? 'image.raw' : compress ? 'image.avml' : 'image.lime';
  return { image: `${folder}${image}`, report: `${folder}capture-report.json` };
}

/**
 * The policy that narrows the upload role's session to this capture: PutObject (which also grants
 * UploadPart) on the image and the report, nothing else, with the evidence key used through S3 only.
 */
export function uploadSessionPolicy(
  region: string,
  bucket: string,
  keys: { image: string; report: string },
): string {
  const partition = partitionOf(region);
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'WriteThisCaptureOnly',
        Effect: 'Allow',
        Action: 's3:PutObject',
        Resource: [
          `arn:${partition}:s3:::${bucket}/${keys.image}`,
          `arn:${partition}:s3:::${bucket}/${keys.report}`,
        ],
      },
      {
        Sid: 'EncryptThroughS3',
        Effect: 'Allow',
        Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
        Resource: '*',
        Condition: { StringEquals: { 'kms:ViaService': `s3.${region}.amazonaws.com` } },
      },
    ],
  });
}

/** `origin` and the URI-encoded path of an S3 object, exactly as the SDK addresses it. */
async function address(
  presign: Presign,
  bucket: string,
  key: string,
): Promise<{ origin: string; path: string }> {
  const url = new URL(await presign(new PutObjectCommand({ Bucket: bucket, Key: key }), 60));
  return { origin: url.origin, path: url.pathname };
}

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/**
 * Starts a memory capture on the instance: pins the SSM document version, checks that the tool is in
 * the tools bucket, opens a multipart upload (SHA-256 checksums, locked on completion), gets upload
 * credentials that can write this capture's two objects and nothing else for at most an hour, puts
 * them where the host can fetch them once through a short-lived link, and sends the command. Returns
 * `running` for the ASL's wait/check loop, or `skipped` with the reason when the instance cannot be
 * captured. The reasoning behind the upload design is in docs/evidence.md.
 */
export async function captureMemory(
  input: CaptureInput,
  deps: CaptureDeps,
): Promise<MemoryRunning | MemorySkipped> {
  const c = input.case;
  const cfg = deps.config;
  const reason = skipReason(input, cfg);
  if (reason) {
    await deps.recorder.note('memory:capture', 'skipped', { target: c.instanceId, detail: reason });
    return skipped(reason);
  }
  const platform = input.triage.plan.platform as MemoryPlatform;
  const tool = tools[platform];
  const toolSha256 = platform === 'linux' ? cfg.AVML_SHA256 : cfg.WINPMEM_SHA256;
  const compress = platform === 'linux' && cfg.MEMORY_COMPRESS;
  const now = deps.now();

  const size = await memoryBytes(input, deps);
  const plan: PartPlan = planParts(size.bytes);
  await deps.recorder.note('memory:plan', 'info', {
    target: c.instanceId,
    detail: `memory from ${size.source}: up to ${plan.maxParts} parts of ${plan.partSizeMiB} MiB`,
  });

  const documentName = platform === 'linux' ? cfg.MEMORY_DOCUMENT_LINUX : cfg.MEMORY_DOCUMENT_WINDOWS;
  // A member account runs the security account's document, shared with it, by ARN.
  const documentRef =
    c.accountId === cfg.CORDON_ACCOUNT_ID
      ? documentName
      : `arn:${partitionOf(c.region)}:ssm:${c.region}:${cfg.CORDON_ACCOUNT_ID}:document/${documentName}`;
  const described = (await deps.ssm.send(new DescribeDocumentCommand({ Name: documentRef }))).Document;
  if (!described?.DocumentVersion || described.Status !== 'Active') {
    throw new MemoryCaptureError(
      `The SSM document ${documentName} is not active (${described?.Status ?? 'absent'})`,
    );
  }
  const document = {
    name: documentRef,
    version: described.DocumentVersion,
    ...(described.Hash && described.HashType === 'Sha256' ? { hash: described.Hash } : {}),
  };

  const toolKey = `${cfg.TOOLS_PREFIX}${tool.file}`;
  let toolVersionId: string | undefined;
  try {
    const head = await deps.s3.send(new HeadObjectCommand({ Bucket: cfg.TOOLS_BUCKET, Key: toolKey }));
    toolVersionId = head.VersionId;
  } catch (error) {
    const code = awsErrorCode(error);
    if (code === 'NotFound' || code === 'NoSuchKey') {
      throw new MemoryCaptureError(
        `The tools bucket holds no ${toolKey}: upload the pinned ${tool.name} binary (docs/evidence.md)`,
        { cause: error },
      );
    }
    throw error;
  }

  const keys = memoryKeys(c.caseId, platform, compress);
  const bucket = cfg.EVIDENCE_BUCKET;
  const retainUntil = new Date(now.getTime() + cfg.OBJECT_LOCK_DAYS * 86_400_000);
  const upload = await deps.recorder.run('s3:CreateMultipartUpload', keys.image, () =>
    deps.s3.send(
      new CreateMultipartUploadCommand({
        Bucket: bucket,
        Key: keys.image,
        ContentType: 'application/octet-stream',
        ChecksumAlgorithm: 'SHA256',
        ObjectLockMode: cfg.OBJECT_LOCK_MODE,
        ObjectLockRetainUntilDate: retainUntil,
        ObjectLockLegalHoldStatus: 'ON',
        Metadata: { 'cordon-case-id': c.caseId, 'cordon-tool-sha256': toolSha256 },
      }),
    ),
  );
  if (!upload.UploadId) throw new MemoryCaptureError(`S3 opened no multipart upload for ${keys.image}`);

  const credentialSeconds = Math.min(maxUploadCredentialSeconds, Math.max(900, cfg.MEMORY_BUDGET_SECONDS));
  const roleArn = `arn:${partitionOf(cfg.AWS_REGION)}:iam::${cfg.CORDON_ACCOUNT_ID}:role/${memoryUploadRoleName(cfg.CORDON_STAGE)}`;
  const assumed = await deps.recorder.run('sts:AssumeRole', roleArn, () =>
    deps.sts.send(
      new AssumeRoleCommand({
        RoleArn: roleArn,
        RoleSessionName: `cordon-memory-${c.caseId}`.slice(0, 64),
        DurationSeconds: credentialSeconds,
        Policy: uploadSessionPolicy(cfg.AWS_REGION, bucket, keys),
      }),
    ),
  );
  const credentials = assumed.Credentials;
  if (!credentials?.AccessKeyId || !credentials.SecretAccessKey || !credentials.SessionToken) {
    throw new MemoryCaptureError('AssumeRole returned no upload credentials');
  }

  const image = await address(deps.presign, bucket, keys.image);
  const report = await address(deps.presign, bucket, keys.report);
  const sessionKey = `sessions/${c.caseId}/memory-upload.env`;
  const session = [
    'version=1',
    `case_id=${c.caseId}`,
    `region=${cfg.AWS_REGION}`,
    `endpoint=${image.origin}`,
    `image_path=${image.path}`,
    `report_path=${report.path}`,
    `upload_id=${upload.UploadId}`,
    `part_size_mib=${plan.partSizeMiB}`,
    `max_parts=${plan.maxParts}`,
    `access_key_id=${credentials.AccessKeyId}`,
    `secret_access_key=${credentials.SecretAccessKey}`,
    `session_token=${credentials.SessionToken}`,
    `expires_at=${(credentials.Expiration ?? new Date(now.getTime() + credentialSeconds * 1000)).toISOString()}`,
    '',
  ].join('\n');
  await deps.recorder.run('s3:PutObject', `${cfg.TOOLS_BUCKET}/${sessionKey}`, () =>
    deps.s3.send(
      new PutObjectCommand({
        Bucket: cfg.TOOLS_BUCKET,
        Key: sessionKey,
        Body: session,
        ContentType: 'text/plain',
        ChecksumAlgorithm: 'SHA256',
      }),
    ),
  );
  const toolUrl = await deps.presign(
    new GetObjectCommand({
      Bucket: cfg.TOOLS_BUCKET,
      Key: toolKey,
      ...(toolVersionId ? { VersionId: toolVersionId } : {}),
    }),
    linkLifetimeSeconds,
  );
  const sessionUrl = await deps.presign(
    new GetObjectCommand({ Bucket: cfg.TOOLS_BUCKET, Key: sessionKey }),
    linkLifetimeSeconds,
  );

  const executionTimeout = Math.max(60, Math.min(cfg.MEMORY_BUDGET_SECONDS, credentialSeconds));
  const parameters: Record<string, string[]> = {
    CaseId: [c.caseId],
    ToolUrl: [base64(toolUrl)],
    ToolSha256: [toolSha256],
    SessionUrl: [base64(sessionUrl)],
    PartSizeMiB: [String(plan.partSizeMiB)],
    ExecutionTimeout: [String(executionTimeout)],
    ...(platform === 'linux' ? { Compress: [String(compress)] } : {}),
  };
  const sent = await deps.recorder.run('ssm:SendCommand', c.instanceId, () =>
    deps.ssm.send(
      new SendCommandCommand({
        InstanceIds: [c.instanceId],
        DocumentName: document.name,
        DocumentVersion: document.version,
        ...(document.hash ? { DocumentHash: document.hash, DocumentHashType: 'Sha256' as const } : {}),
        Parameters: parameters,
        TimeoutSeconds: deliveryTimeoutSeconds,
        Comment: `Cordon case ${c.caseId}: memory capture`,
      }),
    ),
  );
  const commandId = sent.Command?.CommandId;
  if (!commandId) throw new MemoryCaptureError(`SSM accepted no command for ${c.instanceId}`);

  const capture: MemoryCapture = {
    platform,
    tool: { name: tool.name, key: toolKey, sha256: toolSha256 },
    document,
    commandId,
    instanceId: c.instanceId,
    bucket,
    key: keys.image,
    reportKey: keys.report,
    sessionKey,
    uploadId: upload.UploadId,
    partSize: plan.partSizeBytes,
    maxParts: plan.maxParts,
    compress,
    startedAt: now.toISOString(),
    deadline: new Date(now.getTime() + cfg.MEMORY_BUDGET_SECONDS * 1000).toISOString(),
    waitSeconds: Math.max(1, Math.min(memoryWait.firstSeconds, cfg.MEMORY_BUDGET_SECONDS)),
    attempt: 0,
  };
  return { status: 'running', ...capture };
}
