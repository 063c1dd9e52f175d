import { z } from 'zod';
import {
  blockCaseIdSchema,
  blockLock,
  type UnblockDeps,
  type UnblockResult,
  unblockCase,
  unblockStep,
  vpcIdSchema,
} from '../../core/blocks.js';
import { accountIdSchema, regionSchema } from '../../core/case.js';
import type { CaseStore } from '../../core/cases.js';
import { CaseNotFoundError } from '../../core/errors.js';
import { parseCidr } from '../../core/nacl.js';
import { typedText } from '../../core/text.js';

/**
 * `cordon unblock`: by the block's case id, or by the range and VPC it blocks (the open block of that
 * range there, if any). Strict: a misspelt field is refused rather than ignored.
 */
export const unblockInputSchema = z.union([
  z.strictObject({
    caseId: blockCaseIdSchema,
    requestedBy: typedText,
    reason: typedText.optional(),
  }),
  z.strictObject({
    cidr: z.string().min(1).max(64),
    vpcId: vpcIdSchema,
    accountId: accountIdSchema.optional(),
    region: regionSchema.optional(),
    requestedBy: typedText,
    reason: typedText.optional(),
  }),
]);
export type UnblockInput = z.infer<typeof unblockInputSchema>;

export interface UnblockIpDeps extends UnblockDeps {
  cases: UnblockDeps['cases'] & Pick<CaseStore, 'holder'>;
  home: { accountId: string; region: string };
}

/**
 * Removes exactly what a block added, whoever asks: entries someone changed since are left alone and
 * reported, never deleted. Unblocking a block that is already released changes nothing.
 */
export async function unblockIp(input: UnblockInput, deps: UnblockIpDeps): Promise<UnblockResult> {
  let caseId: string;
  if ('caseId' in input) caseId = input.caseId;
  else {
    const range = parseCidr(input.cidr);
    if (!range) throw new CaseNotFoundError('The range is not an IPv4 or IPv6 address range');
    const lock = blockLock({
      accountId: input.accountId ?? deps.home.accountId,
      region: input.region ?? deps.home.region,
      vpcId: input.vpcId,
      cidr: range.cidr,
    });
    const holder = await deps.cases.holder(lock);
    if (!holder) throw new CaseNotFoundError(`${range.cidr} has no open block in ${input.vpcId}`);
    caseId = holder;
  }
  return unblockCase(
    caseId,
    { requestedBy: input.requestedBy, reason: input.reason ?? 'unblock requested', step: unblockStep },
    deps,
  );
}
