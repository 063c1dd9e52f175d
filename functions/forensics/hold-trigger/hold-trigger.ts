import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { caseIdSchema } from '../../core/case.js';
import type { CaseStore, Recorder } from '../../core/cases.js';
import { describeError, InternalError } from '../../core/errors.js';

/**
 * What Hold Trigger reads: the execution's own input (the trigger, as it arrived: any JSON, untrusted,
 * never interpreted here), the execution's ARN, and the error that Intake ended with.
 */
export const holdInputSchema = z.object({
  trigger: z.unknown(),
  executionArn: z.string().regex(/^arn:[\w-]+:states:[\w-]+:\d{12}:execution:[\w-]{1,80}:[\w-]{1,80}$/),
  error: z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});
export type HoldInput = z.infer<typeof holdInputSchema>;

export interface HoldResult {
  held: true;
  messageId: string;
  /** `cordon redrive` starts a new execution with the trigger and takes it off the queue. */
  redrive: 'cordon redrive';
  /**
   * The case this execution's Intake opened and could not finish, if any: closed as failed and the
   * instance freed, so that the redrive opens a new case instead of joining this one; or, when that
   * failed, why (the redrive would then join it).
   */
  stranded?: { caseId: string; closed: true } | { caseId: string; closed: false; reason: string };
}

export interface HoldDeps {
  sqs: SQSClient;
  queueUrl: string;
  cases: Pick<CaseStore, 'get' | 'setStatus' | 'unlock'>;
  recorder: (caseId: string) => Recorder;
}

/**
 * The case Intake says it opened, from its error (`Case <id> was opened for …`, at the very start of
 * the message Intake writes); undefined when it opened none.
 */
export function caseIntakeOpened(error: HoldInput['error']): string | undefined {
  let message = error?.Cause ?? '';
  try {
    const parsed = JSON.parse(message) as { errorMessage?: unknown };
    if (typeof parsed?.errorMessage === 'string') message = parsed.errorMessage;
  } catch {
    // Not Lambda's JSON: the cause is the message itself.
  }
  const id = /^Case (\S+) was opened for /.exec(message)?.[1];
  const parsed = caseIdSchema.safeParse(id);
  return parsed.success ? parsed.data : undefined;
}

/** An error name as a message attribute: Step Functions' and Cordon's names only, else `unknown`. */
const errorName = (error: HoldInput['error']) =>
  error?.Error && /^[\w.]{1,128}$/.test(error.Error) ? error.Error : 'unknown';

/**
 * Puts a trigger that Intake could not open a case for on the trigger queue, byte for byte as the
 * execution received it, the same queue where EventBridge leaves the triggers it could not deliver:
 * nothing is lost, the queue's depth raises the alarm, and `cordon redrive` starts each again. The
 * message body is the trigger alone, so a held trigger and an undelivered one are redriven alike;
 * which execution held it and why ride as attributes.
 */
export async function holdTrigger(input: HoldInput, deps: HoldDeps): Promise<HoldResult> {
  const body = JSON.stringify(input.trigger ?? null);
  const sent = await deps.sqs.send(
    new SendMessageCommand({
      QueueUrl: deps.queueUrl,
      MessageBody: body,
      MessageAttributes: {
        CORDON_HELD_BY: { DataType: 'String', StringValue: input.executionArn },
        CORDON_ERROR: { DataType: 'String', StringValue: errorName(input.error) },
      },
    }),
  );
  if (!sent.MessageId) throw new InternalError('SQS accepted the trigger but returned no message id');
  const result: HoldResult = { held: true, messageId: sent.MessageId, redrive: 'cordon redrive' };
  const caseId = caseIntakeOpened(input.error);
  if (caseId) result.stranded = await closeStranded(deps, caseId, input.executionArn);
  return result;
}

/**
 * Closes the case this execution opened and left open (Intake's retries left it for themselves), as
 * Intake does with a case it cannot finish: only a case that this very execution opened and that is
 * still open; any other is left alone. The trigger is already held: a failure here is reported, not
 * thrown.
 */
async function closeStranded(
  deps: HoldDeps,
  caseId: string,
  executionArn: string,
): Promise<NonNullable<HoldResult['stranded']>> {
  try {
    const record = await deps.cases.get(caseId);
    if (!record || record.executionArn !== executionArn) {
      return { caseId, closed: false, reason: 'the case is not one this execution opened' };
    }
    if (record.status !== 'open') return { caseId, closed: true };
    await deps.cases.setStatus(caseId, 'failed', 'failed');
    await deps.cases.unlock(record);
    await deps
      .recorder(caseId)
      .note('trigger held', 'info', {
        target: record.instanceId,
        detail:
          'Intake could not finish this case: its trigger waits for cordon redrive, which opens a new case',
      })
      .catch(() => {
        // The case is closed and the instance free; the timeline line is a courtesy.
      });
    return { caseId, closed: true };
  } catch (error) {
    const e = describeError(error);
    return { caseId, closed: false, reason: `${e.name}: ${e.message}` };
  }
}
