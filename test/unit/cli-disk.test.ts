import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EBSClient, GetSnapshotBlockCommand, ListSnapshotBlocksCommand } from '@aws-sdk/client-ebs';
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  addendumSignatureValid,
  addendumStatement,
  type DiskImageAddendum,
  recordAddendum,
} from '../../scripts/cli/addenda.js';
import { attachCaseDisks, type CaseSnapshots, detachCaseDisks, mountLine } from '../../scripts/cli/disk.js';
import { downloadSnapshotImage } from '../../scripts/cli/disk-image.js';
import { UsageError } from '../../scripts/cli/errors.js';
import { cordonOnAws, objectBody } from '../support/cli-mocks.js';

const ebs = mockClient(EBSClient);
const ec2 = mockClient(EC2Client);
const kms = mockClient(KMSClient);
const s3 = mockClient(S3Client);

const GiB = 2 ** 30;
const blockSize = 512 * 1024;
const snapshotId = 'snap-0123456789abcdef0';
const volumeId = 'vol-0123456789abcdef0';
const block = (fill: number) => Buffer.alloc(blockSize, fill);
const b64 = (data: Buffer) => createHash('sha256').update(data).digest('base64');

/** A 1 GiB snapshot holding three blocks, listed over two pages; every other block is a hole. */
const written = new Map<number, Buffer>([
  [0, block(1)],
  [5, block(2)],
  [2047, block(3)],
]);
function serveSnapshot(options: { corrupt?: number } = {}) {
  ebs.on(ListSnapshotBlocksCommand, { SnapshotId: snapshotId, NextToken: undefined }).resolves({
    BlockSize: blockSize,
    VolumeSize: 1,
    Blocks: [
      { BlockIndex: 0, BlockToken: 't0' },
      { BlockIndex: 5, BlockToken: 't5' },
    ],
    NextToken: 'page-2',
  });
  ebs.on(ListSnapshotBlocksCommand, { SnapshotId: snapshotId, NextToken: 'page-2' }).resolves({
    BlockSize: blockSize,
    VolumeSize: 1,
    Blocks: [{ BlockIndex: 2047, BlockToken: 't2047' }],
  });
  for (const [index, data] of written) {
    ebs.on(GetSnapshotBlockCommand, { SnapshotId: snapshotId, BlockIndex: index }).callsFake(() => {
      const served = index === options.corrupt ? block(9) : data;
      return {
        BlockData: objectBody(served) as never,
        Checksum: b64(data),
        ChecksumAlgorithm: 'SHA256',
        DataLength: blockSize,
      };
    });
  }
}

/** The SHA-256 of the image those blocks make. */
let imageHash: string | undefined;
function imageSha256(): string {
  if (imageHash) return imageHash;
  const hash = createHash('sha256');
  const zeros = Buffer.alloc(blockSize);
  for (let i = 0; i < GiB / blockSize; i += 1) hash.update(written.get(i) ?? zeros);
  imageHash = hash.digest('hex');
  return imageHash;
}
const fetched = () => ebs.commandCalls(GetSnapshotBlockCommand).map((c) => c.args[0].input.BlockIndex);

let dir: string;
beforeEach(async () => {
  ebs.reset();
  ec2.reset();
  kms.reset();
  s3.reset();
  dir = await mkdtemp(join(tmpdir(), 'cordon-disk-unit-'));
});

