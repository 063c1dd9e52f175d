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
import type { ProtectChanges } from '../../../functions/core/actions/protect.js';
import { changeKeys } from '../../../functions/core/containment.js';
import { AwsServiceError, ContainmentError, InstanceNotFoundError } from '../../../functions/core/errors.js';
import {
  type ProtectDeps,
  type ProtectInput,
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

/** What Auto Scaling answers for the instance in group `web-asg`, in `state`. */
const membership = (state: string) => ({
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
const group = (desired: number, min: number) => ({
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

function inGroup(state = 'InService', desired = 3, min = 1): void {
  asMock.on(DescribeAutoScalingInstancesCommand).resolves(membership(state));
  asMock.on(DescribeAutoScalingGroupsCommand).resolves(group(desired, min));
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

  it('still protects the rest of an instance its group is already terminating, and says the group could not be left', async () => {
    inGroup('Terminating:Wait');

    const error = await protectInstance({ case: c, triage: withTargets }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ContainmentError);
    expect((error as Error).message).toContain('Terminating:Wait');
    expect((error as Error).message).toContain('Not applied: out of its Auto Scaling group.');
    expect(asMock).toHaveReceivedCommandTimes(EnterStandbyCommand, 0);
    expect(fake.instance.volumes.every((v) => v.deleteOnTermination === false)).toBe(true);
    expect(fake.instance.disableApiTermination).toBe(true);
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
    inGroup('InService', 3, 1);
    fake.failNext('ModifyInstanceAttributeCommand', awsError('UnauthorizedOperation'), 99);

    const error = await protectInstance({ case: c, triage: withTargets }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ContainmentError);
    expect((error as Error).message).toContain(
      'Applied: instance read; instance tagged with the case; out of its Auto Scaling group; out of its load balancers.',
    );
    expect((error as Error).message).toContain(
      'Not applied: termination and stop protection, shutdown behaviour stop; EBS volumes kept on termination.',
    );
    expect(asMock).toHaveReceivedCommandTimes(EnterStandbyCommand, 1);
  });

  it('reports every change that failed, each with its own error, once every call has answered', async () => {
    inGroup('InService', 3, 1);
    fake.failNext(
      'ModifyInstanceAttributeCommand',
      awsError('UnauthorizedOperation'),
      1,
      (input: { DisableApiTermination?: unknown }) => input.DisableApiTermination !== undefined,
    );
    asMock.on(EnterStandbyCommand).rejects(awsError('ValidationError'));

    const error = await protectInstance({ case: c, triage: withTargets }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ContainmentError);
    const message = (error as Error).message;
    expect(message).toContain(
      '"termination and stop protection, shutdown behaviour stop": AwsAccessDeniedError: UnauthorizedOperation',
    );
    expect(message).toContain('"out of its Auto Scaling group": AwsServiceError: ValidationError');
    expect(message).toContain(
      'Not applied: termination and stop protection, shutdown behaviour stop; out of its Auto Scaling group.',
    );
    // The other attributes were set all the same, and the timeline has each failure.
    expect(fake.instance).toMatchObject({ disableApiStop: true, shutdownBehavior: 'stop' });
    expect(cases.events.filter((e) => e.status === 'failed').map((e) => e.action)).toEqual(
      expect.arrayContaining([
        'ec2:ModifyInstanceAttribute disableApiTermination',
        'autoscaling:EnterStandby',
      ]),
    );
  });

  it('changes nothing when the originals cannot be saved on the case', async () => {
    inGroup('InService', 3, 1);
    cases.saveChanges = async () => {
      throw awsError('ProvisionedThroughputExceededException', 400);
    };

    const error = await protectInstance({ case: c, triage: withTargets }, deps()).catch((e: unknown) => e);

    expect((error as Error).message).toContain('Applied: instance read.');
    expect(ec2Mock).toHaveReceivedCommandTimes(CreateTagsCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifyInstanceAttributeCommand, 0);
    expect(asMock).toHaveReceivedCommandTimes(EnterStandbyCommand, 0);
    expect(elbv2Mock).toHaveReceivedCommandTimes(DeregisterTargetsCommand, 0);
  });

  it('refuses an instance that no longer exists and changes nothing', async () => {
    const gone = containCase({ instanceId: 'i-0fedcba9876543210' });

    const error = await protectInstance({ case: gone, triage: picture() }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InstanceNotFoundError);
    expect(ec2Mock).toHaveReceivedCommandTimes(CreateTagsCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifyInstanceAttributeCommand, 0);
  });
});

describe('protectInstance on the containment path, before Triage', () => {
  it('reads the volumes and attributes from the instance itself and touches no load balancer', async () => {
    const result = await protectInstance({ case: c }, deps());

    expect(ec2Mock).toHaveReceivedCommandWith(ModifyInstanceAttributeCommand, {
      InstanceId: c.instanceId,
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { DeleteOnTermination: false } }],
    });
    expect(result.volumes).toEqual([
      { volumeId: ec2Id('vol', 1), originalDeleteOnTermination: true },
      { volumeId: ec2Id('vol', 2), originalDeleteOnTermination: false },
    ]);
    expect(result.attributes.map((a) => a.original)).toEqual([false, false, 'terminate']);
    expect(result).toMatchObject({ targetGroups: [], classicLoadBalancers: [] });
    expect(result.done).not.toContain('out of its load balancers');
    expect(elbv2Mock).toHaveReceivedCommandTimes(DeregisterTargetsCommand, 0);
    expect(elbMock).toHaveReceivedCommandTimes(DeregisterInstancesFromLoadBalancerCommand, 0);
  });

  it('takes the instance out of its Auto Scaling group without Triage', async () => {
    inGroup('InService', 3, 1);

    const result = await protectInstance({ case: c }, deps());

    expect(asMock).toHaveReceivedCommandWith(EnterStandbyCommand, {
      AutoScalingGroupName: 'web-asg',
      InstanceIds: [c.instanceId],
      ShouldDecrementDesiredCapacity: true,
    });
    expect(result.autoScaling).toMatchObject({ groupName: 'web-asg', decremented: true, desiredBefore: 3 });
  });

  it('after Triage, leaves the load balancers and keeps the originals of the first run, and the status isolation set', async () => {
    inGroup('InService', 3, 1);
    await protectInstance({ case: c }, deps());
    const first = structuredClone(cases.changes(c.caseId, changeKeys.protect)) as ProtectChanges;
    fake.instance.tags['cordon:status'] = 'isolated';
    asMock.on(DescribeAutoScalingInstancesCommand).resolves(membership('Standby'));
    ec2Mock.resetHistory();
    asMock.resetHistory();

    const result = await protectInstance({ case: c, triage: withTargets }, deps());

    const saved = cases.changes(c.caseId, changeKeys.protect) as ProtectChanges;
    expect(saved).toEqual({
      ...first,
      targetGroups: withTargets.instance.targetGroups,
      classicLoadBalancers: ['legacy-web'],
    });
    expect(elbv2Mock).toHaveReceivedCommandTimes(DeregisterTargetsCommand, 2);
    expect(elbMock).toHaveReceivedCommandTimes(DeregisterInstancesFromLoadBalancerCommand, 1);
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifyInstanceAttributeCommand, 0);
    expect(asMock).toHaveReceivedCommandTimes(EnterStandbyCommand, 0);
    expect(fake.instance.tags['cordon:status']).toBe('isolated');
    expect(result.autoScaling).toMatchObject({ groupName: 'web-asg', decremented: true });
    expect(result.done).toContain('out of its load balancers');
  });

  it('completes on the retry when the group cannot be described once, the rest applied on the first run', async () => {
    inGroup('InService', 3, 1);
    asMock
      .on(DescribeAutoScalingGroupsCommand)
      .rejectsOnce(awsError('InternalFailure', 500))
      .resolves(group(3, 1));

    const first = await protectInstance({ case: c }, deps()).catch((e: unknown) => e);

    expect(first).toBeInstanceOf(AwsServiceError);
    expect((first as Error).message).toContain('Not applied: out of its Auto Scaling group.');
    expect(fake.instance.disableApiTermination).toBe(true);
    const second = await protectInstance({ case: c }, deps());
    expect(second.autoScaling).toMatchObject({ decremented: true, desiredBefore: 3 });
    expect((cases.changes(c.caseId, changeKeys.protect) as ProtectChanges).attributes[0]).toEqual({
      name: 'disableApiTermination',
      original: false,
    });
  });
});

/**
 * Holds every AWS call (EC2, Auto Scaling, the load balancers, the case record) until the test lets
 * the calls in flight go together: one round. Timeline writes are not held: they order nothing.
 */
class Rounds {
  count = 0;
  readonly calls: { round: number; call: string }[] = [];
  /** Each change made before its original was on the case, or before the instance carried a case. */
  readonly violations: string[] = [];
  private held: (() => void)[] = [];

  hold(call: string): Promise<void> {
    this.calls.push({ round: this.count + 1, call });
    return new Promise((go) => this.held.push(go));
  }

  /** Lets round after round go until `work` settles; the count is the rounds it took. */
  async run<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    work.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    for (;;) {
      // Every fake answers without a timer: a few turns of the event loop run every continuation.
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      if (settled) return work;
      if (this.held.length === 0) throw new Error('nothing in flight, and the step has not returned');
      const round = this.held;
      this.held = [];
      this.count += 1;
      for (const go of round) go();
    }
  }

  /** The calls of each round, for a failing assertion to show. */
  byRound(): string[][] {
    return Array.from({ length: this.count }, (_, i) =>
      this.calls.filter((x) => x.round === i + 1).map((x) => x.call),
    );
  }
}

