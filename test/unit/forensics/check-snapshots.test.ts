import {
  CopySnapshotCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  LockSnapshotCommand,
  ModifySnapshotAttributeCommand,
} from '@aws-sdk/client-ec2';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { SnapshotError, SnapshotTimeoutError } from '../../../functions/core/errors.js';
import { EvidenceStore } from '../../../functions/core/evidence.js';
import type { DiskState, SnapshotRecord } from '../../../functions/core/state.js';
import { checkSnapshots } from '../../../functions/forensics/check-snapshots/check-snapshots.js';
import { MemoryTimeline, sampleCase } from '../../support/core-fakes.js';
import { evidenceConfig, fixedClock } from '../../support/evidence-fixtures.js';

const member = new EC2Client({ region: 'us-east-1' });
const forensic = new EC2Client({ region: 'us-east-1' });
const memberEc2 = mockClient(member);
const forensicEc2 = mockClient(forensic);
const s3 = mockClient(S3Client);

const forensicAccount = '210987654321';
const forensicKey = 'arn:aws:kms:us-east-1:210987654321:key/0f0e0d0c-0b0a-0908-0706-050403020100';

function record(n: number, overrides: Partial<SnapshotRecord> = {}): SnapshotRecord {
  return {
    volumeId: `vol-0a1b2c3d4e5f6071${n}`,
    deviceName: n === 1 ? '/dev/xvda' : '/dev/sdf',
    snapshotId: `snap-0aaaaaaaaaaaaaaa${n}`,
    sizeGiB: 8,
    state: 'pending',
    progress: '10%',
    startTime: '2026-11-27T20:30:01.000Z',
    ...overrides,
  };
}

function disk(overrides: Partial<DiskState> = {}): DiskState {
  return {
    done: false,
    waitSeconds: 15,
    attempt: 0,
    startedAt: '2026-11-27T20:30:00.000Z',
    deadline: '2026-11-27T22:30:00.000Z',
    snapshots: [record(1), record(2)],
    ...overrides,
  };
}

function described(
  state: 'pending' | 'completed' | 'error',
  ids = ['snap-0aaaaaaaaaaaaaaa1', 'snap-0aaaaaaaaaaaaaaa2'],
) {
  return {
    Snapshots: ids.map((SnapshotId) => ({
      SnapshotId,
      State: state,
      Progress: state === 'completed' ? '100%' : '40%',
    })),
  };
}

function deps(options: { config?: Partial<typeof evidenceConfig>; at?: string; copying?: boolean } = {}) {
  const timeline = new MemoryTimeline();
  const clock = fixedClock(options.at);
  return {
    timeline,
    deps: {
      ec2: member,
      ...(options.copying ? { copyEc2: forensic } : {}),
      recorder: timeline.recorder(sampleCase.caseId, 'check-snapshots'),
      evidence: new EvidenceStore(
        new S3Client({ region: 'us-east-1' }),
        'cordon-evidence-dev',
        { mode: 'GOVERNANCE', days: 1 },
        clock.now,
      ),
      config: { ...evidenceConfig, ...options.config },
      now: clock.now,
    },
  };
}

const copying = { SNAPSHOT_COPY_ACCOUNT_ID: forensicAccount, SNAPSHOT_COPY_KMS_KEY_ARN: forensicKey };