// Each image is a sparse gigabyte, hashed whole: more than the default five seconds on a busy machine.
describe('downloadSnapshotImage', { timeout: 60_000 }, () => {
  it('fetches exactly the listed blocks with their tokens and leaves the rest of the volume as zeros', async () => {
    serveSnapshot();

    const outcome = await downloadSnapshotImage(new EBSClient({}), { snapshotId, volumeId }, dir);

    expect(outcome).toMatchObject({
      status: 'downloaded',
      blocks: 3,
      volumeBytes: GiB,
      sha256: imageSha256(),
    });
    expect(fetched().sort((a, b) => Number(a) - Number(b))).toEqual([0, 5, 2047]);
    expect(ebs).toHaveReceivedCommandWith(GetSnapshotBlockCommand, {
      SnapshotId: snapshotId,
      BlockIndex: 2047,
      BlockToken: 't2047',
    });
    const file = await open(join(dir, `${snapshotId}.raw`), 'r');
    const read = Buffer.alloc(blockSize);
    await file.read(read, 0, blockSize, 5 * blockSize);
    expect(read.equals(block(2))).toBe(true);
    await file.read(read, 0, blockSize, 6 * blockSize);
    expect(read.equals(Buffer.alloc(blockSize))).toBe(true);
    expect((await file.stat()).size).toBe(GiB);
    await file.close();
    expect(await readdir(dir)).toEqual([`${snapshotId}.raw`]);
  });

  it('resumes an interrupted image from the blocks on disk, fetching only the others', async () => {
    serveSnapshot();
    const interruption = new Error('connection lost');
    await expect(
      downloadSnapshotImage(new EBSClient({}), { snapshotId, volumeId }, dir, {
        concurrency: 1,
        onBlock: () => {
          throw interruption;
        },
      }),
    ).rejects.toBe(interruption);
    const progress = JSON.parse(await readFile(join(dir, `${snapshotId}.raw.part.json`), 'utf8'));
    expect(progress.done).toEqual([0]);
    ebs.resetHistory();

    const outcome = await downloadSnapshotImage(new EBSClient({}), { snapshotId, volumeId }, dir);

    expect(outcome).toMatchObject({ status: 'resumed', sha256: imageSha256() });
    expect(fetched().sort((a, b) => Number(a) - Number(b))).toEqual([5, 2047]);
  });

  it('fails on a block whose bytes do not hash to the checksum EBS returns, and gives no image its name', async () => {
    serveSnapshot({ corrupt: 5 });

    const outcome = await downloadSnapshotImage(new EBSClient({}), { snapshotId, volumeId }, dir, {
      concurrency: 1,
    });

    expect(outcome.status).toBe('failed');
    expect(outcome.reason).toContain(`block 5 of ${snapshotId}: its bytes hash to`);
    expect(await readdir(dir)).not.toContain(`${snapshotId}.raw`);
    const progress = JSON.parse(await readFile(join(dir, `${snapshotId}.raw.part.json`), 'utf8'));
    expect(progress.done).not.toContain(5);
  });

  it('refuses a listed block that cannot be one of the volume’s', async () => {
    ebs.on(ListSnapshotBlocksCommand).resolves({
      BlockSize: blockSize,
      VolumeSize: 1,
      Blocks: [{ BlockIndex: 2048, BlockToken: 'beyond' }],
    });

    await expect(downloadSnapshotImage(new EBSClient({}), { snapshotId, volumeId }, dir)).rejects.toThrow(
      /cannot be one of its 2048 blocks: index 2048/,
    );
    expect(ebs).not.toHaveReceivedCommand(GetSnapshotBlockCommand);
  });

  it('never overwrites an image already in DIR that no addendum vouches for', async () => {
    await writeFile(join(dir, `${snapshotId}.raw`), 'an analyst’s working copy');

    const outcome = await downloadSnapshotImage(new EBSClient({}), { snapshotId, volumeId }, dir);

    expect(outcome).toMatchObject({ status: 'failed' });
    expect(outcome.reason).toContain('no addendum vouches for it');
    expect(await readFile(join(dir, `${snapshotId}.raw`), 'utf8')).toBe('an analyst’s working copy');
    expect(ebs).not.toHaveReceivedCommand(ListSnapshotBlocksCommand);
  });
});