/**
 * Deps whose every AWS call waits on `rounds`; the instance is in no group, or in service in `web-asg`.
 * Each change is checked, as it is sent, against what the case holds then and the tags the instance
 * carries then.
 */
function heldDeps(rounds: Rounds, inService: boolean): ProtectDeps {
  const saved = () => cases.changes(c.caseId, changeKeys.protect) as ProtectChanges | undefined;
  const check = (call: string, ok: boolean) => {
    if (!ok) rounds.violations.push(call);
  };
  fake.gate = (name, input) => {
    const call = `ec2:${name.replace(/Command$/, '')}`;
    if (call === 'ec2:CreateTags') check(call, saved()?.tags.length === 2);
    if (call === 'ec2:ModifyInstanceAttribute') {
      const attribute = Object.keys(input as object).find((k) => k !== 'InstanceId') ?? '';
      const recorded =
        attribute === 'BlockDeviceMappings'
          ? saved()?.volumes.length === fake.instance.volumes.length
          : saved()?.attributes.some((a) => a.name.toLowerCase() === attribute.toLowerCase());
      check(`${call} ${attribute} before its original was saved`, recorded === true);
      // IAM grants these only on an instance that carries a case.
      check(`${call} ${attribute} before the case tag`, fake.instance.tags['cordon:case-id'] !== undefined);
    }
    return rounds.hold(call);
  };
  const answers = [
    [
      DescribeAutoScalingInstancesCommand,
      () => (inService ? membership('InService') : { AutoScalingInstances: [] }),
    ],
    [DescribeAutoScalingGroupsCommand, () => group(3, 1)],
    [EnterStandbyCommand, () => ({ Activities: [] })],
    [DetachInstancesCommand, () => ({ Activities: [] })],
  ] as const;
  for (const [command, answer] of answers) {
    const call = `autoscaling:${command.name.replace(/Command$/, '')}`;
    asMock.on(command as never).callsFake(async () => {
      if (command === EnterStandbyCommand || command === DetachInstancesCommand) {
        check(`${call} before the group was saved`, saved()?.autoScaling !== undefined);
      }
      await rounds.hold(call);
      return answer();
    });
  }
  elbv2Mock.on(DeregisterTargetsCommand).callsFake(async () => {
    check('DeregisterTargets before its target was saved', (saved()?.targetGroups.length ?? 0) > 0);
    await rounds.hold('elasticloadbalancing:DeregisterTargets');
    return {};
  });
  elbMock.on(DeregisterInstancesFromLoadBalancerCommand).callsFake(async () => {
    check(
      'DeregisterInstancesFromLoadBalancer before it was saved',
      (saved()?.classicLoadBalancers.length ?? 0) > 0,
    );
    await rounds.hold('elasticloadbalancing:DeregisterInstancesFromLoadBalancer');
    return { Instances: [] };
  });
  return {
    ...deps(),
    cases: {
      get: async (caseId) => {
        await rounds.hold('dynamodb:GetItem');
        return cases.get(caseId);
      },
      saveChanges: async (caseId, step, changes) => {
        await rounds.hold('dynamodb:UpdateItem');
        return cases.saveChanges(caseId, step, changes);
      },
    },
  };
}

