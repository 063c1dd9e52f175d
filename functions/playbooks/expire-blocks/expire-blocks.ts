import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { blockExpiryQueue, type UnblockDeps, type UnblockResult, unblockCase } from '../../core/blocks.js';
import type { CaseStore } from '../../core/cases.js';
import { CaseNotFoundError, describeError, NetworkBlockError } from '../../core/errors.js';

export const expireStep = 'expire-blocks';
/** Blocks taken out per run: a run stays well inside its timeout, and the next run takes the rest. */
export const expiriesPerRun = 25;

/** The EventBridge schedule's event; nothing in it is used but its presence. */
/**
 * EventBridge's scheduled event (the rule `cordon-<stage>-expire-blocks`) is the only caller: anything
 * else is refused before any AWS call.
 */
export const expireInputSchema = z.looseObject({
  source: z.literal('aws.events'),
  'detail-type': z.literal('Scheduled Event'),
});

export interface ExpireDeps extends UnblockDeps {
  cases: UnblockDeps['cases'] & Pick<CaseStore, 'due' | 'unschedule'>;
  sns: SNSClient;
  topicArn: string;
  now: () => Date;
}

export interface ExpireResult {
  expired: UnblockResult[];
  failed: { caseId: string; error: string }[];
}

/**
 * Takes out every block whose TTL has passed, exactly as `cordon unblock` would. A block that cannot
 * be taken out stays due and is tried again on the next run; the run then fails by name, so that the
 * failure reaches the alarm rather than a log line.
 */
export async function expireBlocks(deps: ExpireDeps): Promise<ExpireResult> {
  const now = deps.now();
  const result: ExpireResult = { expired: [], failed: [] };
  for (const item of await deps.cases.due(blockExpiryQueue, now, expiriesPerRun)) {
    try {
      const unblocked = await unblockCase(
        item.caseId,
        {
          requestedBy: 'cordon:expire-blocks',
          reason: `the block expired at ${item.dueAt}`,
          step: expireStep,
        },
        deps,
      );
      // A block released by hand before its expiry leaves its due item behind: drop it.
      if (unblocked.status === 'already-released') {
        await deps.cases.unschedule(blockExpiryQueue, item.caseId, item.dueAt);
      }
      result.expired.push(unblocked);
    } catch (error) {
      if (error instanceof CaseNotFoundError) {
        await deps.cases.unschedule(blockExpiryQueue, item.caseId, item.dueAt);
        continue;
      }
      const e = describeError(error);
      result.failed.push({ caseId: item.caseId, error: `${e.name}: ${e.message}` });
    }
  }
  const released = result.expired.filter((r) => r.status === 'released');
  if (released.length > 0 || result.failed.length > 0) {
    const lines = [
      ...released.map(
        (r) =>
          `  expired ${r.cidr} in ${r.vpcId} (case ${r.caseId}): ${r.removed.length} removed, ${r.absent.length} already gone, ${r.leftAlone.length} left alone`,
      ),
      ...result.failed.map((f) => `  FAILED  case ${f.caseId}: ${f.error}`),
    ];
    await deps.sns.send(
      new PublishCommand({
        TopicArn: deps.topicArn,
        Subject:
          `[Cordon] ${result.failed.length ? 'BLOCK EXPIRY FAILED' : 'BLOCKS EXPIRED'}: ${released.length} released`.slice(
            0,
            100,
          ),
        Message: `Blocks whose TTL passed by ${now.toISOString()}:\n${lines.join('\n')}\n`,
        MessageAttributes: { playbook: { DataType: 'String', StringValue: 'block-ip' } },
      }),
    );
  }
  if (result.failed.length > 0) {
    throw new NetworkBlockError(
      `${result.failed.length} expired block(s) could not be taken out; they stay due: ${result.failed[0]?.error ?? ''}`,
    );
  }
  return result;
}
