/**
 * `cordon block-ip`, and what `cordon unblock` shares with it: the arguments checked before any AWS call,
 * the playbook library (functions/core/blocks.ts) run in this process with its dependencies, and the
 * deny entries printed. See docs/playbooks.md#ip-range-blocking.
 */

import type { EC2Client } from '@aws-sdk/client-ec2';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { BlockDeps, BlockResult } from '../../../functions/core/blocks.js';
import { accountIdSchema, regionSchema } from '../../../functions/core/case.js';
import type { CaseStore, Recorder } from '../../../functions/core/cases.js';
import { type Config, configSlice, loadConfig } from '../../../functions/core/config.js';
import { AssumeRoleError, ConfigurationError, NetworkBlockError } from '../../../functions/core/errors.js';
import { type Cidr, type DenyEntry, parseCidr } from '../../../functions/core/nacl.js';
import { isSafeText } from '../../../functions/core/text.js';
import { type CommandContext, type CommandSpec, stringValue, type Values } from '../context.js';
import { CliError, exitCodes, explain, UsageError } from '../errors.js';
import { jsonDocument, safe, table } from '../output.js';
import { functionEnvironment, type StackInfo } from '../stack.js';

// The library's modules load the AWS clients, which takes seconds: commands load them when they run, so
// that --help and a mistyped argument answer at once. Loading a module makes no AWS call.
export const blocksLibrary = () => import('../../../functions/core/blocks.js');

// ---------------------------------------------------------------------------------------------------
// Arguments, checked before any AWS call
// ---------------------------------------------------------------------------------------------------

const vpcIdPattern = /^vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
export const maxReasonLength = 512;

const familyName = (family: Cidr['family']) => (family === 'ipv4' ? 'IPv4' : 'IPv6');

/** A range from the command line, in the form EC2 stores it; never `/0`. */
export function parseRange(text: string | undefined): Cidr {
  if (!text) {
    throw new UsageError(
      'CIDR is missing: pass the range, such as 203.0.113.0/24, 2001:db8::/48 or one address',
    );
  }
  const range = parseCidr(text);
  if (!range) {
    throw new UsageError(
      `${JSON.stringify(safe(text, 64))} is not an IPv4 or IPv6 address range (such as 203.0.113.0/24 or 2001:db8::/48)`,
    );
  }
  if (range.prefix === 0) {
    throw new UsageError(
      `${range.cidr} is every ${familyName(range.family)} address: Cordon never blocks /0`,
    );
  }
  return range;
}

export function parseVpc(values: Values): string {
  const vpc = stringValue(values, 'vpc');
  if (vpc === undefined)
    throw new UsageError('--vpc is required: the VPC whose subnet ACLs hold the block (vpc-…)');
  if (!vpcIdPattern.test(vpc)) throw new UsageError('--vpc is not a VPC id (vpc- and 8 or 17 hex digits)');
  return vpc;
}

/** `--account` and `--vpc-region`: the VPC's, when it is not in the stack's own account and region. */
export function parseWhere(values: Values): { accountId?: string; region?: string } {
  const accountId = stringValue(values, 'account');
  if (accountId !== undefined && !accountIdSchema.safeParse(accountId).success) {
    throw new UsageError('--account is not a 12-digit account id');
  }
  const region = stringValue(values, 'vpc-region');
  if (region !== undefined && !regionSchema.safeParse(region).success) {
    throw new UsageError('--vpc-region is not an AWS region (such as eu-west-1)');
  }
  return { ...(accountId ? { accountId } : {}), ...(region ? { region } : {}) };
}

/** Text a person typed: printable, at most 512 characters once trimmed; refused, not cleaned. */
export function parseReason(values: Values): string | undefined {
  const value = stringValue(values, 'reason');
  if (value === undefined) return undefined;
  const text = value.trim();
  if (!text) throw new UsageError('--reason is empty');
  if (text.length > maxReasonLength) {
    throw new UsageError(`--reason is ${text.length} characters long; at most ${maxReasonLength}`);
  }
  if (!isSafeText(text)) {
    throw new UsageError(
      '--reason contains control or invisible formatting characters: type it as plain text',
    );
  }
  return text;
}

export interface BlockArgs {
  range: Cidr;
  vpcId: string;
  /** As typed: `30m`, `24h`, `7d`, or `never`; absent: a new block never expires, an old one keeps its expiry. */
  ttl?: string;
  reason: string;
  accountId?: string;
  region?: string;
}

