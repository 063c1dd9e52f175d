#!/usr/bin/env -S npx tsx
/**
 * `npm run demo [-- --event FILE] [--json] [--endpoint URL] [--no-vpc-endpoints]`
 * Sends a real finding through the real forensic workflow on an emulated AWS account and shows what
 * Cordon did: containment, evidence in the locked bucket with its hashes, and the notification.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type LocalCase, runLocalCase } from './local/case.js';
import { repoRoot } from './local/runner.js';

const usage = `usage: npm run demo -- [--event FILE] [--json] [--endpoint URL] [--no-vpc-endpoints]
  --event FILE         a finding or trigger in any shape Intake accepts (default: a bundled GuardDuty finding)
  --json               print only the case as JSON on stdout (logs go to stderr)
  --endpoint URL       use this running emulator and leave its state for inspection
  --no-vpc-endpoints   seed a VPC without SSM endpoints: memory is then captured before isolation`;

function fail(message: string, code = 2): never {
  process.stderr.write(`demo: ${message}\n`);
  process.exit(code);
}

function readEvent(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    fail(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    fail(`${file} is not JSON`);
  }
}

function printHuman(run: LocalCase): void {
  const { report, mapping } = run;
  const out = (line = '') => process.stdout.write(`${line}\n`);
  out(`Cordon demo on an emulated AWS account (${report.endpoint})`);
  const from = mapping.from;
  out(
    `The finding was mapped onto the seeded account: instance ${from.instanceId ?? '(none)'} -> ${mapping.to.instanceId}, ` +
      `account ${from.accountId ?? '(none)'} -> ${mapping.to.accountId}, region ${from.region ?? '(none)'} -> ${mapping.to.region}.`,
  );
  out();
  out(`Case      ${report.caseId ?? '(none)'}`);
  out(`Outcome   ${report.outcome.toUpperCase()}`);
  out(`Reason    ${report.reason}`);
  out(`Instance  ${report.instanceId ?? '-'}  account ${report.accountId ?? '-'}  ${report.region ?? ''}`);
  if (report.revokedRoles.length) out(`Revoked   sessions of role ${report.revokedRoles.join(', ')}`);
  out();
  out('Steps');
  for (const s of report.steps) {
    out(
      `  ${s.status.padEnd(9)} ${s.name.padEnd(22)} ${String(s.ms).padStart(6)} ms${s.reason ? `  ${s.reason}` : ''}`,
    );
  }
  if (report.evidence.length) {
    out();
    out(`Evidence in s3://${report.bucket} (Object Lock, versioned)`);
    for (const e of report.evidence)
      out(`  ${e.key.padEnd(72)} ${String(e.bytes).padStart(10)} B  sha256 ${e.sha256}`);
  }
  if (run.notification) {
    out();
    out(`Notification: ${run.notification.subject ?? ''}`);
    for (const line of run.notification.body.trimEnd().split('\n')) out(`  | ${line}`);
  }
  if (report.caseId && report.evidence.length) {
    out();
    out('Check it yourself against a running emulator:');
    out('  npm run demo -- --endpoint URL   then   npx cordon evidence verify CASE --endpoint URL');
  }
}

async function main(): Promise<void> {
  let args: ReturnType<typeof parseArgs>['values'];
  try {
    ({ values: args } = parseArgs({
      options: {
        event: { type: 'string' },
        json: { type: 'boolean', default: false },
        endpoint: { type: 'string' },
        'no-vpc-endpoints': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    fail(`${(error as Error).message}\n${usage}`);
  }
  if (args.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const file =
    typeof args.event === 'string'
      ? resolve(args.event)
      : resolve(repoRoot, 'scripts/events/guardduty-backdoor-cc-dns.json');
  const event = readEvent(file);
  const json = args.json === true;
  // Logs, the functions' included, go to stderr so that --json leaves stdout to the report alone.
  const log = (line: string) => process.stderr.write(`${line}\n`);
  // The functions' JSON logs: `npm run demo` sets POWERTOOLS_LOG_LEVEL=WARN, so only warnings and
  // errors appear, and those go to stderr.
  console.log = console.error;
  console.info = console.error;
  const run = await runLocalCase(event, {
    ...(typeof args.endpoint === 'string' ? { endpoint: args.endpoint } : {}),
    vpcEndpoints: args['no-vpc-endpoints'] !== true,
    log,
  });
  if (json) process.stdout.write(`${JSON.stringify(run.report)}\n`);
  else printHuman(run);
  process.exitCode = run.report.outcome === 'failed' ? 1 : 0;
}

main().catch((error: unknown) => {
  fail(`${(error as Error).message}`, 1);
});
