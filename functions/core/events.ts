/**
 * One EventBridge event per case transition, on the account's default event bus, `source: cordon`:
 * what a SIEM, a ticket queue or a chat rule subscribes to. The detail carries identifiers only, each
 * checked against its pattern here (never finding text), and docs/events.schema.json documents it.
 *
 * An event is news about the case, not part of the response: one that cannot be sent is recorded on
 * the case timeline and the step goes on. Containment never waits on, or fails for, an event.
 */
import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { z } from 'zod';
import { accountIdPattern, type Case, caseIdPattern, instanceIdPattern, regionPattern } from './case.js';
import type { Recorder } from './cases.js';
import { describeError } from './errors.js';
import { oneLine } from './text.js';

export const eventSource = 'cordon';

/** Each transition and its `detail-type`. */
export const detailTypes = {
  opened: 'Cordon Case Opened',
  contained: 'Cordon Case Contained',
  sealed: 'Cordon Evidence Sealed',
  completed: 'Cordon Case Completed',
  partial: 'Cordon Case Partial',
  failed: 'Cordon Case Failed',
  released: 'Cordon Case Released',
} as const;
export type Transition = keyof typeof detailTypes;

/** A Step Functions execution ARN (standard or express), as `$$.Execution.Id` gives it. */
export const executionArnPattern =
  /^arn:aws(?:-cn|-us-gov)?:states:[a-z0-9-]+:\d{12}:(?:execution|express):[A-Za-z0-9_-]{1,80}:[A-Za-z0-9_-]{1,80}$/;
const isoTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z$/;

export const caseEventDetailSchema = z.strictObject({
  version: z.literal('1'),
  transition: z.enum(Object.keys(detailTypes) as [Transition, ...Transition[]]),
  caseId: z.string().regex(caseIdPattern),
  instanceId: z.string().regex(instanceIdPattern),
  accountId: z.string().regex(accountIdPattern),
  region: z.string().regex(regionPattern),
  openedAt: z.string().regex(isoTime),
  at: z.string().regex(isoTime),
  outcome: z.enum(['completed', 'partial', 'failed']).optional(),
  executionArn: z.string().regex(executionArnPattern).optional(),
});
export type CaseEventDetail = z.infer<typeof caseEventDetailSchema>;

export interface EventDeps {
  events: EventBridgeClient;
  recorder?: Recorder | undefined;
  now?: () => Date;
}

export type EmitResult = { sent: true; eventId?: string } | { sent: false; reason: string };

/**
 * The detail of a case's transition, from the case as Intake validated it. A field that does not hold
 * to its pattern (an execution ARN the runner made up) is left out rather than sent.
 */
export function caseEventDetail(c: Case, transition: Transition, at: Date): CaseEventDetail {
  const outcome =
    transition === 'completed' || transition === 'partial' || transition === 'failed'
      ? transition
      : undefined;
  const openedAt = isoTime.test(c.openedAt) ? c.openedAt : at.toISOString();
  return caseEventDetailSchema.parse({
    version: '1',
    transition,
    caseId: c.caseId,
    instanceId: c.instanceId,
    accountId: c.accountId,
    region: c.region,
    openedAt,
    at: at.toISOString(),
    ...(outcome ? { outcome } : {}),
    ...(c.executionArn && executionArnPattern.test(c.executionArn) ? { executionArn: c.executionArn } : {}),
  });
}

/**
 * Puts one case event on the default bus. Never throws: a refusal (denied, throttled, the entry
 * rejected) is written to the case timeline, and what happened is returned for the step's result.
 */
export async function emitCaseEvent(c: Case, transition: Transition, deps: EventDeps): Promise<EmitResult> {
  const at = (deps.now ?? (() => new Date()))();
  let reason: string;
  try {
    const detail = caseEventDetail(c, transition, at);
    const out = await deps.events.send(
      new PutEventsCommand({
        Entries: [
          {
            Source: eventSource,
            DetailType: detailTypes[transition],
            Detail: JSON.stringify(detail),
            Resources: [`arn:${c.partition}:ec2:${c.region}:${c.accountId}:instance/${c.instanceId}`],
            Time: at,
          },
        ],
      }),
    );
    const entry = out.Entries?.[0];
    if (!out.FailedEntryCount && entry?.EventId) {
      await deps.recorder
        ?.note('events:PutEvents', 'ok', {
          target: detailTypes[transition],
          requestId: out.$metadata?.requestId,
          detail: `event ${entry.EventId}`,
        })
        .catch(() => undefined);
      return { sent: true, eventId: entry.EventId };
    }
    reason = `the entry was refused: ${entry?.ErrorCode ?? 'no event id'}: ${entry?.ErrorMessage ?? ''}`;
  } catch (error) {
    const e = describeError(error);
    reason = `${e.name}: ${e.message}`;
  }
  reason = oneLine(reason, 500);
  // Best effort: the timeline failing too is no reason to hold up the case.
  await deps.recorder
    ?.note('events:PutEvents', 'failed', {
      target: detailTypes[transition],
      detail: `not sent, the case goes on: ${reason}`,
    })
    .catch(() => undefined);
  return { sent: false, reason };
}
