import {
  DescribeInstancesCommand,
  type DescribeInstancesCommandOutput,
  DescribeVpcEndpointsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { DescribeInstanceInformationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { assessInstance } from '../../../functions/core/plan.js';

const ec2 = mockClient(EC2Client);
const ssm = mockClient(SSMClient);
afterEach(() => {
  ec2.reset();
  ssm.reset();
});

const instanceId = 'i-0123456789abcdef0';
const c = { instanceId, region: 'us-east-1' };
const assess = () => assessInstance(c, { ec2: new EC2Client({}), ssm: new SSMClient({}) });
const running = (extra: object = {}): DescribeInstancesCommandOutput => ({
  $metadata: {},
  Reservations: [{ Instances: [{ InstanceId: instanceId, State: { Name: 'running' }, ...extra }] }],
});

describe('assessInstance', () => {
  it('plans from the instance, its SSM registration and its own VPC’s endpoints', async () => {
    ec2.on(DescribeInstancesCommand).resolves(running({ VpcId: 'vpc-1', Platform: undefined }));
    ec2.on(DescribeVpcEndpointsCommand).resolves({
      VpcEndpoints: [
        { VpcEndpointId: 'vpce-2', VpcId: 'vpc-2', ServiceName: 'com.amazonaws.us-east-1.ssm' },
        {
          VpcEndpointId: 'vpce-1',
          VpcId: 'vpc-1',
          ServiceName: 'com.amazonaws.us-east-1.s3',
          VpcEndpointType: 'Gateway',
        },
      ],
    });
    ssm.on(DescribeInstanceInformationCommand).resolves({
      InstanceInformationList: [{ InstanceId: instanceId, PingStatus: 'Online' }],
    });

    const assessment = await assess();

    expect(assessment).toMatchObject({
      plan: { platform: 'linux' },
      instance: {
        instanceId,
        vpcId: 'vpc-1',
        vpcEndpoints: [
          { id: 'vpce-1', serviceName: 'com.amazonaws.us-east-1.s3', type: 'Gateway', groups: [] },
        ],
      },
      unavailable: [],
    });
  });

  it('names the refused read when the instance cannot be read, and makes no plan', async () => {
    ec2.on(DescribeInstancesCommand).rejects(
      Object.assign(new Error('You are not authorized to perform this operation.'), {
        name: 'UnauthorizedOperation',
        $metadata: { httpStatusCode: 403 },
      }),
    );
    ec2.on(DescribeVpcEndpointsCommand).resolves({ VpcEndpoints: [] });
    ssm.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [] });

    const assessment = await assess();

    expect(assessment).toEqual({
      failed: expect.stringMatching(/^ec2:DescribeInstances: .*UnauthorizedOperation/),
    });
  });

  it('says the instance was not found, with no tags', async () => {
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    ec2.on(DescribeVpcEndpointsCommand).resolves({ VpcEndpoints: [] });
    ssm.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [] });

    expect(await assess()).toEqual({ failed: 'the instance was not found' });
  });

  it.each([
    ['the instance is terminated', running({ VpcId: 'vpc-1', State: { Name: 'terminated' } })],
    ['the instance is in no VPC', running()],
  ])('says %s, with the tags it read', async (reason, answer) => {
    ec2.on(DescribeInstancesCommand).resolves(answer);
    ec2.on(DescribeVpcEndpointsCommand).resolves({ VpcEndpoints: [] });
    ssm.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [] });

    expect(await assess()).toEqual({ failed: reason, tags: {} });
  });

  it('returns the instance tags beside the assessment, a tag without a value as empty', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .resolves(
        running({ VpcId: 'vpc-1', Tags: [{ Key: 'cordon:response', Value: 'approve' }, { Key: 'Bare' }] }),
      );
    ec2.on(DescribeVpcEndpointsCommand).resolves({ VpcEndpoints: [] });
    ssm.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [] });

    expect(await assess()).toMatchObject({ tags: { 'cordon:response': 'approve', Bare: '' } });
  });
});
