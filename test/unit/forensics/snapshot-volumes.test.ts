import {
  CreateSnapshotsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  LockSnapshotCommand,
} from '@aws-sdk/client-ec2';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { InvalidStepInputError } from '../../../functions/core/errors.js';
import { handler } from '../../../functions/forensics/snapshot-volumes/handler.js';
import { snapshotVolumes } from '../../../functions/forensics/snapshot-volumes/snapshot-volumes.js';
import { MemoryTimeline, sampleCase } from '../../support/core-fakes.js';
import { evidenceConfig, fixedClock, triageFor } from '../../support/evidence-fixtures.js';

const ec2 = mockClient(EC2Client);
const [root, data] = ['vol-0a1b2c3d4e5f60718', 'vol-0a1b2c3d4e5f60719'];

const created = [
  {
    SnapshotId: 'snap-0aaaaaaaaaaaaaaa1',
    VolumeId: root,
    VolumeSize: 8,
    State: 'pending' as const,
    Progress: '0%',
    StartTime: new Date('2026-11-27T20:30:01Z'),
    Encrypted: true,
  },
  {
    SnapshotId: 'snap-0aaaaaaaaaaaaaaa2',
    VolumeId: data,
    VolumeSize: 100,
    State: 'pending' as const,
    Progress: '0%',
    StartTime: new Date('2026-11-27T20:30:01Z'),
    Encrypted: true,
  },
];

function deps(config: Partial<typeof evidenceConfig> = {}) {
  const timeline = new MemoryTimeline();
  return {
    timeline,
    deps: {
      ec2: new EC2Client({ region: 'us-east-1' }),
      events: new EventBridgeClient({ region: 'us-east-1' }),
      recorder: timeline.recorder(sampleCase.caseId, 'snapshot-volumes'),
      config: { ...evidenceConfig, ...config },
      now: fixedClock().now,
    },
  };
}

const events = mockClient(EventBridgeClient);

