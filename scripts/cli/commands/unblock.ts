import type { UnblockResult } from '../../../functions/core/blocks.js';
import { blockCaseIdPattern, caseIdPattern } from '../../../functions/core/case.js';
import { AssumeRoleError, CaseNotFoundError, NetworkBlockError } from '../../../functions/core/errors.js';
import type { CommandContext, CommandSpec, Values } from '../context.js';
import { CliError, exitCodes, UnknownCaseError, UsageError } from '../errors.js';
import { jsonDocument, safe, table } from '../output.js';
import {
  blocksLibrary,
  entryHeaders,
  entryRow,
  memberAccountError,
  openBlockCase,
  type PlaybookRuntime,
  parseRange,
  parseReason,
  parseVpc,
  parseWhere,
  playbookRuntime,
} from './block-ip.js';

/** What `cordon unblock` takes out: a block by its case id, or the open block of a range in a VPC. */
export type UnblockTarget =
  | { caseId: string }
  | { cidr: string; vpcId: string; accountId?: string; region?: string };

/** The argument and options of `cordon unblock`, checked before any AWS call. */
export function parseUnblockTarget(values: Values, positionals: string[]): UnblockTarget {
  const subject = positionals[0];
  if (!subject) {
    throw new UsageError(
      'CASE_ID or CIDR is missing: pass the block case id (…-block-…) or the range with --vpc vpc-…',
    );
  }
  if (blockCaseIdPattern.test(subject)) {
    for (const name of ['vpc', 'account', 'vpc-region']) {
      if (values[name] !== undefined) {
        throw new UsageError(`--${name} goes with a CIDR; a case id names its block`);
      }
    }
    return { caseId: subject };
  }
  if (caseIdPattern.test(subject)) {
    throw new UsageError(
      `${subject} is an instance case, not a block: cordon release undoes its containment`,
    );
  }
  if (/^\d{8}T\d{6}Z-/.test(subject)) {
    throw new UsageError(
      `${JSON.stringify(safe(subject, 60))} is not a block case id (they look like 20261127T201003Z-block-3fa9c2d1-07be)`,
    );
  }
  const range = parseRange(subject);
  return { cidr: range.cidr, vpcId: parseVpc(values), ...parseWhere(values) };
}

/** The block case to take out: the one named, or the open block of the range in the VPC. */
async function blockCaseOf(rt: PlaybookRuntime, target: UnblockTarget): Promise<string> {
  if ('caseId' in target) return target.caseId;
  const caseId = await openBlockCase(rt, {
    accountId: target.accountId ?? rt.home.accountId,
    region: target.region ?? rt.home.region,
    vpcId: target.vpcId,
    cidr: target.cidr,
  });
  if (!caseId) throw new CaseNotFoundError(`${target.cidr} has no open block in ${target.vpcId}`);
  return caseId;
}

function printUnblock(ctx: CommandContext, r: UnblockResult): void {
  if (ctx.json) {
    ctx.io.out(jsonDocument(r));
    return;
  }
  if (r.status === 'already-released') {
    ctx.io.out(
      `Case ${safe(r.caseId)}: ${safe(r.cidr)} in ${safe(r.vpcId)} was already unblocked; nothing to remove\n`,
    );
    return;
  }
  ctx.io.out(`Case ${safe(r.caseId)}: UNBLOCKED ${safe(r.cidr)} in ${safe(r.vpcId)}\n`);
  ctx.io.out(
    `Result   ${r.removed.length} removed, ${r.absent.length} already gone, ${r.leftAlone.length} left alone\n`,
  );
  const rows = [
    ...r.removed.map((e) => entryRow('removed', e)),
    ...r.absent.map((e) => entryRow('gone', e, 'no longer in the ACL')),
    ...r.leftAlone.map((e) =>
      entryRow('left alone', e, 'the rule number now holds another rule: not Cordon’s to delete'),
    ),
  ];
  if (rows.length) ctx.io.out(`\n${table(entryHeaders, rows, 200)}`);
}

export const unblockCommand: CommandSpec = {
  path: ['unblock'],
  summary: 'take a block out: exactly the deny entries it added',
  positionals: ['CASE_ID|CIDR'],
  options: {
    vpc: { type: 'string' },
    account: { type: 'string' },
    'vpc-region': { type: 'string' },
    reason: { type: 'string' },
  },
  help: `usage: cordon unblock CASE_ID [--reason "…"]
       cordon unblock CIDR --vpc vpc-… [--account ID] [--vpc-region REGION] [--reason "…"]

Takes a block out before its TTL, whoever made it (cordon block-ip or a finding): deletes exactly the
deny entries the block added, each only if the ACL still holds it as added; an entry whose rule number
now holds another rule is left alone and reported. The block's case is closed, the range freed, and
its expiry dropped. A block already taken out changes nothing.

  CASE_ID              the block's case id (20261127T201003Z-block-3fa9c2d1-07be), as block-ip printed it
  CIDR                 or the range, with --vpc: the open block of that range in that VPC
  --vpc ID             the VPC (vpc- and 8 or 17 hex digits)
  --account ID         the VPC's account (default: the stack's own)
  --vpc-region REGION  the VPC's region (default: the stack's region, --region)
  --reason TEXT        why, as plain text of at most 512 characters; recorded on the case

Prints the entries removed (ACL, rule number, direction, family), gone, or left alone. Exits 1 when an
entry could not be deleted (run the command again: what was removed is recorded).

Against AWS this does not invoke the Lambda function cordon-STAGE-unblock-ip (its client is not one
of Cordon's dependencies): it runs the same library in this process, with your credentials, the
stack's outputs and the function's memberRoleName read from the stack's template. A VPC in another
account is reached through the member role, which trusts only Cordon's roles; where that is not you,
send the same request to the function (docs/playbooks.md):
  aws lambda invoke --function-name cordon-STAGE-unblock-ip --cli-binary-format raw-in-base64-out \\
    --payload '{"caseId":"…","requestedBy":"…"}' out.json
With --endpoint the library runs in this process against the emulator.`,
  async run(ctx, values, positionals) {
    const target = parseUnblockTarget(values, positionals);
    const reason = parseReason(values) ?? 'unblock requested';
    const requestedBy = safe((await ctx.aws.identity()).arn, 512);
    const stack = await ctx.stack();
    const rt = await playbookRuntime(ctx, stack, 'unblock-ip');
    const { unblockCase, unblockStep } = await blocksLibrary();
    let result: UnblockResult;
    try {
      const caseId = await blockCaseOf(rt, target);
      result = await unblockCase(caseId, { requestedBy, reason, step: unblockStep }, rt);
    } catch (error) {
      if (error instanceof AssumeRoleError) throw memberAccountError(error, 'unblock-ip', ctx.stage);
      if (error instanceof CaseNotFoundError) {
        throw new UnknownCaseError(
          `${safe(error.message, 300)}${'caseId' in target ? '' : ` (account ${target.accountId ?? rt.home.accountId}, ${target.region ?? rt.home.region})`}.`,
          'caseId' in target
            ? `Check the case id and --stage; the table is ${stack.casesTable}.`
            : 'Check the range, --vpc, --account and --vpc-region, or unblock by the case id block-ip printed.',
        );
      }
      if (error instanceof NetworkBlockError) {
        throw new CliError(
          safe(error.message, 500),
          'The block stays open with the entries still in place: run the same command again.',
          exitCodes.failed,
        );
      }
      throw error;
    }
    printUnblock(ctx, result);
    return exitCodes.ok;
  },
};
