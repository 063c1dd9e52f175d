/**
 * A case's disks in the investigator's hands: its snapshots as volumes attached to a forensic
 * workstation (and detached and deleted again), or as raw images on disk. What the case's snapshots
 * are comes from its `snapshots.json` evidence, the version the sealed manifest names.
 */
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  type EC2Client,
  type Instance,
  type Volume,
} from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { instanceIdSchema, tagKeys } from '../../functions/core/case.js';
import { awsErrorCode } from '../../functions/core/errors.js';
import { caseFolder, sha256 } from '../../functions/core/evidence.js';
import { snapshotIdSchema, volumeIdSchema } from '../../functions/core/snapshots.js';
import { CliError, exitCodes, UsageError } from './errors.js';
import { NotSealedError, readObject, readSealedCase, type SealedCase } from './evidence.js';
import { safe } from './output.js';

/** Raised before any change: the workstation is not one the case's volumes may be attached to. */
export class WorkstationRefusedError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, hint, exitCodes.failed);
  }
}

/** The tag a volume made for an investigator carries as its `cordon:purpose`. */
export const investigationPurpose = 'investigation';
export const investigatorTag = 'cordon:investigator';
export const sourceSnapshotTag = 'cordon:source-snapshot';
export const workstationTag = 'cordon:workstation';

const snapshotsDocumentSchema = z.looseObject({
  schema: z.literal('cordon.snapshots/1'),
  caseId: z.string(),
  instanceId: instanceIdSchema,
  accountId: z.string().regex(/^\d{12}$/),
  region: z.string().regex(/^[a-z]{2}(?:-[a-z]+)+-\d$/),
  snapshots: z.array(
    z.looseObject({
      volumeId: volumeIdSchema,
      deviceName: z.string().max(64).optional(),
      snapshotId: snapshotIdSchema,
      sizeGiB: z.number().int().nonnegative().optional(),
      state: z.string(),
      copy: z
        .looseObject({
          accountId: z.string().regex(/^\d{12}$/),
          region: z.string(),
          kmsKeyArn: z.string(),
          status: z.enum(['pending', 'completed', 'failed']),
          snapshotId: snapshotIdSchema.optional(),
        })
        .optional(),
    }),
  ),
});
export type CaseSnapshots = z.infer<typeof snapshotsDocumentSchema>;

/** The case's snapshots and, when it is sealed, the manifest they are vouched for by. */
export interface CaseDisks {
  snapshots: CaseSnapshots;
  sealed?: SealedCase;
}

/**
 * Reads `snapshots.json` by the version the sealed manifest records (its SHA-256 checked), or, for a
 * case not sealed yet, its current version. A case without one took no snapshot (yet).
 */
export async function readCaseDisks(s3: S3Client, bucket: string, caseId: string): Promise<CaseDisks> {
  const key = `${caseFolder(caseId)}snapshots.json`;
  let sealed: SealedCase | undefined;
  try {
    sealed = await readSealedCase(s3, bucket, caseId);
  } catch (error) {
    if (!(error instanceof NotSealedError)) throw error;
  }
  const listed = sealed?.manifest.artifacts.find((a) => a.key === key);
  if (sealed && !listed) {
    throw new CliError(
      `Case ${caseId} took no snapshot: its manifest lists no snapshots.json.`,
      undefined,
      1,
    );
  }
  let body: Buffer;
  try {
    body = (await readObject(s3, bucket, key, listed?.versionId)).body;
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey' || awsErrorCode(error) === 'NoSuchKey')
      throw new CliError(`Case ${caseId} has no snapshots.json (yet).`, undefined, exitCodes.failed);
    throw error;
  }
  if (listed) {
    if (sha256(body).hex !== listed.sha256)
      throw new CliError(
        `snapshots.json of case ${caseId} does not hash to what the sealed manifest records.`,
        `Run cordon evidence verify ${caseId}.`,
        exitCodes.failed,
      );
  }
  let parsed: ReturnType<typeof snapshotsDocumentSchema.safeParse>;
  try {
    parsed = snapshotsDocumentSchema.safeParse(JSON.parse(body.toString('utf8')));
  } catch {
    throw new CliError(`snapshots.json of case ${caseId} is not JSON.`, undefined, exitCodes.failed);
  }
  if (!parsed.success || parsed.data.caseId !== caseId)
    throw new CliError(`snapshots.json of case ${caseId} is not a Cordon snapshot list.`, undefined, 1);
  return { snapshots: parsed.data, ...(sealed ? { sealed } : {}) };
}