export const defaultBlockReason = 'blocked by hand with cordon block-ip (no reason given)';

/** Every argument of `cordon block-ip`, checked as the playbook would, before any AWS call. */
export async function parseBlockArgs(values: Values, positionals: string[]): Promise<BlockArgs> {
  const range = parseRange(positionals[0]);
  const { minPrefix } = await blocksLibrary();
  if (range.prefix < minPrefix[range.family]) {
    throw new UsageError(
      `${range.cidr} is too broad: Cordon blocks ${familyName(range.family)} ranges of /${minPrefix[range.family]} or narrower`,
    );
  }
  const vpcId = parseVpc(values);
  const ttl = stringValue(values, 'ttl');
  if (ttl !== undefined && ttl !== 'never' && (await blocksLibrary()).parseTtl(ttl) === undefined) {
    throw new UsageError('--ttl is a number and m, h or d (30m, 24h, 7d), at most 365d, or never');
  }
  const reason = parseReason(values) ?? defaultBlockReason;
  return { range, vpcId, ...(ttl ? { ttl } : {}), reason, ...parseWhere(values) };
}

// ---------------------------------------------------------------------------------------------------
// The playbook's dependencies, built by the CLI from the deployed (or emulated) stack
// ---------------------------------------------------------------------------------------------------

export interface PlaybookRuntime {
  ec2For: (target: { accountId: string; region: string; caseId?: string }) => EC2Client;
  cases: CaseStore;
  recorder: (caseId: string, step: string) => Recorder;
  /** Waits for every timeline event recorded so far; fails if one could not be written. */
  flushTimeline: () => Promise<void>;
  sns: SNSClient;
  config: BlockDeps['config'];
  /** Where a range without --account and --vpc-region is. */
  home: { accountId: string; region: string };
}

/**
 * The settings of block-ip and unblock-ip that no stack output carries, checked with the functions' own
 * rules (functions/core/config.ts), defaults included.
 */
const functionSettingsSlice = configSlice('cordon block-ip and unblock', [
  'MEMBER_ROLE_NAME',
  'FORENSIC_CIDR',
  'NACL_RULE_QUOTA',
]);
export type FunctionSettings = Pick<Config, (typeof functionSettingsSlice.keys)[number]>;

/**
 * The settings of the function (`cordon-<stage>-block-ip`) as it gets them: a deployed stack declares
 * them in its processed template (serverless resolves its parameters there); the emulated stack
 * publishes its functions' environment (`LocalStackJson`).
 */
export async function functionSettings(
  ctx: CommandContext,
  stack: StackInfo,
  functionName: string,
): Promise<FunctionSettings> {
  const where = stack.local ? 'LocalStackJson output' : 'template';
  const vars = stack.local
    ? stack.local.env
    : await functionEnvironment(await ctx.aws.cloudformation(), stack.stackName, functionName);
  try {
    return loadConfig(functionSettingsSlice, vars as Record<string, string | undefined>);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    throw new CliError(
      `The ${where} of ${stack.stackName} does not show ${functionName}'s settings (MEMBER_ROLE_NAME, FORENSIC_CIDR, NACL_RULE_QUOTA).`,
      'Deploy the stack again from this version of Cordon.',
    );
  }
}

/** The account of an ARN (`arn:aws:sns:us-east-1:111122223333:topic`), if it names one. */
const accountOfArn = (arn: string) => /^arn:[\w-]+:[\w-]+:[\w-]*:(\d{12}):/.exec(arn)?.[1];

/**
 * What the playbook library needs, built here rather than by the functions' `stepContext`: clients from
 * the CLI's own AWS settings (credentials, profile, --endpoint), the cases table from the stack's
 * outputs, and the function's settings passed as values, never through the process environment. A VPC
 * in another account is reached through the member role the function would assume.
 */
