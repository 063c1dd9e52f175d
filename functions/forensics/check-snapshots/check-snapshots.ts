import {
  CopySnapshotCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  ModifySnapshotAttributeCommand,
  type Snapshot,
} from '@aws-sdk/client-ec2';
import { z } from 'zod';
import { type Case, caseSchema, tagKeys } from '../../core/case.js';
import type { Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import { describeError, SnapshotError, SnapshotTimeoutError } from '../../core/errors.js';
import { type Artifact, type EvidenceStore, evidenceJson, putObservation } from '../../core/evidence.js';
import { nextWaitSeconds, snapshotWait } from '../../core/memory.js';
import { lockSnapshot, snapshotIdSchema, volumeIdSchema } from '../../core/snapshots.js';
import type { DiskState, SnapshotCopy, SnapshotRecord } from '../../core/state.js';

const isoSchema = z.iso.datetime();
const lockSchema = z.object({
  status: z.enum(['locked', 'failed']),
  mode: z.literal('compliance'),
  durationDays: z.number().int().positive(),
  lockState: z.string().max(64).optional(),
  expiresOn: isoSchema.optional(),
  detail: z.string().max(1000).optional(),
});
const copySchema = z.object({
  accountId: z.string().regex(/^\d{12}$/),
  region: z.string().max(32),
  kmsKeyArn: z.string().max(2048),
  status: z.enum(['pending', 'completed', 'failed']),
  snapshotId: snapshotIdSchema.optional(),
  startedAt: isoSchema.optional(),
  completedSeenAt: isoSchema.optional(),
  detail: z.string().max(1000).optional(),
  lock: lockSchema.optional(),
});
const recordSchema = z.object({
  volumeId: volumeIdSchema,
  deviceName: z.string().max(64).optional(),
  snapshotId: snapshotIdSchema,
  sizeGiB: z.number().int().nonnegative().optional(),
  encrypted: z.boolean().optional(),
  state: z.string().max(32),
  progress: z.string().max(16).optional(),
  startTime: isoSchema.optional(),
  completedSeenAt: isoSchema.optional(),
  lock: lockSchema.optional(),
  copy: copySchema.optional(),
});
export const diskStateSchema = z.object({
  done: z.boolean(),
  waitSeconds: z.number().int().nonnegative(),
  attempt: z.number().int().nonnegative(),
  startedAt: isoSchema,
  deadline: isoSchema,
  snapshots: z.array(recordSchema).max(128),
  note: z.string().max(2000).optional(),
  artifact: z
    .object({
      key: z.string(),
      versionId: z.string(),
      bytes: z.number(),
      sha256: z.string(),
      contentType: z.string(),
    })
    .optional(),
});

export const checkSnapshotsInputSchema = z.object({ case: caseSchema, disk: diskStateSchema });
export type CheckSnapshotsInput = z.infer<typeof checkSnapshotsInputSchema>;

export type CheckSnapshotsConfig = Pick<
  Config,
  'SNAPSHOT_LOCK_DAYS' | 'SNAPSHOT_COPY_ACCOUNT_ID' | 'SNAPSHOT_COPY_KMS_KEY_ARN'
>;

export interface CheckSnapshotsDeps {
  /** EC2 in the instance's account. */
  ec2: EC2Client;
  /** EC2 in the forensic account, when snapshots are copied there. */
  copyEc2?: EC2Client;
  recorder: Recorder;
  evidence: Pick<EvidenceStore, 'put'>;
  config: CheckSnapshotsConfig;
  now: () => Date;
}

/** A copy is wanted when both the forensic account and its key are configured. */
export function copyTarget(
  config: CheckSnapshotsConfig,
): { accountId: string; kmsKeyArn: string } | undefined {
  if (!config.SNAPSHOT_COPY_ACCOUNT_ID || !config.SNAPSHOT_COPY_KMS_KEY_ARN) return undefined;
  return { accountId: config.SNAPSHOT_COPY_ACCOUNT_ID, kmsKeyArn: config.SNAPSHOT_COPY_KMS_KEY_ARN };
}

async function describe(ec2: EC2Client, ids: string[]): Promise<Map<string, Snapshot>> {
  if (ids.length === 0) return new Map();
  const out = await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: ids }));
  return new Map((out.Snapshots ?? []).map((s) => [s.SnapshotId ?? '', s]));
}

/**
 * Shares one completed snapshot with the forensic account and starts the copy there, re-encrypted
 * under the forensic account's key. A snapshot encrypted with the source account's default EBS key
 * cannot be shared; that, like any other refusal, is recorded on the copy rather than thrown, because
 * the original snapshot is already safe.
 */
