import { createHash } from 'node:crypto';
import { CloudFormationClient, GetTemplateCommand } from '@aws-sdk/client-cloudformation';
import { CloudTrailClient, DescribeTrailsCommand, GetTrailStatusCommand } from '@aws-sdk/client-cloudtrail';
import { DescribeInstancesCommand, DescribeVpcEndpointsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetDetectorCommand, GuardDutyClient, ListDetectorsCommand } from '@aws-sdk/client-guardduty';
import { GetAccountSummaryCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeInstanceInformationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { RegionalClients } from '../../scripts/cli/aws.js';
import {
  checkCloudTrail,
  checkGuardDuty,
  checkRoot,
  checkSsmCoverage,
  checkTools,
  checkVpcEndpoints,
  pinnedToolsFromTemplate,
  runDoctor,
} from '../../scripts/cli/doctor.js';
import { objectBody } from '../support/cli-mocks.js';

const ec2 = mockClient(EC2Client);
const ssm = mockClient(SSMClient);
const guardduty = mockClient(GuardDutyClient);
const cloudtrail = mockClient(CloudTrailClient);
const s3 = mockClient(S3Client);
const iam = mockClient(IAMClient);
const cfn = mockClient(CloudFormationClient);

const clients = (): RegionalClients => ({
  ec2: new EC2Client({}),
  ssm: new SSMClient({}),
  guardduty: new GuardDutyClient({}),
  cloudtrail: new CloudTrailClient({}),
});
const instances = [
  { instanceId: 'i-0aaaaaaaaaaaaaaa1', vpcId: 'vpc-1' },
  { instanceId: 'i-0bbbbbbbbbbbbbbb2', vpcId: 'vpc-1' },
  { instanceId: 'i-0ccccccccccccccc3', vpcId: 'vpc-2' },
];

beforeEach(() => {
  for (const m of [ec2, ssm, guardduty, cloudtrail, s3, iam, cfn]) m.reset();
});

describe('SSM coverage', () => {
  it('names the instances SSM does not manage and those it manages but cannot reach', async () => {
    ssm
      .on(DescribeInstanceInformationCommand)
      .resolvesOnce({
        InstanceInformationList: [{ InstanceId: 'i-0aaaaaaaaaaaaaaa1', PingStatus: 'Online' }],
        NextToken: 'page-2',
      })
      .resolves({
        InstanceInformationList: [{ InstanceId: 'i-0bbbbbbbbbbbbbbb2', PingStatus: 'ConnectionLost' }],
      });

    const check = await checkSsmCoverage(clients(), 'eu-west-1', instances);

    expect(check).toMatchObject({
      status: 'fail',
      scope: 'eu-west-1',
      detail:
        '1 of 3 instances are not managed by SSM: i-0ccccccccccccccc3; 1 are registered but not online: i-0bbbbbbbbbbbbbbb2; their memory cannot be captured',
      resources: ['i-0ccccccccccccccc3', 'i-0bbbbbbbbbbbbbbb2'],
    });
    expect(ssm).toHaveReceivedCommandWith(DescribeInstanceInformationCommand, { NextToken: 'page-2' });
  });

  it('passes when every instance is managed and online', async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves({
      InstanceInformationList: instances.map((i) => ({ InstanceId: i.instanceId, PingStatus: 'Online' })),
    });

    expect(await checkSsmCoverage(clients(), 'eu-west-1', instances)).toMatchObject({ status: 'pass' });
  });

  it('says it could not check, rather than passing, when the API refuses', async () => {
    ssm.on(DescribeInstanceInformationCommand).rejects(
      Object.assign(new Error('User is not authorized to perform: ssm:DescribeInstanceInformation'), {
        name: 'AccessDeniedException',
      }),
    );

    expect(await checkSsmCoverage(clients(), 'eu-west-1', instances)).toMatchObject({
      status: 'unknown',
      detail: 'could not check: Access denied: your identity may not call ssm:DescribeInstanceInformation.',
    });
  });
});

describe('VPC endpoints', () => {
  it('checks each VPC that has instances, counting only available endpoints', async () => {
    ec2.on(DescribeVpcEndpointsCommand, { Filters: [{ Name: 'vpc-id', Values: ['vpc-1'] }] }).resolves({
      VpcEndpoints: ['ssm', 'ssmmessages', 'ec2messages', 's3'].map((s) => ({
        VpcEndpointId: `vpce-${s}`,
        ServiceName: `com.amazonaws.eu-west-1.${s}`,
        VpcEndpointType: s === 's3' ? 'Gateway' : 'Interface',
        State: 'Available',
      })),
    });
    ec2.on(DescribeVpcEndpointsCommand, { Filters: [{ Name: 'vpc-id', Values: ['vpc-2'] }] }).resolves({
      VpcEndpoints: [
        {
          VpcEndpointId: 'vpce-1',
          ServiceName: 'com.amazonaws.eu-west-1.ssm',
          VpcEndpointType: 'Interface',
          State: 'Pending',
        },
      ],
    });

    const checks = await checkVpcEndpoints(clients(), 'eu-west-1', instances);

    expect(checks).toEqual([
      expect.objectContaining({ scope: 'eu-west-1 vpc-1', status: 'pass' }),
      expect.objectContaining({
        scope: 'eu-west-1 vpc-2',
        status: 'fail',
        resources: ['ssm', 'ssmmessages', 'ec2messages', 's3'],
      }),
    ]);
  });
});

