#!/usr/bin/env -S npx tsx
/**
 * `npx tsx scripts/playbooks/credentials.ts [--exfiltration] [--endpoint URL] [--json]`
 *
 * The compromised-credentials playbook on an emulated AWS account: the real
 * statemachines/credentials.asl.yml runs in this process with every Task bound to its real handler.
 * By default the input is GuardDuty's access-key finding from ../shared/fixtures/real-events (the one
 * the instance workflow refuses), with its user and key mapped onto a seeded IAM user and key. With
 * `--exfiltration`, the finding is instance credentials used outside AWS, for a seeded role and
 * instance: the role's sessions are revoked and the forensic workflow is started on the instance.
 */
import './quiet.js';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  IAMClient,
  ListAccessKeysCommand,
  ListRolePoliciesCommand,
  ListUserPoliciesCommand,
} from '@aws-sdk/client-iam';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { credentialSteps } from '../../functions/core/credentials.js';
import {
  type Execution,
  repoRoot,
  runStateMachine,
  type StepRecord,
  type TaskHandler,
} from '../local/runner.js';
import {
  alerts,
  emulated,
  invoke,
  isMain,
  out,
  type PlaybookEnvOptions,
  playbookEnv,
  type SeededNetwork,
  type SeededPrincipals,
  seedNetwork,
  seedPrincipals,
} from './local.js';

export const accessKeyFinding = resolve(
  repoRoot,
  '..',
  'shared',
  'fixtures',
  'real-events',
  'gd_detail_REJECT_accesskey_recon_maliciousipcaller_custom_sample_archived.json',
);

/** Every Task of the credential state machine, bound to its real handler. */
export function credentialHandlers(): Record<string, TaskHandler> {
  return Object.fromEntries(
    Object.values(credentialSteps).map((fn) => [fn, (input: unknown) => invoke(fn, input)]),
  );
}

/** The fixture's user and key, made into the seeded ones (a sample finding names placeholders). */
export function mapAccessKeyFinding(principals: SeededPrincipals): unknown {
  return JSON.parse(
    readFileSync(accessKeyFinding, 'utf8')
      .replaceAll('GeneratedFindingUserName', principals.userName)
      .replaceAll('GeneratedFindingAccessKeyId', principals.accessKeyId),
  );
}

/** An exfiltration finding (EventBridge shape) for the seeded role, whose session is the seeded instance. */
export function exfiltrationFinding(principals: SeededPrincipals, network: SeededNetwork): unknown {
  return {
    version: '0',
    id: '7c1d5e2a-0000-4000-8000-00000000e0f1',
    'detail-type': 'GuardDuty Finding',
    source: 'aws.guardduty',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: [],
    detail: {
      schemaVersion: '2.0',
      accountId: '123456789012',
      region: 'us-east-1',
      id: 'e0f1a2b3c4d5e6f708192a3b4c5d6e7f',
      type: 'UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS',
      resource: {
        resourceType: 'AccessKey',
        accessKeyDetails: {
          accessKeyId: 'ASIAEXAMPLEWEBROLE01',
          principalId: `AROAEXAMPLEWEBROLE01:${network.instanceId}`,
          userType: 'AssumedRole',
          userName: principals.roleName,
        },
      },
      service: {
        serviceName: 'guardduty',
        action: {
          actionType: 'AWS_API_CALL',
          awsApiCallAction: {
            api: 'ListBuckets',
            serviceName: 's3.amazonaws.com',
            callerType: 'Remote IP',
            remoteIpDetails: { ipAddressV4: '198.51.100.77' },
          },
        },
        archived: false,
        count: 1,
        additionalInfo: {},
      },
      severity: 8,
      title: 'Credentials for the EC2 instance role were used from a remote IP address.',
    },
  };
}

export interface CredentialPlaybookReport {
  endpoint: string;
  principals: SeededPrincipals;
  status: Execution['status'];
  steps: StepRecord[];
  outcome?: string;
  caseId?: string;
  state: Record<string, unknown>;
  keyStatus?: string;
  userPolicies: string[];
  rolePolicies: string[];
  forensicExecutions: string[];
  alerts: { subject?: string; body: string }[];
}