const caseId = '20261127T204003Z-i-0123456789abcdef0-dfb3';
const caller = {
  arn: 'arn:aws:sts::111122223333:assumed-role/cordon-investigator-dev/bob',
  account: '111122223333',
};
const kmsKeyArn = 'arn:aws:kms:us-east-1:111122223333:key/11111111-2222-4333-8444-555555555555';
const disks: CaseSnapshots = {
  schema: 'cordon.snapshots/1',
  caseId,
  instanceId: 'i-0123456789abcdef0',
  accountId: '111122223333',
  region: 'us-east-1',
  snapshots: [
    { volumeId, deviceName: '/dev/xvda', snapshotId, state: 'completed' },
    {
      volumeId: 'vol-0fedcba9876543210',
      deviceName: '/dev/sdf',
      snapshotId: 'snap-0fedcba9876543210',
      state: 'completed',
    },
  ],
};
const workstationId = 'i-0aaaaaaaaaaaaaaaa';
const expectNoChange = () => {
  expect(ec2).not.toHaveReceivedCommand(CreateVolumeCommand);
  expect(ec2).not.toHaveReceivedCommand(AttachVolumeCommand);
  expect(ec2).not.toHaveReceivedCommand(DetachVolumeCommand);
  expect(ec2).not.toHaveReceivedCommand(DeleteVolumeCommand);
};

function serveWorkstation(tags: { Key: string; Value: string }[] = []) {
  ec2.on(DescribeInstancesCommand).resolves({
    Reservations: [
      {
        Instances: [
          {
            InstanceId: workstationId,
            State: { Name: 'running' },
            Placement: { AvailabilityZone: 'us-east-1b' },
            Tags: tags,
            BlockDeviceMappings: [{ DeviceName: '/dev/xvda' }, { DeviceName: '/dev/xvdf' }],
          },
        ],
      },
    ],
  });
}

/** EC2's volumes as they go: available once created, attached once attached. */
function serveVolumes() {
  let n = 0;
  const attached = new Set<string>();
  ec2.on(CreateVolumeCommand).callsFake(() => ({
    VolumeId: `vol-00000000000000${(n++).toString().padStart(3, '0')}`,
    $metadata: { requestId: `create-${n}` },
  }));
  ec2.on(AttachVolumeCommand).callsFake((input: { VolumeId: string }) => {
    attached.add(input.VolumeId);
    return { $metadata: { requestId: 'attach' } };
  });
  ec2.on(DescribeVolumesCommand).callsFake((input: { VolumeIds?: string[] }) => ({
    Volumes: (input.VolumeIds ?? []).map((id) => ({
      VolumeId: id,
      State: attached.has(id) ? 'in-use' : 'available',
      Attachments: attached.has(id) ? [{ InstanceId: workstationId, State: 'attached' }] : [],
    })),
  }));
}

function attachDeps() {
  const events: { action: string; target: string; detail: string }[] = [];
  return {
    events,
    deps: {
      ec2: new EC2Client({}),
      record: async (e: { action: string; target: string; detail: string }) => {
        events.push(e);
      },
      sleep: async () => undefined,
    },
  };
}