export async function playbookRuntime(
  ctx: CommandContext,
  stack: StackInfo,
  fn: 'block-ip' | 'unblock-ip',
): Promise<PlaybookRuntime> {
  if (ctx.aws.endpoint && !stack.local) {
    throw new CliError(
      `The stack ${stack.stackName} at ${ctx.aws.endpoint} publishes no LocalStackJson output, so its functions' settings are unknown here.`,
      'Deploy the emulated stack with the local runner (npm run demo -- --endpoint URL).',
    );
  }
  const settings = await functionSettings(ctx, stack, `${stack.stackName}-${fn}`);
  const homeAccountId = accountOfArn(stack.alertTopicArn) ?? (await ctx.aws.identity()).account;
  const [{ EC2Client }, { SNSClient }, { CaseStore, Recorder }, { clientsFactory }] = await Promise.all([
    import('@aws-sdk/client-ec2'),
    import('@aws-sdk/client-sns'),
    import('../../../functions/core/cases.js'),
    import('../../../functions/core/clients.js'),
  ]);
  const member = clientsFactory(
    {
      homeAccountId,
      homeRegion: stack.region,
      memberRoleName: settings.MEMBER_ROLE_NAME,
      functionKey: fn,
      maxAttempts: 5,
      ...(ctx.aws.endpoint ? { endpoint: ctx.aws.endpoint } : {}),
    },
    await ctx.aws.sts(),
  );
  const cases = new CaseStore(await ctx.aws.ddb(), stack.casesTable, ctx.now);
  const recorders: Recorder[] = [];
  return {
    ec2For: ({ accountId, region, caseId }) =>
      accountId === homeAccountId
        ? ctx.aws.clientOf(EC2Client, region)
        : member({ accountId, region, ...(caseId ? { caseId } : {}) })(EC2Client),
    cases,
    recorder: (caseId, step) => {
      const r = new Recorder(cases, caseId, step, ctx.now);
      recorders.push(r);
      return r;
    },
    flushTimeline: () => Promise.all(recorders.map((r) => r.flush())).then(() => undefined),
    sns: ctx.aws.clientOf(SNSClient, stack.region),
    config: {
      CORDON_ACCOUNT_ID: homeAccountId,
      AWS_REGION: stack.region,
      NACL_RULE_QUOTA: settings.NACL_RULE_QUOTA,
      FORENSIC_CIDR: settings.FORENSIC_CIDR,
      // A person's request reads none of these: they are how the function treats findings.
      AUTO_BLOCK_FINDINGS: false,
      AUTO_BLOCK_TTL: '24h',
      ACCEPT_SAMPLE_FINDINGS: false,
      ALERT_TOPIC_ARN: stack.alertTopicArn,
    },
    home: { accountId: homeAccountId, region: stack.region },
  };
}

/** The case of the open block of a range in a VPC, if there is one. */
export async function openBlockCase(
  rt: PlaybookRuntime,
  where: { accountId: string; region: string; vpcId: string; cidr: string },
): Promise<string | undefined> {
  const { blockLock } = await blocksLibrary();
  return rt.cases.holder(blockLock(where));
}

/**
 * The TTL that keeps an open block's expiry when `--ttl` is not given. The playbook reads a request
 * without a TTL as "never expires", and the later expiry wins, so re-running block-ip without --ttl would
 * quietly turn a 1-hour block into a permanent one. The library takes TTLs in whole minutes: the
 * expiry stays where it was, rounded up to the minute. Undefined: nothing to keep (no open block, or
 * one that never expires), so the request goes without a TTL.
 */
export function ttlKeeping(expiresAt: string | undefined, now: Date): string | undefined {
  if (expiresAt === undefined) return undefined;
  const left = Date.parse(expiresAt) - now.getTime();
  if (!Number.isFinite(left)) return undefined;
  return `${Math.max(1, Math.ceil(left / 60_000))}m`;
}

/** The expiry the open block of a range records, if it is open and has one. */
async function openBlockExpiry(
  rt: PlaybookRuntime,
  where: { accountId: string; region: string; vpcId: string; cidr: string },
): Promise<string | undefined> {
  const caseId = await openBlockCase(rt, where);
  if (!caseId) return undefined;
  const { blockStep, readBlock } = await blocksLibrary();
  return (await readBlock(rt.cases, caseId)).changes?.[blockStep]?.expiresAt;
}

/** A failure to reach a member account, with what to do about it. */
export function memberAccountError(error: AssumeRoleError, fn: string, stage: string): CliError {
  return new CliError(
    `${safe(error.message, 300)}: the member role trusts only Cordon's own roles (resources/member-account.yml).`,
    `Send the request to the function instead: aws lambda invoke --function-name cordon-${stage}-${fn} --payload '{…}' (docs/playbooks.md).`,
  );
}

// ---------------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------------

