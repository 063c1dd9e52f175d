#!/usr/bin/env -S npx tsx
/**
 * `npx tsx scripts/playbooks/policy-violation.ts [--no-revert] [--endpoint URL] [--json]`
 *
 * The policy-violation playbook on an emulated AWS account: every recorded CloudTrail event in
 * test/fixtures/cloudtrail goes through the function as EventBridge would deliver it. The SSH event is
 * first made true in the emulator (a security group really opened to 0.0.0.0/0 and ::/0 on port 22,
 * the event carrying that group's and rules' ids), so that the revert has something to revoke. Shows
 * each event's verdict, the alerts published, and the group's rules afterwards.
 */
import './quiet.js';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DescribeSecurityGroupRulesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import type { ViolationResult } from '../../functions/playbooks/policy-violation/policy-violation.js';
import { repoRoot } from '../local/runner.js';
import {
  alerts,
  emulated,
  invoke,
  isMain,
  out,
  type PlaybookEnvOptions,
  playbookEnv,
  seedNetwork,
} from './local.js';

export const cloudTrailDir = resolve(repoRoot, 'test/fixtures/cloudtrail');
/** The recorded event whose rules the emulator really opens. */
export const openSshEvent = 'authorize-ingress-ssh-open-to-world.json';

export interface ViolationPlaybookReport {
  endpoint: string;
  groupId: string;
  verdicts: { file: string; result: ViolationResult }[];
  alerts: { subject?: string; body: string }[];
  rulesBefore: string[];
  rulesAfter: string[];
}

type Json = Record<string, unknown>;

/** A recorded event with the emulated group's id (and, for rules, their ids) in place of the recorded ones. */
export function mapEvent(event: Json, groupId: string, ruleIds: { v4?: string; v6?: string }): Json {
  const text = JSON.stringify(event).replaceAll('sg-0123456789abcdef0', groupId);
  const mapped = JSON.parse(text) as {
    detail: { responseElements?: { securityGroupRuleSet?: { items?: Json[] } } };
  };
  for (const item of mapped.detail.responseElements?.securityGroupRuleSet?.items ?? []) {
    const id = item.cidrIpv6 ? ruleIds.v6 : ruleIds.v4;
    if (id) item.securityGroupRuleId = id;
  }
  return mapped as unknown as Json;
}

const describeRule = (r: {
  SecurityGroupRuleId?: string;
  IpProtocol?: string;
  FromPort?: number;
  ToPort?: number;
  CidrIpv4?: string;
  CidrIpv6?: string;
}) => `${r.SecurityGroupRuleId} ${r.IpProtocol} ${r.FromPort}-${r.ToPort} from ${r.CidrIpv4 ?? r.CidrIpv6}`;

export async function runPolicyViolationPlaybook(
  options: PlaybookEnvOptions & { revert?: boolean } = {},
): Promise<ViolationPlaybookReport> {
  const env = await playbookEnv({
    ...options,
    env: { POLICY_REVERT_OPEN_INGRESS: options.revert === false ? 'false' : 'true', ...options.env },
  });
  try {
    const network = await seedNetwork(env.endpoint);
    const ec2 = emulated(EC2Client, env.endpoint);
    const group = await ec2.send(
      new CreateSecurityGroupCommand({ GroupName: 'web', Description: 'web tier', VpcId: network.vpcId }),
    );
    const groupId = group.GroupId as string;
    const opened = await ec2.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: groupId,
        IpPermissions: [
          {
            IpProtocol: 'tcp',
            FromPort: 22,
            ToPort: 22,
            IpRanges: [{ CidrIp: '0.0.0.0/0' }],
            Ipv6Ranges: [{ CidrIpv6: '::/0' }],
          },
        ],
      }),
    );
    const ruleIds = {
      v4: opened.SecurityGroupRules?.find((r) => r.CidrIpv4)?.SecurityGroupRuleId,
      v6: opened.SecurityGroupRules?.find((r) => r.CidrIpv6)?.SecurityGroupRuleId,
    };
    const rules = async () =>
      (
        (
          await ec2.send(
            new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [groupId] }] }),
          )
        ).SecurityGroupRules ?? []
      )
        .filter((r) => !r.IsEgress)
        .map(describeRule);
    const rulesBefore = await rules();
    const verdicts: ViolationPlaybookReport['verdicts'] = [];
    for (const file of readdirSync(cloudTrailDir)
      .filter((f) => f.endsWith('.json'))
      .sort()) {
      const event = mapEvent(
        JSON.parse(readFileSync(resolve(cloudTrailDir, file), 'utf8')) as Json,
        groupId,
        file === openSshEvent ? ruleIds : {},
      );
      verdicts.push({
        file,
        result: await invoke<ViolationResult>('policy-violation', event),
      });
    }
    return {
      endpoint: env.endpoint,
      groupId,
      verdicts,
      alerts: await alerts(env),
      rulesBefore,
      rulesAfter: await rules(),
    };
  } finally {
    await env.close();
  }
}

function print(r: ViolationPlaybookReport): void {
  out(`Policy violations on an emulated AWS account (${r.endpoint})`);
  out(`Security group ${r.groupId}, ingress before: ${r.rulesBefore.join('; ') || 'none'}`);
  out();
  for (const v of r.verdicts) {
    const revert = v.result.revert
      ? `; revert ${[v.result.revert.status, ...v.result.revert.revoked].join(' ')}`
      : '';
    out(`  ${v.result.decision.padEnd(8)} ${v.file}${revert}`);
  }
  out();
  out(`Ingress after: ${r.rulesAfter.join('; ') || 'none'}`);
  out();
  out(`${r.alerts.length} alert(s) published; the first:`);
  const first = r.alerts[0];
  if (first) {
    out(`  Subject: ${first.subject ?? ''}`);
    for (const line of first.body.trimEnd().split('\n')) out(`  | ${line}`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'no-revert': { type: 'boolean', default: false },
      endpoint: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const report = await runPolicyViolationPlaybook({
    revert: !values['no-revert'],
    ...(values.endpoint ? { endpoint: values.endpoint } : {}),
  });
  if (values.json) out(JSON.stringify(report, null, 2));
  else print(report);
}

if (isMain(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`policy-violation playbook: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