describe('attachCaseDisks', () => {
  it('creates an encrypted, tagged volume from each snapshot in the workstation’s zone and attaches it at a free device', async () => {
    serveWorkstation();
    serveVolumes();
    const { events, deps } = attachDeps();

    const attached = await attachCaseDisks({ caseId, disks, caller, workstationId, kmsKeyArn }, deps);

    expect(ec2).toHaveReceivedCommandWith(CreateVolumeCommand, {
      SnapshotId: snapshotId,
      AvailabilityZone: 'us-east-1b',
      Encrypted: true,
      KmsKeyId: kmsKeyArn,
      VolumeType: 'gp3',
      TagSpecifications: [
        {
          ResourceType: 'volume',
          Tags: [
            { Key: 'cordon:case-id', Value: caseId },
            { Key: 'cordon:purpose', Value: 'investigation' },
            { Key: 'cordon:source-snapshot', Value: snapshotId },
            { Key: 'cordon:source-volume', Value: volumeId },
            { Key: 'cordon:workstation', Value: workstationId },
            { Key: 'cordon:investigator', Value: caller.arn },
          ],
        },
      ],
    });
    // /dev/sdf is taken (as /dev/xvdf): the next free names.
    expect(attached.map((a) => a.device)).toEqual(['/dev/sdg', '/dev/sdh']);
    expect(ec2).toHaveReceivedCommandWith(AttachVolumeCommand, {
      VolumeId: 'vol-00000000000000000',
      InstanceId: workstationId,
      Device: '/dev/sdg',
    });
    expect(attached[0]?.mount).toBe(mountLine('vol-00000000000000000'));
    expect(attached[0]?.mount).toContain('mount -o ro,noload');
    expect(events.map((e) => e.action)).toEqual([
      'ec2:CreateVolume',
      'ec2:AttachVolume',
      'ec2:CreateVolume',
      'ec2:AttachVolume',
    ]);
    expect(events[1]?.detail).toContain(`attached to ${workstationId} at /dev/sdg by ${caller.arn}`);
  });

  it('refuses the case’s own instance before any call', async () => {
    const { deps } = attachDeps();

    await expect(
      attachCaseDisks({ caseId, disks, caller, workstationId: disks.instanceId, kmsKeyArn }, deps),
    ).rejects.toThrow(`is case ${caseId}'s own instance`);
    expect(ec2.calls()).toHaveLength(0);
  });

  it('refuses an instance another case holds, and changes nothing', async () => {
    serveWorkstation([{ Key: 'cordon:case-id', Value: 'another-case' }]);
    const { deps } = attachDeps();

    await expect(attachCaseDisks({ caseId, disks, caller, workstationId, kmsKeyArn }, deps)).rejects.toThrow(
      'is held by case another-case',
    );
    expectNoChange();
  });

  it('refuses a workstation EC2 does not have in the snapshots’ region, with the fix', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .rejects(Object.assign(new Error('not found'), { name: 'InvalidInstanceID.NotFound' }));
    const { deps } = attachDeps();

    const refusal = attachCaseDisks({ caseId, disks, caller, workstationId, kmsKeyArn }, deps);

    await expect(refusal).rejects.toThrow(`There is no instance ${workstationId} in us-east-1`);
    await expect(refusal).rejects.toMatchObject({
      hint: expect.stringContaining('start the workstation in us-east-1'),
    });
    expectNoChange();
  });

  it('refuses credentials of another account than the snapshots’ when no copy is there, with the fix', async () => {
    const { deps } = attachDeps();

    const refusal = attachCaseDisks(
      { caseId, disks, caller: { ...caller, account: '444455556666' }, workstationId, kmsKeyArn },
      deps,
    );

    await expect(refusal).rejects.toThrow('are in account 111122223333 (us-east-1)');
    await expect(refusal).rejects.toMatchObject({
      hint: expect.stringContaining('snapshotCopyAccountId=444455556666'),
    });
    expect(ec2.calls()).toHaveLength(0);
  });

  it('uses the forensic account’s completed copy, under that copy’s key, from that account', async () => {
    const copyKey = 'arn:aws:kms:us-east-1:444455556666:key/99999999-2222-4333-8444-555555555555';
    const copied: CaseSnapshots = {
      ...disks,
      snapshots: disks.snapshots.map((s, i) => ({
        ...s,
        copy: {
          accountId: '444455556666',
          region: 'us-east-1',
          kmsKeyArn: copyKey,
          status: 'completed',
          snapshotId: `snap-0c0c0c0c0c0c0c0c${i}`,
        },
      })),
    };
    serveWorkstation();
    serveVolumes();
    const { deps } = attachDeps();

    await attachCaseDisks(
      { caseId, disks: copied, caller: { ...caller, account: '444455556666' }, workstationId },
      deps,
    );

    expect(ec2).toHaveReceivedCommandWith(CreateVolumeCommand, {
      SnapshotId: 'snap-0c0c0c0c0c0c0c0c0',
      KmsKeyId: copyKey,
    });
  });

  it('asks for --kms-key for the case’s own snapshots, and changes nothing', async () => {
    serveWorkstation();
    const { deps } = attachDeps();

    await expect(attachCaseDisks({ caseId, disks, caller, workstationId }, deps)).rejects.toBeInstanceOf(
      UsageError,
    );
    expectNoChange();
  });
});

