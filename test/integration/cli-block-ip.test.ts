import { DescribeNetworkAclsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { BlockResult, UnblockResult } from '../../functions/core/blocks.js';
import { resetMoto } from '../../scripts/local/moto.js';
import { deployLocalStack } from '../../scripts/local/stack.js';
import { type SeededNetwork, seedNetwork } from '../../scripts/playbooks/local.js';
import { cordon, emulator, publishStack } from '../support/cli-fixtures.js';

/**
 * `cordon block-ip` and `cordon unblock` with --endpoint: the library in this process, with clients
 * and settings the CLI builds from the emulated stack, and the process environment left as it was.
 */
const endpoint = inject('motoEndpoint');
const ec2 = new EC2Client(emulator(endpoint));
let network: SeededNetwork;

beforeAll(async () => {
  await resetMoto(endpoint);
  await publishStack(endpoint, await deployLocalStack(endpoint, 'dev'));
  network = await seedNetwork(endpoint);
}, 120_000);

async function denies(cidr: string) {
  const out = await ec2.send(
    new DescribeNetworkAclsCommand({ Filters: [{ Name: 'vpc-id', Values: [network.vpcId] }] }),
  );
  return (out.NetworkAcls ?? []).flatMap((acl) =>
    (acl.Entries ?? []).filter((e) => e.RuleAction === 'deny' && e.CidrBlock === cidr),
  );
}

describe('cordon block-ip and unblock on the emulator', () => {
  let blocked: BlockResult;
  const environment = { ...process.env };

  beforeAll(async () => {
    const { code, stdout, stderr } = await cordon(endpoint, [
      'block-ip',
      '203.0.113.0/24',
      '--vpc',
      network.vpcId,
      '--ttl',
      '1h',
      '--reason',
      'scanner',
      '--json',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    blocked = JSON.parse(stdout) as BlockResult;
  });

  it('denies the range in both subnet ACLs, inbound and outbound', async () => {
    expect(blocked).toMatchObject({ decision: 'blocked', vpcId: network.vpcId, cidr: '203.0.113.0/24' });
    expect(blocked.added).toHaveLength(4);
    expect(await denies('203.0.113.0/24')).toHaveLength(4);
  });

  it('leaves the process environment as it found it', () => {
    expect(process.env).toEqual(environment);
  });

  it('keeps the 1-hour expiry when block-ip runs again without --ttl', async () => {
    const { code, stdout } = await cordon(endpoint, [
      'block-ip',
      '203.0.113.0/24',
      '--vpc',
      network.vpcId,
      '--json',
    ]);

    expect(code).toBe(0);
    const again = JSON.parse(stdout) as BlockResult;
    expect(again).toMatchObject({ decision: 'unchanged', caseId: blocked.caseId });
    // Kept to the minute: never later than a minute past the first expiry, and not permanent.
    const first = Date.parse(blocked.expiresAt ?? '');
    expect(Date.parse(again.expiresAt ?? '')).toBeGreaterThanOrEqual(first);
    expect(Date.parse(again.expiresAt ?? '')).toBeLessThanOrEqual(first + 60_000);
  });

  it('shows the block with status, by the case id cases lists', async () => {
    const listed = JSON.parse((await cordon(endpoint, ['cases', '--json'])).stdout) as { caseId: string }[];
    expect(listed.map((c) => c.caseId)).toContain(blocked.caseId);

    const { code, stdout } = await cordon(endpoint, ['status', blocked.caseId as string]);

    expect(code).toBe(0);
    expect(stdout).toMatch(/^Kind\s+IP-range block$/m);
    expect(stdout).toContain(`203.0.113.0/24 in ${network.vpcId}`);
  });

  it('answers evidence ls for the block: it keeps no evidence, and status is where to look', async () => {
    const { code, stderr } = await cordon(endpoint, ['evidence', 'ls', blocked.caseId as string]);

    expect(code).toBe(3);
    expect(stderr).toContain(`There is no evidence for case ${blocked.caseId}`);
    expect(stderr).toContain(
      `An IP-range block keeps no evidence in the bucket: cordon status ${blocked.caseId}`,
    );
  });

  it('takes exactly those entries out again, found by the range', async () => {
    const { code, stdout } = await cordon(endpoint, [
      'unblock',
      '203.0.113.0/24',
      '--vpc',
      network.vpcId,
      '--json',
    ]);

    expect(code).toBe(0);
    expect(JSON.parse(stdout) as UnblockResult).toMatchObject({
      caseId: blocked.caseId,
      status: 'released',
      removed: blocked.added,
    });
    expect(await denies('203.0.113.0/24')).toEqual([]);
    expect(process.env).toEqual(environment);
  });
});
