/**
 * What Snapshot Volumes and Check Snapshots share: the ids they accept, how an EC2 snapshot becomes a
 * SnapshotRecord, and how a snapshot is locked.
 */
import { type EC2Client, LockSnapshotCommand, type Snapshot } from '@aws-sdk/client-ec2';
import { z } from 'zod';
import type { Recorder } from './cases.js';
import { describeError } from './errors.js';
import type { SnapshotLock, SnapshotRecord } from './state.js';

export const volumeIdSchema = z.string().regex(/^vol-(?:[0-9a-f]{8}|[0-9a-f]{17})$/, 'not an EBS volume id');
export const snapshotIdSchema = z
  .string()
  .regex(/^snap-(?:[0-9a-f]{8}|[0-9a-f]{17})$/, 'not an EBS snapshot id');

/** One snapshot as EC2 described it, with the device name Triage recorded for its volume. */
export function toSnapshotRecord(s: Snapshot, devices: ReadonlyMap<string, string>): SnapshotRecord {
  const volumeId = s.VolumeId ?? '';
  const device = devices.get(volumeId);
  return {
    volumeId,
    ...(device ? { deviceName: device } : {}),
    snapshotId: s.SnapshotId ?? '',
    ...(s.VolumeSize !== undefined ? { sizeGiB: s.VolumeSize } : {}),
    ...(s.Encrypted !== undefined ? { encrypted: s.Encrypted } : {}),
    state: s.State ?? 'unknown',
    ...(s.Progress ? { progress: s.Progress } : {}),
    ...(s.StartTime ? { startTime: new Date(s.StartTime).toISOString() } : {}),
  };
}

/**
 * Locks one snapshot in compliance mode for `days`, with no cooling-off period: from this call on,
 * nobody (Cordon included) can delete it or shorten the lock. EC2 accepts the lock while the snapshot
 * is pending and starts counting the duration when it completes. A refusal is recorded on the
 * timeline and returned, not thrown: the snapshot itself is still evidence, and the next round of
 * Check Snapshots tries the lock again.
 */
export async function lockSnapshot(
  ec2: EC2Client,
  recorder: Recorder,
  snapshotId: string,
  days: number,
): Promise<SnapshotLock> {
  try {
    const out = await recorder.run('ec2:LockSnapshot', snapshotId, () =>
      ec2.send(
        new LockSnapshotCommand({ SnapshotId: snapshotId, LockMode: 'compliance', LockDuration: days }),
      ),
    );
    return {
      status: 'locked',
      mode: 'compliance',
      durationDays: days,
      ...(out.LockState ? { lockState: out.LockState } : {}),
      ...(out.LockExpiresOn ? { expiresOn: new Date(out.LockExpiresOn).toISOString() } : {}),
    };
  } catch (error) {
    const e = describeError(error);
    return { status: 'failed', mode: 'compliance', durationDays: days, detail: `${e.name}: ${e.message}` };
  }
}
