import {
  AttachInstancesCommand,
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
  EnterStandbyCommand,
  ExitStandbyCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  AssociateAddressCommand,
  CreateTagsCommand,
  DeleteNetworkAclEntryCommand,
  EC2Client,
  ModifyInstanceAttributeCommand,
  ModifyInstanceMetadataOptionsCommand,
  ModifyNetworkInterfaceAttributeCommand,
  ReplaceIamInstanceProfileAssociationCommand,
} from '@aws-sdk/client-ec2';
import {
  DeregisterInstancesFromLoadBalancerCommand,
  ElasticLoadBalancingClient,
  RegisterInstancesWithLoadBalancerCommand,
} from '@aws-sdk/client-elastic-load-balancing';
import {
  DeregisterTargetsCommand,
  ElasticLoadBalancingV2Client,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import {
  DeleteRolePolicyCommand,
  GetInstanceProfileCommand,
  IAMClient,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { IsolateChanges } from '../../../functions/core/actions/isolate.js';
import type { CaseStatus } from '../../../functions/core/cases.js';
import { changeKeys } from '../../../functions/core/containment.js';
import { denyPolicies, releasedDeny } from '../../../functions/core/denies.js';
import {
  AwsServiceError,
  CaseNotFoundError,
  ContainmentError,
  ReleaseRefusedError,
} from '../../../functions/core/errors.js';
import { isolateInstance } from '../../../functions/forensics/isolate-instance/isolate-instance.js';
import { protectInstance } from '../../../functions/forensics/protect-instance/protect-instance.js';
import { revokeCredentials } from '../../../functions/forensics/revoke-credentials/revoke-credentials.js';
import {
  type ReleaseDeps,
  releaseInstance,
} from '../../../functions/release/release-instance/release-instance.js';
import {
  aclA,
  adminGroup,
  appGroup,
  appProfileArn,
  awsError,
  containCase,
  ec2Id,
  eni,
  FakeEc2,
  instanceArn,
  instanceProfileAnswer,
  MemoryCases,
  picture,
  quarantineProfile,
} from '../../support/containment-fixtures.js';

const ec2Mock = mockClient(EC2Client);
const iamMock = mockClient(IAMClient);
const asMock = mockClient(AutoScalingClient);
const elbv2Mock = mockClient(ElasticLoadBalancingV2Client);
const elbMock = mockClient(ElasticLoadBalancingClient);
const snsMock = mockClient(SNSClient);
const eventsMock = mockClient(EventBridgeClient);
const c = containCase();
const topicArn = 'arn:aws:sns:us-east-1:123456789012:cordon-alerts-test';
const targetGroup = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef';
const policyName = `cordon-revoke-${c.caseId}`;
const triage = picture({
  autoScalingGroup: 'web-asg',
  instanceProfile: { arn: appProfileArn, associationId: ec2Id('iip-assoc', 1), roleNames: ['app-role'] },
  targetGroups: [{ arn: targetGroup, id: c.instanceId, port: 80 }],
  classicLoadBalancers: ['legacy-web'],
});

let fake: FakeEc2;
let cases: MemoryCases;
let asgState: string;

const clients = () => ({
  ec2: new EC2Client({ region: 'us-east-1' }),
  iam: new IAMClient({ region: 'us-east-1' }),
  autoscaling: new AutoScalingClient({ region: 'us-east-1' }),
  elbv2: new ElasticLoadBalancingV2Client({ region: 'us-east-1' }),
  elb: new ElasticLoadBalancingClient({ region: 'us-east-1' }),
});

/** An hour after containment: the sessions issued before it may still be valid. */
let releasedAt = new Date('2026-11-27T21:16:00.000Z');

function deps(): ReleaseDeps {
  return {
    cases,
    clientsFor: () => clients(),
    recorder: cases.recorder(c.caseId, 'release-instance'),
    sns: new SNSClient({ region: 'us-east-1' }),
    topicArn,
    quarantineProfileName: quarantineProfile,
    now: () => releasedAt,
    events: new EventBridgeClient({ region: 'us-east-1' }),
  };
}

/** Runs the real Protect, Isolate and Revoke on the fake account, as the workflow would. */
async function contain(status: CaseStatus = 'contained'): Promise<void> {
  const common = { ...clients(), cases };
  await protectInstance(
    { case: c, triage },
    { ...common, recorder: cases.recorder(c.caseId, 'protect-instance'), config: { ASG_MODE: 'standby' } },
  );
  await isolateInstance(
    { case: c, triage },
    {
      ...common,
      recorder: cases.recorder(c.caseId, 'isolate-instance'),
      config: {
        CORDON_STAGE: 'test',
        FORENSIC_CIDR: '',
        CONNTRACK_WAIT_SECONDS: 0,
        BLOCK_REMOTE_IPS: true,
        NACL_RULE_QUOTA: 20,
      },
      now: () => new Date('2026-11-27T20:15:00.000Z'),
      sleep: async () => {},
    },
  );
  await revokeCredentials(
    { case: c },
    {
      ...common,
      recorder: cases.recorder(c.caseId, 'revoke-credentials'),
      config: { REVOKE_SCOPE: 'instance', REQUIRE_IMDSV2: true, QUARANTINE_PROFILE_NAME: quarantineProfile },
      now: () => new Date('2026-11-27T20:16:00.000Z'),
    },
  );
  await cases.setStatus(c.caseId, status);
  asgState = 'Standby';
  for (const m of [ec2Mock, iamMock, asMock, elbv2Mock, elbMock, snsMock]) m.resetHistory();
}

const mutations: [ReturnType<typeof mockClient>, unknown][] = [
  [ec2Mock, ModifyNetworkInterfaceAttributeCommand],
  [ec2Mock, ModifyInstanceAttributeCommand],
  [ec2Mock, ModifyInstanceMetadataOptionsCommand],
  [ec2Mock, ReplaceIamInstanceProfileAssociationCommand],
  [ec2Mock, AssociateAddressCommand],
  [ec2Mock, DeleteNetworkAclEntryCommand],
  [ec2Mock, CreateTagsCommand],
  [iamMock, DeleteRolePolicyCommand],
  [iamMock, PutRolePolicyCommand],
  [asMock, ExitStandbyCommand],
  [elbv2Mock, RegisterTargetsCommand],
  [elbMock, RegisterInstancesWithLoadBalancerCommand],
  [snsMock, PublishCommand],
];
const expectNoMutation = () => {
  for (const [mock, command] of mutations) expect(mock).toHaveReceivedCommandTimes(command as never, 0);
};

beforeEach(() => {
  for (const m of [ec2Mock, iamMock, asMock, elbv2Mock, elbMock, snsMock, eventsMock]) m.reset();
  eventsMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
  fake = FakeEc2.standard().install(ec2Mock);
  cases = new MemoryCases();
  cases.add(c);
  asgState = 'InService';
  iamMock.on(PutRolePolicyCommand).resolves({});
  iamMock.on(DeleteRolePolicyCommand).resolves({});
  iamMock.on(GetInstanceProfileCommand).resolves(instanceProfileAnswer());
  asMock.on(DescribeAutoScalingInstancesCommand).callsFake(async () => ({
    AutoScalingInstances: [
      {
        InstanceId: c.instanceId,
        AutoScalingGroupName: 'web-asg',
        LifecycleState: asgState,
        AvailabilityZone: 'us-east-1a',
        HealthStatus: 'Healthy',
        ProtectedFromScaleIn: false,
      },
    ],
  }));
  asMock.on(DescribeAutoScalingGroupsCommand).resolves({
    AutoScalingGroups: [
      {
        AutoScalingGroupName: 'web-asg',
        MinSize: 1,
        MaxSize: 4,
        DesiredCapacity: 2,
        DefaultCooldown: 300,
        AvailabilityZones: ['us-east-1a'],
        HealthCheckType: 'ELB',
        CreatedTime: new Date('2026-01-01T00:00:00Z'),
      },
    ],
  });
  asMock.on(EnterStandbyCommand).resolves({ Activities: [] });
  asMock.on(ExitStandbyCommand).resolves({ Activities: [] });
  asMock.on(AttachInstancesCommand).resolves({});
  elbv2Mock.on(DeregisterTargetsCommand).resolves({});
  elbv2Mock.on(RegisterTargetsCommand).resolves({});
  elbMock.on(DeregisterInstancesFromLoadBalancerCommand).resolves({ Instances: [] });
  elbMock.on(RegisterInstancesWithLoadBalancerCommand).resolves({ Instances: [] });
  snsMock.on(PublishCommand).resolves({ MessageId: 'message-1' });
});

describe('releaseInstance', () => {
  it('puts back every group, address, ACL entry, attribute and the profile that containment changed', async () => {
    const aclBefore = structuredClone(fake.acls[0]?.entries);
    await contain();

    const result = await releaseInstance({ caseId: c.caseId }, deps());

    expect([...fake.interfaces.values()].map((n) => n.groups)).toEqual([
      [appGroup],
      [appGroup, adminGroup],
      [adminGroup],
    ]);
    expect(fake.addresses[0]).toMatchObject({ networkInterfaceId: eni[0], privateIp: '10.0.1.5' });
    expect(fake.acls[0]?.entries).toEqual(aclBefore);
    expect(fake.instance).toMatchObject({
      disableApiTermination: false,
      disableApiStop: false,
      shutdownBehavior: 'terminate',
      httpTokens: 'optional',
      profile: { arn: appProfileArn },
    });
    expect(fake.instance.volumes.map((v) => v.deleteOnTermination)).toEqual([true, false]);
    expect(fake.instance.tags['cordon:status']).toBe('released');
    // Only sessions issued before the release stay denied, and only while they may be valid.
    expect(result.notes).toEqual([
      `deny ${policyName} on app-role: narrowed to this instance's sessions issued before the release (2026-11-27T21:16:00.000Z), kept until 2026-11-28T09:16:00.000Z, when Cordon removes it as spent; credentials the instance still holds from before the release stay denied until its metadata service hands it new ones (at least five minutes before the old ones expire)`,
      expect.stringMatching(/^deny cordon-revoke-.*-issued-before on app-role: kept until /),
    ]);
  });

  it('sends exactly the calls that undo containment', async () => {
    await contain();

    await releaseInstance({ caseId: c.caseId }, deps());

    expect(ec2Mock).toHaveReceivedCommandWith(ReplaceIamInstanceProfileAssociationCommand, {
      IamInstanceProfile: { Arn: appProfileArn },
    });
    expect(ec2Mock).toHaveReceivedCommandWith(ModifyInstanceMetadataOptionsCommand, {
      InstanceId: c.instanceId,
      HttpTokens: 'optional',
    });
    // Containment's deny is narrowed in place, never removed: the credentials the host held while
    // contained stay denied.
    expect(iamMock).toHaveReceivedCommandTimes(DeleteRolePolicyCommand, 0);
    expect(iamMock.commandCalls(PutRolePolicyCommand).map((call) => call.args[0].input)).toEqual([
      {
        RoleName: 'app-role',
        PolicyName: policyName,
        PolicyDocument: releasedDeny(instanceArn, '2026-11-27T21:16:00.000Z'),
      },
    ]);
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 4);
    expect(ec2Mock).toHaveReceivedCommandWith(ModifyNetworkInterfaceAttributeCommand, {
      NetworkInterfaceId: eni[1],
      Groups: [appGroup, adminGroup],
    });
    expect(ec2Mock).toHaveReceivedCommandWith(ModifyNetworkInterfaceAttributeCommand, {
      NetworkInterfaceId: eni[0],
      ConnectionTrackingSpecification: {
        TcpEstablishedTimeout: 432000,
        UdpStreamTimeout: 180,
        UdpTimeout: 30,
      },
    });
    expect(ec2Mock).toHaveReceivedCommandWith(AssociateAddressCommand, {
      AllocationId: ec2Id('eipalloc', 1),
      NetworkInterfaceId: eni[0],
      PrivateIpAddress: '10.0.1.5',
      AllowReassociation: false,
    });
    expect(asMock).toHaveReceivedCommandWith(ExitStandbyCommand, {
      AutoScalingGroupName: 'web-asg',
      InstanceIds: [c.instanceId],
    });
    expect(elbv2Mock).toHaveReceivedCommandWith(RegisterTargetsCommand, {
      TargetGroupArn: targetGroup,
      Targets: [{ Id: c.instanceId, Port: 80 }],
    });
    expect(elbMock).toHaveReceivedCommandWith(RegisterInstancesWithLoadBalancerCommand, {
      LoadBalancerName: 'legacy-web',
      Instances: [{ InstanceId: c.instanceId }],
    });
  });

  it('marks the case released, frees the instance for new cases and publishes one alert saying what was restored', async () => {
    await contain();

    const result = await releaseInstance({ caseId: c.caseId }, deps());

    expect(cases.records.get(c.caseId)?.status).toBe('released');
    expect(cases.unlocked).toEqual([c.caseId]);
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 1);
    const message = String(snsMock.commandCalls(PublishCommand)[0]?.args[0].input.Message);
    expect(message).toContain(`Cordon released ${c.instanceId}`);
    expect(message).toContain(
      `- deny ${policyName} on app-role: narrowed to this instance's sessions issued before the release`,
    );
    expect(message).toContain('Evidence (snapshots, memory image, manifest) was not touched.');
    expect(result.messageId).toBe('message-1');
  });

  it('says on the default bus that the case is released, once it is marked so', async () => {
    await contain();

    await releaseInstance({ caseId: c.caseId }, deps());

    const entries = eventsMock
      .commandCalls(PutEventsCommand)
      .flatMap((x) => x.args[0].input.Entries ?? [])
      .filter((e) => e.DetailType !== 'Cordon Case Contained');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ Source: 'cordon', DetailType: 'Cordon Case Released' });
    expect(JSON.parse(entries[0]?.Detail ?? '{}')).toMatchObject({
      transition: 'released',
      caseId: c.caseId,
      at: releasedAt.toISOString(),
    });
  });

  it('releases all the same when the event is refused', async () => {
    await contain();
    eventsMock.on(PutEventsCommand).rejects(new Error('network down'));

    await releaseInstance({ caseId: c.caseId }, deps());

    expect(cases.records.get(c.caseId)?.status).toBe('released');
  });

  it('changes nothing when it runs a second time', async () => {
    await contain();
    await releaseInstance({ caseId: c.caseId }, deps());
    for (const m of [ec2Mock, iamMock, asMock, elbv2Mock, elbMock, snsMock]) m.resetHistory();

    const again = await releaseInstance({ caseId: c.caseId }, deps()).catch((e: unknown) => e);

    expect(again).toBeInstanceOf(ReleaseRefusedError);
    expectNoMutation();
  });

  it.each(['open', 'failed', 'released'] as CaseStatus[])(
    'refuses a case that is %s and changes nothing',
    async (status) => {
      await contain(status);

      const error = await releaseInstance({ caseId: c.caseId }, deps()).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ReleaseRefusedError);
      expect((error as Error).message).toContain(`is ${status}`);
      expectNoMutation();
    },
  );

  it('releases a partially contained case', async () => {
    await contain('partial');

    await releaseInstance({ caseId: c.caseId }, deps());

    expect(cases.records.get(c.caseId)?.status).toBe('released');
  });

  it('refuses a case it does not know', async () => {
    const error = await releaseInstance(
      { caseId: '20261127T000000Z-i-0123456789abcdef0-ffff' },
      deps(),
    ).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(CaseNotFoundError);
    expectNoMutation();
  });

  it('refuses while a later case holds the instance', async () => {
    await contain();
    fake.instance.tags['cordon:case-id'] = '20261128T000000Z-i-0123456789abcdef0-0002';

    const error = await releaseInstance({ caseId: c.caseId }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ReleaseRefusedError);
    expect((error as Error).message).toContain('held by a later case');
    expectNoMutation();
  });

  it('does not take back an Elastic IP that is now associated elsewhere', async () => {
    await contain();
    const address = fake.addresses[0];
    if (address)
      Object.assign(address, {
        associationId: ec2Id('eipassoc', 9),
        networkInterfaceId: eni[2],
        privateIp: '10.0.3.5',
      });

    const result = await releaseInstance({ caseId: c.caseId }, deps());

    expect(ec2Mock).toHaveReceivedCommandTimes(AssociateAddressCommand, 0);
    expect(result.notes).toContain(
      `Elastic IP 203.0.113.9 on ${eni[0]}: it is now associated with ${eni[2]}: not taken back`,
    );
  });

  it("leaves alone a rule number that now holds someone else's rule", async () => {
    await contain();
    const ours = (cases.changes(c.caseId, changeKeys.isolate) as IsolateChanges).naclEntries[0];
    const acl = fake.acls[0];
    const at =
      acl?.entries.findIndex((e) => e.RuleNumber === ours?.ruleNumber && e.Egress === ours?.egress) ?? -1;
    acl?.entries.splice(at, 1, {
      RuleNumber: ours?.ruleNumber,
      Egress: ours?.egress,
      Protocol: '6',
      RuleAction: 'allow',
      CidrBlock: '10.9.0.0/16',
    });

    await releaseInstance({ caseId: c.caseId }, deps());

    expect(ec2Mock).not.toHaveReceivedCommandWith(DeleteNetworkAclEntryCommand, {
      NetworkAclId: aclA,
      RuleNumber: ours?.ruleNumber,
      Egress: ours?.egress,
    });
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 3);
  });

  it('says what was and was not restored when a restore fails for good, keeps the case contained and alerts', async () => {
    await contain();
    iamMock.on(PutRolePolicyCommand).rejects(awsError('AccessDenied', 403));

    const error = await releaseInstance({ caseId: c.caseId }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ContainmentError);
    const message = (error as Error).message;
    expect(message).toContain(`Not restored: deny ${policyName} on app-role: AwsAccessDeniedError`);
    expect(message).toContain(
      `Restored: instance profile app-profile; instance metadata HttpTokens=optional`,
    );
    expect(cases.records.get(c.caseId)?.status).toBe('contained');
    expect(cases.unlocked).toEqual([]);
    expect(snsMock).toHaveReceivedCommandWith(PublishCommand, {
      Subject: `Cordon: release of ${c.instanceId} incomplete`,
    });
  });

  it('leaves a transient failure to the workflow’s retry, which finishes the release', async () => {
    await contain();
    fake.failNext('ModifyNetworkInterfaceAttributeCommand', awsError('InternalError', 500));

    const first = await releaseInstance({ caseId: c.caseId }, deps()).catch((e: unknown) => e);
    const second = await releaseInstance({ caseId: c.caseId }, deps());

    expect(first).toBeInstanceOf(AwsServiceError);
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(second.restored).toContain(`instance profile app-profile`);
    expect(second.restored).toContain(`${eni[0]} groups`);
    expect([...fake.interfaces.values()].map((n) => n.groups)).toEqual([
      [appGroup],
      [appGroup, adminGroup],
      [adminGroup],
    ]);
    expect(cases.records.get(c.caseId)?.status).toBe('released');
  });

  it('keeps the sessions issued before containment denied, saying until when, while any may still be valid', async () => {
    await contain();

    const result = await releaseInstance({ caseId: c.caseId }, deps());

    expect(iamMock).not.toHaveReceivedCommandWith(DeleteRolePolicyCommand, {
      PolicyName: `${policyName}-issued-before`,
    });
    expect(result.notes).toContain(
      `deny ${policyName}-issued-before on app-role: kept until 2026-11-28T08:16:00.000Z: sessions issued before containment stay denied until they have expired`,
    );
  });

  it('narrows to one statement that is smaller than the deny it replaces, so it fits wherever that one did', () => {
    const contained = denyPolicies('instance', instanceArn, '2026-11-27T20:16:00.000Z').containment;
    const released = releasedDeny(instanceArn, '2026-11-27T21:16:00.000Z');
    expect(released.length).toBeLessThan(contained.length);
    expect(JSON.parse(released).Statement).toEqual([
      {
        Sid: 'CordonDenySessionsOfThisInstanceIssuedBeforeRelease',
        Effect: 'Deny',
        Action: '*',
        Resource: '*',
        Condition: {
          ArnEquals: { 'ec2:SourceInstanceArn': instanceArn },
          DateLessThan: { 'aws:TokenIssueTime': '2026-11-27T21:16:00.000Z' },
        },
      },
    ]);
  });

  it('says so, and goes on, when the instance role no longer exists', async () => {
    await contain();
    iamMock.on(PutRolePolicyCommand).rejects(awsError('NoSuchEntity', 404));

    const result = await releaseInstance({ caseId: c.caseId }, deps());

    expect(result.notes).toContain(
      `deny ${policyName} on app-role: app-role no longer exists: nothing to narrow`,
    );
    expect(cases.records.get(c.caseId)?.status).toBe('released');
  });

  it('narrows to the same instant when an interrupted release runs again, so new credentials are never denied', async () => {
    await contain();
    // The first run stops dead after its changes and before its closing save (a Lambda timing out):
    // only the cutoff saved before anything changed can tell the second run which instant to keep.
    const save = cases.saveChanges.bind(cases);
    cases.saveChanges = async (...args: Parameters<typeof save>) => {
      const closing =
        args[1] === changeKeys.release && (args[2] as { restored: string[] }).restored.length > 0;
      if (closing) throw new Error('Task timed out');
      return save(...args);
    };
    await releaseInstance({ caseId: c.caseId }, deps()).catch(() => undefined);
    cases.saveChanges = save;
    releasedAt = new Date('2026-11-27T21:46:00.000Z');

    await releaseInstance({ caseId: c.caseId }, deps());

    const cutoffs = iamMock
      .commandCalls(PutRolePolicyCommand)
      .map(
        (call) => JSON.parse(String(call.args[0].input.PolicyDocument)).Statement[0].Condition.DateLessThan,
      );
    expect(cutoffs).toEqual([
      { 'aws:TokenIssueTime': '2026-11-27T21:16:00.000Z' },
      { 'aws:TokenIssueTime': '2026-11-27T21:16:00.000Z' },
    ]);
    releasedAt = new Date('2026-11-27T21:16:00.000Z');
  });

  it('removes the deny on sessions issued before containment once every one of them has expired', async () => {
    await contain();
    releasedAt = new Date('2026-11-28T08:16:00.001Z');

    await releaseInstance({ caseId: c.caseId }, deps());

    expect(iamMock).toHaveReceivedCommandWith(DeleteRolePolicyCommand, {
      RoleName: 'app-role',
      PolicyName: `${policyName}-issued-before`,
    });
    releasedAt = new Date('2026-11-27T21:16:00.000Z');
  });

  it("removes a terminated instance's role deny and ACL entries, and says the rest went with the instance", async () => {
    await contain();
    fake.instanceState = 'terminated';

    const result = await releaseInstance({ caseId: c.caseId }, deps());

    // Its credentials outlive it: they stay denied, narrowed like any other release's.
    expect(iamMock).toHaveReceivedCommandTimes(DeleteRolePolicyCommand, 0);
    expect(iamMock).toHaveReceivedCommandWith(PutRolePolicyCommand, {
      RoleName: 'app-role',
      PolicyName: policyName,
    });
    expect(ec2Mock).toHaveReceivedCommandTimes(DeleteNetworkAclEntryCommand, 4);
    expect(ec2Mock).toHaveReceivedCommandTimes(ReplaceIamInstanceProfileAssociationCommand, 0);
    expect(asMock).toHaveReceivedCommandTimes(ExitStandbyCommand, 0);
    expect(result.notes).toContain(`instance profile app-profile: ${c.instanceId} no longer exists`);
    expect(cases.records.get(c.caseId)?.status).toBe('released');
  });
});