export async function runCredentialPlaybook(
  options: PlaybookEnvOptions & { exfiltration?: boolean } = {},
): Promise<CredentialPlaybookReport> {
  const env = await playbookEnv(options);
  try {
    const principals = await seedPrincipals(env.endpoint);
    const network = options.exfiltration ? await seedNetwork(env.endpoint) : undefined;
    const input = network ? exfiltrationFinding(principals, network) : mapAccessKeyFinding(principals);
    const run = await runStateMachine('statemachines/credentials.asl.yml', input, {
      handlers: credentialHandlers(),
      executionArn: `arn:aws:states:us-east-1:${env.stack.env.CORDON_ACCOUNT_ID}:execution:cordon-credentials-dev:${Date.now()}`,
    });
    const state = (run.output ?? {}) as Record<string, unknown>;
    const iam = emulated(IAMClient, env.endpoint);
    const keys = await iam.send(new ListAccessKeysCommand({ UserName: principals.userName }));
    const userPolicies =
      (await iam.send(new ListUserPoliciesCommand({ UserName: principals.userName }))).PolicyNames ?? [];
    const rolePolicies =
      (await iam.send(new ListRolePoliciesCommand({ RoleName: principals.roleName }))).PolicyNames ?? [];
    const sfn = emulated(SFNClient, env.endpoint);
    const executions = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn: env.stack.forensicsStateMachineArn }),
    );
    const keyStatus = keys.AccessKeyMetadata?.find((k) => k.AccessKeyId === principals.accessKeyId)?.Status;
    const notify = state.notify as { outcome?: string } | undefined;
    const c = state.case as { caseId?: string } | undefined;
    return {
      endpoint: env.endpoint,
      principals,
      status: run.status,
      steps: run.steps,
      ...(notify?.outcome ? { outcome: notify.outcome } : {}),
      ...(c?.caseId ? { caseId: c.caseId } : {}),
      state,
      ...(keyStatus ? { keyStatus } : {}),
      userPolicies,
      rolePolicies,
      forensicExecutions: (executions.executions ?? []).map((e) => e.name as string),
      alerts: await alerts(env),
    };
  } finally {
    await env.close();
  }
}

function print(r: CredentialPlaybookReport): void {
  out(`Compromised credentials on an emulated AWS account (${r.endpoint})`);
  out(
    `Seeded user ${r.principals.userName} (key ${r.principals.accessKeyId}), role ${r.principals.roleName}`,
  );
  out();
  out(`Case     ${r.caseId ?? '(none)'}`);
  out(`Outcome  ${(r.outcome ?? r.status).toUpperCase()}`);
  out('Steps');
  for (const s of r.steps)
    out(
      `  ${s.status.padEnd(9)} ${s.name.padEnd(24)} ${String(s.ms).padStart(6)} ms${s.reason ? `  ${s.reason}` : ''}`,
    );
  out();
  out(
    `Access key ${r.principals.accessKeyId} of the user: ${r.keyStatus ?? 'unknown'}${r.keyStatus === 'Inactive' ? ' (deactivated, never deleted)' : ''}`,
  );
  out(`Inline policies on the user: ${r.userPolicies.join(', ') || 'none'}`);
  out(`Inline policies on the role: ${r.rolePolicies.join(', ') || 'none'}`);
  if (r.forensicExecutions.length) out(`Forensic workflow started: ${r.forensicExecutions.join(', ')}`);
  const activity = r.state.activity as { Error?: string; Cause?: string } | undefined;
  if (activity?.Error) {
    out(
      `Activity: not collected here (${activity.Error}); the emulator does not implement CloudTrail LookupEvents`,
    );
  }
  const first = r.alerts.at(-1);
  if (first) {
    out();
    out(`Notification: ${first.subject ?? ''}`);
    for (const line of first.body.trimEnd().split('\n')) out(`  | ${line}`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      exfiltration: { type: 'boolean', default: false },
      endpoint: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const report = await runCredentialPlaybook({
    exfiltration: values.exfiltration,
    ...(values.endpoint ? { endpoint: values.endpoint } : {}),
  });
  if (values.json) out(JSON.stringify(report, null, 2));
  else print(report);
}

if (isMain(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`credentials playbook: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