describe('the rounds of AWS calls Protect takes', () => {
  const changes = [
    'ec2:CreateTags',
    'ec2:ModifyInstanceAttribute',
    'autoscaling:EnterStandby',
    'elasticloadbalancing:DeregisterTargets',
    'elasticloadbalancing:DeregisterInstancesFromLoadBalancer',
  ];

  /** Runs Protect with every call held, and checks what every shape must hold. */
  async function inRounds(input: ProtectInput, inService: boolean) {
    const rounds = new Rounds();
    const result = await rounds.run(protectInstance(input, heldDeps(rounds, inService)));
    const byRound = rounds.byRound();
    expect(rounds.violations, JSON.stringify(byRound)).toEqual([]);
    // Every read goes in the first round, at once.
    expect(byRound[0]?.sort()).toEqual(
      [
        'autoscaling:DescribeAutoScalingInstances',
        'dynamodb:GetItem',
        'ec2:DescribeInstanceAttribute',
        'ec2:DescribeInstanceAttribute',
        'ec2:DescribeInstanceAttribute',
        'ec2:DescribeInstances',
      ].sort(),
    );
    return { result, rounds: rounds.count, byRound };
  }

  it('on an instance in no Auto Scaling group that already carries the case: 3 rounds', async () => {
    fake.instance.tags = { 'cordon:case-id': c.caseId, 'cordon:status': 'isolated' };
    cases.add(c, 'open', {
      [changeKeys.protect]: {
        tags: [
          { key: 'cordon:case-id', original: null },
          { key: 'cordon:status', original: null },
        ],
        attributes: [],
        volumes: [],
        targetGroups: [],
        classicLoadBalancers: [],
      } satisfies ProtectChanges,
    });

    const { rounds, byRound } = await inRounds({ case: c }, false);

    expect(rounds, JSON.stringify(byRound)).toBe(3);
    expect(byRound[1]).toEqual(['dynamodb:UpdateItem']);
    expect(byRound[2]?.every((call) => changes.includes(call))).toBe(true);
    expect(byRound[2]).toHaveLength(6);
  });

  it('on an instance in no Auto Scaling group and not yet tagged: 4 rounds, the tag before the attributes IAM grants on it', async () => {
    const { rounds, byRound } = await inRounds({ case: c }, false);

    expect(rounds, JSON.stringify(byRound)).toBe(4);
    expect(byRound.slice(1)).toEqual([
      ['dynamodb:UpdateItem'],
      ['ec2:CreateTags', 'ec2:CreateTags'],
      Array(4).fill('ec2:ModifyInstanceAttribute'),
    ]);
  });

  it('on an instance in service in an Auto Scaling group, not yet tagged, given Triage: 4 rounds', async () => {
    const { rounds, byRound, result } = await inRounds({ case: c, triage: withTargets }, true);

    expect(rounds, JSON.stringify(byRound)).toBe(4);
    expect(byRound[1]?.sort()).toEqual(['autoscaling:DescribeAutoScalingGroups', 'dynamodb:UpdateItem']);
    expect(byRound[2]?.sort()).toEqual(
      [
        'dynamodb:UpdateItem',
        'ec2:CreateTags',
        'ec2:CreateTags',
        'elasticloadbalancing:DeregisterInstancesFromLoadBalancer',
        'elasticloadbalancing:DeregisterTargets',
        'elasticloadbalancing:DeregisterTargets',
      ].sort(),
    );
    expect(byRound[3]?.sort()).toEqual(
      ['autoscaling:EnterStandby', ...Array(4).fill('ec2:ModifyInstanceAttribute')].sort(),
    );
    expect(result.autoScaling).toMatchObject({ decremented: true });
  });

  it('on an instance in service in an Auto Scaling group that already carries the case: 4 rounds, one save', async () => {
    await protectInstance({ case: c }, deps());
    fake.instance.disableApiTermination = false;

    const { rounds, byRound } = await inRounds({ case: c }, true);

    expect(rounds, JSON.stringify(byRound)).toBe(4);
    expect(byRound[1]).toEqual(['autoscaling:DescribeAutoScalingGroups']);
    expect(byRound[2]).toEqual(['dynamodb:UpdateItem']);
    expect(byRound[3]?.sort()).toEqual(
      ['autoscaling:EnterStandby', 'ec2:CreateTags', 'ec2:CreateTags', 'ec2:ModifyInstanceAttribute'].sort(),
    );
  });

  it('taking over an earlier unreleased case, in an Auto Scaling group: 4 rounds, its record read beside the group', async () => {
    cases.add(containCase({ caseId: earlierId }), 'contained', {
      [changeKeys.protect]: {
        tags: [
          { key: 'cordon:case-id', original: null },
          { key: 'cordon:status', original: null },
        ],
        attributes: [{ name: 'disableApiTermination', original: false }],
        volumes: [],
        targetGroups: [],
        classicLoadBalancers: [],
      } satisfies ProtectChanges,
    });
    fake.instance.tags = { 'cordon:case-id': earlierId, 'cordon:status': 'isolated' };

    const { rounds, byRound, result } = await inRounds({ case: c }, true);

    expect(rounds, JSON.stringify(byRound)).toBe(4);
    expect(byRound[1]?.sort()).toEqual(['autoscaling:DescribeAutoScalingGroups', 'dynamodb:GetItem']);
    expect(byRound[2]).toEqual(['dynamodb:UpdateItem']);
    expect(result.previousCaseId).toBe(earlierId);
  });
});

