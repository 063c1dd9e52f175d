import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { type MemoryReport, memoryUploadRoleName } from '../../functions/core/memory.js';
import type { MemoryCapture, MemoryRunning, MemoryUploaded } from '../../functions/core/state.js';
import type { CaptureConfig } from '../../functions/forensics/capture-memory/capture-memory.js';
import type { CheckSnapshotsConfig } from '../../functions/forensics/check-snapshots/check-snapshots.js';
import type { SnapshotConfig } from '../../functions/forensics/snapshot-volumes/snapshot-volumes.js';
import { sampleCase } from './core-fakes.js';

export const repoRoot = resolve(import.meta.dirname, '..', '..');
export const captureScriptPath = resolve(repoRoot, 'capture/linux/capture-memory.sh');

/** The configuration the evidence steps read, as the dev stage would have it. */
export const evidenceConfig: CaptureConfig & CheckSnapshotsConfig & SnapshotConfig = {
  CORDON_STAGE: 'dev',
  CORDON_ACCOUNT_ID: '123456789012',
  AWS_REGION: 'us-east-1',
  EVIDENCE_BUCKET: 'cordon-evidence-dev',
  OBJECT_LOCK_MODE: 'GOVERNANCE',
  OBJECT_LOCK_DAYS: 1,
  SNAPSHOT_LOCK_DAYS: 0,
  SNAPSHOT_COPY_ACCOUNT_ID: '',
  SNAPSHOT_COPY_KMS_KEY_ARN: '',
  SNAPSHOT_BUDGET_SECONDS: 7200,
  MEMORY_BUDGET_SECONDS: 3600,
  MEMORY_DOCUMENT_LINUX: 'cordon-dev-memory-capture-linux',
  MEMORY_DOCUMENT_WINDOWS: 'cordon-dev-memory-capture-windows',
  TOOLS_BUCKET: 'cordon-tools-dev',
  TOOLS_PREFIX: 'tools/',
  AVML_SHA256: 'a'.repeat(64),
  WINPMEM_SHA256: 'b'.repeat(64),
  MEMORY_COMPRESS: false,
};

export const uploadRoleArn = `arn:aws:iam::123456789012:role/${memoryUploadRoleName('dev')}`;

/** A clock that stands still at `iso` until moved. */
export function fixedClock(iso = '2026-11-27T20:30:00.000Z') {
  let now = new Date(iso);
  return {
    now: () => now,
    advance(seconds: number) {
      now = new Date(now.getTime() + seconds * 1000);
    },
  };
}

/** Triage's result, reduced to what the evidence steps read, for a Linux instance SSM manages. */
export function triageFor(
  overrides: {
    plan?: Partial<{
      memory: 'capture' | 'skip';
      reason: string;
      platform: 'linux' | 'windows' | 'unknown';
      ssmManaged: boolean | 'unknown';
    }>;
    instance?: Partial<{
      memoryGiB: number;
      instanceType: string;
      volumes: { volumeId: string; deviceName: string; sizeGiB?: number }[];
    }>;
  } = {},
) {
  return {
    plan: {
      order: 'contain-first',
      memory: 'capture' as const,
      reason: 'SSM manages the instance',
      platform: 'linux' as const,
      ssmManaged: true,
      ssmSurvivesIsolation: true,
      ...overrides.plan,
    },
    instance: {
      instanceId: sampleCase.instanceId,
      state: 'running',
      platform: overrides.plan?.platform ?? 'linux',
      instanceType: 't3.large',
      memoryGiB: 8,
      volumes: [
        { volumeId: 'vol-0a1b2c3d4e5f60718', deviceName: '/dev/xvda', sizeGiB: 8 },
        { volumeId: 'vol-0a1b2c3d4e5f60719', deviceName: '/dev/sdf', sizeGiB: 100 },
      ],
      ...overrides.instance,
    },
  };
}

const hex = (text: string) => createHash('sha256').update(text).digest('hex');
const b64 = (text: string) => createHash('sha256').update(text).digest('base64');

export const memoryKey = `cases/${sampleCase.caseId}/memory/image.lime`;
export const reportKey = `cases/${sampleCase.caseId}/memory/capture-report.json`;

