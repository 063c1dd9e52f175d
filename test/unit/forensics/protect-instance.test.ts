import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
  DetachInstancesCommand,
  EnterStandbyCommand,
} from '@aws-sdk/client-auto-scaling';
import { CreateTagsCommand, EC2Client, ModifyInstanceAttributeCommand } from '@aws-sdk/client-ec2';
import {
  DeregisterInstancesFromLoadBalancerCommand,
  ElasticLoadBalancingClient,
} from '@aws-sdk/client-elastic-load-balancing';
import {
  DeregisterTargetsCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { changeKeys, type ProtectChanges } from '../../../functions/core/containment.js';
import { AwsServiceError, ContainmentError, InstanceNotFoundError } from '../../../functions/core/errors.js';
import {
  type ProtectDeps,
  protectInstance,
} from '../../../functions/forensics/protect-instance/protect-instance.js';
import {
  awsError,
  containCase,
  ec2Id,
  eni,
  FakeEc2,
  MemoryCases,
  picture,
} from '../../support/containment-fixtures.js';

const ec2Mock = mockClient(EC2Client);
const asMock = mockClient(AutoScalingClient);
const elbv2Mock = mockClient(ElasticLoadBalancingV2Client);
const elbMock = mockClient(ElasticLoadBalancingClient);
const c = containCase();
const earlierId = '20261126T080000Z-i-0123456789abcdef0-0001';
const targetGroup = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef';
const ipTargetGroup =
  'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-ip/fedcba9876543210';

let fake: FakeEc2;
let cases: MemoryCases;

function deps(mode: 'standby' | 'detach' = 'standby'): ProtectDeps {
  return {
    ec2: new EC2Client({ region: 'us-east-1' }),
    autoscaling: new AutoScalingClient({ region: 'us-east-1' }),
    elbv2: new ElasticLoadBalancingV2Client({ region: 'us-east-1' }),
    elb: new ElasticLoadBalancingClient({ region: 'us-east-1' }),
    recorder: cases.recorder(c.caseId, 'protect-instance'),
    cases,
    config: { ASG_MODE: mode },
  };
}

function inGroup(state = 'InService', desired = 3, min = 1): void {
  asMock.on(DescribeAutoScalingInstancesCommand).resolves({
    AutoScalingInstances: [
      {
        InstanceId: c.instanceId,
        AutoScalingGroupName: 'web-asg',
        LifecycleState: state,
        AvailabilityZone: 'us-east-1a',
        HealthStatus: 'Healthy',
        ProtectedFromScaleIn: false,
      },
    ],
  });
  asMock.on(DescribeAutoScalingGroupsCommand).resolves({
    AutoScalingGroups: [
      {
        AutoScalingGroupName: 'web-asg',
        MinSize: min,
        MaxSize: 5,
        DesiredCapacity: desired,
        DefaultCooldown: 300,
        AvailabilityZones: ['us-east-1a'],
        HealthCheckType: 'ELB',
        CreatedTime: new Date('2026-01-01T00:00:00Z'),
      },
    ],
  });
}

const withTargets = picture({
  autoScalingGroup: 'web-asg',
  targetGroups: [
    { arn: targetGroup, id: c.instanceId, port: 80 },
    { arn: ipTargetGroup, id: '10.0.1.5', port: 8080 },
  ],
  classicLoadBalancers: ['legacy-web'],
});

beforeEach(() => {
  ec2Mock.reset();
  asMock.reset();
  elbv2Mock.reset();
  elbMock.reset();
  fake = FakeEc2.standard().install(ec2Mock);
  cases = new MemoryCases();
  cases.add(c);
  asMock.on(DescribeAutoScalingInstancesCommand).resolves({ AutoScalingInstances: [] });
  asMock.on(EnterStandbyCommand).resolves({ Activities: [] });
  asMock.on(DetachInstancesCommand).resolves({ Activities: [] });
  elbv2Mock.on(DeregisterTargetsCommand).resolves({});
  elbMock.on(DeregisterInstancesFromLoadBalancerCommand).resolves({ Instances: [] });
});

describe('protectInstance', () => {
  it('tags the instance with the case and its status, and every interface with the case', async () => {
    await protectInstance({ case: c, triage: picture() }, deps());

    expect(ec2Mock).toHaveReceivedCommandWith(CreateTagsCommand, {
      Resources: [c.instanceId],
      Tags: [
        { Key: 'cordon:case-id', Value: c.caseId },
        { Key: 'cordon:status', Value: 'protected' },
      ],
    });
    expect(ec2Mock).toHaveReceivedCommandWith(CreateTagsCommand, {
      Resources: [...eni],
      Tags: [{ Key: 'cordon:case-id', Value: c.caseId }],
    });
  });

  it('turns on termination and stop protection and makes a shutdown stop the instance, saving each original first', async () => {
    const result = await protectInstance({ case: c, triage: picture() }, deps());

    expect(ec2Mock).toHaveReceivedCommandWith(ModifyInstanceAttributeCommand, {
      InstanceId: c.instanceId,
      DisableApiTermination: { Value: true },
    });
    expect(ec2Mock).toHaveReceivedCommandWith(ModifyInstanceAttributeCommand, {
      InstanceId: c.instanceId,
      DisableApiStop: { Value: true },
    });
    expect(ec2Mock).toHaveReceivedCommandWith(ModifyInstanceAttributeCommand, {
      InstanceId: c.instanceId,
      InstanceInitiatedShutdownBehavior: { Value: 'stop' },
    });
    expect(result.attributes).toEqual([
      { name: 'disableApiTermination', original: false, now: true },
      { name: 'disableApiStop', original: false, now: true },
      { name: 'instanceInitiatedShutdownBehavior', original: 'terminate', now: 'stop' },
    ]);
    expect(fake.instance).toMatchObject({
      disableApiTermination: true,
      disableApiStop: true,
      shutdownBehavior: 'stop',
    });
  });

  it('keeps every attached EBS volume on termination in one call, leaving alone those already kept', async () => {
    const result = await protectInstance({ case: c, triage: picture() }, deps());

    expect(ec2Mock).toHaveReceivedCommandWith(ModifyInstanceAttributeCommand, {
      InstanceId: c.instanceId,
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { DeleteOnTermination: false } }],
    });
    expect(result.volumes).toEqual([
      { volumeId: ec2Id('vol', 1), originalDeleteOnTermination: true },
      { volumeId: ec2Id('vol', 2), originalDeleteOnTermination: false },
    ]);
    expect(fake.instance.volumes.every((v) => v.deleteOnTermination === false)).toBe(true);
  });

  it('sends no Auto Scaling command for an instance outside any group', async () => {
    const result = await protectInstance({ case: c, triage: picture() }, deps());

    expect(asMock).toHaveReceivedCommandTimes(EnterStandbyCommand, 0);
    expect(asMock).toHaveReceivedCommandTimes(DetachInstancesCommand, 0);
    expect(result.autoScaling).toBeUndefined();
  });

  it('puts the instance in standby and lowers desired capacity while it stays at or above the minimum', async () => {
    inGroup('InService', 3, 1);

    const result = await protectInstance({ case: c, triage: withTargets }, deps());

    expect(asMock).toHaveReceivedCommandWith(EnterStandbyCommand, {
      AutoScalingGroupName: 'web-asg',
      InstanceIds: [c.instanceId],
      ShouldDecrementDesiredCapacity: true,
    });
    expect(result.autoScaling).toMatchObject({
      mode: 'standby',
      decremented: true,
      replacementLaunched: false,
    });
  });

  it('keeps the minimum: at it the instance enters standby without lowering desired capacity, and the timeline says a replacement comes', async () => {
    inGroup('InService', 2, 2);

    const result = await protectInstance({ case: c, triage: withTargets }, deps());

    expect(asMock).toHaveReceivedCommandWith(EnterStandbyCommand, {
      AutoScalingGroupName: 'web-asg',
      InstanceIds: [c.instanceId],
      ShouldDecrementDesiredCapacity: false,
    });
    expect(result.autoScaling?.replacementLaunched).toBe(true);
    expect(cases.events.map((e) => e.action)).toContain('auto scaling minimum kept');
  });

  it('detaches the instance when ASG_MODE is detach', async () => {
    inGroup('InService', 3, 1);

    await protectInstance({ case: c, triage: withTargets }, deps('detach'));

    expect(asMock).toHaveReceivedCommandWith(DetachInstancesCommand, {
      AutoScalingGroupName: 'web-asg',
      InstanceIds: [c.instanceId],
      ShouldDecrementDesiredCapacity: true,
    });
    expect(asMock).toHaveReceivedCommandTimes(EnterStandbyCommand, 0);
  });

  it('stops at an instance its group is already terminating, before touching its load balancers', async () => {
    inGroup('Terminating:Wait');

    const error = await protectInstance({ case: c, triage: withTargets }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ContainmentError);
    expect((error as Error).message).toContain('Terminating:Wait');
    expect((error as Error).message).toContain(
      'Not applied: out of its Auto Scaling group; out of its load balancers.',
    );
    expect(elbv2Mock).toHaveReceivedCommandTimes(DeregisterTargetsCommand, 0);
  });

  it('deregisters the instance from every target group that holds it, by instance id or by IP, and from Classic load balancers', async () => {
    await protectInstance({ case: c, triage: withTargets }, deps());

    expect(elbv2Mock).toHaveReceivedCommandWith(DeregisterTargetsCommand, {
      TargetGroupArn: targetGroup,
      Targets: [{ Id: c.instanceId, Port: 80 }],
    });
    expect(elbv2Mock).toHaveReceivedCommandWith(DeregisterTargetsCommand, {
      TargetGroupArn: ipTargetGroup,
      Targets: [{ Id: '10.0.1.5', Port: 8080 }],
    });
    expect(elbMock).toHaveReceivedCommandWith(DeregisterInstancesFromLoadBalancerCommand, {
      LoadBalancerName: 'legacy-web',
      Instances: [{ InstanceId: c.instanceId }],
    });
    const saved = cases.changes(c.caseId, changeKeys.protect) as ProtectChanges;
    expect(saved.targetGroups).toHaveLength(2);
    expect(saved.classicLoadBalancers).toEqual(['legacy-web']);
  });

  it('goes on when a target is no longer registered', async () => {
    elbv2Mock
      .on(DeregisterTargetsCommand, { TargetGroupArn: targetGroup })
      .rejects(awsError('InvalidTargetException'));

    const result = await protectInstance({ case: c, triage: withTargets }, deps());

    expect(result.targetGroups.map((t) => t.deregistered)).toEqual([false, true]);
    expect(elbMock).toHaveReceivedCommandTimes(DeregisterInstancesFromLoadBalancerCommand, 1);
  });

  it("keeps an earlier case's originals when that case never released the instance", async () => {
    const earlier = containCase({ caseId: earlierId });
    cases.add(earlier, 'contained', {
      [changeKeys.protect]: {
        tags: [
          { key: 'cordon:case-id', original: null },
          { key: 'cordon:status', original: null },
        ],
        attributes: [{ name: 'disableApiTermination', original: false }],
        volumes: [{ volumeId: ec2Id('vol', 1), deviceName: '/dev/xvda', originalDeleteOnTermination: true }],
        targetGroups: [{ arn: targetGroup, id: c.instanceId, port: 80 }],
        classicLoadBalancers: [],
      } satisfies ProtectChanges,
    });
    fake.instance.tags = { 'cordon:case-id': earlierId, 'cordon:status': 'isolated' };
    fake.instance.disableApiTermination = true;
    fake.instance.volumes[0] = { ...fake.instance.volumes[0], deleteOnTermination: false } as never;

    const result = await protectInstance({ case: c, triage: picture() }, deps());

    const saved = cases.changes(c.caseId, changeKeys.protect) as ProtectChanges;
    expect(result.previousCaseId).toBe(earlierId);
    expect(saved.tags).toEqual([
      { key: 'cordon:case-id', original: null },
      { key: 'cordon:status', original: null },
    ]);
    expect(saved.attributes[0]).toEqual({ name: 'disableApiTermination', original: false });
    expect(saved.volumes[0]?.originalDeleteOnTermination).toBe(true);
    expect(saved.targetGroups).toEqual([{ arn: targetGroup, id: c.instanceId, port: 80 }]);
    expect(ec2Mock).not.toHaveReceivedCommandWith(ModifyInstanceAttributeCommand, {
      DisableApiTermination: { Value: true },
    });
  });

  it('records the live values, not an earlier case’s, when that case was released', async () => {
    cases.add(containCase({ caseId: earlierId }), 'released', {
      [changeKeys.protect]: {
        tags: [],
        attributes: [{ name: 'disableApiTermination', original: false }],
        volumes: [],
        targetGroups: [],
        classicLoadBalancers: [],
      },
    });
    fake.instance.tags = { 'cordon:case-id': earlierId, 'cordon:status': 'released' };
    fake.instance.disableApiTermination = true;

    const result = await protectInstance({ case: c, triage: picture() }, deps());

    expect(result.previousCaseId).toBeUndefined();
    expect(result.attributes[0]).toEqual({ name: 'disableApiTermination', original: true, now: true });
  });

  it('goes on without stop protection where EC2 does not offer it, and says so', async () => {
    fake.failNext(
      'ModifyInstanceAttributeCommand',
      awsError('UnsupportedOperation'),
      1,
      (input: { DisableApiStop?: unknown }) => input.DisableApiStop !== undefined,
    );

    const result = await protectInstance({ case: c, triage: picture() }, deps());

    expect(result.unavailable).toEqual([
      {
        api: 'ec2:ModifyInstanceAttribute DisableApiStop',
        reason: 'AwsServiceError: UnsupportedOperation: UnsupportedOperation (test)',
      },
    ]);
    expect(fake.instance.shutdownBehavior).toBe('stop');
  });

  it.each([
    ['ec2', 'DescribeInstancesCommand'],
    ['ec2', 'CreateTagsCommand'],
    ['ec2', 'DescribeInstanceAttributeCommand'],
    ['ec2', 'ModifyInstanceAttributeCommand'],
    ['autoscaling', 'EnterStandbyCommand'],
    ['elbv2', 'DeregisterTargetsCommand'],
    ['elb', 'DeregisterInstancesFromLoadBalancerCommand'],
  ])(
    'completes on the retry when %s %s fails once, with the originals recorded once',
    async (service, command) => {
      inGroup('InService', 3, 1);
      const failure = awsError('InternalError', 500);
      if (service === 'ec2') fake.failNext(command, failure);
      if (service === 'autoscaling')
        asMock.on(EnterStandbyCommand).rejectsOnce(failure).resolves({ Activities: [] });
      if (service === 'elbv2') elbv2Mock.on(DeregisterTargetsCommand).rejectsOnce(failure).resolves({});
      if (service === 'elb') {
        elbMock
          .on(DeregisterInstancesFromLoadBalancerCommand)
          .rejectsOnce(failure)
          .resolves({ Instances: [] });
      }

      const first = await protectInstance({ case: c, triage: withTargets }, deps()).catch((e: unknown) => e);
      const second = await protectInstance({ case: c, triage: withTargets }, deps());

      expect(first).toBeInstanceOf(AwsServiceError);
      const saved = cases.changes(c.caseId, changeKeys.protect) as ProtectChanges;
      expect(saved.attributes).toEqual([
        { name: 'disableApiTermination', original: false },
        { name: 'disableApiStop', original: false },
        { name: 'instanceInitiatedShutdownBehavior', original: 'terminate' },
      ]);
      expect(saved.volumes.map((v) => v.originalDeleteOnTermination)).toEqual([true, false]);
      expect(saved.tags).toEqual([
        { key: 'cordon:case-id', original: null },
        { key: 'cordon:status', original: null },
      ]);
      expect(second.targetGroups).toHaveLength(2);
    },
  );

  it('stops with a ContainmentError naming what was and was not applied when EC2 refuses for good', async () => {
    fake.failNext('ModifyInstanceAttributeCommand', awsError('UnauthorizedOperation'), 99);

    const error = await protectInstance({ case: c, triage: withTargets }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ContainmentError);
    expect((error as Error).message).toContain('Applied: instance read; instance tagged with the case.');
    expect((error as Error).message).toContain(
      'Not applied: termination and stop protection, shutdown behaviour stop; EBS volumes kept on termination',
    );
    expect(asMock).toHaveReceivedCommandTimes(EnterStandbyCommand, 0);
  });

  it('refuses an instance that no longer exists and changes nothing', async () => {
    const gone = containCase({ instanceId: 'i-0fedcba9876543210' });

    const error = await protectInstance({ case: gone, triage: picture() }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InstanceNotFoundError);
    expect(ec2Mock).toHaveReceivedCommandTimes(CreateTagsCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifyInstanceAttributeCommand, 0);
  });
});