async function startCopy(
  c: Case,
  s: SnapshotRecord,
  target: { accountId: string; kmsKeyArn: string },
  deps: CheckSnapshotsDeps & { copyEc2: EC2Client },
  at: string,
): Promise<SnapshotCopy> {
  const copy: SnapshotCopy = {
    accountId: target.accountId,
    region: c.region,
    kmsKeyArn: target.kmsKeyArn,
    status: 'pending',
    startedAt: at,
  };
  try {
    if (target.accountId !== c.accountId) {
      await deps.recorder.run('ec2:ModifySnapshotAttribute', s.snapshotId, () =>
        deps.ec2.send(
          new ModifySnapshotAttributeCommand({
            SnapshotId: s.snapshotId,
            Attribute: 'createVolumePermission',
            CreateVolumePermission: { Add: [{ UserId: target.accountId }] },
          }),
        ),
      );
    }
    const out = await deps.recorder.run('ec2:CopySnapshot', s.snapshotId, () =>
      deps.copyEc2.send(
        new CopySnapshotCommand({
          SourceRegion: c.region,
          SourceSnapshotId: s.snapshotId,
          Encrypted: true,
          KmsKeyId: target.kmsKeyArn,
          Description: `Cordon case ${c.caseId}: copy of ${s.snapshotId} (${s.volumeId}) from ${c.accountId}`,
          TagSpecifications: [
            {
              ResourceType: 'snapshot',
              Tags: [
                { Key: tagKeys.caseId, Value: c.caseId },
                { Key: tagKeys.purpose, Value: 'evidence-copy' },
                { Key: 'cordon:source-snapshot', Value: s.snapshotId },
                { Key: 'cordon:source-account', Value: c.accountId },
              ],
            },
          ],
        }),
      ),
    );
    if (!out.SnapshotId) return { ...copy, status: 'failed', detail: 'CopySnapshot returned no snapshot id' };
    return { ...copy, snapshotId: out.SnapshotId };
  } catch (error) {
    const e = describeError(error);
    return { ...copy, status: 'failed', detail: `${e.name}: ${e.message}` };
  }
}

/** Whether a snapshot and, when wanted, its copy need nothing more from Cordon. */
function settled(s: SnapshotRecord, copying: boolean, lockDays: number): boolean {
  if (s.state !== 'completed') return false;
  if (lockDays > 0 && s.lock?.status !== 'locked') return false;
  if (!copying) return true;
  if (!s.copy || s.copy.status === 'pending') return false;
  return s.copy.status === 'failed' || lockDays === 0 || s.copy.lock !== undefined;
}

/**
 * One round of the snapshot loop: reads the snapshots' state, fails on an `error` state, retries a
 * lock EC2 refused, then (when configured) shares and copies completed snapshots to the forensic
 * account and locks the copies. When everything is settled it writes `snapshots.json` and reports
 * `done`; otherwise it returns the next wait, doubled up to a cap, and fails with SnapshotTimeoutError
 * once the budget is spent with an original snapshot still unfinished.
 */
