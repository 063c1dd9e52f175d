import { createHash } from 'node:crypto';
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EBSClient, PutSnapshotBlockCommand } from '@aws-sdk/client-ebs';
import { DescribeVolumesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type EmulatedEbs, startEmulatedEbs } from '../../scripts/local/emulated-ebs.js';
import { resetMoto } from '../../scripts/local/moto.js';
import type { SeededDisk } from '../../scripts/local/seed.js';
import { cordon, demoCase, emulator } from '../support/cli-fixtures.js';

/**
 * `cordon evidence disk` on a demo case. moto's CreateSnapshots copies no data, so the CLI talks to
 * the EMULATED EBS DATA PLANE (scripts/local/emulated-ebs.ts) in front of moto: it serves each case
 * snapshot with the blocks the seed wrote, through the EBS direct APIs, for the volume it was taken of.
 */
const motoEndpoint = inject('motoEndpoint');
const ec2 = new EC2Client(emulator(motoEndpoint));
const s3 = new S3Client({ ...emulator(motoEndpoint), forcePathStyle: true });

let demo: Awaited<ReturnType<typeof demoCase>>;
let ebsPlane: EmulatedEbs;
let endpoint: string;
let work: string;
let snapshots: { snapshotId: string; volumeId: string }[];

/** The raw image the seed's blocks make: zeros, with each written block at its offset. */
function expectedImage(disk: SeededDisk): { sha256: string; bytes: number } {
  const bytes = disk.sizeGiB * 2 ** 30;
  const hash = createHash('sha256');
  const zeros = Buffer.alloc(8 * 2 ** 20);
  const blocks = [...disk.blocks.entries()].sort((a, b) => a[0] - b[0]);
  let at = 0;
  const zerosUntil = (end: number) => {
    while (at < end) {
      const n = Math.min(zeros.byteLength, end - at);
      hash.update(zeros.subarray(0, n));
      at += n;
    }
  };
  for (const [index, data] of blocks) {
    zerosUntil(index * disk.blockSize);
    hash.update(data);
    at += data.byteLength;
  }
  zerosUntil(bytes);
  return { sha256: hash.digest('hex'), bytes };
}

const diskOf = (volumeId: string) => {
  const i = demo.seeded.volumeIds.indexOf(volumeId);
  const disk = demo.seeded.disks[i];
  if (!disk) throw new Error(`the seed wrote no content for ${volumeId}`);
  return disk;
};

beforeAll(async () => {
  await resetMoto(motoEndpoint);
  demo = await demoCase(motoEndpoint);
  ebsPlane = await startEmulatedEbs(motoEndpoint);
  endpoint = ebsPlane.endpoint;
  work = await mkdtemp(join(tmpdir(), 'cordon-disk-'));
  const listed = await s3.send(
    new GetObjectCommand({
      Bucket: demo.report.bucket,
      Key: `cases/${demo.caseId}/snapshots.json`,
    }),
  );
  snapshots = JSON.parse((await listed.Body?.transformToString()) ?? '{}').snapshots;
}, 120_000);

