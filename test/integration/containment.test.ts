import { AutoScalingClient, DescribeAutoScalingInstancesCommand } from '@aws-sdk/client-auto-scaling';
import {
  DescribeAddressesCommand,
  DescribeIamInstanceProfileAssociationsCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import {
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { GetRolePolicyCommand, IAMClient, ListRolePoliciesCommand } from '@aws-sdk/client-iam';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { tagKeys } from '../../functions/core/case.js';
import { type LocalCase, runLocalCase, runWorkflowLocally } from '../../scripts/local/case.js';
import { resetMoto } from '../../scripts/local/moto.js';
import { readRealEvent } from '../support/fixtures.js';

const endpoint = inject('motoEndpoint');
const base = {
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  maxAttempts: 1,
};
const ec2 = new EC2Client(base);
const iam = new IAMClient(base);
const s3 = new S3Client({ ...base, forcePathStyle: true });
const autoscaling = new AutoScalingClient(base);
const elbv2 = new ElasticLoadBalancingV2Client(base);

let run: LocalCase;
const caseId = () => run.report.caseId as string;

async function enis() {
  const out = await ec2.send(
    new DescribeNetworkInterfacesCommand({
      Filters: [{ Name: 'attachment.instance-id', Values: [run.seeded.instanceId] }],
    }),
  );
  return out.NetworkInterfaces ?? [];
}

async function profileArn() {
  const out = await ec2.send(
    new DescribeIamInstanceProfileAssociationsCommand({
      Filters: [
        { Name: 'instance-id', Values: [run.seeded.instanceId] },
        { Name: 'state', Values: ['associated'] },
      ],
    }),
  );
  return out.IamInstanceProfileAssociations?.[0]?.IamInstanceProfile?.Arn ?? '';
}

beforeAll(async () => {
  await resetMoto(endpoint);
  run = await runLocalCase(readRealEvent('gd_detail_canary_ec2_stateless_integtest.json'), { endpoint });
  expect(run.report.outcome, run.report.reason).not.toBe('failed');
}, 120_000);

describe('after a case on the emulated account', () => {
  it('leaves no ENI of the instance in a group that admits traffic from or to anywhere', async () => {
    const interfaces = await enis();
    expect(interfaces).toHaveLength(run.seeded.networkInterfaceIds.length);
    const groupIds = [
      ...new Set(interfaces.flatMap((n) => (n.Groups ?? []).map((g) => g.GroupId as string))),
    ];
    expect(groupIds).not.toContain(run.seeded.securityGroupId);
    const { SecurityGroups = [] } = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: groupIds }));
    for (const group of SecurityGroups) {
      const open = (p: { IpRanges?: { CidrIp?: string }[]; Ipv6Ranges?: { CidrIpv6?: string }[] }) =>
        (p.IpRanges ?? []).some((r) => r.CidrIp === '0.0.0.0/0') ||
        (p.Ipv6Ranges ?? []).some((r) => r.CidrIpv6 === '::/0');
      expect(group.IpPermissions ?? [], `${group.GroupName} ingress`).toEqual([]);
      expect((group.IpPermissionsEgress ?? []).filter(open), `${group.GroupName} egress`).toEqual([]);
      for (const p of group.IpPermissionsEgress ?? [])
        expect([p.IpProtocol, p.FromPort, p.ToPort]).toEqual(['tcp', 443, 443]);
    }
  });

  it('records the original groups of every ENI in the evidence', async () => {
    const triage = run.report.evidence.find((e) => e.key.endsWith('/triage.json'));
    const out = await s3.send(
      new GetObjectCommand({ Bucket: run.report.bucket, Key: triage?.key, VersionId: triage?.versionId }),
    );
    const recorded = JSON.parse(
      await (out.Body as { transformToString(): Promise<string> }).transformToString(),
    ) as {
      summary: { enis: { networkInterfaceId: string; groups: string[] }[] };
    };
    expect(recorded.summary.enis.map((e) => [e.networkInterfaceId, e.groups]).sort()).toEqual(
      run.seeded.networkInterfaceIds.map((id) => [id, [run.seeded.securityGroupId]]).sort(),
    );
  });

  it("puts a deny on the instance's role for this instance's sessions, and names the role as revoked", async () => {
    expect(run.report.revokedRoles).toEqual([run.seeded.roleName]);
    const { PolicyNames = [] } = await iam.send(
      new ListRolePoliciesCommand({ RoleName: run.seeded.roleName }),
    );
    const name = PolicyNames.find((p) => p.includes(caseId()));
    expect(name).toBeDefined();
    const policy = await iam.send(
      new GetRolePolicyCommand({ RoleName: run.seeded.roleName, PolicyName: name }),
    );
    const doc = JSON.parse(decodeURIComponent(policy.PolicyDocument ?? '{}')) as {
      Statement: { Effect: string; Condition?: unknown }[];
    };
    expect(doc.Statement.every((s) => s.Effect === 'Deny')).toBe(true);
    expect(JSON.stringify(doc)).toContain(run.seeded.instanceId);
  });

  it('moves the instance off its profile onto the quarantine profile', async () => {
    expect(await profileArn()).toMatch(/instance-profile\/cordon-quarantine-dev$/);
  });

  it('takes a case-tagged snapshot of every volume', async () => {
    const { Snapshots = [] } = await ec2.send(
      new DescribeSnapshotsCommand({ Filters: [{ Name: `tag:${tagKeys.caseId}`, Values: [caseId()] }] }),
    );
    expect(Snapshots.map((s) => s.VolumeId).sort()).toEqual([...run.seeded.volumeIds].sort());
  });

  it('takes the instance out of its Auto Scaling group and its target group', async () => {
    const asg = await autoscaling.send(
      new DescribeAutoScalingInstancesCommand({ InstanceIds: [run.seeded.instanceId] }),
    );
    expect(asg.AutoScalingInstances?.[0]?.LifecycleState ?? 'Detached').not.toBe('InService');
    const health = await elbv2.send(
      new DescribeTargetHealthCommand({ TargetGroupArn: run.seeded.targetGroupArn }),
    );
    expect((health.TargetHealthDescriptions ?? []).map((d) => d.Target?.Id)).not.toContain(
      run.seeded.instanceId,
    );
  });
});