export const entryHeaders = ['ENTRY', 'ACL', 'RULE', 'DIRECTION', 'FAMILY', 'RANGE', 'DETAIL'];

export function entryRow(label: string, entry: DenyEntry, detail = ''): unknown[] {
  const family = parseCidr(entry.cidr)?.family;
  return [
    label,
    entry.networkAclId,
    entry.ruleNumber,
    entry.egress ? 'outbound' : 'inbound',
    family ? familyName(family) : '?',
    entry.cidr,
    detail,
  ];
}

function printBlock(ctx: CommandContext, r: BlockResult): void {
  if (ctx.json) {
    ctx.io.out(jsonDocument(r));
    return;
  }
  const where = r.vpcId ? ` in ${safe(r.vpcId)} (${safe(r.accountId)} ${safe(r.region)})` : '';
  if (r.decision === 'refused') {
    ctx.io.out(`Block of ${safe(r.cidr ?? '')}${where}: REFUSED - ${safe(r.reason, 400)}\n`);
    return;
  }
  const family = r.cidr ? parseCidr(r.cidr)?.family : undefined;
  ctx.io.out(
    `Case ${safe(r.caseId)}: ${r.decision.toUpperCase()} ${safe(r.cidr)}${family ? ` (${familyName(family)})` : ''}${where}\n`,
  );
  ctx.io.out(`Expires  ${safe(r.expiresAt ?? 'never (until cordon unblock)')}\n`);
  ctx.io.out(`Result   ${safe(r.reason, 400)}\n`);
  const rows = [
    ...(r.added ?? []).map((e) => entryRow('added', e)),
    ...(r.present ?? []).map((e) => entryRow('in force', e, 'added earlier by this block')),
    ...[
      ...(r.skipped ?? []).map((s) => ['skipped', s] as const),
      ...(r.failed ?? []).map((s) => ['failed', s] as const),
    ].map(([label, s]) => [
      label,
      s.networkAclId,
      '-',
      s.egress ? 'outbound' : 'inbound',
      family ? familyName(family) : '?',
      r.cidr,
      s.reason,
    ]),
  ];
  if (rows.length) ctx.io.out(`\n${table(entryHeaders, rows, 200)}`);
}

/**
 * After a block failed part-way (the alert not published, a write refused), what its case records as
 * in force, so that the person knows the range may already be denied. Best effort: undefined when the
 * case cannot be read.
 */
async function recordedBlock(
  rt: PlaybookRuntime,
  where: { accountId: string; region: string; vpcId: string; cidr: string },
): Promise<{ caseId: string; entries: DenyEntry[] } | undefined> {
  try {
    const { blockStep, readBlock } = await blocksLibrary();
    const caseId = await openBlockCase(rt, where);
    if (!caseId) return undefined;
    const record = await readBlock(rt.cases, caseId);
    return { caseId, entries: record.changes?.[blockStep]?.entries ?? [] };
  } catch {
    return undefined;
  }
}