/** What Capture Memory returned for a Linux capture with 8 MiB parts. */
export function runningCapture(overrides: Partial<MemoryCapture> = {}): MemoryRunning {
  return {
    status: 'running',
    platform: 'linux',
    tool: { name: 'avml', key: 'tools/avml', sha256: evidenceConfig.AVML_SHA256 },
    document: { name: 'cordon-dev-memory-capture-linux', version: '3', hash: hex('document') },
    commandId: '5c1f3a2e-8d9b-4c7a-9e6f-0a1b2c3d4e5f',
    instanceId: sampleCase.instanceId,
    bucket: evidenceConfig.EVIDENCE_BUCKET,
    key: memoryKey,
    reportKey,
    sessionKey: `sessions/${sampleCase.caseId}/memory-upload.env`,
    uploadId: 'upload-1',
    partSize: 8 * 1024 * 1024,
    maxParts: 1096,
    compress: false,
    startedAt: '2026-11-27T20:30:00.000Z',
    deadline: '2026-11-27T21:30:00.000Z',
    waitSeconds: 20,
    attempt: 0,
    ...overrides,
  };
}

/**
 * A host report for an image made of `sizes` parts whose content is `part-<n>`-derived: digests are of
 * the strings, not real bytes, which is all that the Lambda side can see of them.
 */
export function hostReport(sizes: number[], overrides: Partial<MemoryReport> = {}): MemoryReport {
  const parts = sizes.map((bytes, i) => ({
    partNumber: i + 1,
    bytes,
    sha256: hex(`part-${i + 1}`),
    checksumSha256: b64(`part-${i + 1}`),
    etag: `etag${i + 1}`,
  }));
  return {
    schema: 'cordon.memory-report/1',
    caseId: sampleCase.caseId,
    tool: { name: 'avml', sha256: evidenceConfig.AVML_SHA256 },
    image: { bytes: sizes.reduce((a, b) => a + b, 0), sha256: hex('whole image'), format: 'lime' },
    partSize: 8 * 1024 * 1024,
    parts,
    host: { kernel: '6.1.0-cloud-amd64', machine: 'x86_64', clockSkewSeconds: 0 },
    startedAt: '2026-11-27T20:30:05Z',
    finishedAt: '2026-11-27T20:31:40Z',
    ...overrides,
  };
}

/** What Check Memory returned once the host's report was read and the upload completed. */
export function uploadedCapture(report: MemoryReport, reportBody: string): MemoryUploaded {
  return {
    ...runningCapture(),
    status: 'uploaded',
    attempt: 3,
    waitSeconds: 0,
    versionId: 'image-v1',
    bytes: report.image.bytes,
    hostSha256: report.image.sha256,
    parts: report.parts.length,
    report: {
      key: reportKey,
      versionId: 'report-v1',
      bytes: Buffer.byteLength(reportBody),
      sha256: hex(reportBody),
      contentType: 'application/json',
    },
  };
}

/** Runs a bash script file with exactly `env` (plus PATH); resolves with its exit code and output. */
export function runBash(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn('bash', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('error', fail);
    child.once('close', (code) => done({ code: code ?? 1, stdout, stderr }));
  });
}

/** An S3 GetObject body as the SDK returns it: a stream that can also be read whole. */
export function s3Body(bytes: Buffer | string) {
  const buffer = Buffer.from(bytes);
  return Object.assign(Readable.from([buffer]), {
    transformToByteArray: async () => new Uint8Array(buffer),
    transformToString: async () => buffer.toString('utf8'),
  }) as never;
}

/** A report whose parts are these real buffers: what an honest host sends after uploading them. */
export function reportOf(
  parts: Buffer[],
  partSize: number,
  overrides: Partial<MemoryReport> = {},
): MemoryReport {
  const whole = createHash('sha256');
  for (const part of parts) whole.update(part);
  return hostReport([], {
    image: {
      bytes: parts.reduce((n, p) => n + p.byteLength, 0),
      sha256: whole.digest('hex'),
      format: 'lime',
    },
    partSize,
    parts: parts.map((part, i) => ({
      partNumber: i + 1,
      bytes: part.byteLength,
      sha256: createHash('sha256').update(part).digest('hex'),
      checksumSha256: createHash('sha256').update(part).digest('base64'),
      etag: `etag${i + 1}`,
    })),
    ...overrides,
  });
}