describe('Release', () => {
  it('restores groups, Elastic IP, profile, Auto Scaling and target group, and narrows containment’s deny to sessions issued before the release', async () => {
    const releaseStarted = Date.now();
    const released = await runWorkflowLocally(run.stack, 'release', { caseId: caseId() });
    expect(released.status, JSON.stringify(released.error)).toBe('SUCCEEDED');
    for (const n of await enis())
      expect((n.Groups ?? []).map((g) => g.GroupId)).toEqual([run.seeded.securityGroupId]);
    expect(await profileArn()).toMatch(new RegExp(`instance-profile/${run.seeded.instanceProfileName}$`));
    const { PolicyNames = [] } = await iam.send(
      new ListRolePoliciesCommand({ RoleName: run.seeded.roleName }),
    );
    // Both denies stay while the sessions they deny may live: containment's now denies only this
    // instance's sessions issued before the release, so the credentials it is issued from now on work.
    expect(PolicyNames.filter((p) => p.includes(caseId())).sort()).toEqual([
      `cordon-revoke-${caseId()}`,
      `cordon-revoke-${caseId()}-issued-before`,
    ]);
    const narrowed = await iam.send(
      new GetRolePolicyCommand({ RoleName: run.seeded.roleName, PolicyName: `cordon-revoke-${caseId()}` }),
    );
    const statements = JSON.parse(decodeURIComponent(narrowed.PolicyDocument ?? '')).Statement as {
      Effect: string;
      Condition: { DateLessThan?: Record<string, string> };
    }[];
    expect(statements.length).toBeGreaterThan(0);
    for (const s of statements) {
      expect(s.Effect).toBe('Deny');
      expect(Date.parse(s.Condition.DateLessThan?.['aws:TokenIssueTime'] ?? '')).toBeGreaterThanOrEqual(
        releaseStarted,
      );
    }
    const { Addresses = [] } = await ec2.send(
      new DescribeAddressesCommand({ PublicIps: [run.seeded.elasticIp] }),
    );
    expect(Addresses[0]?.NetworkInterfaceId).toBe(run.seeded.networkInterfaceIds[0]);
    const asg = await autoscaling.send(
      new DescribeAutoScalingInstancesCommand({ InstanceIds: [run.seeded.instanceId] }),
    );
    expect(asg.AutoScalingInstances?.[0]?.LifecycleState).toBe('InService');
    const health = await elbv2.send(
      new DescribeTargetHealthCommand({ TargetGroupArn: run.seeded.targetGroupArn }),
    );
    expect((health.TargetHealthDescriptions ?? []).map((d) => d.Target?.Id)).toContain(run.seeded.instanceId);
  });

  it('refuses to run a second time and changes nothing', async () => {
    const before = await enis();
    const again = await runWorkflowLocally(run.stack, 'release', { caseId: caseId() });
    expect(again.status).toBe('FAILED');
    expect(again.steps.map((s) => s.reason ?? '').join(' ')).toMatch(/ReleaseRefusedError/);
    expect(await enis()).toEqual(before);
  });
});
