#!/usr/bin/env -S npx tsx
/**
 * `npx tsx scripts/playbooks/block-ip.ts [CIDR] [--ipv6 CIDR] [--endpoint URL] [--json]`
 *
 * The IP-range blocking playbook on an emulated AWS account: blocks a range in a seeded dual-stack VPC
 * (deny entries, inbound and outbound, in both subnet ACLs), blocks it again (nothing is added), blocks
 * an IPv6 range with a one-minute TTL, unblocks the first range (exactly its entries go), and lets the
 * expiry run take out the second as the schedule would once its TTL has passed.
 */
import './quiet.js';
import { parseArgs } from 'node:util';
import { DescribeNetworkAclsCommand, EC2Client } from '@aws-sdk/client-ec2';
import type { BlockResult, UnblockResult } from '../../functions/core/blocks.js';
import { configSlices } from '../../functions/core/config.js';
import { stepContext } from '../../functions/core/handler.js';
import { type ExpireResult, expireBlocks } from '../../functions/playbooks/expire-blocks/expire-blocks.js';
import { taskScope } from '../local/runner.js';
import {
  emulated,
  invoke,
  isMain,
  out,
  type PlaybookEnvOptions,
  playbookEnv,
  type SeededNetwork,
  seedNetwork,
} from './local.js';

export interface AclEntryView {
  networkAclId: string;
  ruleNumber: number;
  egress: boolean;
  action: string;
  cidr: string;
}

export interface BlockPlaybookReport {
  endpoint: string;
  network: SeededNetwork;
  first: BlockResult;
  again: BlockResult;
  ipv6: BlockResult;
  unblocked: UnblockResult;
  expired: ExpireResult;
  /** The deny entries of the VPC's ACLs after each stage. */
  denies: {
    afterBlock: AclEntryView[];
    afterAgain: AclEntryView[];
    afterUnblock: AclEntryView[];
    afterExpiry: AclEntryView[];
  };
}

/** Every deny entry the VPC's ACLs hold, default rules excepted. */
export async function denyEntries(endpoint: string, vpcId: string): Promise<AclEntryView[]> {
  const ec2 = emulated(EC2Client, endpoint);
  const acls = await ec2.send(
    new DescribeNetworkAclsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
  );
  return (acls.NetworkAcls ?? [])
    .flatMap((a) =>
      (a.Entries ?? []).map((e) => ({
        networkAclId: a.NetworkAclId as string,
        ruleNumber: e.RuleNumber as number,
        egress: e.Egress === true,
        action: e.RuleAction as string,
        cidr: (e.CidrBlock ?? e.Ipv6CidrBlock) as string,
      })),
    )
    .filter((e) => e.action === 'deny' && e.ruleNumber < 32767)
    .sort((x, y) =>
      `${x.networkAclId}${x.ruleNumber}${x.egress}`.localeCompare(
        `${y.networkAclId}${y.ruleNumber}${y.egress}`,
      ),
    );
}

export async function runBlockIpPlaybook(
  options: PlaybookEnvOptions & { cidr?: string; ipv6?: string } = {},
): Promise<BlockPlaybookReport> {
  const env = await playbookEnv(options);
  try {
    const network = await seedNetwork(env.endpoint);
    const cidr = options.cidr ?? '203.0.113.7/32';
    const ipv6Cidr = options.ipv6 ?? '2001:db8::7/128';
    const request = {
      cidr,
      vpcId: network.vpcId,
      reason: 'scanner hitting the web tier',
      requestedBy: 'playbook demo',
    };
    const block = async (r: object) =>
      (await invoke<{ blocks: BlockResult[] }>('block-ip', r)).blocks[0] as BlockResult;

    const first = await block({ ...request, ttl: '24h' });
    const afterBlock = await denyEntries(env.endpoint, network.vpcId);
    const again = await block({ ...request, ttl: '24h' });
    const afterAgain = await denyEntries(env.endpoint, network.vpcId);
    const ipv6 = await block({ ...request, cidr: ipv6Cidr, ttl: '1m' });
    const unblocked = await invoke<UnblockResult>('unblock-ip', {
      caseId: first.caseId,
      requestedBy: 'playbook demo',
      reason: 'false positive',
    });
    const afterUnblock = await denyEntries(env.endpoint, network.vpcId);
    // The schedule runs every five minutes; this is its run two minutes after the IPv6 block's TTL.
    // The logic is called directly for its clock; its calls are still the expire-blocks function's.
    const ctx = stepContext(configSlices.blocks);
    const scope = {
      stateName: 'expire-blocks',
      executionArn: 'local-invoke:expire-blocks',
      fn: 'expire-blocks',
    };
    const expired = await taskScope.run(scope, () =>
      expireBlocks({
        ec2For: (target) => ctx.clientsFor(target)(EC2Client),
        cases: ctx.cases,
        recorder: ctx.recorder,
        sns: ctx.home.sns,
        topicArn: ctx.config.ALERT_TOPIC_ARN,
        now: () => new Date(Date.now() + 3 * 60_000),
      }),
    );
    const afterExpiry = await denyEntries(env.endpoint, network.vpcId);
    return {
      endpoint: env.endpoint,
      network,
      first,
      again,
      ipv6,
      unblocked,
      expired,
      denies: { afterBlock, afterAgain, afterUnblock, afterExpiry },
    };
  } finally {
    await env.close();
  }
}

function print(report: BlockPlaybookReport): void {
  const entries = (list: AclEntryView[]) =>
    list.length
      ? list.map(
          (e) =>
            `    ${e.networkAclId} rule ${String(e.ruleNumber).padStart(5)} ${e.egress ? 'outbound' : 'inbound '} deny ${e.cidr}`,
        )
      : ['    (no deny entries)'];
  const r = report;
  out(`IP-range blocking on an emulated AWS account (${r.endpoint})`);
  out(`VPC ${r.network.vpcId}: subnet ACLs ${r.network.aclIds.join(' and ')}`);
  out();
  out(`1. block ${r.first.cidr} for 24h: ${r.first.decision.toUpperCase()} (case ${r.first.caseId})`);
  for (const l of entries(r.denies.afterBlock)) out(l);
  out(`2. the same block again: ${r.again.decision.toUpperCase()} (${r.again.reason})`);
  out(
    `3. block ${r.ipv6.cidr} for 1m: ${r.ipv6.decision.toUpperCase()} (case ${r.ipv6.caseId}, expires ${r.ipv6.expiresAt})`,
  );
  out(`4. unblock ${r.unblocked.cidr}: ${r.unblocked.status}, ${r.unblocked.removed.length} entries removed`);
  for (const l of entries(r.denies.afterUnblock)) out(l);
  out(
    `5. the expiry run: ${r.expired.expired.map((e) => `${e.cidr} ${e.status}`).join(', ') || 'nothing due'}`,
  );
  for (const l of entries(r.denies.afterExpiry)) out(l);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      cidr: { type: 'string' },
      ipv6: { type: 'string' },
      endpoint: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const cidr = values.cidr ?? positionals[0];
  const report = await runBlockIpPlaybook({
    ...(cidr ? { cidr } : {}),
    ...(values.ipv6 ? { ipv6: values.ipv6 } : {}),
    ...(values.endpoint ? { endpoint: values.endpoint } : {}),
  });
  if (values.json) out(JSON.stringify(report, null, 2));
  else print(report);
}

if (isMain(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`block-ip playbook: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
