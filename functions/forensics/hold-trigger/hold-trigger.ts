import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { InternalError } from '../../core/errors.js';

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
}

export interface HoldDeps {
  sqs: SQSClient;
  queueUrl: string;
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
  return { held: true, messageId: sent.MessageId, redrive: 'cordon redrive' };
}
