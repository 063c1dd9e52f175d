import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import {
  DescribeIamInstanceProfileAssociationsCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { IAMClient, ListRolePoliciesCommand } from '@aws-sdk/client-iam';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { ContainmentPlan } from '../../scripts/cli/dry-run.js';
import { resetMoto } from '../../scripts/local/moto.js';
import { type SeededAccount, seedAccount } from '../../scripts/local/seed.js';
import { deployLocalStack, type LocalStack } from '../../scripts/local/stack.js';
import { cordon, emulator, publishStack } from '../support/cli-fixtures.js';

/**
 * `cordon start --dry-run` on the emulated account: the plan names the seeded instance's interfaces,
 * volumes and role, and the account is exactly as it was.
 */
const endpoint = inject('motoEndpoint');
const ec2 = new EC2Client(emulator(endpoint));
const iam = new IAMClient(emulator(endpoint));
const ddb = new DynamoDBClient(emulator(endpoint));
let stack: LocalStack;
let seeded: SeededAccount;

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  await resetMoto(endpoint);
  stack = await deployLocalStack(endpoint, 'dev');
  await publishStack(endpoint, stack);
  seeded = await seedAccount(endpoint, { vpcEndpoints: true });
}, 120_000);

/** What containment would change, read from the account. */
async function accountState() {
  const [interfaces, groups, policies, profile, snapshots, cases] = await Promise.all([
    ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: seeded.networkInterfaceIds })),
    ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [seeded.vpcId] }] })),
    iam.send(new ListRolePoliciesCommand({ RoleName: seeded.roleName })),
    ec2.send(
      new DescribeIamInstanceProfileAssociationsCommand({
        Filters: [{ Name: 'instance-id', Values: [seeded.instanceId] }],
      }),
    ),
    ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] })),
    ddb.send(new ScanCommand({ TableName: stack.table })),
  ]);
  return {
    interfaces: (interfaces.NetworkInterfaces ?? []).map((n) => [
      n.NetworkInterfaceId,
      (n.Groups ?? []).map((g) => g.GroupId),
    ]),
    groups: (groups.SecurityGroups ?? []).map((g) => g.GroupName).sort(),
    policies: policies.PolicyNames ?? [],
    profile: (profile.IamInstanceProfileAssociations ?? []).map((a) => a.IamInstanceProfile?.Arn),
    snapshots: (snapshots.Snapshots ?? []).map((s) => s.SnapshotId).sort(),
    cases: cases.Count ?? 0,
  };
}

describe('cordon start --dry-run on the emulator', () => {
  it('plans for the seeded instance and leaves the account unchanged', async () => {
    const before = await accountState();

    const { code, stdout, stderr } = await cordon(endpoint, [
      'start',
      '--dry-run',
      '--instance',
      seeded.instanceId,
      '--json',
    ]);

    expect(stderr).toBe('');
    expect(code).toBe(0);
    const plan = JSON.parse(stdout) as ContainmentPlan;
    expect(plan.instanceId).toBe(seeded.instanceId);
    expect(plan.isolation.interfaces.map((n) => n.networkInterfaceId).sort()).toEqual(
      [...seeded.networkInterfaceIds].sort(),
    );
    expect(plan.isolation.groups[0]?.isolation).toEqual({
      name: 'cordon-dev-isolation',
      groupId: null,
      wouldCreate: true,
    });
    expect(plan.snapshots.volumes.map((v) => v.volumeId).sort()).toEqual([...seeded.volumeIds].sort());
    expect(plan.revocation.roles).toEqual([seeded.roleName]);
    expect(plan.revocation.denies).toHaveLength(2);
    expect(plan.protection.autoScaling?.groupName).toBe(seeded.autoScalingGroupName);
    expect(await accountState()).toEqual(before);
  });

  it('says so by name when the instance does not exist', async () => {
    const { code, stderr } = await cordon(endpoint, [
      'start',
      '--dry-run',
      '--instance',
      'i-0000000000000dead',
    ]);

    expect(code).toBe(3);
    expect(stderr).toContain('i-0000000000000dead was not found');
  });
});
