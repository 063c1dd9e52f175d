#!/usr/bin/env -S npx tsx
/**
 * `npm run demo [-- --event FILE] [--json] [--endpoint URL] [--no-vpc-endpoints] [--bundled]
 *   [--response contain|approve|evidence-only|exempt [--approve]]`
 * Sends a real finding through the real forensic workflow on an emulated AWS account and shows what
 * Cordon did: containment, evidence in the locked bucket with its hashes, and the notification.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { type PolicyResponse, policyResponses } from '../functions/core/policy.js';
import { jsonDocument, safe } from './cli/output.js';
import { packagedArtefact } from './local/artefact.js';
import { type LocalCase, runLocalCase } from './local/case.js';
import type { Mapping } from './local/map-event.js';
import { ensurePython, PythonSetupError } from './local/python.js';
import { repoRoot } from './local/runner.js';

const usage = `usage: npm run demo -- [--event FILE] [--json] [--endpoint URL] [--no-vpc-endpoints] [--bundled]
                    [--response contain|approve|evidence-only|exempt [--approve]]
  --event FILE         a finding or trigger in any shape Intake accepts (default: a bundled GuardDuty finding)
  --json               print only the case as JSON on stdout (logs go to stderr)
  --endpoint URL       use this running emulator and leave its state for inspection
  --no-vpc-endpoints   seed a VPC without SSM endpoints: memory is then captured before isolation
  --bundled            run the packaged bundles (osls package, cached by its inputs), not the sources
  --response ACTION    seed a response policy whose rule gives the demo's instance this response, through
                       a protected tag on it (without it, no policy: the instance is contained)
  --approve            with --response approve: approve once the workflow waits, as \`cordon approve\` does`;

/** The protected tag key the demo's policy reads, and that the demo sets on its instance. */
export const demoTagKey = 'cordon:response';

/**
 * The response policy the demo seeds for `response`: contain by default, and one rule naming the demo's
 * instance by a tag key listed in `tagKeys` (the kind an organisation protects from its instances).
 */
export function demoPolicy(response: PolicyResponse): {
  policy: string;
  rule: string;
  tags: Record<string, string>;
} {
  const rule = `demo-${response}`;
  const policy = {
    default: 'contain',
    tagKeys: [demoTagKey],
    rules: [{ name: rule, response, tags: { [demoTagKey]: [response] } }],
  };
  return { policy: JSON.stringify(policy), rule, tags: { [demoTagKey]: response } };
}