/** Which snapshot of each volume a caller in `account` can read: the case's own, or its copy there. */
export interface DiskSource {
  volumeId: string;
  /** The case's snapshot as snapshots.json records it. */
  caseSnapshotId: string;
  /** The snapshot to read: the case's own, or its completed copy in the forensic account. */
  snapshotId: string;
  accountId: string;
  region: string;
  /** The forensic key the copy is encrypted under (copies only). */
  kmsKeyArn?: string;
  deviceName?: string;
  copy: boolean;
}

/**
 * The snapshot of each of the case's volumes that `account` holds: the original when the case is
 * this account's, otherwise the completed copy in this account. Anything else is refused, before any
 * change, with how to get there.
 */
export function sourcesFor(disks: CaseSnapshots, account: string): DiskSource[] {
  if (disks.snapshots.length === 0)
    throw new CliError(`Case ${disks.caseId} has no snapshot: the instance had no EBS volume.`, undefined, 1);
  return disks.snapshots.map((s) => {
    const base = { volumeId: s.volumeId, caseSnapshotId: s.snapshotId, region: disks.region };
    const device = s.deviceName ? { deviceName: s.deviceName } : {};
    if (disks.accountId === account) {
      return { ...base, ...device, snapshotId: s.snapshotId, accountId: account, copy: false };
    }
    const copy = s.copy;
    if (copy?.accountId === account && copy.status === 'completed' && copy.snapshotId) {
      return {
        ...base,
        ...device,
        snapshotId: copy.snapshotId,
        accountId: account,
        kmsKeyArn: copy.kmsKeyArn,
        copy: true,
      };
    }
    throw new WorkstationRefusedError(
      `The snapshots of case ${disks.caseId} are in account ${disks.accountId} (${disks.region}); your credentials are account ${account}'s, which holds ${copy?.accountId === account ? `a copy of ${s.snapshotId} that is ${copy.status}` : `no copy of ${s.snapshotId}`}.`,
      copy?.accountId === account
        ? 'Wait for the copy to complete (cordon status CASE), or work from the case account.'
        : `Run from account ${disks.accountId}, or deploy Cordon with snapshotCopyAccountId=${account} and snapshotCopyKmsKeyArn (a key there) so that cases' snapshots are copied to this forensic account.`,
    );
  });
}

/** Device names AWS recommends for attached EBS data volumes on Linux: /dev/sdf to /dev/sdp. */
const linuxDevices = Array.from({ length: 11 }, (_, i) => `/dev/sd${String.fromCharCode(102 + i)}`);

/** The free names among the recommended ones: none in use on the instance, under either spelling. */
export function freeDevices(instance: Instance): string[] {
  const taken = new Set(
    (instance.BlockDeviceMappings ?? []).map((b) => (b.DeviceName ?? '').replace(/^\/dev\/xvd/, '/dev/sd')),
  );
  return linuxDevices.filter((d) => !taken.has(d));
}

/**
 * A Linux command that mounts an attached evidence volume's first partition read-only without
 * replaying its journal (`noload`, ext3/ext4). On Nitro instances the volume appears as an NVMe
 * device whatever name it was attached under; udev names it by the volume id (without its dash).
 */
export function mountLine(volumeId: string): string {
  const byId = `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`;
  return `sudo mkdir -p /mnt/${volumeId} && sudo mount -o ro,noload ${byId}-part1 /mnt/${volumeId}`;
}