export const blockIpCommand: CommandSpec = {
  path: ['block-ip'],
  summary: 'deny an IP range in every subnet ACL of a VPC, inbound and outbound',
  positionals: ['CIDR'],
  options: {
    vpc: { type: 'string' },
    ttl: { type: 'string' },
    reason: { type: 'string' },
    account: { type: 'string' },
    'vpc-region': { type: 'string' },
  },
  help: `usage: cordon block-ip CIDR --vpc vpc-… [--ttl 24h] [--reason "…"] [--account ID] [--vpc-region REGION]

Blocks an IPv4 or IPv6 range in one VPC: a network ACL deny entry for all protocols, inbound and
outbound, in the ACL of every subnet of the VPC, at free rule numbers ahead of the allows and within
the rule quota. The block is a case, recorded with who asked (your STS identity) and why, and the alert
topic is told. Asking again for a range the VPC already blocks resumes that block: nothing is doubled,
missing entries are added, and a later expiry extends it. Undo it with cordon unblock.

  CIDR                 the range: 203.0.113.0/24, 2001:db8::/48, or one address. /0 is refused,
                       and so are ranges broader than /8 (IPv4) or /24 (IPv6)
  --vpc ID             the VPC (vpc- and 8 or 17 hex digits)
  --ttl TTL            take the block out after 30m, 24h, 7d… (at most 365d), or never (only
                       cordon unblock takes it out). Default: a new block never expires; a range
                       already blocked keeps the expiry it has
  --reason TEXT        why, as plain text of at most 512 characters; recorded on the case
  --account ID         the VPC's account (default: the stack's own)
  --vpc-region REGION  the VPC's region (default: the stack's region, --region)

Prints the entries added (ACL, rule number, direction, family) and those already in force. Exits 1
when the block was refused, failed, or could not deny the range in every ACL and direction (partial).

Against AWS this does not invoke the Lambda function cordon-STAGE-block-ip (its client is not one of
Cordon's dependencies): it runs the same library in this process, with your credentials, the stack's
outputs, and the function's settings (memberRoleName, forensicCidr, naclRuleQuota) read from the
stack's template. Your identity therefore needs what the function's role has (docs/investigators.md),
and the alert topic's key lets only the stack's cordon-STAGE-* roles publish; a VPC in another account
is reached through the member role, which trusts only Cordon's roles. Where that is not you, send the
same request to the function (docs/playbooks.md):
  aws lambda invoke --function-name cordon-STAGE-block-ip --cli-binary-format raw-in-base64-out \\
    --payload '{"cidr":"203.0.113.0/24","vpcId":"vpc-…","reason":"…","requestedBy":"…"}' out.json
With --endpoint the library runs in this process against the emulator, with the emulated stack's
settings.`,
  async run(ctx, values, positionals) {
    const args = await parseBlockArgs(values, positionals);
    const requestedBy = (await ctx.aws.identity()).arn;
    const { blockRange, blockRequestSchema } = await blocksLibrary();
    const stack = await ctx.stack();
    const rt = await playbookRuntime(ctx, stack, 'block-ip');
    const where = {
      accountId: args.accountId ?? rt.home.accountId,
      region: args.region ?? rt.home.region,
      vpcId: args.vpcId,
      cidr: args.range.cidr,
    };
    const ttl =
      args.ttl === 'never'
        ? undefined
        : (args.ttl ?? ttlKeeping(await openBlockExpiry(rt, where), ctx.now()));
    const request = blockRequestSchema.safeParse({
      cidr: args.range.cidr,
      vpcId: args.vpcId,
      ...(ttl ? { ttl } : {}),
      reason: args.reason,
      requestedBy: safe(requestedBy, 512),
      ...(args.accountId ? { accountId: args.accountId } : {}),
      ...(args.region ? { region: args.region } : {}),
    });
    if (!request.success) {
      throw new CliError(`The block request is malformed: ${safe(request.error.issues[0]?.message, 200)}`);
    }
    let result: BlockResult;
    try {
      result = await blockRange(request.data, {
        ec2For: rt.ec2For,
        cases: rt.cases,
        recorder: rt.recorder,
        sns: rt.sns,
        config: rt.config,
        now: ctx.now,
      });
      await rt.flushTimeline();
    } catch (error) {
      await rt.flushTimeline().catch(() => undefined);
      if (error instanceof AssumeRoleError) throw memberAccountError(error, 'block-ip', ctx.stage);
      if (error instanceof NetworkBlockError) {
        throw new CliError(safe(error.message, 500), 'Nothing denies the range: its case ended failed.', 1);
      }
      if (error instanceof CliError) throw error;
      const recorded = await recordedBlock(rt, where);
      if (!recorded?.entries.length) throw error;
      // The block went (at least partly) in, but a later call failed: say so, and what is in force.
      const why = explain(error, ctx.aws.endpoint ? { endpoint: ctx.aws.endpoint } : {});
      if (!ctx.json) {
        ctx.io.out(
          `Case ${recorded.caseId}: ${where.cidr} in ${where.vpcId} is denied by ${recorded.entries.length} recorded entr${recorded.entries.length === 1 ? 'y' : 'ies'}:\n\n`,
        );
        ctx.io.out(
          table(
            entryHeaders,
            recorded.entries.map((e) => entryRow('recorded', e)),
            200,
          ),
        );
      }
      throw new CliError(
        `Case ${recorded.caseId}: the block is in place, but it did not finish: ${why.message}`,
        `Take it out with cordon unblock ${recorded.caseId}, or run the same command again once the cause is fixed (nothing is doubled).`,
        exitCodes.failed,
      );
    }
    printBlock(ctx, result);
    return result.decision === 'blocked' || result.decision === 'unchanged' ? exitCodes.ok : exitCodes.failed;
  },
};
