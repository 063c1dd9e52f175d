import { createHash } from 'node:crypto';
import { CloudFormationClient, GetTemplateCommand } from '@aws-sdk/client-cloudformation';
import { CloudTrailClient, DescribeTrailsCommand, GetTrailStatusCommand } from '@aws-sdk/client-cloudtrail';
import {
  DescribeInstancesCommand,
  DescribeVpcEndpointsCommand,
  type DescribeVpcEndpointsCommandOutput,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { GetDetectorCommand, GuardDutyClient, ListDetectorsCommand } from '@aws-sdk/client-guardduty';
import { GetAccountSummaryCommand, IAMClient } from '@aws-sdk/client-iam';
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { GetBucketVersioningCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeHubCommand, SecurityHubClient } from '@aws-sdk/client-securityhub';
import { DescribeInstanceInformationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { RegionalClients } from '../../scripts/cli/aws.js';
import { parseParams } from '../../scripts/cli/commands/doctor.js';
import { checkCloudTrail } from '../../scripts/cli/doctor/cloudtrail.js';
import { checkGuardDuty } from '../../scripts/cli/doctor/guardduty.js';
import { checkTools, pinnedToolsFromTemplate } from '../../scripts/cli/doctor/memory-tools.js';
import { checkRoot } from '../../scripts/cli/doctor/root-user.js';
import { checkSecurityHub, type StageTriggers, triggersOf } from '../../scripts/cli/doctor/security-hub.js';
import { checkSsmCoverage } from '../../scripts/cli/doctor/ssm-coverage.js';
import { checkVpcEndpoints } from '../../scripts/cli/doctor/vpc-endpoints.js';
import { runDoctor, stageParams } from '../../scripts/cli/doctor.js';
import { objectBody } from '../support/cli-mocks.js';

const ec2 = mockClient(EC2Client);
const ssm = mockClient(SSMClient);
const guardduty = mockClient(GuardDutyClient);
const cloudtrail = mockClient(CloudTrailClient);
const s3 = mockClient(S3Client);
const iam = mockClient(IAMClient);
const cfn = mockClient(CloudFormationClient);
const securityhub = mockClient(SecurityHubClient);
const kms = mockClient(KMSClient);

const clients = (): RegionalClients => ({
  ec2: new EC2Client({}),
  ssm: new SSMClient({}),
  guardduty: new GuardDutyClient({}),
  cloudtrail: new CloudTrailClient({}),
  securityhub: new SecurityHubClient({}),
});
const instances = [
  { instanceId: 'i-0aaaaaaaaaaaaaaa1', vpcId: 'vpc-1' },
  { instanceId: 'i-0bbbbbbbbbbbbbbb2', vpcId: 'vpc-1' },
  { instanceId: 'i-0ccccccccccccccc3', vpcId: 'vpc-2' },
];

beforeEach(() => {
  for (const m of [ec2, ssm, guardduty, cloudtrail, s3, iam, cfn, securityhub, kms]) m.reset();
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

/** An S3 endpoint policy that reaches only buckets the organisation owns. */
const organisationOnly = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Principal: '*',
      Action: 's3:*',
      Resource: '*',
      Condition: { StringEquals: { 'aws:ResourceOrgID': 'o-exampleorg01' } },
    },
  ],
});

