import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { IAMClient } from '@aws-sdk/client-iam';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { changeKeys } from '../../../functions/core/containment.js';
import { containmentActions } from '../../../functions/core/containment-actions.js';
import { releaseInstance } from '../../../functions/release/release-instance/release-instance.js';
import { containCase, MemoryCases, quarantineProfile } from '../../support/containment-fixtures.js';

const ec2Mock = mockClient(EC2Client);
const snsMock = mockClient(SNSClient);
const eventsMock = mockClient(EventBridgeClient);
const c = containCase();

/** The least each action's schema accepts: an action that changed nothing, but recorded that it ran. */
const recorded: Record<string, unknown> = {
  [changeKeys.revoke]: { scope: 'instance', cutoff: '2026-11-27T20:15:00.000Z', denies: [] },
  [changeKeys.isolate]: { groups: [], enis: [], elasticIps: [], naclEntries: [] },
  [changeKeys.protect]: { tags: [], attributes: [], volumes: [], targetGroups: [], classicLoadBalancers: [] },
};

let cases: MemoryCases;
let restored: string[];

async function release() {
  return releaseInstance(
    { caseId: c.caseId },
    {
      cases,
      clientsFor: () => ({
        ec2: new EC2Client({ region: 'us-east-1' }),
        iam: new IAMClient({ region: 'us-east-1' }),
        autoscaling: new AutoScalingClient({ region: 'us-east-1' }),
        elbv2: new ElasticLoadBalancingV2Client({ region: 'us-east-1' }),
        elb: new ElasticLoadBalancingClient({ region: 'us-east-1' }),
      }),
      recorder: cases.recorder(c.caseId, 'release-instance'),
      sns: new SNSClient({ region: 'us-east-1' }),
      topicArn: 'arn:aws:sns:us-east-1:123456789012:cordon-alerts-test',
      quarantineProfileName: quarantineProfile,
      now: () => new Date('2026-11-27T21:16:00.000Z'),
      events: new EventBridgeClient({ region: 'us-east-1' }),
    },
  );
}

beforeEach(() => {
  cases = new MemoryCases();
  restored = [];
  ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
  snsMock.on(PublishCommand).resolves({ MessageId: 'm-1' });
  eventsMock.resolves({});
  for (const action of containmentActions) {
    vi.spyOn(action, 'restore').mockImplementation(async () => {
      restored.push(action.key);
    });
  }
});

afterEach(() => {
  vi.restoreAllMocks();
  ec2Mock.reset();
  snsMock.reset();
  eventsMock.reset();
});

describe('Release, through the containment actions', () => {
  it('restores every action the case recorded, in the list order', async () => {
    cases.add(c, 'contained', recorded);

    await release();

    expect(restored).toEqual(containmentActions.map((a) => a.key));
  });

  it.each(containmentActions.map((a) => [a.key, a] as const))(
    'restores %s alone when the case recorded only its changes, and gives it those changes',
    async (key, action) => {
      cases.add(c, 'contained', { [key]: recorded[key] });

      await release();

      expect(restored).toEqual([key]);
      expect(action.restore).toHaveBeenCalledWith(
        recorded[key],
        expect.objectContaining({ record: expect.objectContaining({ caseId: c.caseId }) }),
      );
    },
  );

  it('restores nothing for a case that recorded no containment changes', async () => {
    cases.add(c, 'contained');

    const result = await release();

    expect(restored).toEqual([]);
    expect(result.restored).toEqual([]);
  });
});
