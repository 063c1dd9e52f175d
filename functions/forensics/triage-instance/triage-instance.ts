import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { DescribeAutoScalingInstancesCommand } from '@aws-sdk/client-auto-scaling';
import {
  type _InstanceType,
  DescribeAddressesCommand,
  DescribeIamInstanceProfileAssociationsCommand,
  DescribeInstanceTypesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSecurityGroupsCommand,
  DescribeVolumesCommand,
  DescribeVpcEndpointsCommand,
  type EC2Client,
  GetConsoleOutputCommand,
  GetConsoleScreenshotCommand,
  type Instance,
} from '@aws-sdk/client-ec2';
import {
  DescribeLoadBalancersCommand,
  type ElasticLoadBalancingClient,
} from '@aws-sdk/client-elastic-load-balancing';
import {
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  type ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { GetInstanceProfileCommand, type IAMClient } from '@aws-sdk/client-iam';
import { DescribeInstanceInformationCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { z } from 'zod';
import { type Case, caseSchema } from '../../core/case.js';
import type { CaseStore, Recorder } from '../../core/cases.js';
import { changeKeys } from '../../core/containment.js';
import { ssmSurvivesIsolation } from '../../core/endpoints.js';
import { describeError, InstanceNotFoundError } from '../../core/errors.js';
import { type Artifact, type EvidenceStore, evidenceJson, putObservation } from '../../core/evidence.js';
import { readInstance } from '../../core/instance.js';
import { choosePlan, endpointsOf, platformOf } from '../../core/plan.js';
import type { EniSnapshot, Plan, TriageResult } from '../../core/state.js';

export const triageInputSchema = z.object({ case: caseSchema });
export type TriageInput = z.infer<typeof triageInputSchema>;

export interface TriageDeps {
  ec2: EC2Client;
  ssm: SSMClient;
  iam: IAMClient;
  autoscaling: AutoScalingClient;
  elbv2: ElasticLoadBalancingV2Client;
  elb: ElasticLoadBalancingClient;
  evidence: Pick<EvidenceStore, 'put'>;
  recorder: Recorder;
  /** The case record: what containment, if it ran first, saved of the instance before changing it. */
  cases: Pick<CaseStore, 'get'>;
}

type Unavailable = TriageResult['unavailable'];

/** Runs a read that the account or the emulator may not offer; its absence is recorded, not fatal. */
async function optional<T>(
  api: string,
  unavailable: Unavailable,
  read: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    const e = describeError(error);
    unavailable.push({ api, reason: `${e.name}: ${e.message}` });
    return undefined;
  }
}

/** The ENIs as they are before Cordon touches them: the groups Release must put back. */
function eniSnapshots(
  interfaces: NonNullable<Instance['NetworkInterfaces']>,
  addresses: { PublicIp?: string; AllocationId?: string; AssociationId?: string }[],
): EniSnapshot[] {
  return interfaces.map((n) => {
    const eip = addresses.find((a) => a.PublicIp && a.PublicIp === n.Association?.PublicIp);
    return {
      networkInterfaceId: n.NetworkInterfaceId ?? '',
      subnetId: n.SubnetId ?? '',
      vpcId: n.VpcId ?? '',
      groups: (n.Groups ?? []).map((g) => g.GroupId ?? '').filter(Boolean),
      privateIps: (n.PrivateIpAddresses ?? []).map((p) => p.PrivateIpAddress ?? '').filter(Boolean),
      ipv6: (n.Ipv6Addresses ?? []).map((a) => a.Ipv6Address ?? '').filter(Boolean),
      ...(n.Attachment?.AttachmentId ? { attachmentId: n.Attachment.AttachmentId } : {}),
      ...(n.Attachment?.DeviceIndex !== undefined ? { deviceIndex: n.Attachment.DeviceIndex } : {}),
      ...(n.Association?.PublicIp
        ? {
            association: {
              publicIp: n.Association.PublicIp,
              ...(eip?.AllocationId ? { allocationId: eip.AllocationId } : {}),
              ...(eip?.AssociationId ? { associationId: eip.AssociationId } : {}),
            },
          }
        : {}),
    };
  });
}

async function findTargetGroups(
  elbv2: ElasticLoadBalancingV2Client,
  instance: Instance,
  unavailable: Unavailable,
): Promise<TriageResult['instance']['targetGroups']> {
  const found: TriageResult['instance']['targetGroups'] = [];
  const ips = new Set(
    (instance.NetworkInterfaces ?? []).flatMap((n) =>
      (n.PrivateIpAddresses ?? []).map((p) => p.PrivateIpAddress),
    ),
  );
  let marker: string | undefined;
  do {
    const page = await optional('elasticloadbalancing:DescribeTargetGroups', unavailable, () =>
      elbv2.send(new DescribeTargetGroupsCommand({ Marker: marker, PageSize: 400 })),
    );
    if (!page) return found;
    const candidates = (page.TargetGroups ?? []).filter(
      (tg) => tg.TargetGroupArn && (tg.VpcId === undefined || tg.VpcId === instance.VpcId),
    );
    for (const tg of candidates) {
      const health = await optional('elasticloadbalancing:DescribeTargetHealth', unavailable, () =>
        elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tg.TargetGroupArn })),
      );
      for (const d of health?.TargetHealthDescriptions ?? []) {
        const id = d.Target?.Id;
        if (id && (id === instance.InstanceId || ips.has(id))) {
          found.push({
            arn: tg.TargetGroupArn as string,
            id,
            ...(d.Target?.Port ? { port: d.Target.Port } : {}),
          });
        }
      }
    }
    marker = page.NextMarker;
  } while (marker);
  return found;
}