describe('detachCaseDisks', () => {
  it('detaches and deletes exactly the case’s investigation volumes, and never a snapshot', async () => {
    ec2.on(DescribeVolumesCommand).callsFake((input: { VolumeIds?: string[] }) =>
      input.VolumeIds
        ? { Volumes: [{ VolumeId: input.VolumeIds[0], State: 'available' }] }
        : {
            Volumes: [
              {
                VolumeId: 'vol-0aaaaaaaaaaaaaaa1',
                State: 'in-use',
                Attachments: [{ InstanceId: workstationId, State: 'attached' }],
                Tags: [
                  { Key: 'cordon:case-id', Value: caseId },
                  { Key: 'cordon:purpose', Value: 'investigation' },
                  { Key: 'cordon:source-snapshot', Value: snapshotId },
                ],
              },
              // Listed by a filter that misread it: without the tags it is not Cordon's to delete.
              {
                VolumeId: 'vol-0aaaaaaaaaaaaaaa2',
                State: 'available',
                Tags: [{ Key: 'cordon:case-id', Value: caseId }],
              },
            ],
          },
    );
    ec2.on(DetachVolumeCommand).resolves({ $metadata: { requestId: 'detach' } });
    ec2.on(DeleteVolumeCommand).resolves({ $metadata: { requestId: 'delete' } });
    const { events, deps } = attachDeps();

    const detached = await detachCaseDisks({ caseId, caller }, deps);

    expect(ec2).toHaveReceivedCommandWith(DescribeVolumesCommand, {
      Filters: [
        { Name: 'tag:cordon:case-id', Values: [caseId] },
        { Name: 'tag:cordon:purpose', Values: ['investigation'] },
      ],
    });
    expect(ec2).toHaveReceivedCommandWith(DetachVolumeCommand, {
      VolumeId: 'vol-0aaaaaaaaaaaaaaa1',
      InstanceId: workstationId,
    });
    expect(ec2.commandCalls(DeleteVolumeCommand).map((c) => c.args[0].input.VolumeId)).toEqual([
      'vol-0aaaaaaaaaaaaaaa1',
    ]);
    expect(ec2).not.toHaveReceivedCommand(DeleteSnapshotCommand);
    expect(detached).toEqual([
      { volumeId: 'vol-0aaaaaaaaaaaaaaa1', snapshotId, detachedFrom: workstationId, status: 'deleted' },
    ]);
    expect(events.map((e) => e.action)).toEqual(['ec2:DetachVolume', 'ec2:DeleteVolume']);
  });
});

