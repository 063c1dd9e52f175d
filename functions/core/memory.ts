/**
 * The arithmetic and formats that the evidence steps share: how a memory image is cut into S3 parts,
 * what the capturing host reports back, how S3's composite checksum is recomputed, and the bounded
 * exponential backoff of the snapshot and memory wait loops.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { caseIdSchema } from './case.js';
import { awsErrorCode, EvidenceIntegrityError, MemoryCaptureError } from './errors.js';
import { type Artifact, sha256 } from './evidence.js';
import type { MemoryCapture } from './state.js';

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;

/** S3 multipart limits: at most 10,000 parts, each 5 MiB to 5 GiB except the last, which may be smaller. */
export const s3Multipart = { maxParts: 10_000, minPartBytes: 5 * MiB, maxPartBytes: 5 * GiB } as const;

/** The smallest part Cordon plans: a few parts for a small image, few requests for a large one. */
export const minPlannedPartBytes = 8 * MiB;
/** Larger than any EC2 instance's memory today (the u7inh-32tb sizes): used when the size is unknown. */
export const assumedMaxMemoryGiB = 32 * 1024;

export interface PartPlan {
  /** Bytes per part, a power-of-two number of MiB so that the host can cut parts with `dd bs=1M`. */
  partSizeBytes: number;
  partSizeMiB: number;
  /** How many parts the largest image the instance can produce needs; never above 10,000. */
  maxParts: number;
  /** The image size the plan allows for: memory plus the format's overhead and some headroom. */
  imageBoundBytes: number;
}

/**
 * The image can be slightly larger than the memory EC2 reports: LiME adds a 32-byte header per
 * physical range, snappy framing adds a few bytes per 64 KiB of incompressible data, and the firmware's
 * map of RAM may not round to the instance type's figure. 1/16 plus 64 MiB covers all three.
 */
export function imageBoundBytes(memoryBytes: number): number {
  return Math.ceil(memoryBytes + memoryBytes / 16 + 64 * MiB);
}

/** Plans the parts of an image of an instance with `memoryBytes` of memory. */
export function planParts(memoryBytes: number): PartPlan {
  if (!Number.isFinite(memoryBytes) || memoryBytes <= 0) throw new RangeError('memory size must be positive');
  const bound = imageBoundBytes(memoryBytes);
  let partSizeMiB = minPlannedPartBytes / MiB;
  while (partSizeMiB * MiB * s3Multipart.maxParts < bound) partSizeMiB *= 2;
  const partSizeBytes = partSizeMiB * MiB;
  if (partSizeBytes > s3Multipart.maxPartBytes) {
    throw new RangeError(`an image of ${bound} bytes does not fit in ${s3Multipart.maxParts} parts of 5 GiB`);
  }
  return { partSizeBytes, partSizeMiB, maxParts: partCount(bound, partSizeBytes), imageBoundBytes: bound };
}

export function partCount(bytes: number, partSizeBytes: number): number {
  return Math.max(1, Math.ceil(bytes / partSizeBytes));
}

/**
 * The checksum S3 reports for an object uploaded in parts with SHA-256 checksums: the SHA-256 of the
 * concatenated binary part digests, in base64. S3 computes it from the parts it stored, after checking
 * each part against the checksum sent with it.
 */
export function compositeSha256(partChecksumsBase64: string[]): string {
  const hash = createHash('sha256');
  for (const part of partChecksumsBase64) hash.update(Buffer.from(part, 'base64'));
  return hash.digest('base64');
}

/**
 * S3 writes the composite checksum as `<base64>-<part count>`; the emulator omits the suffix. Returns
 * the digest when the value is a composite of `parts` parts, or undefined when it is not.
 */
export function compositeDigest(value: string | undefined, parts: number): string | undefined {
  const match = /^([A-Za-z0-9+/]{43}=)(?:-(\d{1,5}))?$/.exec(value ?? '');
  if (!match) return undefined;
  if (match[2] !== undefined && Number(match[2]) !== parts) return undefined;
  return match[1];
}

export function hexToBase64(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64');
}

/**
 * The next wait of a check loop: double the previous one up to `cap`, and never past the deadline, so
 * that the last check happens at the deadline rather than after it. Step Functions does the waiting.
 */