describe('CloudTrail', () => {
  it("asks a shadow trail's status by its ARN and passes when it logs", async () => {
    const arn = 'arn:aws:cloudtrail:eu-west-1:111122223333:trail/org-audit';
    cloudtrail.on(DescribeTrailsCommand).resolves({
      trailList: [{ Name: 'org-audit', TrailARN: arn, HomeRegion: 'eu-west-1', IsMultiRegionTrail: true }],
    });
    cloudtrail.on(GetTrailStatusCommand, { Name: arn }).resolves({ IsLogging: true });

    const check = await checkCloudTrail(clients(), 'us-east-1');

    expect(check).toMatchObject({ status: 'pass', detail: 'multi-region trail org-audit is logging' });
    expect(cloudtrail).toHaveReceivedCommandWith(DescribeTrailsCommand, { includeShadowTrails: true });
  });

  it('fails a multi-region trail that was stopped, with the command that starts it', async () => {
    cloudtrail.on(DescribeTrailsCommand).resolves({
      trailList: [
        {
          Name: 'audit',
          TrailARN: 'arn:aws:cloudtrail:us-east-1:1:trail/audit',
          HomeRegion: 'us-east-1',
          IsMultiRegionTrail: true,
        },
      ],
    });
    cloudtrail.on(GetTrailStatusCommand, { Name: 'audit' }).resolves({ IsLogging: false });

    expect(await checkCloudTrail(clients(), 'us-east-1')).toMatchObject({
      status: 'fail',
      fix: 'aws cloudtrail start-logging --name audit',
    });
  });
});

describe('GuardDuty', () => {
  it('fails a region without a detector, with the command that creates one', async () => {
    guardduty.on(ListDetectorsCommand).resolves({ DetectorIds: [] });

    expect(await checkGuardDuty(clients(), 'ap-southeast-2')).toMatchObject({
      status: 'fail',
      fix: 'aws guardduty create-detector --enable --region ap-southeast-2',
    });
    expect(guardduty).toHaveReceivedCommandTimes(GetDetectorCommand, 0);
  });
});

describe('memory tools', () => {
  const avml = Buffer.from('avml build 0.14');
  const pinned = {
    prefix: 'tools/',
    avmlSha256: createHash('sha256').update(avml).digest('hex'),
    winpmemSha256: '',
  };

  it('passes a tool whose SHA-256 is the pinned one, and fails a platform with nothing pinned', async () => {
    s3.on(GetObjectCommand, { Bucket: 'tools', Key: 'tools/avml' }).resolves({
      Body: objectBody(avml) as never,
    });

    const checks = await checkTools(new S3Client({}), 'tools', pinned);

    expect(checks).toEqual([
      expect.objectContaining({ check: 'Memory tool AVML (Linux)', status: 'pass' }),
      expect.objectContaining({
        check: 'Memory tool WinPmem (Windows)',
        status: 'fail',
        fix: "Set winpmemSha256 in serverless.yml params to the tool's SHA-256 and deploy.",
      }),
    ]);
    expect(s3).toHaveReceivedCommandTimes(GetObjectCommand, 1);
  });

  it("reads the pinned hashes from the capture function's environment in the deployed template", async () => {
    cfn.on(GetTemplateCommand, { StackName: 'cordon-prod', TemplateStage: 'Processed' }).resolves({
      TemplateBody: JSON.stringify({
        Resources: {
          CaptureDashmemoryLambdaFunction: {
            Type: 'AWS::Lambda::Function',
            Properties: {
              FunctionName: 'cordon-prod-capture-memory',
              Environment: {
                Variables: { TOOLS_PREFIX: 'tools/', AVML_SHA256: 'a'.repeat(64), WINPMEM_SHA256: '' },
              },
            },
          },
        },
      }),
    });

    expect(
      await pinnedToolsFromTemplate(
        new CloudFormationClient({}),
        'cordon-prod',
        'cordon-prod-capture-memory',
      ),
    ).toEqual({
      prefix: 'tools/',
      avmlSha256: 'a'.repeat(64),
      winpmemSha256: '',
    });
  });
});

describe('root user', () => {
  it('fails when the root user has access keys', async () => {
    iam
      .on(GetAccountSummaryCommand)
      .resolves({ SummaryMap: { AccountAccessKeysPresent: 1, AccountMFAEnabled: 1 } });

    expect(await checkRoot(new IAMClient({}))).toEqual([
      expect.objectContaining({ check: 'Root access keys', status: 'fail' }),
      expect.objectContaining({ check: 'Root MFA', status: 'pass' }),
    ]);
  });
});

describe('runDoctor', () => {
  it('reports a missing stack as a failed check and still checks the account', async () => {
    cloudtrail.on(DescribeTrailsCommand).resolves({ trailList: [] });
    guardduty.on(ListDetectorsCommand).resolves({ DetectorIds: ['d1'] });
    guardduty.on(GetDetectorCommand).resolves({ Status: 'ENABLED' } as never);
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    iam
      .on(GetAccountSummaryCommand)
      .resolves({ SummaryMap: { AccountAccessKeysPresent: 0, AccountMFAEnabled: 1 } });

    const checks = await runDoctor({
      homeRegion: 'us-east-1',
      regions: ['us-east-1'],
      regional: async () => clients(),
      iam: new IAMClient({}),
      stack: { error: 'No Cordon stack cordon-dev in us-east-1.', fix: 'Deploy it.' },
    });

    expect(checks.map((c) => `${c.check} ${c.status}`)).toEqual([
      'CloudTrail fail',
      'GuardDuty pass',
      'SSM management pass',
      'Cordon stack fail',
      'Root access keys pass',
      'Root MFA pass',
    ]);
    expect(s3).toHaveReceivedCommandTimes(GetObjectCommand, 0);
  });
});
