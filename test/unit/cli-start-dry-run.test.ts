import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
} from '@aws-sdk/client-auto-scaling';
import { GetTemplateCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeInstancesCommand, DescribeVpcEndpointsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetInstanceProfileCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DescribeInstanceInformationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { isolateInstance } from '../../functions/forensics/isolate-instance/isolate-instance.js';
import { revokeCredentials } from '../../functions/forensics/revoke-credentials/revoke-credentials.js';
import type { ContainmentPlan } from '../../scripts/cli/dry-run.js';
import { cordonOnAws, mockDeployedStack } from '../support/cli-mocks.js';
import {
  appGroup,
  containCase,
  eni,
  FakeEc2,
  instanceProfileAnswer,
  MemoryCases,
  picture,
  vpcId,
} from '../support/containment-fixtures.js';

const ec2Mock = mockClient(EC2Client);
const ssmMock = mockClient(SSMClient);
const iamMock = mockClient(IAMClient);
const asgMock = mockClient(AutoScalingClient);
const ddbMock = mockClient(DynamoDBClient);
const docMock = mockClient(DynamoDBDocumentClient);
const s3Mock = mockClient(S3Client);
const sfnMock = mockClient(SFNClient);

const c = containCase();
const now = new Date('2026-11-27T21:00:00Z');
const settings = {
  FORENSIC_CIDR: '203.0.113.0/28',
  REVOKE_SCOPE: 'instance',
  REQUIRE_IMDSV2: 'true',
  QUARANTINE_PROFILE_NAME: 'cordon-quarantine-test',
  ASG_MODE: 'standby',
  MEMBER_ROLE_NAME: 'cordon-member-dev',
};
const dryRun = ['start', '--dry-run', '--instance', c.instanceId, '--account', c.accountId];
/** Intake's RESPONSE_POLICY in the deployed template; a test may set another before it runs. */
let responsePolicy = '{"default":"contain"}';

let fake: FakeEc2;
let stubs: { calls(): { args: unknown[] }[] }[];

beforeEach(() => {
  responsePolicy = '{"default":"contain"}';
  for (const m of [ec2Mock, ssmMock, iamMock, asgMock, ddbMock, docMock, s3Mock, sfnMock]) m.reset();
  const { cfn, sts } = mockDeployedStack();
  // Built at each call, so that a test may set the response policy before it runs the CLI.
  cfn.on(GetTemplateCommand).callsFake(() => ({
    TemplateBody: JSON.stringify({
      Resources: Object.fromEntries(
        ['isolate-instance', 'revoke-credentials', 'protect-instance', 'intake-finding'].map((fn) => [
          fn,
          {
            Type: 'AWS::Lambda::Function',
            Properties: {
              FunctionName: `cordon-dev-${fn}`,
              Environment: {
                Variables: fn === 'intake-finding' ? { RESPONSE_POLICY: responsePolicy } : settings,
              },
            },
          },
        ]),
      ),
    }),
  }));
  sts.on(AssumeRoleCommand).resolves({
    Credentials: {
      AccessKeyId: 'ASIA',
      SecretAccessKey: 'secret',
      SessionToken: 'token',
      Expiration: new Date('2026-11-27T23:00:00Z'),
    },
  });
  fake = FakeEc2.standard().install(ec2Mock);
  installInstancesWithVpc();
  ec2Mock.on(DescribeVpcEndpointsCommand).resolves({
    VpcEndpoints: picture().instance.vpcEndpoints.map((e) => ({
      VpcEndpointId: e.id,
      VpcId: vpcId,
      ServiceName: e.serviceName,
      VpcEndpointType: e.type as 'Interface',
      Groups: e.groups.map((GroupId) => ({ GroupId, GroupName: 'endpoints' })),
    })),
  });
  ssmMock
    .on(DescribeInstanceInformationCommand)
    .resolves({ InstanceInformationList: [{ InstanceId: c.instanceId, PingStatus: 'Online' }] });
  iamMock.on(GetInstanceProfileCommand).resolves(instanceProfileAnswer());
  iamMock.on(PutRolePolicyCommand).resolves({});
  asgMock.on(DescribeAutoScalingInstancesCommand).resolves({
    AutoScalingInstances: [
      {
        InstanceId: c.instanceId,
        AutoScalingGroupName: 'web',
        LifecycleState: 'InService',
        AvailabilityZone: 'us-east-1a',
        HealthStatus: 'HEALTHY',
        ProtectedFromScaleIn: false,
      },
    ],
  });
  asgMock.on(DescribeAutoScalingGroupsCommand).resolves({
    AutoScalingGroups: [
      {
        AutoScalingGroupName: 'web',
        MinSize: 1,
        MaxSize: 4,
        DesiredCapacity: 3,
        DefaultCooldown: 300,
        AvailabilityZones: ['us-east-1a'],
        HealthCheckType: 'EC2',
        CreatedTime: new Date(),
      },
    ],
  });
  stubs = [ec2Mock, ssmMock, iamMock, asgMock, ddbMock, docMock, s3Mock, sfnMock, cfn, sts];
});

/** DescribeInstances as the fake answers it, with the instance's VPC, which Intake's first look needs. */
function installInstancesWithVpc() {
  ec2Mock.on(DescribeInstancesCommand).callsFake(async (input: { InstanceIds?: string[] }) => {
    if (input.InstanceIds && !input.InstanceIds.includes(fake.instance.id)) {
      throw Object.assign(new Error('not found'), { name: 'InvalidInstanceID.NotFound' });
    }
    return {
      Reservations: [
        {
          Instances: [
            {
              InstanceId: fake.instance.id,
              VpcId: vpcId,
              State: { Name: fake.instanceState },
              PlatformDetails: 'Linux/UNIX',
              Tags: Object.entries(fake.instance.tags).map(([Key, Value]) => ({ Key, Value })),
              BlockDeviceMappings: fake.instance.volumes.map((v) => ({
                DeviceName: v.deviceName,
                Ebs: { VolumeId: v.volumeId, DeleteOnTermination: v.deleteOnTermination },
              })),
              MetadataOptions: { HttpTokens: fake.instance.httpTokens, HttpEndpoint: 'enabled' },
            },
          ],
        },
      ],
    };
  });
}

/** Every AWS operation sent through any client, by name (`DescribeInstances`). */
function operationsSent(): string[] {
  return stubs.flatMap((stub) =>
    stub.calls().map((call) => (call.args[0] as object).constructor.name.replace(/Command$/, '')),
  );
}

/** What changes something: anything that is not a read (or the member role assumed to read). */
const mutating = (op: string) => !/^(?:Describe|Get|List)/.test(op) && op !== 'AssumeRole';

async function planOf(): Promise<ContainmentPlan> {
  const { code, stdout, stderr } = await cordonOnAws([...dryRun, '--json']);
  expect(stderr).toBe('');
  expect(code).toBe(0);
  return JSON.parse(stdout) as ContainmentPlan;
}

describe('cordon start --dry-run', () => {
  it('sends only reads: no group, interface, policy, profile, tag, snapshot, case or execution is touched', async () => {
    await planOf();

    const sent = operationsSent();
    expect(sent).toEqual(expect.arrayContaining(['DescribeInstances', 'DescribeNetworkInterfaces']));
    expect(sent.filter(mutating)).toEqual([]);
    for (const op of [
      'CreateSecurityGroup',
      'ModifyNetworkInterfaceAttribute',
      'PutRolePolicy',
      'ReplaceIamInstanceProfileAssociation',
      'CreateTags',
      'CreateSnapshot',
      'CreateSnapshots',
      'PutItem',
      'UpdateItem',
      'BatchWriteItem',
      'PutObject',
      'StartExecution',
    ]) {
      expect(sent).not.toContain(op);
    }
    expect(fake.log).toEqual([]);
  });

  it('names the groups, addresses and denies the real Isolate and Revoke then apply', async () => {
    const plan = await planOf();

    const cases = new MemoryCases();
    cases.add(c);
    const isolated = await isolateInstance(
      { case: c, triage: picture() },
      {
        ec2: new EC2Client({ region: 'us-east-1' }),
        recorder: cases.recorder(c.caseId, 'isolate-instance'),
        cases,
        config: {
          CORDON_STAGE: 'dev',
          FORENSIC_CIDR: settings.FORENSIC_CIDR,
          CONNTRACK_WAIT_SECONDS: 60,
          BLOCK_REMOTE_IPS: false,
          NACL_RULE_QUOTA: 20,
        },
        now: () => now,
        sleep: async () => undefined,
      },
    );
    const revoked = await revokeCredentials(
      { case: c },
      {
        ec2: new EC2Client({ region: 'us-east-1' }),
        iam: new IAMClient({ region: 'us-east-1' }),
        recorder: cases.recorder(c.caseId, 'revoke-credentials'),
        cases,
        config: {
          REVOKE_SCOPE: 'instance',
          REQUIRE_IMDSV2: true,
          QUARANTINE_PROFILE_NAME: settings.QUARANTINE_PROFILE_NAME,
        },
        now: () => now,
      },
    );

    // Isolate: the group the plan said would be created holds each interface, with the planned rules.
    const group = fake.groupNamed('cordon-dev-isolation');
    expect(plan.isolation.groups).toEqual([
      expect.objectContaining({
        vpcId,
        isolation: { name: 'cordon-dev-isolation', groupId: null, wouldCreate: true },
      }),
    ]);
    expect([...(group?.rules ?? [])].sort()).toEqual(
      [...(plan.isolation.groups[0]?.isolationRules ?? [])].sort(),
    );
    expect(plan.isolation.interfaces.map((n) => [n.networkInterfaceId, n.originalGroups])).toEqual(
      isolated.enis.map((e) => [e.networkInterfaceId, e.originalGroups]),
    );
    for (const id of eni) expect(fake.interfaces.get(id)?.groups).toEqual([group?.id]);
    expect(plan.isolation.interfaces[0]?.currentGroups).toEqual([{ groupId: appGroup, groupName: 'app' }]);
    expect(plan.isolation.elasticIps.map((e) => e.allocationId)).toEqual(
      isolated.elasticIps.map((e) => e.allocationId),
    );
    expect(plan.isolation.ssmEgress).toBe(isolated.ssmEgress);

    // Revoke: the same roles, the same documents (the policy names differ only by the case id).
    expect(plan.revocation.roles).toEqual(revoked.revokedRoles);
    const put = iamMock.commandCalls(PutRolePolicyCommand).map((call) => call.args[0].input);
    expect(
      plan.revocation.denies.map((d) => [
        d.roleName,
        d.policyName.replace('<case-id>', c.caseId),
        d.document,
      ]),
    ).toEqual(put.map((p) => [p.RoleName, p.PolicyName, p.PolicyDocument]));
    expect(plan.revocation.profile.replacedBy).toBe(revoked.profile.quarantineProfile);
    expect(plan.revocation.imdsv2).toBe(revoked.imdsv2);
  });

  it('prints the plan for a person: each interface, the role, the profile, the protection, the volumes', async () => {
    const { code, stdout } = await cordonOnAws(dryRun);

    expect(code).toBe(0);
    expect(stdout).toContain('nothing was changed');
    expect(stdout).toContain('Plan: contain-first, memory captured');
    expect(stdout).toContain('Response policy: contain by its default, containment at once, as below');
    expect(stdout).toContain(`${eni[0]}: ${appGroup} (app) -> cordon-dev-isolation (to be created)`);
    expect(stdout).toContain(`would be created: cordon-dev-isolation in ${vpcId}`);
    expect(stdout).toContain('Elastic IPs disassociated: 203.0.113.9');
    expect(stdout).toContain(
      'role app-role: inline denies cordon-revoke-<case-id>, cordon-revoke-<case-id>-issued-before',
    );
    expect(stdout).toContain('replaced by cordon-quarantine-test');
    expect(stdout).toContain('IMDSv2: required by Cordon');
    expect(stdout).toContain('disableApiTermination: false -> true');
    expect(stdout).toContain('would be kept on termination');
    expect(stdout).toContain('Auto Scaling: standby from web, desired capacity 3 -> 2');
    expect(stdout).toMatch(/Snapshot: vol-0+1 \(\/dev\/xvda\), vol-0+2 \(\/dev\/sdf\)/);
  });

  it('says what the response policy would decide, by the same decision as Intake', async () => {
    responsePolicy = JSON.stringify({
      default: 'contain',
      tagKeys: ['tier'],
      rules: [{ name: 'databases', response: 'approve', tags: { tier: ['db'] } }],
    });
    fake.instance.tags = { ...fake.instance.tags, tier: 'db' };
    const { code, stdout } = await cordonOnAws([...dryRun, '--json']);

    expect(code).toBe(0);
    expect(JSON.parse(stdout).response).toMatchObject({ action: 'approve', rule: 'databases' });
  });

  it('shows a hostile group name escaped, never raw', async () => {
    const app = fake.groups.get(appGroup);
    if (app) app.name = 'app\u001b[2J\u202e';

    const { stdout } = await cordonOnAws(dryRun);

    expect(stdout).not.toContain('\u001b');
    expect(stdout).toContain('app\\u001b[2J');
  });

  it('refuses a terminated instance by name, having changed nothing', async () => {
    fake.instanceState = 'terminated';

    const { code, stderr } = await cordonOnAws(dryRun);

    expect(code).toBe(3);
    expect(stderr).toContain(`${c.instanceId} is terminated`);
    expect(operationsSent().filter(mutating)).toEqual([]);
  });

  it('refuses --dry-run with --finding, before any AWS call', async () => {
    const { code, stderr } = await cordonOnAws(['start', '--dry-run', '--finding', 'finding.json']);

    expect(code).toBe(2);
    expect(stderr).toContain('--dry-run goes with --instance');
    expect(operationsSent()).toEqual([]);
  });
});