describe('addenda', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicDer = publicKey.export({ format: 'der', type: 'spki' });
  const addendum: DiskImageAddendum = {
    schema: 'cordon.addendum/1',
    kind: 'disk-image',
    caseId,
    snapshotId,
    volumeId,
    accountId: '111122223333',
    region: 'us-east-1',
    volumeBytes: GiB,
    blockSize,
    blocks: 3,
    sha256: 'a'.repeat(64),
    recordedAt: '2026-11-27T21:00:00.000Z',
    recordedBy: caller.arn,
    manifestSha256: 'b'.repeat(64),
  };
  const signed = (a: DiskImageAddendum) => ({
    addendum: a,
    signature: {
      keyId: 'k',
      signingAlgorithm: 'ECDSA_SHA_256' as const,
      messageType: 'RAW' as const,
      value: sign('sha256', Buffer.from(addendumStatement(a)), privateKey).toString('base64'),
    },
  });

  it('signs a statement that covers every field: changing any one breaks the signature', () => {
    const file = signed(addendum);
    expect(addendumSignatureValid(file, publicDer)).toBe(true);
    const changes: Partial<DiskImageAddendum>[] = [
      { sha256: 'c'.repeat(64) },
      { snapshotId: 'snap-0fedcba9876543210' },
      { volumeBytes: 2 * GiB },
      { blocks: 4 },
      { recordedBy: 'arn:aws:sts::111122223333:assumed-role/x/mallory' },
      { manifestSha256: 'd'.repeat(64) },
    ];
    for (const change of changes) {
      expect(
        addendumSignatureValid({ ...file, addendum: { ...addendum, ...change } }, publicDer),
        JSON.stringify(change),
      ).toBe(false);
    }
  });

  it('is written once, with If-None-Match, after a RAW signature with the addendum key', async () => {
    kms
      .on(SignCommand)
      .resolves({ Signature: sign('sha256', Buffer.from(addendumStatement(addendum)), privateKey) });
    s3.on(PutObjectCommand).resolves({ VersionId: 'v-1' });

    const { stored, created } = await recordAddendum(
      {
        s3: new S3Client({}),
        kms: new KMSClient({}),
        bucket: 'evidence',
        keyArn: 'arn:aws:kms:us-east-1:111122223333:key/add-1',
      },
      addendum,
    );

    expect(created).toBe(true);
    expect(kms).toHaveReceivedCommandWith(SignCommand, {
      KeyId: 'arn:aws:kms:us-east-1:111122223333:key/add-1',
      Message: Buffer.from(addendumStatement(addendum)),
      MessageType: 'RAW',
      SigningAlgorithm: 'ECDSA_SHA_256',
    });
    expect(s3).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: 'evidence',
      Key: `cases/${caseId}/addenda/disk-image-${snapshotId}.json`,
      IfNoneMatch: '*',
    });
    expect(addendumSignatureValid(stored.file, publicDer)).toBe(true);
  });

  it('keeps the first addendum when another run recorded one first', async () => {
    const first = signed({ ...addendum, recordedAt: '2026-11-27T20:00:00.000Z' });
    kms.on(SignCommand).resolves({ Signature: Buffer.from('30', 'hex') });
    s3.on(PutObjectCommand).rejects(
      Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), {
        name: 'PreconditionFailed',
        $metadata: { httpStatusCode: 412 },
      }),
    );
    s3.on(GetObjectCommand).resolves({
      Body: objectBody(JSON.stringify(first)) as never,
      VersionId: 'v-first',
    });

    const { stored, created } = await recordAddendum(
      { s3: new S3Client({}), kms: new KMSClient({}), bucket: 'evidence', keyArn: 'k' },
      addendum,
    );

    expect(created).toBe(false);
    expect(stored).toMatchObject({
      versionId: 'v-first',
      file: { addendum: { recordedAt: '2026-11-27T20:00:00.000Z' } },
    });
  });
});

describe('cordon evidence disk', () => {
  it('documents both modes in --help', async () => {
    const { code, stdout } = await cordonOnAws(['evidence', 'disk', '--help']);

    expect(code).toBe(0);
    expect(stdout).toContain('cordon evidence disk CASE --attach-to INSTANCE_ID');
    expect(stdout).toContain('cordon evidence disk CASE --detach');
    expect(stdout).toContain('cordon evidence disk CASE --image DIR');
    expect(stdout).toContain('mount -o ro,noload');
  });

  it('refuses two modes at once before any AWS call', async () => {
    const { code, stderr } = await cordonOnAws(['evidence', 'disk', caseId, '--detach', '--image', dir]);

    expect(code).toBe(2);
    expect(stderr).toContain('give exactly one of --attach-to INSTANCE_ID, --detach and --image DIR');
    expect(ec2.calls()).toHaveLength(0);
    expect(s3.calls()).toHaveLength(0);
  });

  it('refuses a workstation id that is not an instance id before any AWS call', async () => {
    const { code, stderr } = await cordonOnAws(['evidence', 'disk', caseId, '--attach-to', 'i-$(reboot)']);

    expect(code).toBe(2);
    expect(stderr).toContain('--attach-to is not an EC2 instance id');
    expect(s3.calls()).toHaveLength(0);
  });
});