export function nextWaitSeconds(
  previous: number,
  options: { cap: number; remainingSeconds: number },
): number {
  const doubled = Math.min(Math.max(1, previous) * 2, options.cap);
  return Math.max(1, Math.min(doubled, Math.floor(options.remainingSeconds)));
}

/** The evidence loops' timing: first wait, cap. Snapshots take minutes; a memory image takes longer. */
export const snapshotWait = { firstSeconds: 15, capSeconds: 300 } as const;
export const memoryWait = { firstSeconds: 20, capSeconds: 120 } as const;

/** The role the capturing host's short-lived upload credentials come from (see resources/memory-capture.yml). */
export const memoryUploadRoleName = (stage: string) => `cordon-${stage}-memory-upload`;

/**
 * What the host uploads next to the image once it is done: every part it sent (as S3 acknowledged
 * it) and the SHA-256 of the whole stream, computed as it went. Everything in it comes from the
 * suspect host, so it is parsed strictly and never trusted beyond what S3 itself confirms.
 */
export const memoryReportSchema = z
  .object({
    schema: z.literal('cordon.memory-report/1'),
    caseId: caseIdSchema,
    tool: z.object({ name: z.enum(['avml', 'winpmem']), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
    image: z.object({
      bytes: z.number().int().positive(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      format: z.enum(['lime', 'avml-snappy', 'raw']),
    }),
    partSize: z.number().int().positive(),
    parts: z
      .array(
        z.object({
          partNumber: z.number().int().min(1).max(s3Multipart.maxParts),
          bytes: z.number().int().positive(),
          sha256: z.string().regex(/^[0-9a-f]{64}$/),
          checksumSha256: z.string().regex(/^[A-Za-z0-9+/]{43}=$/),
          etag: z.string().regex(/^"?[A-Za-z0-9+/=_-]{1,128}"?$/),
        }),
      )
      .min(1)
      .max(s3Multipart.maxParts),
    host: z.object({
      kernel: z.string().regex(/^[A-Za-z0-9._+~-]{0,64}$/),
      machine: z.string().regex(/^[A-Za-z0-9_-]{0,32}$/),
      clockSkewSeconds: z.number().int(),
    }),
    startedAt: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/),
    finishedAt: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/),
  })
  .strict();
export type MemoryReport = z.infer<typeof memoryReportSchema>;

/**
 * Checks that the parts the host reports form one image: numbered 1..n, every part but the last
 * exactly the planned size, the sizes adding up, the per-part digests agreeing with their base64 form.
 * Returns what is wrong, or undefined.
 */
export function reportProblem(
  report: MemoryReport,
  plan: { partSize: number; maxParts: number },
): string | undefined {
  if (report.partSize !== plan.partSize)
    return `part size ${report.partSize} is not the planned ${plan.partSize}`;
  if (report.parts.length > plan.maxParts)
    return `${report.parts.length} parts exceed the planned ${plan.maxParts}`;
  let total = 0;
  for (const [index, part] of report.parts.entries()) {
    if (part.partNumber !== index + 1) return `part ${index + 1} is numbered ${part.partNumber}`;
    const last = index === report.parts.length - 1;
    if (last ? part.bytes > plan.partSize : part.bytes !== plan.partSize) {
      return `part ${part.partNumber} holds ${part.bytes} bytes`;
    }
    if (hexToBase64(part.sha256) !== part.checksumSha256)
      return `part ${part.partNumber}'s two digests disagree`;
    total += part.bytes;
  }
  if (total !== report.image.bytes)
    return `parts add up to ${total} bytes, the image to ${report.image.bytes}`;
  return undefined;
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const isoTime = z.iso.datetime();

/** `$.memory` while a capture runs (see MemoryCapture in state.ts), as Check Memory receives it. */
export const memoryCaptureSchema = z.object({
  platform: z.enum(['linux', 'windows']),
  tool: z.object({ name: z.enum(['avml', 'winpmem']), key: z.string().max(1024), sha256: hex64 }),
  document: z.object({
    name: z.string().min(3).max(2048),
    version: z.string().regex(/^[0-9]{1,10}$/),
    hash: z.string().max(128).optional(),
  }),
  commandId: z.string().regex(/^[0-9a-f-]{36}$/),
  instanceId: z.string().regex(/^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$/),
  bucket: z.string().min(3).max(63),
  key: z.string().regex(/^cases\/[A-Za-z0-9-]+\/memory\/image\.(?:lime|avml|raw)$/),
  reportKey: z.string().regex(/^cases\/[A-Za-z0-9-]+\/memory\/capture-report\.json$/),
  sessionKey: z.string().regex(/^sessions\/[A-Za-z0-9-]+\/memory-upload\.env$/),
  uploadId: z.string().min(1).max(1024),
  partSize: z.number().int().min(s3Multipart.minPartBytes).max(s3Multipart.maxPartBytes),
  maxParts: z.number().int().min(1).max(s3Multipart.maxParts),
  compress: z.boolean(),
  startedAt: isoTime,
  deadline: isoTime,
  waitSeconds: z.number().int().nonnegative(),
  attempt: z.number().int().nonnegative(),
});

export const artifactSchema = z.object({
  key: z.string().max(1024),
  versionId: z.string().min(1).max(1024),
  bytes: z.number().int().nonnegative(),
  sha256: hex64,
  contentType: z.string().max(255),
});

export const memoryRunningSchema = memoryCaptureSchema.extend({ status: z.literal('running') });
export const memoryUploadedSchema = memoryCaptureSchema.extend({
  status: z.literal('uploaded'),
  versionId: z.string().min(1).max(1024),
  bytes: z.number().int().positive(),
  hostSha256: hex64,
  parts: z.number().int().min(1).max(s3Multipart.maxParts),
  report: artifactSchema,
});

/** The report is a few hundred bytes per part; anything far larger is not a report. */
const maxReportBytes = 8 * 1024 * 1024;

/** Reads and checks the host's report: its shape, its case, its tool, and that its parts form one image. */
export async function readReport(
  s3: S3Client,
  memory: Pick<MemoryCapture, 'bucket' | 'reportKey' | 'partSize' | 'maxParts' | 'tool'> & { caseId: string },
  versionId?: string,
): Promise<{ report: MemoryReport; artifact: Artifact }> {
  let out: GetObjectCommandOutput;
  try {
    out = await s3.send(
      new GetObjectCommand({
        Bucket: memory.bucket,
        Key: memory.reportKey,
        ...(versionId ? { VersionId: versionId } : {}),
      }),
    );
  } catch (error) {
    const code = awsErrorCode(error);
    if (code === 'NoSuchKey' || code === 'NotFound') {
      throw new MemoryCaptureError(`The host finished without uploading its report ${memory.reportKey}`, {
        cause: error,
      });
    }
    throw error;
  }
  if ((out.ContentLength ?? 0) > maxReportBytes) {
    throw new EvidenceIntegrityError(
      `${memory.reportKey} is ${out.ContentLength} bytes: not a capture report`,
    );
  }
  if (!out.Body) throw new EvidenceIntegrityError(`${memory.reportKey} has no body`);
  const body = Buffer.from(await out.Body.transformToByteArray());
  if (body.byteLength > maxReportBytes) throw new EvidenceIntegrityError(`${memory.reportKey} is too large`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new EvidenceIntegrityError(`${memory.reportKey} is not JSON`, { cause: error });
  }
  const checked = memoryReportSchema.safeParse(parsed);
  if (!checked.success) {
    const where = checked.error.issues
      .slice(0, 3)
      .map((i) => i.path.join('.') || '(report)')
      .join(', ');
    throw new EvidenceIntegrityError(`${memory.reportKey} is not a valid capture report (${where})`);
  }
  const report = checked.data;
  if (report.caseId !== memory.caseId) {
    throw new EvidenceIntegrityError(`${memory.reportKey} names another case`);
  }
  if (report.tool.sha256 !== memory.tool.sha256 || report.tool.name !== memory.tool.name) {
    throw new EvidenceIntegrityError(
      `${memory.reportKey} names a tool other than the pinned ${memory.tool.name}`,
    );
  }
  const problem = reportProblem(report, memory);
  if (problem) throw new EvidenceIntegrityError(`${memory.reportKey}: ${problem}`);
  if (!out.VersionId)
    throw new EvidenceIntegrityError(`${memory.reportKey} has no version: is versioning on?`);
  const artifact: Artifact = {
    key: memory.reportKey,
    versionId: out.VersionId,
    bytes: body.byteLength,
    sha256: sha256(body).hex,
    contentType: 'application/json',
  };
  return { report, artifact };
}
