import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { awsErrorCode } from '../../../functions/core/errors.js';
import { type CommandContext, type CommandSpec, requireLocalRunner, stringValue } from '../context.js';
import { UsageError } from '../errors.js';
import { jsonDocument, safe, table } from '../output.js';
import type { StackInfo } from '../stack.js';
import type { StepLine } from '../workflow.js';

/** One trigger on the queue, and what redrive did with it. */
export interface RedriveRow {
  messageId: string;
  /** Who left it there: the execution whose Intake could not open a case, or the EventBridge rule. */
  from: string;
  /** Why, as the queue message says (an error name, or EventBridge's error code). */
  why: string;
  result: 'started' | 'would start' | 'left on the queue';
  detail: string;
}

const attribute = (m: Message, name: string) => m.MessageAttributes?.[name]?.StringValue;

/** Where a message came from and why, from its attributes: Hold Trigger's or EventBridge's. */
export function originOf(m: Message): { from: string; why: string } {
  const heldBy = attribute(m, 'CORDON_HELD_BY');
  if (heldBy) return { from: safe(heldBy, 200), why: safe(attribute(m, 'CORDON_ERROR') ?? 'unknown', 128) };
  const rule = attribute(m, 'RULE_ARN');
  if (rule) {
    return {
      from: safe(rule, 200),
      why: safe(
        [attribute(m, 'ERROR_CODE') ?? 'unknown', attribute(m, 'ERROR_MESSAGE')].filter(Boolean).join(': '),
        200,
      ),
    };
  }
  return { from: 'unknown', why: 'unknown' };
}

/**
 * The trigger a message carries: its body, which is the trigger exactly as the workflow would have
 * received it (Hold Trigger and EventBridge's dead-letter delivery both put it there), or the reason
 * it cannot be one. Intake checks the trigger itself; this only refuses what no execution could take.
 */
export function triggerOf(m: Message, maxBytes: number): { trigger: unknown } | { refused: string } {
  const body = m.Body ?? '';
  if (Buffer.byteLength(body, 'utf8') > maxBytes)
    return { refused: `the body is larger than a trigger may be (${maxBytes} bytes)` };
  try {
    return { trigger: JSON.parse(body) };
  } catch {
    return { refused: 'the body is not JSON' };
  }
}

/** An execution name that is the same each time this message is redriven: a second start is refused. */
export const redriveExecutionName = (messageId: string) =>
  `redrive-${messageId.replace(/[^\w-]/g, '').slice(0, 72)}`;

async function receive(sqs: SQSClient, queueUrl: string, want: number): Promise<Message[]> {
  const { ReceiveMessageCommand } = await import('@aws-sdk/client-sqs');
  const got: Message[] = [];
  while (got.length < want) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: Math.min(10, want - got.length),
        MessageAttributeNames: ['All'],
        // Long enough to start every message received; one left alone comes back after it.
        VisibilityTimeout: 900,
        // A short poll can answer empty while messages wait; a long poll of a second cannot.
        WaitTimeSeconds: 1,
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) break;
    got.push(...messages);
  }
  return got;
}

async function start(
  ctx: CommandContext,
  stack: StackInfo,
  trigger: unknown,
  messageId: string,
): Promise<string> {
  const { runLocally, startExecution, forensicOutcome } = await import('../workflow.js');
  if (stack.local) {
    const quiet = (_: StepLine) => undefined;
    const run = await runLocally(stack.local, 'forensics', trigger, quiet, { debug: ctx.debug });
    const outcome = forensicOutcome(run.status, run.output, run.error, run.steps);
    return `ran here: ${outcome.outcome}${outcome.caseId ? ` (case ${outcome.caseId})` : ''}`;
  }
  const sfn = await ctx.aws.sfn();
  try {
    return await startExecution(
      sfn,
      stack.forensicsStateMachineArn,
      trigger,
      redriveExecutionName(messageId),
    );
  } catch (error) {
    // An earlier redrive started it and could not take the message off the queue.
    if (awsErrorCode(error) === 'ExecutionAlreadyExists') return 'already started by an earlier redrive';
    throw error;
  }
}

export const redriveCommand: CommandSpec = {
  path: ['redrive'],
  summary: 'start again the findings that could not start a case (the trigger queue)',
  positionals: [],
  options: { 'dry-run': { type: 'boolean' }, max: { type: 'string' } },
  help: `usage: cordon redrive [--dry-run] [--max N]

A finding that could not start a case waits on Cordon's trigger queue, and the queue's alarm says so:
EventBridge leaves there what it could not deliver, and the workflow leaves there a trigger whose case
Intake could not open after retrying for minutes (throttling, an outage, a permission or setting that
was wrong). Fix the cause first (cordon doctor), then redrive: each trigger starts the forensic
workflow again, exactly as it arrived, and leaves the queue once started. A trigger whose instance has
an open case joins that case. A message that is not a trigger stays on the queue, and is listed.

  --dry-run   list what is waiting and start nothing
  --max N     take at most N messages (default 100)

Against AWS, each start is named after its message, so running redrive twice never starts a trigger
twice. With --endpoint, each case runs in this process, to its end.`,
  async run(ctx, values) {
    const maxText = stringValue(values, 'max') ?? '100';
    if (!/^[1-9]\d{0,3}$/.test(maxText)) throw new UsageError('--max is a whole number from 1 to 9999');
    const dryRun = values['dry-run'] === true;
    const stack = await ctx.stack();
    if (!dryRun) requireLocalRunner(ctx, stack);
    const sqsLib = await import('@aws-sdk/client-sqs');
    const { SQSClient, DeleteMessageCommand, ChangeMessageVisibilityCommand } = sqsLib;
    const { maxTriggerBytes } = await import('../workflow.js');
    const sqs = ctx.aws.clientOf(SQSClient, stack.region);
    const queueUrl = stack.triggerQueueUrl;
    const messages = await receive(sqs, queueUrl, Number(maxText));
    const rows: RedriveRow[] = [];
    for (const m of messages) {
      const messageId = m.MessageId ?? 'unknown';
      const origin = originOf(m);
      const row = { messageId: safe(messageId, 100), ...origin };
      const release = () =>
        sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: queueUrl,
            ReceiptHandle: m.ReceiptHandle,
            VisibilityTimeout: 0,
          }),
        );
      const read = triggerOf(m, maxTriggerBytes);
      if ('refused' in read) {
        rows.push({ ...row, result: 'left on the queue', detail: read.refused });
        await release();
        continue;
      }
      if (dryRun) {
        rows.push({ ...row, result: 'would start', detail: '' });
        await release();
        continue;
      }
      try {
        const detail = await start(ctx, stack, read.trigger, messageId);
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
        rows.push({ ...row, result: 'started', detail: safe(detail, 300) });
      } catch (error) {
        const e = error as Error;
        rows.push({ ...row, result: 'left on the queue', detail: safe(`${e.name}: ${e.message}`, 300) });
        await release().catch(() => undefined);
      }
    }
    if (ctx.json) {
      ctx.io.out(jsonDocument({ queueUrl, triggers: rows }));
    } else if (rows.length === 0) {
      ctx.io.out('The trigger queue is empty: nothing to redrive.\n');
    } else {
      ctx.io.out(
        `${table(
          ['MESSAGE', 'FROM', 'WHY', 'RESULT', 'DETAIL'],
          rows.map((r) => [r.messageId, r.from, r.why, r.result, r.detail]),
        )}\n`,
      );
    }
    return rows.some((r) => r.result === 'left on the queue') ? 1 : 0;
  },
};