describe('check snapshots', () => {
  beforeEach(() => {
    memberEc2.reset();
    forensicEc2.reset();
    s3.reset();
    s3.on(PutObjectCommand).resolves({ VersionId: 'snapshots-v1', $metadata: { requestId: 'req-put' } });
    memberEc2.on(ModifySnapshotAttributeCommand).resolves({});
  });

  it('asks for another round after a doubled wait while a snapshot is pending', async () => {
    // Prepare
    memberEc2.on(DescribeSnapshotsCommand).resolves(described('pending'));
    const { deps: d } = deps();

    // Act
    const next = await checkSnapshots({ case: sampleCase, disk: disk() }, d);

    // Assess
    expect(next).toMatchObject({ done: false, waitSeconds: 30, attempt: 1 });
    expect(next.snapshots[0]).toMatchObject({ state: 'pending', progress: '40%' });
    expect(s3).toHaveReceivedCommandTimes(PutObjectCommand, 0);
  });

  it('never waits longer than five minutes between rounds', async () => {
    // Prepare
    memberEc2.on(DescribeSnapshotsCommand).resolves(described('pending'));
    const { deps: d } = deps();

    // Act
    const next = await checkSnapshots({ case: sampleCase, disk: disk({ waitSeconds: 240 }) }, d);

    // Assess
    expect(next.waitSeconds).toBe(300);
  });

  it("never waits past the budget's deadline", async () => {
    // Prepare
    memberEc2.on(DescribeSnapshotsCommand).resolves(described('pending'));
    const { deps: d } = deps({ at: '2026-11-27T22:29:50.000Z' });

    // Act
    const next = await checkSnapshots({ case: sampleCase, disk: disk({ waitSeconds: 120 }) }, d);

    // Assess
    expect(next.waitSeconds).toBe(10);
  });

  it('writes snapshots.json and reports done once every snapshot has completed', async () => {
    // Prepare
    memberEc2.on(DescribeSnapshotsCommand).resolves(described('completed'));
    const { deps: d } = deps();

    // Act
    const next = await checkSnapshots({ case: sampleCase, disk: disk() }, d);

    // Assess
    expect(s3).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: 'cordon-evidence-dev',
      Key: `cases/${sampleCase.caseId}/snapshots.json`,
      ContentType: 'application/json',
      IfNoneMatch: '*',
    });
    expect(next).toMatchObject({
      done: true,
      artifact: { key: `cases/${sampleCase.caseId}/snapshots.json`, versionId: 'snapshots-v1' },
    });
  });

  it('lists in snapshots.json each volume, its snapshot, size, state and times', async () => {
    // Prepare
    memberEc2.on(DescribeSnapshotsCommand).resolves(described('completed'));
    const { deps: d } = deps();

    // Act
    await checkSnapshots({ case: sampleCase, disk: disk() }, d);
    const body = JSON.parse(String(s3.commandCalls(PutObjectCommand)[0]?.args[0].input.Body));

    // Assess
    expect(body).toMatchObject({
      schema: 'cordon.snapshots/1',
      caseId: sampleCase.caseId,
      instanceId: sampleCase.instanceId,
      startedAt: '2026-11-27T20:30:00.000Z',
      writtenAt: '2026-11-27T20:30:00.000Z',
      snapshots: [
        {
          volumeId: 'vol-0a1b2c3d4e5f60711',
          snapshotId: 'snap-0aaaaaaaaaaaaaaa1',
          sizeGiB: 8,
          state: 'completed',
          startTime: '2026-11-27T20:30:01.000Z',
          completedSeenAt: '2026-11-27T20:30:00.000Z',
        },
        { volumeId: 'vol-0a1b2c3d4e5f60712', snapshotId: 'snap-0aaaaaaaaaaaaaaa2', state: 'completed' },
      ],
    });
  });

  it('writes an empty snapshots.json for an instance that had nothing to snapshot', async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    const next = await checkSnapshots(
      { case: sampleCase, disk: disk({ done: true, waitSeconds: 0, snapshots: [] }) },
      d,
    );

    // Assess
    expect(memberEc2.calls()).toHaveLength(0);
    expect(next).toMatchObject({ done: true, snapshots: [], artifact: { versionId: 'snapshots-v1' } });
  });

  it('fails with SnapshotError when a snapshot enters the error state, and writes no evidence', async () => {
    // Prepare
    memberEc2.on(DescribeSnapshotsCommand).resolves(described('error'));
    const { deps: d } = deps();

    // Act
    const run = checkSnapshots({ case: sampleCase, disk: disk() }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(SnapshotError);
    expect(s3).toHaveReceivedCommandTimes(PutObjectCommand, 0);
  });

  it('fails with SnapshotTimeoutError when the budget is spent with a snapshot unfinished', async () => {
    // Prepare
    memberEc2.on(DescribeSnapshotsCommand).resolves(described('pending'));
    const { deps: d } = deps({ at: '2026-11-27T22:30:00.000Z' });

    // Act
    const run = checkSnapshots({ case: sampleCase, disk: disk() }, d);

    // Assess
    await expect(run).rejects.toBeInstanceOf(SnapshotTimeoutError);
  });

  it('tries again a lock EC2 refused earlier', async () => {
    // Prepare
    memberEc2.on(DescribeSnapshotsCommand).resolves(described('pending'));
    memberEc2.on(LockSnapshotCommand).resolves({ LockState: 'compliance' });
    const failed = {
      status: 'failed' as const,
      mode: 'compliance' as const,
      durationDays: 30,
      detail: 'throttled',
    };
    const locked = { status: 'locked' as const, mode: 'compliance' as const, durationDays: 30 };
    const { deps: d } = deps({ config: { SNAPSHOT_LOCK_DAYS: 30 } });

    // Act
    const next = await checkSnapshots(
      {
        case: sampleCase,
        disk: disk({ snapshots: [record(1, { lock: failed }), record(2, { lock: locked })] }),
      },
      d,
    );

    // Assess
    expect(memberEc2).toHaveReceivedCommandTimes(LockSnapshotCommand, 1);
    expect(memberEc2).toHaveReceivedCommandWith(LockSnapshotCommand, {
      SnapshotId: 'snap-0aaaaaaaaaaaaaaa1',
      LockMode: 'compliance',
      LockDuration: 30,
    });
    expect(next.snapshots[0]?.lock?.status).toBe('locked');
  });

  it('shares each completed snapshot with the forensic account, and with nobody else', async () => {
    // Prepare
    memberEc2.on(DescribeSnapshotsCommand).resolves(described('completed'));
    forensicEc2.on(CopySnapshotCommand).resolves({ SnapshotId: 'snap-0fffffffffffffff1' });
    forensicEc2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    const { deps: d } = deps({ config: copying, copying: true });

    // Act
    await checkSnapshots({ case: sampleCase, disk: disk({ snapshots: [record(1)] }) }, d);

    // Assess
    expect(memberEc2).toHaveReceivedCommandWith(ModifySnapshotAttributeCommand, {
      SnapshotId: 'snap-0aaaaaaaaaaaaaaa1',
      Attribute: 'createVolumePermission',
      CreateVolumePermission: { Add: [{ UserId: forensicAccount }] },
    });
  });

  it('copies each completed snapshot in the forensic account, re-encrypted under its key and tagged with the case', async () => {
    // Prepare
    memberEc2.on(DescribeSnapshotsCommand).resolves(described('completed'));
    forensicEc2.on(CopySnapshotCommand).resolves({ SnapshotId: 'snap-0fffffffffffffff1' });
    forensicEc2
      .on(DescribeSnapshotsCommand)
      .resolves({ Snapshots: [{ SnapshotId: 'snap-0fffffffffffffff1', State: 'pending' }] });
    const { deps: d } = deps({ config: copying, copying: true });

    // Act
    const next = await checkSnapshots({ case: sampleCase, disk: disk({ snapshots: [record(1)] }) }, d);

    // Assess
    expect(forensicEc2).toHaveReceivedCommandWith(CopySnapshotCommand, {
      SourceRegion: 'us-east-1',
      SourceSnapshotId: 'snap-0aaaaaaaaaaaaaaa1',
      Encrypted: true,
      KmsKeyId: forensicKey,
      TagSpecifications: [
        {
          ResourceType: 'snapshot',
          Tags: [
            { Key: 'cordon:case-id', Value: sampleCase.caseId },
            { Key: 'cordon:purpose', Value: 'evidence-copy' },
            { Key: 'cordon:source-snapshot', Value: 'snap-0aaaaaaaaaaaaaaa1' },
            { Key: 'cordon:source-account', Value: sampleCase.accountId },
          ],
        },
      ],
    });
    expect(next).toMatchObject({
      done: false,
      snapshots: [{ copy: { status: 'pending', snapshotId: 'snap-0fffffffffffffff1' } }],
    });
  });

  it('locks a copy in the forensic account once it completes, then writes snapshots.json', async () => {
    // Prepare
    memberEc2.on(DescribeSnapshotsCommand).resolves(described('completed', ['snap-0aaaaaaaaaaaaaaa1']));
    memberEc2.on(LockSnapshotCommand).resolves({ LockState: 'compliance' });
    forensicEc2
      .on(DescribeSnapshotsCommand)
      .resolves({ Snapshots: [{ SnapshotId: 'snap-0fffffffffffffff1', State: 'completed' }] });
    forensicEc2.on(LockSnapshotCommand).resolves({ LockState: 'compliance' });
    const copy = {
      accountId: forensicAccount,
      region: 'us-east-1',
      kmsKeyArn: forensicKey,
      status: 'pending' as const,
      snapshotId: 'snap-0fffffffffffffff1',
    };
    const lock = { status: 'locked' as const, mode: 'compliance' as const, durationDays: 30 };
    const { deps: d } = deps({ config: { ...copying, SNAPSHOT_LOCK_DAYS: 30 }, copying: true });

    // Act
    const next = await checkSnapshots(
      { case: sampleCase, disk: disk({ snapshots: [record(1, { lock, copy })] }) },
      d,
    );

    // Assess
    expect(forensicEc2).toHaveReceivedCommandWith(LockSnapshotCommand, {
      SnapshotId: 'snap-0fffffffffffffff1',
      LockMode: 'compliance',
      LockDuration: 30,
    });
    expect(next).toMatchObject({
      done: true,
      snapshots: [{ copy: { status: 'completed', lock: { status: 'locked' } } }],
    });
  });

  it('records a snapshot the source account cannot share as a failed copy, and finishes with the originals', async () => {
    // Prepare
    memberEc2.on(DescribeSnapshotsCommand).resolves(described('completed', ['snap-0aaaaaaaaaaaaaaa1']));
    memberEc2
      .on(ModifySnapshotAttributeCommand)
      .rejects(Object.assign(new Error('encrypted with the default key'), { name: 'InvalidParameter' }));
    const { deps: d } = deps({ config: copying, copying: true });

    // Act
    const next = await checkSnapshots({ case: sampleCase, disk: disk({ snapshots: [record(1)] }) }, d);

    // Assess
    expect(forensicEc2).toHaveReceivedCommandTimes(CopySnapshotCommand, 0);
    expect(next).toMatchObject({
      done: true,
      snapshots: [
        {
          state: 'completed',
          copy: { status: 'failed', detail: expect.stringContaining('InvalidParameter') },
        },
      ],
    });
  });
});