export async function checkSnapshots(
  input: CheckSnapshotsInput,
  deps: CheckSnapshotsDeps,
): Promise<DiskState> {
  const c = input.case;
  const disk = input.disk as DiskState;
  const now = deps.now();
  const at = now.toISOString();
  const lockDays = deps.config.SNAPSHOT_LOCK_DAYS;
  const target = copyTarget(deps.config);
  const snapshots: SnapshotRecord[] = disk.snapshots.map((s) => ({ ...s }));

  const seen = await describe(
    deps.ec2,
    snapshots.map((s) => s.snapshotId),
  );
  for (const s of snapshots) {
    const d = seen.get(s.snapshotId);
    if (!d) {
      s.state = 'missing';
      continue;
    }
    if (d.State) s.state = d.State;
    if (d.Progress) s.progress = d.Progress;
    if (d.VolumeSize !== undefined) s.sizeGiB = d.VolumeSize;
    if (d.Encrypted !== undefined) s.encrypted = d.Encrypted;
    if (s.state === 'completed' && !s.completedSeenAt) s.completedSeenAt = at;
  }
  const broken = snapshots.filter((s) => s.state === 'error' || s.state === 'missing');
  if (broken.length > 0) {
    const detail = broken.map((s) => `${s.snapshotId} (${s.volumeId}) is ${s.state}`).join('; ');
    await deps.recorder.note('ec2:DescribeSnapshots', 'failed', { target: c.instanceId, detail });
    throw new SnapshotError(`Snapshots of ${c.instanceId} failed: ${detail}`);
  }

  if (lockDays > 0) {
    for (const s of snapshots) {
      if (s.lock?.status !== 'locked')
        s.lock = await lockSnapshot(deps.ec2, deps.recorder, s.snapshotId, lockDays);
    }
  }

  if (target && deps.copyEc2) {
    const copyDeps = { ...deps, copyEc2: deps.copyEc2 };
    for (const s of snapshots) {
      if (s.state === 'completed' && !s.copy) s.copy = await startCopy(c, s, target, copyDeps, at);
    }
    const pending = snapshots.flatMap((s) =>
      s.copy?.status === 'pending' && s.copy.snapshotId ? [s.copy] : [],
    );
    const copies = await describe(
      deps.copyEc2,
      pending.map((p) => p.snapshotId as string),
    );
    for (const copy of pending) {
      const state = copies.get(copy.snapshotId as string)?.State;
      if (state === 'completed') {
        copy.status = 'completed';
        copy.completedSeenAt = at;
      } else if (state === 'error') {
        copy.status = 'failed';
        copy.detail = 'the copy entered the error state';
        await deps.recorder.note('ec2:CopySnapshot', 'failed', {
          target: copy.snapshotId,
          detail: copy.detail,
        });
      }
    }
    if (lockDays > 0) {
      for (const s of snapshots) {
        const copy = s.copy;
        if (copy?.status === 'completed' && copy.snapshotId && copy.lock?.status !== 'locked') {
          copy.lock = await lockSnapshot(deps.copyEc2, deps.recorder, copy.snapshotId, lockDays);
        }
      }
    }
  } else if (target) {
    throw new SnapshotError('A forensic-account copy is configured but no client for that account was given');
  }

  const copying = target !== undefined;
  let done = snapshots.every((s) => settled(s, copying, lockDays));
  let note = disk.note;
  const remainingSeconds = (new Date(disk.deadline).getTime() - now.getTime()) / 1000;
  if (!done && remainingSeconds <= 0) {
    const unfinished = snapshots.filter((s) => s.state !== 'completed');
    if (unfinished.length > 0) {
      const detail = unfinished.map((s) => `${s.snapshotId} ${s.progress ?? ''}`.trim()).join(', ');
      await deps.recorder.note('ec2:DescribeSnapshots', 'failed', {
        target: c.instanceId,
        detail: `snapshot budget spent with ${detail} unfinished`,
      });
      throw new SnapshotTimeoutError(`Snapshots of ${c.instanceId} did not complete in time: ${detail}`);
    }
    // The originals are complete; what remains (a copy still pending, a lock EC2 keeps refusing) is
    // recorded in snapshots.json instead of failing evidence that exists.
    note = [note, 'the snapshot budget ran out with a copy or a lock unfinished; see each snapshot']
      .filter(Boolean)
      .join('; ');
    await deps.recorder.note('ec2:DescribeSnapshots', 'info', { target: c.instanceId, detail: note });
    done = true;
  }

  if (!done) {
    return {
      ...disk,
      snapshots,
      done: false,
      attempt: disk.attempt + 1,
      waitSeconds: nextWaitSeconds(disk.waitSeconds, { cap: snapshotWait.capSeconds, remainingSeconds }),
      ...(note ? { note } : {}),
    };
  }
  const artifact = await writeSnapshotsJson(c, { ...disk, snapshots, ...(note ? { note } : {}) }, deps, at);
  return {
    ...disk,
    snapshots,
    done: true,
    attempt: disk.attempt + 1,
    waitSeconds: 0,
    ...(note ? { note } : {}),
    artifact,
  };
}

/**
 * `snapshots.json`: every volume, its snapshot, size, state, lock and copy, and when each was seen. An
 * observation: a case that checks its snapshots again (after an approval, the containment path checks
 * the snapshots its evidence branch took) keeps the first beside the later one, never replacing it.
 */
async function writeSnapshotsJson(
  c: Case,
  disk: DiskState,
  deps: CheckSnapshotsDeps,
  at: string,
): Promise<Artifact> {
  const document = {
    schema: 'cordon.snapshots/1',
    caseId: c.caseId,
    instanceId: c.instanceId,
    accountId: c.accountId,
    region: c.region,
    startedAt: disk.startedAt,
    writtenAt: at,
    ...(disk.note ? { note: disk.note } : {}),
    snapshots: disk.snapshots,
  };
  return putObservation(deps.evidence, deps.recorder, 'snapshots.json', evidenceJson(document), {
    contentType: 'application/json',
  });
}
