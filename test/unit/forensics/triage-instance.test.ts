import { AutoScalingClient, DescribeAutoScalingInstancesCommand } from '@aws-sdk/client-auto-scaling';
import {
  DescribeAddressesCommand,
  DescribeIamInstanceProfileAssociationsCommand,
  DescribeInstancesCommand,
  DescribeInstanceTypesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSecurityGroupsCommand,
  DescribeVolumesCommand,
  DescribeVpcEndpointsCommand,
  EC2Client,
  GetConsoleOutputCommand,
  GetConsoleScreenshotCommand,
} from '@aws-sdk/client-ec2';
import {
  DescribeLoadBalancersCommand,
  ElasticLoadBalancingClient,
} from '@aws-sdk/client-elastic-load-balancing';
import {
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { GetInstanceProfileCommand, IAMClient } from '@aws-sdk/client-iam';
import { DescribeInstanceInformationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { CaseRecord } from '../../../functions/core/cases.js';
import { changeKeys } from '../../../functions/core/containment.js';
import { InstanceNotFoundError } from '../../../functions/core/errors.js';
import type { Artifact } from '../../../functions/core/evidence.js';
import { choosePlan } from '../../../functions/core/plan.js';
import { triageInstance } from '../../../functions/forensics/triage-instance/triage-instance.js';
import { MemoryTimeline, sampleCase } from '../../support/core-fakes.js';

const ec2 = mockClient(EC2Client);
const ssm = mockClient(SSMClient);
const iam = mockClient(IAMClient);
const autoscaling = mockClient(AutoScalingClient);
const elbv2 = mockClient(ElasticLoadBalancingV2Client);
const elb = mockClient(ElasticLoadBalancingClient);

const instanceId = sampleCase.instanceId;
const instance = {
  InstanceId: instanceId,
  State: { Name: 'running' as const },
  VpcId: 'vpc-1',
  SubnetId: 'subnet-1',
  InstanceType: 't3.large' as const,
  PlatformDetails: 'Linux/UNIX',
  IamInstanceProfile: { Arn: 'arn:aws:iam::123456789012:instance-profile/web-profile' },
  BlockDeviceMappings: [
    { DeviceName: '/dev/xvda', Ebs: { VolumeId: 'vol-1', DeleteOnTermination: true } },
    { DeviceName: '/dev/sdf', Ebs: { VolumeId: 'vol-2', DeleteOnTermination: false } },
  ],
  NetworkInterfaces: [
    {
      NetworkInterfaceId: 'eni-1',
      SubnetId: 'subnet-1',
      VpcId: 'vpc-1',
      Groups: [{ GroupId: 'sg-web' }],
      PrivateIpAddresses: [{ PrivateIpAddress: '10.0.1.5' }],
      Attachment: { AttachmentId: 'eni-attach-1', DeviceIndex: 0 },
      Association: { PublicIp: '203.0.113.9' },
    },
    {
      NetworkInterfaceId: 'eni-2',
      SubnetId: 'subnet-2',
      VpcId: 'vpc-1',
      Groups: [{ GroupId: 'sg-web' }, { GroupId: 'sg-admin' }],
      PrivateIpAddresses: [{ PrivateIpAddress: '10.0.2.5' }],
      Ipv6Addresses: [{ Ipv6Address: '2001:db8::5' }],
      Attachment: { AttachmentId: 'eni-attach-2', DeviceIndex: 1 },
    },
  ],
};

function stored(name: string): Artifact {
  return {
    key: `cases/${sampleCase.caseId}/${name}`,
    versionId: 'v1',
    bytes: 1,
    sha256: 'a'.repeat(64),
    contentType: 'x',
  };
}

function deps(timeline = new MemoryTimeline(), record?: CaseRecord) {
  const put = vi.fn(async (_r: unknown, name: string, _body?: Uint8Array | string) => stored(name));
  return {
    timeline,
    put,
    deps: {
      ec2: new EC2Client({}),
      ssm: new SSMClient({}),
      iam: new IAMClient({}),
      autoscaling: new AutoScalingClient({}),
      elbv2: new ElasticLoadBalancingV2Client({}),
      elb: new ElasticLoadBalancingClient({}),
      evidence: { put },
      recorder: timeline.recorder(sampleCase.caseId, 'triage-instance'),
      cases: { get: async () => record },
    },
  };
}

beforeEach(() => {
  for (const m of [ec2, ssm, iam, autoscaling, elbv2, elb]) m.reset();
  ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [instance] }] });
  ec2.on(DescribeNetworkInterfacesCommand).resolves({ NetworkInterfaces: [] });
  ec2.on(DescribeVolumesCommand).resolves({
    Volumes: [
      { VolumeId: 'vol-1', Size: 8 },
      { VolumeId: 'vol-2', Size: 20 },
    ],
  });
  ec2.on(DescribeIamInstanceProfileAssociationsCommand).resolves({
    IamInstanceProfileAssociations: [
      {
        AssociationId: 'iip-assoc-1',
        IamInstanceProfile: { Arn: instance.IamInstanceProfile.Arn },
        State: 'associated',
      },
    ],
  });
  ec2.on(DescribeAddressesCommand).resolves({
    Addresses: [{ PublicIp: '203.0.113.9', AllocationId: 'eipalloc-1', AssociationId: 'eipassoc-1' }],
  });
  ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [] });
  ec2.on(DescribeVpcEndpointsCommand).resolves({ VpcEndpoints: [] });
  ec2.on(DescribeInstanceTypesCommand).resolves({ InstanceTypes: [{ MemoryInfo: { SizeInMiB: 8192 } }] });
  ec2.on(GetConsoleOutputCommand).resolves({ Output: Buffer.from('login: ').toString('base64') });
  ec2
    .on(GetConsoleScreenshotCommand)
    .rejects(Object.assign(new Error('not supported'), { name: 'UnsupportedOperation' }));
  autoscaling.on(DescribeAutoScalingInstancesCommand).resolves({
    AutoScalingInstances: [{ InstanceId: instanceId, AutoScalingGroupName: 'web-asg' } as never],
  });
  elbv2.on(DescribeTargetGroupsCommand).resolves({
    TargetGroups: [
      { TargetGroupArn: 'arn:tg/by-id', VpcId: 'vpc-1' },
      { TargetGroupArn: 'arn:tg/by-ip', VpcId: 'vpc-1' },
      { TargetGroupArn: 'arn:tg/other-vpc', VpcId: 'vpc-9' },
    ],
  });
  elbv2.on(DescribeTargetHealthCommand, { TargetGroupArn: 'arn:tg/by-id' }).resolves({
    TargetHealthDescriptions: [
      { Target: { Id: instanceId, Port: 443 } },
      { Target: { Id: 'i-0fffffffffffffff0' } },
    ],
  });
  elbv2.on(DescribeTargetHealthCommand, { TargetGroupArn: 'arn:tg/by-ip' }).resolves({
    TargetHealthDescriptions: [{ Target: { Id: '10.0.2.5', Port: 8080 } }],
  });
  elb.on(DescribeLoadBalancersCommand).resolves({
    LoadBalancerDescriptions: [{ LoadBalancerName: 'classic-web', Instances: [{ InstanceId: instanceId }] }],
  });
  iam
    .on(GetInstanceProfileCommand)
    .resolves({ InstanceProfile: { Roles: [{ RoleName: 'web-role' }] } as never });
  ssm.on(DescribeInstanceInformationCommand).resolves({
    InstanceInformationList: [{ InstanceId: instanceId, PingStatus: 'Online' }],
  });
});