function fail(message: string, code = 2): never {
  process.stderr.write(`demo: ${message}\n`);
  process.exit(code);
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The trigger in `file`, or one line saying why there is none, before anything runs. A UTF-8
 * byte-order mark is dropped and said so: it is not content (RFC 8259 lets a parser ignore it),
 * Windows tools add it unasked, and Intake receives the parsed JSON, never the file's bytes.
 */
function readEvent(file: string): unknown {
  const shown = safe(file, 300);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    fail(`cannot read ${shown}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    fail(`${shown} is UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8`);
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    fail(`${shown} is not UTF-8 text`);
  }
  if (text.startsWith('\uFEFF')) {
    process.stderr.write(`demo: ${shown} starts with a UTF-8 byte-order mark; read without it\n`);
    text = text.slice(1);
  }
  if (text.trim() === '') fail(`${shown} is empty; it should hold one trigger as JSON`);
  let event: unknown;
  try {
    event = JSON.parse(text);
  } catch (error) {
    fail(`${shown} is not JSON: ${safe((error as Error).message, 200)}`);
  }
  return event;
}

const quoted = (value: unknown) =>
  typeof value === 'string' ? `"${safe(value, 120)}"` : safe(JSON.stringify(value), 120);

/** What the mapping did, in one or two lines: every value from the trigger shown escaped. */
function mappingLines(mapping: Mapping): string[] {
  const { from, to, kept } = mapping;
  const parts = [
    from.instanceId === undefined ? undefined : `instance ${safe(from.instanceId)} -> ${to.instanceId}`,
    from.accountId === undefined ? undefined : `account ${safe(from.accountId)} -> ${to.accountId}`,
    from.region === undefined ? undefined : `region ${safe(from.region)} -> ${to.region}`,
  ].filter((part) => part !== undefined);
  const lines: string[] = [];
  if (parts.length) lines.push(`The trigger was mapped onto the seeded account: ${parts.join(', ')}.`);
  if (kept.length) {
    lines.push(
      `Not mapped, because Intake refuses it as it is: ${kept.map((k) => `${k.what} ${quoted(k.value)}`).join(', ')}.`,
    );
  }
  if (!lines.length)
    lines.push('Nothing was mapped: the trigger names no instance that Intake would act on.');
  return lines;
}

/** The report as a person reads it: every value that came from the trigger, AWS or a step, escaped. */
export function humanReport(run: LocalCase, policyLine?: string): string[] {
  const { report } = run;
  const lines: string[] = [];
  const out = (line = '') => lines.push(line);
  out(`Cordon demo on an emulated AWS account (${safe(report.endpoint)})`);
  for (const line of mappingLines(run.mapping)) out(line);
  if (policyLine) out(policyLine);
  out();
  out(`Case      ${safe(report.caseId) || '(none)'}`);
  out(`Outcome   ${safe(report.outcome).toUpperCase()}`);
  out(`Reason    ${safe(report.reason, 1000)}`);
  out(
    `Instance  ${safe(report.instanceId) || '-'}  account ${safe(report.accountId) || '-'}  ${safe(report.region)}`,
  );
  if (report.response) {
    out(
      `Response  ${safe(report.response.action)} (rule ${safe(report.response.rule)})${report.contained ? '' : ': the instance was NOT contained'}`,
    );
  }
  const a = report.approval;
  if (a?.by) {
    out(
      `Approval  ${safe(a.decision)} by ${safe(a.by, 300)} at ${safe(a.at)}${a.reason ? `: ${safe(a.reason, 500)}` : ''}; went on as ${safe(a.goesOn)}`,
    );
  } else if (a && a.decision !== 'not-asked') {
    out(`Approval  ${safe(a.decision)}; went on as ${safe(a.goesOn)}`);
  }
  if (run.approval && 'refused' in run.approval) {
    out(`Approval  refused: ${safe(run.approval.refused.name)}: ${safe(run.approval.refused.message, 500)}`);
  }
  if (report.revokedRoles.length) {
    out(`Revoked   sessions of role ${report.revokedRoles.map((r) => safe(r)).join(', ')}`);
  }
  if (report.caseId && report.response && !report.contained && report.outcome !== 'failed') {
    out('Untouched ENI security groups, instance role and instance profile, left as they were');
  }
  out();
  out('Steps');
  for (const s of report.steps) {
    out(
      `  ${safe(s.status).padEnd(9)} ${safe(s.name, 60).padEnd(22)} ${String(s.ms).padStart(6)} ms${s.reason ? `  ${safe(s.reason, 1000)}` : ''}`,
    );
  }
  if (report.evidence.length) {
    out();
    out(`Evidence in s3://${safe(report.bucket)} (Object Lock, versioned)`);
    for (const e of report.evidence) {
      out(`  ${safe(e.key, 300).padEnd(72)} ${String(e.bytes).padStart(10)} B  sha256 ${safe(e.sha256, 64)}`);
    }
  }
  // On an emulator kept between runs the alert queue may still hold an earlier case's message: show
  // only this case's (a refused trigger sends none).
  if (run.notification && report.caseId && run.notification.body.includes(report.caseId)) {
    out();
    out(`Notification: ${safe(run.notification.subject, 300)}`);
    for (const line of run.notification.body.trimEnd().split('\n')) {
      // `safe` trims: keep the body's own indentation, which is ours, not the finding's.
      out(`  | ${/^ */.exec(line)?.[0] ?? ''}${safe(line, 1000)}`);
    }
  }
  if (run.events.length) {
    out();
    out('Events on the default event bus (source cordon; detail: docs/events.schema.json)');
    // The queue keeps no order: shown in the order of the transitions (`at`, to the millisecond).
    const byTime = [...run.events].sort((a, b) => String(a.detail.at).localeCompare(String(b.detail.at)));
    for (const e of byTime) {
      const outcome = typeof e.detail.outcome === 'string' ? `  outcome ${safe(e.detail.outcome, 20)}` : '';
      out(
        `  ${safe(String(e.detail.at), 40).padEnd(25)} ${safe(e.detailType, 60).padEnd(24)}${outcome}`.trimEnd(),
      );
    }
  }
  if (report.outcome === 'awaiting-approval' && report.caseId) {
    const id = safe(report.caseId);
    out();
    out('Containment waits for a person. Against the emulator the demo ran on (--endpoint URL):');
    out(`  npx cordon approve ${id} --endpoint URL`);
    out(`  npx cordon reject ${id} --reason TEXT --endpoint URL`);
    out('Or let the demo approve as soon as the wait begins: npm run demo -- --response approve --approve');
  }
  if (report.caseId && report.evidence.length) {
    out();
    out('Check it yourself against a running emulator:');
    out('  npm run demo -- --endpoint URL   then   npx cordon evidence verify CASE --endpoint URL');
  }
  return lines;
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
        bundled: { type: 'boolean', default: false },
        response: { type: 'string' },
        approve: { type: 'boolean', default: false },
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
  const response = args.response;
  if (response !== undefined && !policyResponses.includes(response as PolicyResponse)) {
    fail(`--response must be one of ${policyResponses.join(', ')}\n${usage}`);
  }
  if (args.approve === true && response !== 'approve') fail(`--approve needs --response approve\n${usage}`);
  const seeded = typeof response === 'string' ? demoPolicy(response as PolicyResponse) : undefined;
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
  let bundles: string | undefined;
  if (args.bundled === true) {
    log('packaging the functions as deployed (osls package; reused while the sources are unchanged)');
    bundles = (await packagedArtefact()).dev;
  }
  if (typeof args.endpoint !== 'string') {
    // The demo starts its own moto: with the system's python3 where it has moto, else the project's
    // .venv, installed once (scripts/local/python.ts). Python 3 missing: one line says what to install.
    try {
      Object.assign(
        process.env,
        ensurePython(repoRoot, 'demo', (line) => process.stderr.write(`${line}\n`)),
      );
    } catch (error) {
      if (!(error instanceof PythonSetupError)) throw error;
      fail(error.message, 1);
    }
  }
  const policyLine = seeded
    ? `Response policy seeded for this run: rule ${seeded.rule} gives ${response} to instances tagged ${demoTagKey}=${response} (a key in tagKeys, which an organisation protects from its instances), default contain; the demo's instance carries that tag.`
    : undefined;
  if (policyLine && json) log(policyLine);
  const run = await runLocalCase(event, {
    ...(seeded ? { responsePolicy: seeded.policy, instanceTags: seeded.tags } : {}),
    ...(args.approve === true ? { approval: { decision: 'approved' as const } } : {}),
    ...(typeof args.endpoint === 'string' ? { endpoint: args.endpoint } : {}),
    vpcEndpoints: args['no-vpc-endpoints'] !== true,
    ...(bundles ? { bundles } : {}),
    log,
  });
  if (json) process.stdout.write(jsonDocument(run.report));
  else process.stdout.write(`${humanReport(run, policyLine).join('\n')}\n`);
  process.exitCode = run.report.outcome === 'failed' ? 1 : 0;
}

// Tests import `humanReport`; only `npm run demo` runs the demo.
const script = process.argv[1];
if (script !== undefined && import.meta.url === pathToFileURL(resolve(script)).href) {
  main().catch((error: unknown) => {
    fail(safe((error as Error).message, 1000), 1);
  });
}
