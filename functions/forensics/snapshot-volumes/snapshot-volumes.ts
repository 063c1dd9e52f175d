import { CreateSnapshotsCommand, DescribeSnapshotsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { z } from 'zod';
import { caseSchema, instanceIdSchema, tagKeys } from '../../core/case.js';
import type { Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import { SnapshotError } from '../../core/errors.js';
import { emitCaseEvent } from '../../core/events.js';
import { snapshotWait } from '../../core/memory.js';
import { lockSnapshot, toSnapshotRecord, volumeIdSchema } from '../../core/snapshots.js';
import type { DiskState } from '../../core/state.js';

/** What Snapshot Volumes reads of the workflow state: the case and the volumes Triage found. */
export const snapshotInputSchema = z.object({
  case: caseSchema,
  /** The containment that just ended: the first step after it says on the bus that it held. */
  containment: z
    .looseObject({
      isolate: z.looseObject({ status: z.string() }).optional(),
      revoke: z.looseObject({ status: z.string() }).optional(),
    })
    .optional(),
  triage: z.looseObject({
    instance: z.looseObject({
      instanceId: instanceIdSchema,
      volumes: z
        .array(
          z.looseObject({
            volumeId: volumeIdSchema,
            deviceName: z.string().max(64),
            sizeGiB: z.number().int().nonnegative().optional(),
          }),
        )
        .max(128),
    }),
  }),
});
export type SnapshotInput = z.infer<typeof snapshotInputSchema>;

export type SnapshotConfig = Pick<Config, 'SNAPSHOT_LOCK_DAYS' | 'SNAPSHOT_BUDGET_SECONDS'>;

export interface SnapshotDeps {
  ec2: EC2Client;
  /** Where the case's "contained" event goes; one that cannot be sent is recorded, never fatal. */
  events: EventBridgeClient;
  recorder: Recorder;
  config: SnapshotConfig;
  now: () => Date;
}

/**
 * Snapshots every EBS volume of the instance at one point in time (`CreateSnapshots`: crash-consistent
 * across volumes), tagged with the case and each source volume's own tags, and locks them when the
 * stage asks for it. Returns the first DiskState of the ASL's wait/check loop. A retried run finds the
 * case's snapshots by tag instead of taking a second set.
 */
export async function snapshotVolumes(input: SnapshotInput, deps: SnapshotDeps): Promise<DiskState> {
  const [disk] = await Promise.all([takeSnapshots(input, deps), announceContainment(input, deps)]);
  return disk;
}

/**
 * Snapshots run first once the instance is contained, so they say so on the bus: the case's "contained"
 * event, when isolation and revocation both held (the Contain state's branches). Beside the snapshots,
 * never in their way.
 */
async function announceContainment(input: SnapshotInput, deps: SnapshotDeps): Promise<void> {
  const { isolate, revoke } = input.containment ?? {};
  if (isolate?.status !== 'succeeded' || revoke?.status !== 'succeeded') return;
  await emitCaseEvent(input.case, 'contained', {
    events: deps.events,
    recorder: deps.recorder,
    now: deps.now,
  });
}

async function takeSnapshots(input: SnapshotInput, deps: SnapshotDeps): Promise<DiskState> {
  const c = input.case;
  const now = deps.now();
  const deadline = new Date(now.getTime() + deps.config.SNAPSHOT_BUDGET_SECONDS * 1000);
  const base = { attempt: 0, startedAt: now.toISOString(), deadline: deadline.toISOString() };
  const volumes = input.triage.instance.volumes;
  if (volumes.length === 0) {
    const note = 'the instance has no EBS volumes: there is nothing to snapshot';
    await deps.recorder.note('ec2:CreateSnapshots', 'skipped', { target: c.instanceId, detail: note });
    return { ...base, done: true, waitSeconds: 0, snapshots: [], note };
  }
  const devices = new Map(volumes.map((v) => [v.volumeId, v.deviceName]));

  const earlier = await deps.ec2.send(
    new DescribeSnapshotsCommand({
      OwnerIds: ['self'],
      Filters: [{ Name: `tag:${tagKeys.caseId}`, Values: [c.caseId] }],
    }),
  );
  let taken = (earlier.Snapshots ?? []).filter((s) => s.VolumeId && devices.has(s.VolumeId));
  if (taken.length > 0) {
    await deps.recorder.note('ec2:CreateSnapshots', 'info', {
      target: c.instanceId,
      detail: `reusing the ${taken.length} snapshots an earlier attempt of this case took`,
    });
  } else {
    const out = await deps.recorder.run('ec2:CreateSnapshots', c.instanceId, () =>
      deps.ec2.send(
        new CreateSnapshotsCommand({
          InstanceSpecification: { InstanceId: c.instanceId, ExcludeBootVolume: false },
          Description: `Cordon case ${c.caseId}: evidence of ${c.instanceId}`,
          CopyTagsFromSource: 'volume',
          TagSpecifications: [
            {
              ResourceType: 'snapshot',
              Tags: [
                { Key: tagKeys.caseId, Value: c.caseId },
                { Key: tagKeys.purpose, Value: 'evidence' },
              ],
            },
          ],
        }),
      ),
    );
    taken = out.Snapshots ?? [];
  }
  if (taken.length === 0) throw new SnapshotError(`CreateSnapshots returned no snapshot for ${c.instanceId}`);

  const snapshots = taken.map((s) => toSnapshotRecord(s, devices));
  const days = deps.config.SNAPSHOT_LOCK_DAYS;
  if (days > 0) {
    for (const s of snapshots) s.lock = await lockSnapshot(deps.ec2, deps.recorder, s.snapshotId, days);
  }

  const missing = volumes
    .filter((v) => !snapshots.some((s) => s.volumeId === v.volumeId))
    .map((v) => v.volumeId);
  const note = missing.length
    ? `no snapshot of ${missing.join(', ')}: detached after triage, or not attached to the instance any more`
    : undefined;
  if (note) await deps.recorder.note('ec2:CreateSnapshots', 'info', { target: c.instanceId, detail: note });
  const done = snapshots.every((s) => s.state === 'completed');
  return {
    ...base,
    done: false,
    // Even when EC2 reports them complete at once, Check Snapshots writes snapshots.json.
    waitSeconds: done
      ? 0
      : Math.max(1, Math.min(snapshotWait.firstSeconds, deps.config.SNAPSHOT_BUDGET_SECONDS)),
    snapshots,
    ...(note ? { note } : {}),
  };
}