export interface AttachDeps {
  ec2: EC2Client;
  /** Writes one event on the case's timeline (the investigators' partition). */
  record: (event: {
    action: string;
    status: 'ok' | 'failed' | 'info';
    target: string;
    requestId?: string;
    detail: string;
  }) => Promise<void>;
  sleep: (ms: number) => Promise<void>;
  /** Polls of a volume's state before giving up (default 60, one per `pollMs`). */
  polls?: number;
  pollMs?: number;
}

export interface AttachRequest {
  caseId: string;
  disks: CaseSnapshots;
  caller: { arn: string; account: string };
  workstationId: string;
  /** The forensic key for volumes made from the case's own snapshots (copies carry theirs). */
  kmsKeyArn?: string;
}

export interface AttachedVolume {
  volumeId: string;
  snapshotId: string;
  sourceVolumeId: string;
  device: string;
  mount: string;
  status: 'attached' | 'already-attached';
}

const kmsKeyArnSchema = z
  .string()
  .regex(
    /^arn:aws(?:-[a-z]+)*:kms:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:key\/[0-9a-f-]{36}$|^arn:aws(?:-[a-z]+)*:kms:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:key\/mrk-[0-9a-f]{32}$/,
  );

/** `--kms-key`: a KMS key ARN, checked before any call. */
export function parseKmsKeyArn(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!kmsKeyArnSchema.safeParse(value).success)
    throw new UsageError('--kms-key is the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)');
  return value;
}

export function parseInstanceId(value: string | undefined, option: string): string {
  const parsed = instanceIdSchema.safeParse(value);
  if (!parsed.success) throw new UsageError(`${option} is not an EC2 instance id (i-0123456789abcdef0)`);
  return parsed.data;
}

async function describeWorkstation(ec2: EC2Client, id: string, region: string): Promise<Instance> {
  try {
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    const instance = out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === id);
    if (instance) return instance;
  } catch (error) {
    if (awsErrorCode(error) !== 'InvalidInstanceID.NotFound') throw error;
  }
  throw new WorkstationRefusedError(
    `There is no instance ${id} in ${region}, where the case's snapshots are, in this account.`,
    `A volume can only be attached in its own region and account: start the workstation in ${region}.`,
  );
}

async function caseVolumes(ec2: EC2Client, caseId: string): Promise<Volume[]> {
  const volumes: Volume[] = [];
  let token: string | undefined;
  do {
    const out = await ec2.send(
      new DescribeVolumesCommand({
        Filters: [
          { Name: `tag:${tagKeys.caseId}`, Values: [caseId] },
          { Name: `tag:${tagKeys.purpose}`, Values: [investigationPurpose] },
        ],
        ...(token ? { NextToken: token } : {}),
      }),
    );
    volumes.push(...(out.Volumes ?? []));
    token = out.NextToken;
  } while (token);
  return volumes;
}

const tagOf = (v: Volume, key: string) => v.Tags?.find((t) => t.Key === key)?.Value;

async function waitFor(
  deps: AttachDeps,
  volumeId: string,
  done: (v: Volume) => boolean,
  what: string,
): Promise<Volume> {
  for (let i = 0; i < (deps.polls ?? 60); i += 1) {
    const out = await deps.ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }));
    const v = out.Volumes?.[0];
    if (v && done(v)) return v;
    if (v?.State === 'error') throw new CliError(`${volumeId} entered the error state while ${what}.`);
    await deps.sleep(deps.pollMs ?? 2000);
  }
  throw new CliError(`${volumeId} is still not ${what}; check it with aws ec2 describe-volumes.`);
}

/**
 * For each of the case's volumes: a new volume from its snapshot (or the forensic account's copy) in
 * the workstation's Availability Zone, encrypted under the forensic key, tagged with the case and the
 * investigator, attached at a free device name, and each attachment on the case's timeline. Refused
 * before any change: the case's own instance or any instance a case holds, a workstation this
 * account does not have in the snapshots' region, a case whose snapshots this account cannot read,
 * no forensic key, too few free device names. A volume already attached for this case is reported,
 * not made twice.
 */