describe('triageInstance', () => {
  it('records every ENI with its groups, addresses and Elastic IP for release', async () => {
    const { deps: d } = deps();
    const result = await triageInstance({ case: sampleCase }, d);
    expect(result.instance.enis).toEqual([
      {
        networkInterfaceId: 'eni-1',
        subnetId: 'subnet-1',
        vpcId: 'vpc-1',
        groups: ['sg-web'],
        privateIps: ['10.0.1.5'],
        ipv6: [],
        attachmentId: 'eni-attach-1',
        deviceIndex: 0,
        association: { publicIp: '203.0.113.9', allocationId: 'eipalloc-1', associationId: 'eipassoc-1' },
      },
      {
        networkInterfaceId: 'eni-2',
        subnetId: 'subnet-2',
        vpcId: 'vpc-1',
        groups: ['sg-web', 'sg-admin'],
        privateIps: ['10.0.2.5'],
        ipv6: ['2001:db8::5'],
        attachmentId: 'eni-attach-2',
        deviceIndex: 1,
      },
    ]);
  });

  it('records each ENI with the groups it had before containment, and what containment saved, when it runs after it', async () => {
    const isolated = {
      groups: [],
      enis: [
        { networkInterfaceId: 'eni-1', vpcId: 'vpc-1', originalGroups: ['sg-app'] },
        { networkInterfaceId: 'eni-2', vpcId: 'vpc-1', originalGroups: null },
      ],
      elasticIps: [],
      naclEntries: [],
    };
    const record = {
      ...sampleCase,
      status: 'open',
      updatedAt: sampleCase.openedAt,
      findingIds: [],
      changes: { [changeKeys.isolate]: isolated },
    } as CaseRecord;
    const { deps: d, put } = deps(new MemoryTimeline(), record);
    const result = await triageInstance({ case: sampleCase }, d);
    // eni-1's own groups as Isolate saved them; eni-2 has no saved originals, so it shows what it holds.
    expect(result.instance.enis.map((e) => [e.networkInterfaceId, e.groups])).toEqual([
      ['eni-1', ['sg-app']],
      ['eni-2', ['sg-web', 'sg-admin']],
    ]);
    const evidence = JSON.parse(Buffer.from(put.mock.calls[0]?.[2] as Uint8Array).toString());
    expect(evidence.beforeContainment).toEqual({ [changeKeys.isolate]: isolated });
  });

  it('finds the instance in target groups by id and by IP, in its own VPC only', async () => {
    const { deps: d } = deps();
    const result = await triageInstance({ case: sampleCase }, d);
    expect(result.instance.targetGroups).toEqual([
      { arn: 'arn:tg/by-id', id: instanceId, port: 443 },
      { arn: 'arn:tg/by-ip', id: '10.0.2.5', port: 8080 },
    ]);
    expect(elbv2).not.toHaveReceivedCommandWith(DescribeTargetHealthCommand, {
      TargetGroupArn: 'arn:tg/other-vpc',
    });
  });

  it('records the Auto Scaling group, the classic load balancer, the profile and its roles', async () => {
    const { deps: d } = deps();
    const { instance: i } = await triageInstance({ case: sampleCase }, d);
    expect(i.autoScalingGroup).toBe('web-asg');
    expect(i.classicLoadBalancers).toEqual(['classic-web']);
    expect(i.instanceProfile).toEqual({
      arn: instance.IamInstanceProfile.Arn,
      associationId: 'iip-assoc-1',
      roleNames: ['web-role'],
    });
    expect(i.memoryGiB).toBe(8);
    expect(i.volumes).toEqual([
      { volumeId: 'vol-1', deviceName: '/dev/xvda', sizeGiB: 8, deleteOnTermination: true },
      { volumeId: 'vol-2', deviceName: '/dev/sdf', sizeGiB: 20, deleteOnTermination: false },
    ]);
  });

  it('stores the before picture and the console output as evidence', async () => {
    const { deps: d, put } = deps();
    const result = await triageInstance({ case: sampleCase }, d);
    expect(put.mock.calls.map((c) => c[1])).toEqual(['triage.json', 'console-output.txt']);
    expect(Buffer.from(put.mock.calls[1]?.[2] as Uint8Array).toString()).toBe('login: ');
    expect(result.artifacts.map((a) => a.key)).toEqual([
      `cases/${sampleCase.caseId}/triage.json`,
      `cases/${sampleCase.caseId}/console-output.txt`,
    ]);
  });

  it('lists an API the account does not offer as unavailable instead of failing', async () => {
    ssm
      .on(DescribeInstanceInformationCommand)
      .rejects(Object.assign(new Error('<!doctype html>'), { name: 'InternalFailure' }));
    const { deps: d, timeline } = deps();
    const result = await triageInstance({ case: sampleCase }, d);
    expect(result.unavailable.map((u) => u.api)).toEqual([
      'ssm:DescribeInstanceInformation',
      'ec2:GetConsoleScreenshot',
    ]);
    expect(result.plan.ssmManaged).toBe('unknown');
    expect(timeline.events.filter((e) => e.status === 'skipped').map((e) => e.action)).toEqual([
      'ssm:DescribeInstanceInformation',
      'ec2:GetConsoleScreenshot',
    ]);
  });

  it('still records every volume, without its size, when the volumes cannot be read', async () => {
    ec2
      .on(DescribeVolumesCommand)
      .rejects(Object.assign(new Error('not authorized'), { name: 'UnauthorizedOperation' }));
    const { deps: d } = deps();
    const result = await triageInstance({ case: sampleCase }, d);
    expect(result.instance.volumes.map((v) => [v.volumeId, v.sizeGiB])).toEqual([
      ['vol-1', undefined],
      ['vol-2', undefined],
    ]);
    expect(result.unavailable.map((u) => u.api)).toContain('ec2:DescribeVolumes');
  });

  it('fails with InstanceNotFoundError when the instance does not exist, sending no write', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .rejects(Object.assign(new Error('does not exist'), { name: 'InvalidInstanceID.NotFound' }));
    const { deps: d, put } = deps();
    await expect(triageInstance({ case: sampleCase }, d)).rejects.toBeInstanceOf(InstanceNotFoundError);
    expect(put).not.toHaveBeenCalled();
  });

  it('writes the chosen plan on the timeline', async () => {
    const { deps: d, timeline } = deps();
    await triageInstance({ case: sampleCase }, d);
    expect(timeline.events.at(-1)).toMatchObject({ action: 'plan chosen', status: 'info' });
    expect(timeline.events.at(-1)?.detail).toMatch(/^capture-first, memory capture: /);
  });
});

describe('choosePlan', () => {
  it('contains first when SSM survives isolation', () => {
    expect(choosePlan({ platform: 'linux', ssmManaged: true, survives: true })).toMatchObject({
      order: 'contain-first',
      memory: 'capture',
    });
  });

  it('captures memory first when isolation would cut the agent off', () => {
    expect(choosePlan({ platform: 'linux', ssmManaged: true, survives: false })).toMatchObject({
      order: 'capture-first',
      memory: 'capture',
    });
  });

  it('skips memory for an instance SSM does not manage, and contains at once', () => {
    expect(choosePlan({ platform: 'windows', ssmManaged: false, survives: false })).toMatchObject({
      order: 'contain-first',
      memory: 'skip',
      reason: 'the instance is not managed by SSM',
    });
  });

  it('still tries memory when SSM reachability could not be read', () => {
    expect(choosePlan({ platform: 'linux', ssmManaged: 'unknown', survives: true }).memory).toBe('capture');
  });
});