describe('VPC endpoints', () => {
  it('checks each VPC that has instances, counting only available endpoints', async () => {
    ec2.on(DescribeVpcEndpointsCommand, { Filters: [{ Name: 'vpc-id', Values: ['vpc-1'] }] }).resolves({
      VpcEndpoints: ['ssm', 'ssmmessages', 'ec2messages', 's3'].map((s) => ({
        VpcEndpointId: `vpce-${s}`,
        ServiceName: `com.amazonaws.eu-west-1.${s}`,
        VpcEndpointType: s === 's3' ? 'Gateway' : 'Interface',
        State: 'Available',
        ...(s === 's3' ? { PolicyDocument: organisationOnly } : {}),
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

describe('the S3 endpoint an isolated instance may reach', () => {
  const endpoints = (policy?: string): DescribeVpcEndpointsCommandOutput => ({
    $metadata: {},
    VpcEndpoints: ['ssm', 'ssmmessages', 'ec2messages', 's3'].map((s) => ({
      VpcEndpointId: `vpce-${s}`,
      ServiceName: `com.amazonaws.eu-west-1.${s}`,
      VpcEndpointType: s === 's3' ? 'Gateway' : 'Interface',
      State: 'Available',
      ...(s === 's3' && policy !== undefined ? { PolicyDocument: policy } : {}),
    })),
  });
  const allowEverything = JSON.stringify({
    Statement: [{ Effect: 'Allow', Principal: '*', Action: '*', Resource: '*' }],
  });

  it.each([
    ['the default full-access policy', allowEverything],
    ['no policy document at all', undefined],
    ['a policy it cannot read', '{not json'],
  ])('fails a VPC whose S3 endpoint has %s, naming the way out', async (_what, policy) => {
    ec2.on(DescribeVpcEndpointsCommand).resolves(endpoints(policy));

    const [check] = await checkVpcEndpoints(clients(), 'eu-west-1', instances.slice(0, 1));

    expect(check).toMatchObject({ status: 'fail', resources: ['vpce-s3'] });
    expect(check?.detail).toContain('could upload to a bucket outside the organisation');
  });

  it("passes a VPC whose S3 endpoint reaches only the organisation's buckets", async () => {
    ec2.on(DescribeVpcEndpointsCommand).resolves(endpoints(organisationOnly));

    const [check] = await checkVpcEndpoints(clients(), 'eu-west-1', instances.slice(0, 1));

    expect(check).toMatchObject({ status: 'pass' });
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

  it('passes a region whose detector is enabled', async () => {
    guardduty.on(ListDetectorsCommand).resolves({ DetectorIds: ['d1'] });
    guardduty.on(GetDetectorCommand, { DetectorId: 'd1' }).resolves({ Status: 'ENABLED' } as never);

    expect(await checkGuardDuty(clients(), 'eu-west-1')).toMatchObject({
      status: 'pass',
      detail: 'detector d1 is enabled',
    });
  });

  it('says it could not check, with the actions to allow, when GuardDuty refuses', async () => {
    guardduty.on(ListDetectorsCommand).rejects(
      Object.assign(new Error('User is not authorized to perform: guardduty:ListDetectors'), {
        name: 'AccessDeniedException',
      }),
    );

    expect(await checkGuardDuty(clients(), 'eu-west-1')).toMatchObject({
      status: 'unknown',
      detail: 'could not check: Access denied: your identity may not call guardduty:ListDetectors.',
      fix: 'Allow guardduty:ListDetectors and guardduty:GetDetector.',
    });
  });
});

describe('Security Hub', () => {
  const triggers = (on: Partial<StageTriggers>): StageTriggers => ({
    stage: 'prod',
    securityHubCustomAction: false,
    securityHubImported: false,
    ...on,
  });
  const notSubscribed = () =>
    Object.assign(new Error('Account 111122223333 is not subscribed to AWS Security Hub'), {
      name: 'InvalidAccessException',
      $metadata: { httpStatusCode: 401 },
    });

  it('is not asked about when the stage turns on no Security Hub trigger', async () => {
    const check = await checkSecurityHub(clients(), 'us-east-1', triggers({}));

    expect(check).toMatchObject({
      status: 'pass',
      detail: 'not needed: stage prod turns on no Security Hub trigger',
    });
    expect(securityhub).toHaveReceivedCommandTimes(DescribeHubCommand, 0);
  });

  it('fails before a deploy that would create the custom action where Security Hub is off', async () => {
    securityhub.on(DescribeHubCommand).rejects(notSubscribed());

    const check = await checkSecurityHub(clients(), 'us-east-1', triggers({ securityHubCustomAction: true }));

    expect(check).toEqual({
      check: 'Security Hub',
      scope: 'us-east-1',
      status: 'fail',
      detail:
        'not enabled, but stage prod uses the custom action (acceptSecurityHubCustomAction): the deploy cannot create the custom action and rolls back',
      fix: "aws securityhub enable-security-hub --region us-east-1, or set acceptSecurityHubCustomAction to 'false' for this stage",
    });
  });

  it('fails where imported findings are turned on but Security Hub is off', async () => {
    securityhub.on(DescribeHubCommand).rejects(notSubscribed());

    expect(
      await checkSecurityHub(clients(), 'eu-west-1', triggers({ securityHubImported: true })),
    ).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(
        /imported findings \(acceptSecurityHubImported\): no imported finding can start a case$/,
      ),
      fix: "aws securityhub enable-security-hub --region eu-west-1, or set acceptSecurityHubImported to 'false' for this stage",
    });
  });

  it('passes where Security Hub is enabled', async () => {
    securityhub.on(DescribeHubCommand).resolves({
      HubArn: 'arn:aws:securityhub:us-east-1:111122223333:hub/default',
      SubscribedAt: '2026-01-05T10:00:00.000Z',
    });

    expect(
      await checkSecurityHub(
        clients(),
        'us-east-1',
        triggers({ securityHubCustomAction: true, securityHubImported: true }),
      ),
    ).toMatchObject({
      status: 'pass',
      detail:
        'enabled since 2026-01-05T10:00:00.000Z, for the custom action (acceptSecurityHubCustomAction) and imported findings (acceptSecurityHubImported)',
    });
  });

  it('says it could not check, with the action to allow, when DescribeHub is denied', async () => {
    securityhub
      .on(DescribeHubCommand)
      .rejects(
        Object.assign(
          new Error(
            'User: arn:aws:iam::111122223333:user/ops is not authorized to perform: securityhub:DescribeHub',
          ),
          { name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } },
        ),
      );

    expect(
      await checkSecurityHub(clients(), 'us-east-1', triggers({ securityHubCustomAction: true })),
    ).toMatchObject({
      status: 'unknown',
      detail: 'could not check: Access denied: your identity may not call securityhub:DescribeHub.',
      fix: 'Allow securityhub:DescribeHub.',
    });
  });
});

describe('the triggers a stage turns on', () => {
  it.each(['dev', 'prod'])('in %s, as serverless.yml declares it, need no Security Hub', (stage) => {
    expect(triggersOf(stage, stageParams(stage))).toEqual({
      stage,
      securityHubCustomAction: false,
      securityHubImported: false,
    });
  });

  it('follow the --param values given as osls deploy takes them', () => {
    const overrides = parseParams(['acceptSecurityHubCustomAction=true', 'acceptSecurityHubImported=true']);

    expect(triggersOf('prod', stageParams('prod', overrides))).toMatchObject({
      securityHubCustomAction: true,
      securityHubImported: true,
    });
  });

  it('refuses a --param that is not NAME=VALUE', () => {
    expect(() => parseParams(['acceptSecurityHubCustomAction'])).toThrow(/is not NAME=VALUE/);
  });
});

describe('memory tools', () => {
  const avml = Buffer.from('avml build 0.14');
  const pinned = {
    prefix: 'tools/',
    avmlSha256: createHash('sha256').update(avml).digest('hex'),
    winpmemSha256: '',
  };

  it('passes a tool whose SHA-256 is the pinned one, and an empty WinPmem pin, which skips Windows', async () => {
    s3.on(GetObjectCommand, { Bucket: 'tools', Key: 'tools/avml' }).resolves({
      Body: objectBody(avml) as never,
    });

    const checks = await checkTools(new S3Client({}), 'tools', pinned);

    expect(checks).toEqual([
      expect.objectContaining({ check: 'Memory tool AVML (Linux)', status: 'pass' }),
      expect.objectContaining({
        check: 'Memory tool WinPmem (Windows)',
        status: 'pass',
        detail: 'none pinned, on purpose: memory capture is skipped on Windows instances',
      }),
    ]);
    expect(s3).toHaveReceivedCommandTimes(GetObjectCommand, 1);
  });

  it('fails an empty AVML pin: Linux capture cannot be skipped by leaving it out', async () => {
    const checks = await checkTools(new S3Client({}), 'tools', { ...pinned, avmlSha256: '' });

    expect(checks[0]).toMatchObject({
      check: 'Memory tool AVML (Linux)',
      status: 'fail',
      fix: "Set avmlSha256 in serverless.yml params to the tool's SHA-256 and deploy.",
    });
    expect(s3).toHaveReceivedCommandTimes(GetObjectCommand, 0);
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
      triggers: { stage: 'dev', securityHubCustomAction: false, securityHubImported: false },
    });

    expect(checks.map((c) => `${c.check} ${c.status}`)).toEqual([
      'CloudTrail fail',
      'GuardDuty pass',
      'SSM management pass',
      'Security Hub pass',
      'Cordon stack fail',
      'Root access keys pass',
      'Root MFA pass',
    ]);
    expect(s3).toHaveReceivedCommandTimes(GetObjectCommand, 0);
  });
});

describe('a check whose calls are denied', () => {
  const denied = (action: string) =>
    Object.assign(new Error(`User is not authorized to perform: ${action}`), {
      name: 'AccessDeniedException',
    });
  const stack = {
    stackName: 'cordon-prod',
    stage: 'prod',
    region: 'us-east-1',
    evidenceBucket: 'evidence',
    casesTable: 'cases',
    alertTopicArn: 'arn:aws:sns:us-east-1:111122223333:alerts',
    signingKeyArn: 'arn:aws:kms:us-east-1:111122223333:key/sign',
    toolsBucket: 'tools',
    triggerQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/cordon-prod-triggers',
    forensicsStateMachineArn: 'arn:aws:states:us-east-1:111122223333:stateMachine:forensics',
    releaseStateMachineArn: 'arn:aws:states:us-east-1:111122223333:stateMachine:release',
  };
  const doctor = () =>
    runDoctor({
      homeRegion: 'us-east-1',
      regions: ['us-east-1'],
      regional: async () => clients(),
      iam: new IAMClient({}),
      stack: {
        info: stack,
        s3: new S3Client({}),
        kms: new KMSClient({}),
        tools: { prefix: 'tools/', avmlSha256: 'a'.repeat(64), winpmemSha256: '' },
      },
      triggers: { stage: 'prod', securityHubCustomAction: true, securityHubImported: false },
    });

  it('is UNKNOWN, with the reason, and names the actions to allow', async () => {
    cloudtrail.on(DescribeTrailsCommand).rejects(denied('cloudtrail:DescribeTrails'));
    guardduty.on(ListDetectorsCommand).rejects(denied('guardduty:ListDetectors'));
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [{ InstanceId: 'i-0aaaaaaaaaaaaaaa1', VpcId: 'vpc-1' }] }],
    });
    ssm.on(DescribeInstanceInformationCommand).rejects(denied('ssm:DescribeInstanceInformation'));
    ec2.on(DescribeVpcEndpointsCommand).rejects(denied('ec2:DescribeVpcEndpoints'));
    securityhub.on(DescribeHubCommand).rejects(denied('securityhub:DescribeHub'));
    s3.on(GetBucketVersioningCommand).rejects(denied('s3:GetBucketVersioning'));
    kms.on(DescribeKeyCommand).rejects(denied('kms:DescribeKey'));
    s3.on(GetObjectCommand).rejects(denied('s3:GetObject'));
    iam.on(GetAccountSummaryCommand).rejects(denied('iam:GetAccountSummary'));

    const checks = await doctor();

    expect(checks.map((c) => [c.check, c.status, c.fix])).toEqual([
      ['CloudTrail', 'unknown', 'Allow cloudtrail:DescribeTrails and cloudtrail:GetTrailStatus.'],
      ['GuardDuty', 'unknown', 'Allow guardduty:ListDetectors and guardduty:GetDetector.'],
      ['SSM management', 'unknown', 'Run doctor with ssm:DescribeInstanceInformation allowed, against AWS.'],
      ['VPC endpoints', 'unknown', 'Allow ec2:DescribeVpcEndpoints.'],
      ['Security Hub', 'unknown', 'Allow securityhub:DescribeHub.'],
      ['Cordon stack', 'pass', ''],
      [
        'Evidence bucket lock',
        'unknown',
        'Allow s3:GetBucketVersioning and s3:GetBucketObjectLockConfiguration.',
      ],
      ['Signing key', 'unknown', 'Allow kms:DescribeKey on the signing key.'],
      ['Memory tool AVML (Linux)', 'unknown', 'Allow s3:GetObject on the tools bucket.'],
      ['Memory tool WinPmem (Windows)', 'pass', ''],
      ['Root user', 'unknown', 'Allow iam:GetAccountSummary.'],
    ]);
    for (const c of checks.filter((c) => c.status === 'unknown')) {
      expect(c.detail, c.check).toMatch(
        /^could not check: Access denied: your identity may not call \w+:\w+\.$/,
      );
    }
  });

  it('says it could not list the instances when DescribeInstances is denied', async () => {
    ec2.on(DescribeInstancesCommand).rejects(denied('ec2:DescribeInstances'));

    const checks = await doctor();

    expect(checks.find((c) => c.check === 'SSM management')).toEqual({
      check: 'SSM management',
      scope: 'us-east-1',
      status: 'unknown',
      detail: 'could not list instances: Access denied: your identity may not call ec2:DescribeInstances.',
      fix: 'Allow ec2:DescribeInstances.',
    });
  });
});