/**
 * Each interface's groups as they were before Cordon's: where Isolate ran first and recorded them, its
 * record, not the isolation group the interface holds now.
 */
const savedGroups = z.object({
  enis: z.array(z.object({ networkInterfaceId: z.string(), originalGroups: z.array(z.string()).nullable() })),
});

function beforeContainment(
  enis: EniSnapshot[],
  isolated: z.infer<typeof savedGroups> | undefined,
): EniSnapshot[] {
  return enis.map((e) => {
    const original = isolated?.enis.find(
      (x) => x.networkInterfaceId === e.networkInterfaceId,
    )?.originalGroups;
    return original ? { ...e, groups: original } : e;
  });
}

/**
 * Records the instance as it is before anything changes: the picture Release restores from and the
 * first piece of evidence. Reads that fail are listed as unavailable; only a missing instance is fatal.
 */
export async function triageInstance(input: TriageInput, deps: TriageDeps): Promise<TriageResult> {
  const c: Case = input.case;
  const unavailable: Unavailable = [];
  const instance = await readInstance(deps.ec2, c.instanceId);
  if (!instance)
    throw new InstanceNotFoundError(`${c.instanceId} does not exist in ${c.accountId}/${c.region}`);
  if (instance.State?.Name === 'terminated') {
    throw new InstanceNotFoundError(`${c.instanceId} is already terminated: nothing left to contain`);
  }

  const byInstance = [{ Name: 'attachment.instance-id', Values: [c.instanceId] }];
  const groupIds = [
    ...new Set(
      (instance.NetworkInterfaces ?? []).flatMap((n) => (n.Groups ?? []).map((g) => g.GroupId as string)),
    ),
  ];
  const [
    enis,
    volumes,
    association,
    addresses,
    groups,
    endpoints,
    types,
    asg,
    ssmInfo,
    classic,
    console,
    record,
  ] = await Promise.all([
    optional('ec2:DescribeNetworkInterfaces', unavailable, () =>
      deps.ec2.send(new DescribeNetworkInterfacesCommand({ Filters: byInstance })),
    ),
    // Only the sizes come from here: the volumes themselves are the instance's block device mappings.
    optional('ec2:DescribeVolumes', unavailable, () =>
      deps.ec2.send(new DescribeVolumesCommand({ Filters: byInstance })),
    ),
    optional('ec2:DescribeIamInstanceProfileAssociations', unavailable, () =>
      deps.ec2.send(
        new DescribeIamInstanceProfileAssociationsCommand({
          Filters: [
            { Name: 'instance-id', Values: [c.instanceId] },
            { Name: 'state', Values: ['associated'] },
          ],
        }),
      ),
    ),
    optional('ec2:DescribeAddresses', unavailable, () =>
      deps.ec2.send(
        new DescribeAddressesCommand({ Filters: [{ Name: 'instance-id', Values: [c.instanceId] }] }),
      ),
    ),
    groupIds.length
      ? optional('ec2:DescribeSecurityGroups', unavailable, () =>
          deps.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: groupIds })),
        )
      : undefined,
    instance.VpcId
      ? optional('ec2:DescribeVpcEndpoints', unavailable, () =>
          deps.ec2.send(
            new DescribeVpcEndpointsCommand({
              Filters: [
                { Name: 'vpc-id', Values: [instance.VpcId as string] },
                { Name: 'vpc-endpoint-state', Values: ['available'] },
              ],
            }),
          ),
        )
      : undefined,
    instance.InstanceType
      ? optional('ec2:DescribeInstanceTypes', unavailable, () =>
          deps.ec2.send(
            new DescribeInstanceTypesCommand({ InstanceTypes: [instance.InstanceType as _InstanceType] }),
          ),
        )
      : undefined,
    optional('autoscaling:DescribeAutoScalingInstances', unavailable, () =>
      deps.autoscaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [c.instanceId] })),
    ),
    optional('ssm:DescribeInstanceInformation', unavailable, () =>
      deps.ssm.send(
        new DescribeInstanceInformationCommand({
          Filters: [{ Key: 'InstanceIds', Values: [c.instanceId] }],
        }),
      ),
    ),
    optional('elasticloadbalancing:DescribeLoadBalancers (classic)', unavailable, () =>
      deps.elb.send(new DescribeLoadBalancersCommand({})),
    ),
    optional('ec2:GetConsoleOutput', unavailable, () =>
      deps.ec2.send(new GetConsoleOutputCommand({ InstanceId: c.instanceId, Latest: true })),
    ),
    deps.cases.get(c.caseId),
  ]);
  const targetGroups = await findTargetGroups(deps.elbv2, instance, unavailable);
  const screenshot = await optional('ec2:GetConsoleScreenshot', unavailable, () =>
    deps.ec2.send(new GetConsoleScreenshotCommand({ InstanceId: c.instanceId, WakeUp: false })),
  );

  const profileAssociation = association?.IamInstanceProfileAssociations?.[0];
  const profileArn = profileAssociation?.IamInstanceProfile?.Arn ?? instance.IamInstanceProfile?.Arn;
  let roleNames: string[] = [];
  if (profileArn) {
    const name = profileArn.split('/').pop() ?? '';
    const profile = await optional('iam:GetInstanceProfile', unavailable, () =>
      deps.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name })),
    );
    roleNames = (profile?.InstanceProfile?.Roles ?? []).map((r) => r.RoleName ?? '').filter(Boolean);
  }

  const info = ssmInfo?.InstanceInformationList?.find((i) => i.InstanceId === c.instanceId);
  const ssmManaged: Plan['ssmManaged'] = ssmInfo === undefined ? 'unknown' : info?.PingStatus === 'Online';
  const vpcEndpoints: TriageResult['instance']['vpcEndpoints'] = endpointsOf(
    endpoints?.VpcEndpoints ?? [],
    instance.VpcId,
  );
  const platform = platformOf(instance);
  const plan = choosePlan({ platform, ssmManaged, survives: ssmSurvivesIsolation(vpcEndpoints, c.region) });
  const memoryMiB = types?.InstanceTypes?.[0]?.MemoryInfo?.SizeInMiB;

  const summary: TriageResult['instance'] = {
    instanceId: c.instanceId,
    state: instance.State?.Name ?? 'unknown',
    ...(instance.VpcId ? { vpcId: instance.VpcId } : {}),
    ...(instance.SubnetId ? { subnetId: instance.SubnetId } : {}),
    ...(instance.ImageId ? { imageId: instance.ImageId } : {}),
    ...(instance.InstanceType ? { instanceType: instance.InstanceType } : {}),
    ...(instance.LaunchTime ? { launchTime: new Date(instance.LaunchTime).toISOString() } : {}),
    platform,
    volumes: (instance.BlockDeviceMappings ?? [])
      .filter((b) => b.Ebs?.VolumeId)
      .map((b) => {
        const volume = volumes?.Volumes?.find((v) => v.VolumeId === b.Ebs?.VolumeId);
        return {
          volumeId: b.Ebs?.VolumeId as string,
          deviceName: b.DeviceName ?? '',
          ...(volume?.Size !== undefined ? { sizeGiB: volume.Size } : {}),
          deleteOnTermination: b.Ebs?.DeleteOnTermination ?? false,
        };
      }),
    enis: beforeContainment(
      eniSnapshots(instance.NetworkInterfaces ?? [], addresses?.Addresses ?? []),
      savedGroups.safeParse(record?.changes?.[changeKeys.isolate]).data,
    ),
    ...(profileArn && profileAssociation?.AssociationId
      ? { instanceProfile: { arn: profileArn, associationId: profileAssociation.AssociationId, roleNames } }
      : {}),
    ...(asg?.AutoScalingInstances?.[0]?.AutoScalingGroupName
      ? { autoScalingGroup: asg.AutoScalingInstances[0].AutoScalingGroupName }
      : {}),
    targetGroups,
    classicLoadBalancers: (classic?.LoadBalancerDescriptions ?? [])
      .filter((lb) => lb.Instances?.some((i) => i.InstanceId === c.instanceId))
      .map((lb) => lb.LoadBalancerName ?? '')
      .filter(Boolean),
    ...(memoryMiB ? { memoryGiB: Math.ceil(memoryMiB / 1024) } : {}),
    vpcEndpoints,
  };

  const artifacts: Artifact[] = [];
  artifacts.push(
    await putObservation(
      deps.evidence,
      deps.recorder,
      'triage.json',
      evidenceJson({
        caseId: c.caseId,
        capturedAt: new Date().toISOString(),
        summary,
        plan,
        unavailable,
        // What containment saved of the instance before changing it, where it ran before this look.
        ...(record?.changes ? { beforeContainment: record.changes } : {}),
        raw: {
          instance,
          networkInterfaces: enis?.NetworkInterfaces,
          volumes: volumes?.Volumes,
          instanceProfileAssociation: profileAssociation,
          addresses: addresses?.Addresses,
          securityGroups: groups?.SecurityGroups,
          vpcEndpoints: endpoints?.VpcEndpoints,
          autoScaling: asg?.AutoScalingInstances,
          ssm: info,
        },
      }),
      { contentType: 'application/json' },
    ),
  );
  if (console?.Output) {
    artifacts.push(
      await putObservation(
        deps.evidence,
        deps.recorder,
        'console-output.txt',
        Buffer.from(console.Output, 'base64'),
        {
          contentType: 'text/plain; charset=utf-8',
        },
      ),
    );
  }
  if (screenshot?.ImageData) {
    artifacts.push(
      await putObservation(
        deps.evidence,
        deps.recorder,
        'console-screenshot.jpg',
        Buffer.from(screenshot.ImageData, 'base64'),
        {
          contentType: 'image/jpeg',
        },
      ),
    );
  }
  for (const u of unavailable)
    await deps.recorder.note(u.api, 'skipped', { detail: `unavailable: ${u.reason}` });
  await deps.recorder.note('plan chosen', 'info', {
    detail: `${plan.order}, memory ${plan.memory}: ${plan.reason}`,
  });
  return { plan, instance: summary, unavailable, artifacts };
}
