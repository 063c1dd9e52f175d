#!/usr/bin/env -S npx tsx
/**
 * `npx tsx scripts/playbooks/ids-alert.ts [--file EVE.jsonl] [--stop] [--endpoint URL] [--json]`
 *
 * The IDS-triggered response on an emulated AWS account: Suricata EVE lines (by default the test
 * fixtures: alerts, other records and malformed lines) are delivered to the IDS function exactly as a
 * CloudWatch Logs subscription delivers them (gzipped, base64). The fixtures' protected address
 * (10.0.1.4) is mapped onto a seeded instance. The function counts what it could not read, finds the
 * instance by its private IP, starts the forensic workflow on it for the alerts it SENT (the emulated
 * Step Functions records the execution), and notifies the alert topic, once, of the inbound alerts
 * that named it as their destination and started nothing. With `--stop`, the most severe alerts also
 * ask for the instance to be stopped once its evidence is sealed.
 */
import './quiet.js';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import type { IdsResult } from '../../functions/playbooks/ids-alert/ids-alert.js';
import { repoRoot } from '../local/runner.js';
import {
  alerts,
  emulated,
  invoke,
  isMain,
  out,
  type PlaybookEnvOptions,
  playbookEnv,
  type SeededNetwork,
  seedNetwork,
} from './local.js';

/** The address the fixtures give the protected instance. */
export const fixtureInstanceIp = '10.0.1.4';
const ipv6Alert = /"event_type":"alert".*"(?:src|dest)_ip":"[0-9a-fA-F]*:[0-9a-fA-F:.]*"/;
export const defaultEveFiles = ['test/fixtures/suricata/alerts.jsonl', 'test/fixtures/suricata/mixed.jsonl'];

/** What CloudWatch Logs hands a subscribed function for these lines of `logGroup`/`logStream`. */
export function subscriptionDelivery(
  lines: string[],
  source: { owner: string; logGroup: string; logStream: string },
): { awslogs: { data: string } } {
  const start = Date.now();
  const message = {
    messageType: 'DATA_MESSAGE',
    ...source,
    subscriptionFilters: ['cordon-dev-ids'],
    logEvents: lines.map((l, i) => ({
      id: `${String(start)}${String(i).padStart(10, '0')}`,
      timestamp: start + i,
      message: l,
    })),
  };
  return { awslogs: { data: gzipSync(Buffer.from(JSON.stringify(message))).toString('base64') } };
}

export interface IdsPlaybookReport {
  endpoint: string;
  network: SeededNetwork;
  lines: number;
  /** IPv6 alerts not sent: the emulator cannot look an interface up by IPv6 address. */
  ipv6AlertsLeftOut: number;
  result: IdsResult;
  executions: { name: string; executionArn: string; input: unknown }[];
  /** What the alert topic received, read from the queue subscribed to it. */
  alerts: { subject?: string; body: string }[];
}

export async function runIdsPlaybook(
  options: PlaybookEnvOptions & { files?: string[]; stop?: boolean } = {},
): Promise<IdsPlaybookReport> {
  const env = await playbookEnv({
    ...options,
    env: { IDS_START_MAX_SEVERITY: '1', IDS_STOP_MAX_SEVERITY: options.stop ? '1' : '0', ...options.env },
  });
  try {
    const network = await seedNetwork(env.endpoint);
    const all = (options.files ?? defaultEveFiles)
      .flatMap((f) => readFileSync(resolve(repoRoot, f), 'utf8').split('\n'))
      .filter((l) => l.length > 0)
      .map((l) => l.replaceAll(`"${fixtureInstanceIp}"`, `"${network.privateIp}"`));
    // moto does not implement DescribeNetworkInterfaces' `ipv6-addresses.ipv6-address` filter (it
    // answers HTTP 500): IPv6 alerts are left to the unit tests rather than sent to the emulator.
    const lines = all.filter((l) => !ipv6Alert.test(l));
    const result = await invoke<IdsResult>(
      'ids-alert',
      subscriptionDelivery(lines, {
        owner: env.stack.env.CORDON_ACCOUNT_ID as string,
        logGroup: '/cordon/dev/ids/suricata',
        logStream: 'sensor-1',
      }),
    );
    const sfn = emulated(SFNClient, env.endpoint);
    const listed = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn: env.stack.forensicsStateMachineArn }),
    );
    const executions = [];
    for (const e of listed.executions ?? []) {
      const described = await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
      executions.push({
        name: e.name as string,
        executionArn: e.executionArn as string,
        input: JSON.parse(described.input ?? 'null'),
      });
    }
    return {
      endpoint: env.endpoint,
      network,
      lines: lines.length,
      ipv6AlertsLeftOut: all.length - lines.length,
      result,
      executions,
      alerts: await alerts(env),
    };
  } finally {
    await env.close();
  }
}

function print(r: IdsPlaybookReport): void {
  out(`IDS-triggered response on an emulated AWS account (${r.endpoint})`);
  out(
    `Protected instance ${r.network.instanceId} at ${r.network.privateIp} (the fixtures' ${fixtureInstanceIp})`,
  );
  out();
  const x = r.result;
  out(`${r.lines} log lines: ${x.alerts} alerts, ${x.other} other EVE records, ${x.malformed} malformed`);
  for (const [reason, count] of Object.entries(x.refusals)) out(`  malformed: ${reason} x${count}`);
  if (r.ipv6AlertsLeftOut)
    out(
      `  ${r.ipv6AlertsLeftOut} IPv6 alert(s) left out: the emulator cannot find interfaces by IPv6 address`,
    );
  out(
    `  below the severity threshold: ${x.belowSeverity}; blocked inline: ${x.blocked}; no instance: ${x.unmatched}; ambiguous: ${x.ambiguous}`,
  );
  out(
    `  from the instance: ${x.started.length} response(s); to it only (inbound): ${x.destinationOnly}; lateral: ${x.lateral}`,
  );
  out();
  out('Forensic workflow started');
  for (const e of r.executions) {
    out(`  ${e.name}`);
    out(`    input ${JSON.stringify(e.input)}`);
  }
  for (const a of r.alerts) {
    out();
    out(`Alert topic (${x.messageId ?? 'no message id'}): ${a.subject ?? '(no subject)'}`);
    for (const l of a.body.trimEnd().split('\n')) out(`  ${l}`);
  }
  if (r.executions.some((e) => e.name.startsWith('ids-stop-'))) {
    out();
    out('The execution name asks for a stop: once the forensic workflow has sealed every piece of evidence,');
    out('the ids-alert-stop function (EventBridge rule cordon-<stage>-ids-stop) stops the instance.');
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      file: { type: 'string', multiple: true },
      stop: { type: 'boolean', default: false },
      endpoint: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const report = await runIdsPlaybook({
    ...(values.file ? { files: values.file } : {}),
    stop: values.stop,
    ...(values.endpoint ? { endpoint: values.endpoint } : {}),
  });
  if (values.json) out(JSON.stringify(report, null, 2));
  else print(report);
}

if (isMain(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`ids-alert playbook: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