export async function attachCaseDisks(req: AttachRequest, deps: AttachDeps): Promise<AttachedVolume[]> {
  const { disks, caller } = req;
  if (req.workstationId === disks.instanceId) {
    throw new WorkstationRefusedError(
      `${req.workstationId} is case ${req.caseId}'s own instance: its evidence is never attached to it.`,
      'Attach to a forensic workstation: an instance you run for analysis, outside the suspect network.',
    );
  }
  const sources = sourcesFor(disks, caller.account);
  const workstation = await describeWorkstation(deps.ec2, req.workstationId, disks.region);
  const held = workstation.Tags?.find((t) => t.Key === tagKeys.caseId)?.Value;
  if (held) {
    throw new WorkstationRefusedError(
      `${req.workstationId} is held by case ${safe(held, 80)} (tag ${tagKeys.caseId}): evidence is never attached to an instance under investigation.`,
      'Attach to a forensic workstation.',
    );
  }
  const state = workstation.State?.Name;
  if (state !== 'running' && state !== 'stopped') {
    throw new WorkstationRefusedError(
      `${req.workstationId} is ${safe(state)}: a volume attaches to a running or stopped instance.`,
    );
  }
  const zone = workstation.Placement?.AvailabilityZone;
  if (!zone) throw new CliError(`EC2 reports no Availability Zone for ${req.workstationId}.`);
  const needsKey = sources.some((s) => !s.kmsKeyArn);
  if (needsKey && !req.kmsKeyArn) {
    throw new UsageError(
      `--kms-key is required: case ${req.caseId}'s snapshots are read in their own account, where Cordon keeps no forensic key.`,
      'Pass the ARN of the KMS key the evidence volumes are to be encrypted under (one the investigator role may use through EC2).',
    );
  }

  const existing = await caseVolumes(deps.ec2, req.caseId);
  const free = freeDevices(workstation);
  const out: AttachedVolume[] = [];
  for (const source of sources) {
    const already = existing.find(
      (v) =>
        tagOf(v, sourceSnapshotTag) === source.snapshotId &&
        v.Attachments?.some((a) => a.InstanceId === req.workstationId && a.State === 'attached'),
    );
    if (already?.VolumeId) {
      const device = already.Attachments?.find((a) => a.InstanceId === req.workstationId)?.Device ?? '?';
      out.push({
        volumeId: already.VolumeId,
        snapshotId: source.snapshotId,
        sourceVolumeId: source.volumeId,
        device,
        mount: mountLine(already.VolumeId),
        status: 'already-attached',
      });
      continue;
    }
    const device = free.shift();
    if (!device) {
      throw new CliError(
        `${req.workstationId} has no free device name left among /dev/sdf to /dev/sdp for ${source.snapshotId}.`,
        `Detach something (cordon evidence disk ${req.caseId} --detach detaches this case's volumes).`,
      );
    }
    const kmsKeyArn = source.kmsKeyArn ?? (req.kmsKeyArn as string);
    const created = await deps.ec2.send(
      new CreateVolumeCommand({
        SnapshotId: source.snapshotId,
        AvailabilityZone: zone,
        Encrypted: true,
        KmsKeyId: kmsKeyArn,
        VolumeType: 'gp3',
        TagSpecifications: [
          {
            ResourceType: 'volume',
            Tags: [
              { Key: tagKeys.caseId, Value: req.caseId },
              { Key: tagKeys.purpose, Value: investigationPurpose },
              { Key: sourceSnapshotTag, Value: source.snapshotId },
              { Key: 'cordon:source-volume', Value: source.volumeId },
              { Key: workstationTag, Value: req.workstationId },
              // A tag value holds 256 characters; an assumed-role ARN fits, a long session name is cut.
              { Key: investigatorTag, Value: caller.arn.slice(0, 256) },
            ],
          },
        ],
      }),
    );
    const volumeId = created.VolumeId;
    if (!volumeId) throw new CliError(`CreateVolume from ${source.snapshotId} returned no volume id.`);
    await deps.record({
      action: 'ec2:CreateVolume',
      status: 'ok',
      target: volumeId,
      ...(created.$metadata?.requestId ? { requestId: created.$metadata?.requestId } : {}),
      detail: `${volumeId} from ${source.snapshotId}${source.copy ? ` (copy of ${source.caseSnapshotId})` : ''} in ${zone}, encrypted under ${kmsKeyArn}, for ${caller.arn}`,
    });
    await waitFor(deps, volumeId, (v) => v.State === 'available', 'available');
    const attached = await deps.ec2.send(
      new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: req.workstationId, Device: device }),
    );
    await deps.record({
      action: 'ec2:AttachVolume',
      status: 'ok',
      target: volumeId,
      ...(attached.$metadata?.requestId ? { requestId: attached.$metadata?.requestId } : {}),
      detail: `${volumeId} (${source.volumeId}'s snapshot ${source.snapshotId}) attached to ${req.workstationId} at ${device} by ${caller.arn}`,
    });
    await waitFor(
      deps,
      volumeId,
      (v) =>
        v.Attachments?.some((a) => a.InstanceId === req.workstationId && a.State === 'attached') ?? false,
      'attached',
    );
    out.push({
      volumeId,
      snapshotId: source.snapshotId,
      sourceVolumeId: source.volumeId,
      device,
      mount: mountLine(volumeId),
      status: 'attached',
    });
  }
  return out;
}