describe('snapshot volumes', () => {
  beforeEach(() => {
    events.reset();
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    ec2.reset();
    ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    ec2.on(CreateSnapshotsCommand).resolves({ Snapshots: created });
  });

  it("snapshots every volume in one crash-consistent call, tagged with the case and each volume's own tags", async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    await snapshotVolumes({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    expect(ec2).toHaveReceivedCommandTimes(CreateSnapshotsCommand, 1);
    expect(ec2).toHaveReceivedCommandWith(CreateSnapshotsCommand, {
      InstanceSpecification: { InstanceId: sampleCase.instanceId, ExcludeBootVolume: false },
      Description: `Cordon case ${sampleCase.caseId}: evidence of ${sampleCase.instanceId}`,
      CopyTagsFromSource: 'volume',
      TagSpecifications: [
        {
          ResourceType: 'snapshot',
          Tags: [
            { Key: 'cordon:case-id', Value: sampleCase.caseId },
            { Key: 'cordon:purpose', Value: 'evidence' },
          ],
        },
      ],
    });
  });

  it('returns the first wait of the check loop with every snapshot, its volume, device, size and start time', async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    const disk = await snapshotVolumes({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    expect(disk).toEqual({
      done: false,
      waitSeconds: 15,
      attempt: 0,
      startedAt: '2026-11-27T20:30:00.000Z',
      deadline: '2026-11-27T22:30:00.000Z',
      snapshots: [
        {
          volumeId: root,
          deviceName: '/dev/xvda',
          snapshotId: 'snap-0aaaaaaaaaaaaaaa1',
          sizeGiB: 8,
          encrypted: true,
          state: 'pending',
          progress: '0%',
          startTime: '2026-11-27T20:30:01.000Z',
        },
        {
          volumeId: data,
          deviceName: '/dev/sdf',
          snapshotId: 'snap-0aaaaaaaaaaaaaaa2',
          sizeGiB: 100,
          encrypted: true,
          state: 'pending',
          progress: '0%',
          startTime: '2026-11-27T20:30:01.000Z',
        },
      ],
    });
  });

  it("looks for an earlier attempt's snapshots by the case tag before taking any", async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    await snapshotVolumes({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    expect(ec2).toHaveReceivedCommandWith(DescribeSnapshotsCommand, {
      OwnerIds: ['self'],
      Filters: [{ Name: 'tag:cordon:case-id', Values: [sampleCase.caseId] }],
    });
  });

  it('reuses the snapshots an earlier attempt of the case took instead of taking a second set', async () => {
    // Prepare
    ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: created });
    const { deps: d } = deps();

    // Act
    const disk = await snapshotVolumes({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    expect(ec2).toHaveReceivedCommandTimes(CreateSnapshotsCommand, 0);
    expect(disk.snapshots.map((s) => s.snapshotId)).toEqual([
      'snap-0aaaaaaaaaaaaaaa1',
      'snap-0aaaaaaaaaaaaaaa2',
    ]);
  });

  it('locks every snapshot in compliance mode for the configured days, without a cooling-off period', async () => {
    // Prepare
    ec2.on(LockSnapshotCommand).resolves({ LockState: 'compliance', LockDuration: 30 });
    const { deps: d } = deps({ SNAPSHOT_LOCK_DAYS: 30 });

    // Act
    const disk = await snapshotVolumes({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    expect(ec2).toHaveReceivedCommandTimes(LockSnapshotCommand, 2);
    expect(ec2).toHaveReceivedNthCommandWith(LockSnapshotCommand, 1, {
      SnapshotId: 'snap-0aaaaaaaaaaaaaaa1',
      LockMode: 'compliance',
      LockDuration: 30,
    });
    expect(disk.snapshots[1]?.lock).toEqual({
      status: 'locked',
      mode: 'compliance',
      durationDays: 30,
      lockState: 'compliance',
    });
  });

  it('sends no lock when the stage asks for none', async () => {
    // Prepare
    const { deps: d } = deps({ SNAPSHOT_LOCK_DAYS: 0 });

    // Act
    await snapshotVolumes({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    expect(ec2).toHaveReceivedCommandTimes(LockSnapshotCommand, 0);
  });

  it('records a lock EC2 refuses on the snapshot and the timeline instead of failing evidence that exists', async () => {
    // Prepare
    ec2.on(LockSnapshotCommand).rejects(
      Object.assign(new Error('not allowed'), {
        name: 'UnauthorizedOperation',
        $metadata: { httpStatusCode: 403 },
      }),
    );
    const { deps: d, timeline } = deps({ SNAPSHOT_LOCK_DAYS: 30 });

    // Act
    const disk = await snapshotVolumes({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    expect(disk.snapshots[0]?.lock).toMatchObject({
      status: 'failed',
      detail: expect.stringContaining('AwsAccessDeniedError'),
    });
    expect(timeline.events).toContainEqual(
      expect.objectContaining({
        action: 'ec2:LockSnapshot',
        status: 'failed',
        target: 'snap-0aaaaaaaaaaaaaaa1',
      }),
    );
  });

  it('has nothing to wait for, and creates nothing, when the instance has no EBS volume', async () => {
    // Prepare
    const { deps: d } = deps();

    // Act
    const disk = await snapshotVolumes(
      { case: sampleCase, triage: triageFor({ instance: { volumes: [] } }) },
      d,
    );

    // Assess
    expect(ec2).toHaveReceivedCommandTimes(CreateSnapshotsCommand, 0);
    expect(disk).toMatchObject({ done: true, waitSeconds: 0, snapshots: [] });
  });

  it('records each snapshot request on the case timeline with its request id', async () => {
    // Prepare
    ec2.on(CreateSnapshotsCommand).resolves({ Snapshots: created, $metadata: { requestId: 'req-create' } });
    const { deps: d, timeline } = deps();

    // Act
    await snapshotVolumes({ case: sampleCase, triage: triageFor() }, d);

    // Assess
    expect(timeline.events).toContainEqual(
      expect.objectContaining({
        step: 'snapshot-volumes',
        action: 'ec2:CreateSnapshots',
        status: 'ok',
        target: sampleCase.instanceId,
        requestId: 'req-create',
      }),
    );
  });

  it('refuses a volume id that is not an EBS id and sends nothing', async () => {
    // Prepare
    const triage = triageFor({
      instance: { volumes: [{ volumeId: 'vol-1; rm -rf /', deviceName: '/dev/xvda' }] },
    });

    // Act
    const run = handler({ case: sampleCase, triage }, {} as never);

    // Assess
    await expect(run).rejects.toBeInstanceOf(InvalidStepInputError);
    expect(ec2.calls()).toHaveLength(0);
  });
});

describe('the first step after containment', () => {
  beforeEach(() => {
    events.reset();
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    ec2.reset();
    ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    ec2.on(CreateSnapshotsCommand).resolves({ Snapshots: created });
  });
  const sent = () =>
    events.commandCalls(PutEventsCommand).flatMap((c) => c.args[0].input.Entries?.map((e) => e.DetailType));

  it('says on the bus that the case is contained when isolation and revocation both held', async () => {
    const { deps: d } = deps();
    const containment = { isolate: { status: 'succeeded' }, revoke: { status: 'succeeded' } };
    await snapshotVolumes({ case: sampleCase, triage: triageFor(), containment }, d);
    expect(sent()).toEqual(['Cordon Case Contained']);
  });

  it.each([
    ['isolation failed', { isolate: { status: 'failed' }, revoke: { status: 'succeeded' } }],
    ['revocation failed', { isolate: { status: 'succeeded' }, revoke: { status: 'failed' } }],
    ['no containment was passed', undefined],
  ])('says nothing when %s', async (_why, containment) => {
    const { deps: d } = deps();
    await snapshotVolumes(
      { case: sampleCase, triage: triageFor(), ...(containment ? { containment } : {}) },
      d,
    );
    expect(sent()).toEqual([]);
    expect(ec2).toHaveReceivedCommandTimes(CreateSnapshotsCommand, 1);
  });
});