afterAll(async () => {
  await ebsPlane?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('cordon evidence disk --image', () => {
  it('pulls each snapshot as a raw image whose SHA-256 is the signed addendum recorded for it', async () => {
    const dir = join(work, 'first');

    const { code, stdout, stderr } = await cordon(endpoint, [
      'evidence',
      'disk',
      demo.caseId,
      '--image',
      dir,
      '--json',
    ]);

    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as {
      images: {
        snapshotId: string;
        volumeId: string;
        sha256: string;
        status: string;
        addendum: { key: string; created: boolean };
      }[];
    };
    expect(report.images.map((i) => i.snapshotId).sort()).toEqual(snapshots.map((s) => s.snapshotId).sort());
    for (const image of report.images) {
      const expected = expectedImage(diskOf(image.volumeId));
      const file = join(dir, `${image.snapshotId}.raw`);
      expect((await stat(file)).size).toBe(expected.bytes);
      // The seed's bytes at their offsets; the whole file's hash is the CLI's, checked against the seed's.
      const handle = await open(file, 'r');
      for (const [index, data] of diskOf(image.volumeId).blocks) {
        const read = Buffer.alloc(data.byteLength);
        await handle.read(read, 0, read.byteLength, index * data.byteLength);
        expect(read.equals(data), `block ${index}`).toBe(true);
      }
      await handle.close();
      const onDisk = expected.sha256;
      expect(image).toMatchObject({
        sha256: expected.sha256,
        status: 'downloaded',
        addendum: { created: true },
      });
      const addendum = JSON.parse(
        (await (
          await s3.send(new GetObjectCommand({ Bucket: demo.report.bucket, Key: image.addendum.key }))
        ).Body?.transformToString()) ?? '{}',
      );
      expect(addendum.addendum).toMatchObject({
        caseId: demo.caseId,
        snapshotId: image.snapshotId,
        sha256: onDisk,
      });
    }
    expect((await readdir(dir)).filter((f) => f.includes('.part'))).toEqual([]);
  });

  it('checks a later download against the addendum instead of recording another', async () => {
    const { code, stdout } = await cordon(endpoint, [
      'evidence',
      'disk',
      demo.caseId,
      '--image',
      join(work, 'second'),
    ]);

    expect(code, stdout).toBe(0);
    expect(stdout.match(/downloaded, matches the addendum of/g)).toHaveLength(snapshots.length);
  });

  it('leaves evidence verify passing, with each addendum checked', async () => {
    const { code, stdout } = await cordon(endpoint, ['evidence', 'verify', demo.caseId, '--json']);

    expect(code, stdout).toBe(0);
    const report = JSON.parse(stdout) as {
      artifacts: { name: string; hash: { status: string }; lock: { status: string } }[];
    };
    const addenda = report.artifacts.filter((a) => a.name.startsWith('addenda/'));
    expect(addenda).toHaveLength(snapshots.length);
    for (const a of addenda) expect([a.hash.status, a.lock.status]).toEqual(['pass', 'pass']);
  });

  // Last of this block: it changes a block in the emulated account.
  it('catches a block whose bytes do not match the checksum EBS returns, and keeps nothing under the image name', async () => {
    const [first] = snapshots;
    if (!first) throw new Error('the demo case has no snapshot');
    const disk = diskOf(first.volumeId);
    const [index, original] = [...disk.blocks.entries()][1] as [number, Buffer];
    const tampered = Buffer.from(original);
    tampered.write('rm -rf /var/log', 0);
    // moto takes a block's checksum at face value: the original's, over other bytes.
    await new EBSClient(emulator(motoEndpoint)).send(
      new PutSnapshotBlockCommand({
        SnapshotId: disk.contentSnapshotId,
        BlockIndex: index,
        BlockData: tampered,
        DataLength: disk.blockSize,
        Checksum: createHash('sha256').update(original).digest('base64'),
        ChecksumAlgorithm: 'SHA256',
      }),
    );
    const dir = join(work, 'tampered');

    const { code, stdout } = await cordon(endpoint, ['evidence', 'disk', demo.caseId, '--image', dir]);

    expect(code).toBe(1);
    expect(stdout).toContain(`FAILED: block ${index} of ${first.snapshotId}: its bytes hash to`);
    expect(await readdir(dir)).not.toContain(`${first.snapshotId}.raw`);
  });
});

describe('cordon evidence disk --attach-to, then --detach', () => {
  let workstationId: string;
  let kmsKey: string;
  beforeAll(async () => {
    const key = await new KMSClient(emulator(motoEndpoint)).send(
      new CreateKeyCommand({
        Description: 'forensic volumes',
        Tags: [{ TagKey: 'cordon:purpose', TagValue: 'forensic-volumes' }],
      }),
    );
    kmsKey = key.KeyMetadata?.Arn as string;
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: 'ami-12c6146b',
        InstanceType: 'm5.large',
        MinCount: 1,
        MaxCount: 1,
        SubnetId: demo.seeded.subnetIds[0],
        TagSpecifications: [
          { ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'forensic-workstation' }] },
        ],
      }),
    );
    workstationId = run.Instances?.[0]?.InstanceId as string;
  });

  const investigationVolumes = async () =>
    (
      await ec2.send(
        new DescribeVolumesCommand({ Filters: [{ Name: 'tag:cordon:case-id', Values: [demo.caseId] }] }),
      )
    ).Volumes ?? [];

  it('refuses the case’s own instance, and makes no volume', async () => {
    const { code, stderr } = await cordon(endpoint, [
      'evidence',
      'disk',
      demo.caseId,
      '--attach-to',
      demo.seeded.instanceId,
      '--kms-key',
      kmsKey,
    ]);

    expect(code).toBe(1);
    expect(stderr).toContain(`is case ${demo.caseId}'s own instance`);
    expect(await investigationVolumes()).toEqual([]);
  });

  it('attaches one volume per snapshot, detaches and deletes them all, and the timeline records both', async () => {
    const attached = await cordon(endpoint, [
      'evidence',
      'disk',
      demo.caseId,
      '--attach-to',
      workstationId,
      '--kms-key',
      kmsKey,
      '--json',
    ]);
    expect(attached.code, attached.stderr).toBe(0);
    const volumes = (
      JSON.parse(attached.stdout) as { volumes: { volumeId: string; snapshotId: string; device: string }[] }
    ).volumes;
    expect(volumes.map((v) => v.snapshotId).sort()).toEqual(snapshots.map((s) => s.snapshotId).sort());
    const made = await investigationVolumes();
    expect(made.map((v) => v.VolumeId).sort()).toEqual(volumes.map((v) => v.volumeId).sort());
    for (const v of made) {
      expect(v).toMatchObject({ Encrypted: true, KmsKeyId: kmsKey });
      expect(v.Attachments?.[0]).toMatchObject({ InstanceId: workstationId, State: 'attached' });
    }

    const detached = await cordon(endpoint, ['evidence', 'disk', demo.caseId, '--detach']);

    expect(detached.code, detached.stderr).toBe(0);
    expect(await investigationVolumes()).toEqual([]);
    const status = await cordon(endpoint, ['status', demo.caseId, '--json']);
    const events = (
      JSON.parse(status.stdout) as { timeline: { step: string; action: string; target?: string }[] }
    ).timeline.filter((e) => e.step === 'cordon evidence disk');
    for (const v of volumes) {
      expect(
        events
          .filter((e) => e.target === v.volumeId)
          .map((e) => e.action)
          .sort(),
      ).toEqual(['ec2:AttachVolume', 'ec2:CreateVolume', 'ec2:DeleteVolume', 'ec2:DetachVolume']);
    }
  });
});