describe('protectInstance marking an instance for evidence only', () => {
  it('puts only the case tag on the instance, its original saved first, and nothing of its availability', async () => {
    inGroup();

    const result = await protectInstance({ case: c, markOnly: true }, deps());

    expect(ec2Mock.commandCalls(CreateTagsCommand).map((call) => call.args[0].input)).toEqual([
      { Resources: [c.instanceId], Tags: [{ Key: 'cordon:case-id', Value: c.caseId }] },
    ]);
    expect(ec2Mock).not.toHaveReceivedCommand(ModifyInstanceAttributeCommand);
    expect(asMock).not.toHaveReceivedCommand(EnterStandbyCommand);
    expect(asMock).not.toHaveReceivedCommand(DetachInstancesCommand);
    expect(elbv2Mock).not.toHaveReceivedCommand(DeregisterTargetsCommand);
    expect(cases.changes(c.caseId, changeKeys.protect)).toMatchObject({
      tags: [{ key: 'cordon:case-id', original: null }],
      attributes: [],
      volumes: [],
    });
    expect(result.done).toEqual([
      'instance read',
      'instance tagged with the case',
      'actions recorded on the case timeline',
    ]);
  });

  it('leaves an instance that carries an earlier case as it is, and says so', async () => {
    fake.instance.tags = { 'cordon:case-id': earlierId };

    await protectInstance({ case: c, markOnly: true }, deps());

    expect(ec2Mock).not.toHaveReceivedCommand(CreateTagsCommand);
    expect(ec2Mock).not.toHaveReceivedCommand(ModifyInstanceAttributeCommand);
    expect(cases.changes(c.caseId, changeKeys.protect)).toBeUndefined();
    expect(cases.events).toContainEqual(
      expect.objectContaining({ action: 'mark for evidence', detail: expect.stringContaining(earlierId) }),
    );
  });

  it('fails by name when the instance is gone', async () => {
    fake.instanceState = 'terminated';

    await expect(protectInstance({ case: c, markOnly: true }, deps())).rejects.toThrow(/no instance to mark/);
    expect(ec2Mock).not.toHaveReceivedCommand(CreateTagsCommand);
  });
});
