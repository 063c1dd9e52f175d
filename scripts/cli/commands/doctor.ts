import { regionSchema } from '../../../functions/core/case.js';
import { paintVerdict } from '../colour.js';
import type { CommandSpec, Values } from '../context.js';
import type { Check } from '../doctor/check.js';
import type { DoctorDeps } from '../doctor.js';
import { explain, UsageError } from '../errors.js';
import { jsonDocument, safe } from '../output.js';

const label = { pass: 'PASS', fail: 'FAIL', unknown: 'UNKNOWN' } as const;

export function renderChecks(checks: Check[], colour?: boolean): string {
  const width = Math.max(...checks.map((c) => c.check.length));
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(
      `${paintVerdict(colour, label[c.status].padEnd(8))} ${c.check.padEnd(width)}  ${safe(c.scope, 80)}: ${safe(c.detail, 400)}`,
    );
    if (c.status !== 'pass' && c.fix) lines.push(`${' '.repeat(9 + width + 2)}fix: ${safe(c.fix, 400)}`);
  }
  const count = (s: Check['status']) => checks.filter((c) => c.status === s).length;
  lines.push(
    '',
    `${count('pass')} passed, ${count('fail')} failed, ${count('unknown')} could not be checked.`,
  );
  return `${lines.join('\n')}\n`;
}

/** `--param NAME=VALUE`, as osls takes it, into a map; anything else is a usage error. */
export function parseParams(given: Values[string]): Record<string, string> {
  const list = Array.isArray(given) ? given : typeof given === 'string' ? [given] : [];
  const params: Record<string, string> = {};
  for (const item of list) {
    const match = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/s.exec(item);
    if (!match?.[1]) throw new UsageError(`--param ${JSON.stringify(safe(item, 60))} is not NAME=VALUE`);
    params[match[1]] = match[2] ?? '';
  }
  return params;
}

/** `--check-region R` (repeatable): each an AWS region, duplicates dropped, in the order given. */
export function checkRegions(given: Values[string]): string[] {
  const list = Array.isArray(given) ? given : typeof given === 'string' ? [given] : [];
  for (const region of list) {
    if (!regionSchema.safeParse(region).success) {
      throw new UsageError(`--check-region ${JSON.stringify(safe(region, 40))} is not an AWS region`);
    }
  }
  return [...new Set(list)];
}

export const doctorCommand: CommandSpec = {
  path: ['doctor'],
  summary: 'readiness before an incident: each check with pass/fail and how to fix it',
  positionals: [],
  options: {
    'check-region': { type: 'string', multiple: true },
    'all-regions': { type: 'boolean' },
    param: { type: 'string', multiple: true },
  },
  help: `usage: cordon doctor [--check-region REGION ... | --all-regions] [--param NAME=VALUE ...]

Checks that Cordon can do its job when an incident comes:
  - CloudTrail: a multi-region trail that is logging
  - GuardDuty: an enabled detector in each region checked
  - Security Hub: enabled in the stack's region, when the stage turns on its custom action or imported
    findings (serverless.yml params for --stage, as a deploy of that stage would create them)
  - SSM: which instances SSM manages (and reaches) and which it does not
  - VPC endpoints: ssm, ssmmessages, ec2messages and s3 in each VPC with instances
  - the evidence bucket: versioning, Object Lock and a default retention
  - the signing key: ECC_NIST_P256, SIGN_VERIFY, enabled
  - the memory tools (tools/avml, tools/winpmem.exe) uploaded with the SHA-256 the stack pins
  - protected tag keys: no role of an instance profile may create or delete the tag keys the stage's
    response policy reads (responsePolicy tagKeys), as IAM's policy simulator decides
  - the root user: no access keys, MFA on
Each check prints PASS, FAIL or UNKNOWN (could not be checked, e.g. a missing permission or an API the
emulator lacks), a one-line detail and, for gaps, how to fix them. Exits 1 if any check fails.

  --check-region REGION  check GuardDuty, SSM and VPC endpoints in this region instead of the stack's
                         (repeatable); the stack itself is looked for in --region
  --all-regions          check every region enabled for the account
  --param NAME=VALUE     a stage param as you will give it to osls deploy (repeatable), such as
                         --param acceptSecurityHubCustomAction=true`,
  async run(ctx, values) {
    const only = checkRegions(values['check-region']);
    if (only.length && values['all-regions'] === true)
      throw new UsageError('pass --check-region or --all-regions, not both');
    const overrides = parseParams(values.param);
    const [
      { enabledRegions, runDoctor, stageParams },
      { pinnedToolsFromTemplate },
      { triggersOf },
      { policyTagKeysOf },
    ] = await Promise.all([
      import('../doctor.js'),
      import('../doctor/memory-tools.js'),
      import('../doctor/security-hub.js'),
      import('../doctor/tag-keys.js'),
    ]);
    const homeRegion = await ctx.aws.region();
    const regions =
      values['all-regions'] === true
        ? await enabledRegions(await ctx.aws.ec2())
        : only.length
          ? only
          : [homeRegion];

    let stack: DoctorDeps['stack'];
    try {
      const info = await ctx.stack();
      const tools = info.local
        ? {
            prefix: info.local.env.TOOLS_PREFIX ?? 'tools/',
            avmlSha256: info.local.env.AVML_SHA256 ?? '',
            winpmemSha256: info.local.env.WINPMEM_SHA256 ?? '',
          }
        : await pinnedToolsFromTemplate(
            await ctx.aws.cloudformation(),
            info.stackName,
            `cordon-${ctx.stage}-capture-memory`,
          );
      stack = { info, s3: await ctx.aws.s3(), kms: await ctx.aws.kms(), tools };
    } catch (error) {
      const e = explain(error, ctx.aws.endpoint ? { endpoint: ctx.aws.endpoint } : {});
      stack = { error: e.message, fix: e.hint ?? '' };
    }
    const checks = await runDoctor({
      homeRegion,
      regions,
      regional: (region) => ctx.aws.regional(region),
      iam: await ctx.aws.iam(),
      stack,
      triggers: triggersOf(ctx.stage, stageParams(ctx.stage, overrides)),
      policyTagKeys: policyTagKeysOf(ctx.stage, stageParams(ctx.stage, overrides)),
    });
    if (ctx.json) ctx.io.out(jsonDocument({ ok: checks.every((c) => c.status !== 'fail'), checks }));
    else ctx.io.out(renderChecks(checks, ctx.io.colour?.out));
    return checks.some((c) => c.status === 'fail') ? 1 : 0;
  },
};