export interface DetachedVolume {
  volumeId: string;
  snapshotId: string;
  detachedFrom?: string;
  status: 'deleted';
}

/**
 * Detaches and deletes exactly the volumes `--attach-to` made for the case: those tagged with the case
 * and the investigation purpose. Snapshots are never touched. Each detach and delete goes on the
 * case's timeline.
 */
export async function detachCaseDisks(
  req: { caseId: string; caller: { arn: string } },
  deps: AttachDeps,
): Promise<DetachedVolume[]> {
  const volumes = await caseVolumes(deps.ec2, req.caseId);
  const out: DetachedVolume[] = [];
  for (const v of volumes) {
    const volumeId = v.VolumeId as string;
    // The filter asked for these tags; a volume without them is not ours to delete, whatever EC2 said.
    if (tagOf(v, tagKeys.caseId) !== req.caseId || tagOf(v, tagKeys.purpose) !== investigationPurpose)
      continue;
    const attachment = v.Attachments?.find((a) => a.State === 'attached' || a.State === 'attaching');
    if (attachment?.InstanceId) {
      const detached = await deps.ec2.send(
        new DetachVolumeCommand({ VolumeId: volumeId, InstanceId: attachment.InstanceId }),
      );
      await deps.record({
        action: 'ec2:DetachVolume',
        status: 'ok',
        target: volumeId,
        ...(detached.$metadata?.requestId ? { requestId: detached.$metadata?.requestId } : {}),
        detail: `${volumeId} detached from ${attachment.InstanceId} by ${req.caller.arn}`,
      });
      await waitFor(deps, volumeId, (x) => x.State === 'available', 'detached');
    }
    const deleted = await deps.ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
    await deps.record({
      action: 'ec2:DeleteVolume',
      status: 'ok',
      target: volumeId,
      ...(deleted.$metadata?.requestId ? { requestId: deleted.$metadata?.requestId } : {}),
      detail: `${volumeId} (made from ${tagOf(v, sourceSnapshotTag) ?? 'a snapshot'}, which stays) deleted by ${req.caller.arn}`,
    });
    out.push({
      volumeId,
      snapshotId: tagOf(v, sourceSnapshotTag) ?? '',
      ...(attachment?.InstanceId ? { detachedFrom: attachment.InstanceId } : {}),
      status: 'deleted',
    });
  }
  return out;
}
