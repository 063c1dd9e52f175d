import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { type Case, caseSchema, type Outcome } from '../../core/case.js';
import type { CaseStatus, CaseStore, Recorder } from '../../core/cases.js';
import { type ChatNotification, chatText, structuredMessage } from '../../core/chat.js';
import { type CordonError, describeError, NotificationError, normaliseError } from '../../core/errors.js';
import { type EmitResult, emitCaseEvent } from '../../core/events.js';
import {
  notContainedBecause,
  type OutcomeState,
  reasonLength,
  type StepSummary,
  summarise,
  why,
} from '../../core/outcome.js';
import {
  type SecurityHubDeps,
  type SecurityHubFinding,
  type SecurityHubStatus,
  tellSecurityHub,
} from '../../core/securityhub.js';
import type { ArchiveResult, NotifyResult } from '../../core/state.js';
import { oneLine } from '../../core/text.js';

/**
 * Notify reads the whole state. Intake may itself have failed, in which case there is no case yet,
 * only the error and the event; what it can say is still said.
 */
export const notifyInputSchema = z
  .looseObject({
    case: caseSchema.optional(),
    intake: z.looseObject({ decision: z.string() }).optional(),
    error: z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
    /** Hold Trigger's result: the trigger Intake could not take in waits on the trigger queue. */
    held: z
      .looseObject({
        messageId: z.string().max(200),
        stranded: z
          .looseObject({ caseId: z.string().max(100), closed: z.boolean(), reason: z.string().optional() })
          .optional(),
      })
      .optional(),
    holdError: z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
    /** Archive Evidence's error: the evidence of a contained case went unsealed. */
    archiveError: z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
  })
  // Every path to Notify carries one of them; a state with none is not from this workflow.
  .refine((s) => s.case !== undefined || s.intake !== undefined || s.error !== undefined, {
    message: 'no case, intake decision or error to report',
  });
export type NotifyInput = z.infer<typeof notifyInputSchema> &
  OutcomeState & { archive?: ArchiveResult; revokedRoles?: string[] };

export interface NotifyDeps {
  sns: SNSClient;
  topicArn: string;
  cases: Pick<CaseStore, 'setStatus' | 'unlock' | 'notified' | 'markNotified'>;
  recorder?: Recorder;
  now?: () => Date;
  /** Where the outcome's case event goes (functions/core/events.ts). */
  events: EventBridgeClient;
  /** Where the case's findings hear the outcome (functions/core/securityhub.ts); never fails Notify. */
  securityHub?: SecurityHubDeps & {
    /** SECURITYHUB_RESOLVE_ON_COMPLETE: a completed case resolves its findings. */
    resolveOnComplete: boolean;
    /** The findings that joined the case after it opened (CaseStore.securityHubFindings). */
    joined: (caseId: string) => Promise<SecurityHubFinding[]>;
  };
}

const statusFor: Record<Outcome, CaseStatus> = {
  completed: 'contained',
  partial: 'partial',
  failed: 'failed',
  rejected: 'failed',
  duplicate: 'open',
};

export interface Message {
  outcome: Outcome;
  subject: string;
  body: string;
  steps: StepSummary[];
  /** The same message as a chat card (Amazon Q Developer in chat applications' custom notification). */
  chat: ChatNotification;
}

/** Builds the one message a case ends with: the outcome first, then what was done and what was not. */
export function composeMessage(input: NotifyInput): Message {
  const c = input.case;
  let { outcome, steps } = summarise(input);
  const notContained = c ? notContainedBecause(input) : undefined;
  // Once the instance is contained (or evidence is all it was to get) its evidence is always sealed: a
  // case without a seal lost it.
  if (c && (input.containment || notContained) && !input.archive) {
    steps = [...steps, { name: 'archive', status: 'failed', reason: why(input.archiveError) }];
    if (outcome === 'completed') outcome = 'partial';
  } else if (input.archive) {
    steps = [...steps, { name: 'archive', status: 'succeeded' }];
  }
  if (!c && input.intake?.decision === 'rejected') return exemptMessage(input.intake);
  if (!c) {
    const reason = why(input.error);
    const lines = [
      'Cordon could not open a case for a trigger: nothing was done to any instance.',
      `Reason: ${reason}`,
    ];
    const steps: StepSummary[] = [{ name: 'intake', status: 'failed', reason }];
    if (input.held) {
      lines.push(
        '',
        `The trigger waits on Cordon's trigger queue (message ${oneLine(input.held.messageId, 200)}).`,
        'Fix the cause above, then run: cordon redrive',
      );
      const stranded = input.held.stranded;
      if (stranded?.closed) {
        lines.push(
          `Case ${oneLine(stranded.caseId, 100)}, which Intake opened and could not finish, was closed as failed: the redrive opens a new one.`,
        );
      } else if (stranded) {
        lines.push(
          `Case ${oneLine(stranded.caseId, 100)}, which Intake opened and could not finish, still holds the instance (${oneLine(stranded.reason ?? 'no reason recorded', 300)}): a redrive would join it. Close it first (its status failed, its instance lock removed).`,
        );
      }
      steps.push({ name: 'hold trigger', status: 'succeeded' });
    } else if (input.holdError) {
      const holdReason = why(input.holdError);
      lines.push(
        '',
        `The trigger could not be put on the trigger queue either: ${holdReason}`,
        "Start the case by hand: cordon start --finding FILE, with the execution's input as FILE.",
      );
      steps.push({ name: 'hold trigger', status: 'failed', reason: holdReason });
    }
    const subject = input.held
      ? '[Cordon] FAILED: a trigger could not be taken in (held for cordon redrive)'
      : '[Cordon] FAILED: a trigger could not be taken in';
    return {
      outcome: 'failed',
      subject,
      body: `${lines.join('\n')}\n`,
      steps,
      chat: {
        version: '1.0',
        source: 'custom',
        content: {
          textType: 'client-markdown',
          title: ':rotating_light: Cordon could not take in a trigger',
          description: ['Nothing was done to any instance.', ...steps.map((s) => chatStep(s))].join('\n'),
          nextSteps: input.held
            ? ['Fix the cause above, then run `cordon redrive`.']
            : ["Start the case by hand: `cordon start --finding FILE`, with the execution's input as FILE."],
        },
        metadata: { summary: subject, eventType: 'cordon.trigger.failed' },
      },
    };
  }
  const headline: Record<Outcome, string> = notContained
    ? {
        completed: 'EVIDENCE SEALED, NOT CONTAINED',
        partial: 'EVIDENCE INCOMPLETE, NOT CONTAINED',
        failed: 'FAILED, NOT CONTAINED',
        rejected: 'REJECTED',
        duplicate: 'DUPLICATE',
      }
    : {
        completed: 'CONTAINED',
        partial: 'CONTAINED, EVIDENCE INCOMPLETE',
        failed: 'FAILED, CHECK THE INSTANCE NOW',
        rejected: 'REJECTED',
        duplicate: 'DUPLICATE',
      };
  const decision = approvalLines(input);
  const lines = [
    `Case ${c.caseId}: ${headline[outcome]}`,
    `Instance ${c.instanceId} in account ${c.accountId}, ${c.region}`,
    `Trigger: ${c.trigger.source} ${oneLine(c.trigger.findingType ?? '', 300)} ${c.trigger.findingId ? `(finding ${oneLine(c.trigger.findingId, 300)})` : ''}`.trim(),
    `Requested by: ${oneLine(c.trigger.requestedBy, 300)}`,
    ...(decision.length ? ['', ...decision] : []),
    '',
    'Steps:',
    ...steps.map(
      (s) => `  ${s.status.padEnd(9)} ${s.name}${s.reason ? `: ${oneLine(s.reason, reasonLength)}` : ''}`,
    ),
  ];
  if (outcome === 'failed' && notContained) {
    lines.push('', 'No evidence could be gathered without the inventory; the case timeline says why.');
  } else if (outcome === 'failed') {
    lines.push(
      '',
      'The instance may be only partly contained. The case timeline lists every change that was made;',
      'check the instance now and finish containment by hand if needed.',
    );
  }
  if (input.archive) {
    lines.push('', `Manifest: ${input.archive.manifest.key} (version ${input.archive.manifest.versionId})`);
    lines.push(`Artifacts: ${input.archive.artifacts.length}`);
  }
  if (c.executionArn) lines.push('', `Execution: ${oneLine(c.executionArn, 300)}`);
  const subject = `[Cordon] ${headline[outcome]}: ${c.instanceId}`.slice(0, 100);
  const icon: Record<Outcome, string> = {
    completed: ':white_check_mark:',
    partial: ':warning:',
    failed: ':rotating_light:',
    rejected: ':no_entry:',
    duplicate: ':information_source:',
  };
  const containNext = notContained ? ['It was NOT contained: contain it by hand if that is now wanted.'] : [];
  const next: Record<Outcome, string[]> = {
    completed: [`Verify the evidence: \`cordon evidence verify ${c.caseId}\`.`, ...containNext],
    partial: [
      ...containNext,
      `See what is missing: \`cordon status ${c.caseId}\`.`,
      `Verify what was kept: \`cordon evidence verify ${c.caseId}\`.`,
    ],
    failed: [
      'Check the instance now and finish containment by hand if needed.',
      `The case timeline lists every change made: \`cordon status ${c.caseId}\`.`,
    ],
    rejected: [`\`cordon status ${c.caseId}\` says why.`],
    duplicate: [],
  };
  const chat: ChatNotification = {
    version: '1.0',
    source: 'custom',
    id: `${c.caseId}:${outcome}`,
    content: {
      textType: 'client-markdown',
      title: `${icon[outcome]} Cordon case ${c.caseId}: ${headline[outcome]}`,
      description: [
        `Instance \`${c.instanceId}\` in account ${c.accountId}, ${c.region}`,
        ...decision.map((line) => chatText(line, 600)),
        ...steps.map((s) => chatStep(s)),
      ].join('\n'),
      nextSteps: next[outcome],
    },
    metadata: {
      threadId: c.caseId,
      summary: subject,
      eventType: `cordon.case.${outcome}`,
      relatedResources: [c.instanceId, ...(c.executionArn ? [chatText(c.executionArn)] : [])],
      additionalContext: { caseId: c.caseId, outcome, accountId: c.accountId, region: c.region },
    },
  };
  return { outcome, subject, body: `${lines.join('\n')}\n`, steps, chat };
}

/**
 * What the case's response decided, said plainly: that the instance was NOT contained and why (the
 * policy's rule, a person's rejection, the approval timeout), or who approved its containment.
 */
function approvalLines(input: NotifyInput): string[] {
  const a = input.approval;
  const notContained = notContainedBecause(input);
  if (notContained) {
    return [
      `The instance was NOT contained, by policy: ${oneLine(notContained, 800)}.`,
      'Its network, credentials, instance profile, Auto Scaling group and load balancers were left as they were.',
    ];
  }
  if (!a) return [];
  if (a.decision === 'approved') {
    return [
      `Containment approved by ${oneLine(a.by ?? 'an unrecorded caller', 300)} at ${oneLine(a.at ?? 'an unrecorded time', 40)} (rule ${oneLine(a.rule ?? 'default', 64)}).`,
    ];
  }
  if (a.decision === 'timed-out') {
    return [
      `Nobody answered the approval request within ${a.seconds ?? '?'} s: contained, as the stage's approvalTimeoutAction says.`,
    ];
  }
  return [
    `The approval request could not be made (${why(a.error)}): contained, as the stage's approvalTimeoutAction says.`,
  ];
}

/** One step on the chat card: its status and name, and where it did not succeed, why (made inert). */
/**
 * A trigger the response policy exempts (functions/core/policy.ts): refused at Intake with no case, and
 * said, since an instance a finding named is left as it is on purpose. Other refusals (input that is not
 * a trigger) never reach Notify.
 */
function exemptMessage(intake: { decision: string; reason?: unknown }): Message {
  const reason = oneLine(String(intake.reason ?? 'EXEMPT'), 1000);
  const subject = '[Cordon] EXEMPT: a finding was not actioned, by response policy';
  const steps: StepSummary[] = [{ name: 'intake', status: 'skipped', reason }];
  return {
    outcome: 'rejected',
    subject,
    body: `${[
      'Cordon opened no case for a trigger: the response policy exempts its instance.',
      'Nothing was done to the instance and no evidence was taken.',
      `Reason: ${reason}`,
      '',
      'If the instance must be contained or its evidence kept after all, change the policy rule and',
      'start the case again (cordon start --finding FILE, with the execution input as FILE).',
    ].join('\n')}\n`,
    steps,
    chat: {
      version: '1.0',
      source: 'custom',
      content: {
        textType: 'client-markdown',
        title: ':no_entry_sign: Cordon did not act on a finding (exempt by policy)',
        description: ['Nothing was done to the instance.', chatStep(steps[0] as StepSummary)].join('\n'),
        nextSteps: ['To act after all: change the policy rule, then `cordon start --finding FILE`.'],
      },
      metadata: { summary: subject, eventType: 'cordon.trigger.exempt' },
    },
  };
}

function chatStep(s: StepSummary): string {
  return `• ${s.status} ${s.name}${s.reason ? `: ${chatText(s.reason, 300)}` : ''}`;
}

/**
 * Publishes the case's one outcome message and sets the case's status to match. The outcome, step by
 * step, goes on the case's timeline first, so that the case record says what was done and what was
 * not even when the message cannot be sent. Timeline writes here are best effort: a timeline that
 * cannot be written must not keep the responders from hearing about the case. A message that cannot be
 * sent, or a case whose status cannot be set, fails the step (and the execution, loudly).
 */
export async function notifyOutcome(
  input: NotifyInput,
  deps: NotifyDeps,
): Promise<
  NotifyResult & {
    steps: StepSummary[];
    unrecorded?: string;
    eventSent?: boolean;
    securityHub?: SecurityHubStatus[];
  }
> {
  const message = composeMessage(input);
  const c = input.case;
  let unrecorded: string | undefined;
  const note = (...args: Parameters<Recorder['note']>) => deps.recorder?.note(...args);
  // Best effort, and said: the events above are written behind the calls; one that could not be is
  // reported in the result rather than failing the notification.
  const settleTimeline = () =>
    deps.recorder?.flush().catch((error: unknown) => {
      const e = describeError((error as Error).cause ?? error);
      unrecorded ??= `the case timeline could not record the outcome: ${e.name}: ${e.message}`;
    });
  // A person's answer is on the timeline already (functions/core/approval.ts); a timeout has no one
  // to write it but the end of the case.
  const timedOut = input.approval?.decision === 'timed-out' || input.approval?.decision === 'not-requested';
  if (c && timedOut) {
    await note('approval', 'info', {
      target: c.caseId,
      detail: `${input.approval?.decision === 'timed-out' ? `not answered within ${input.approval?.seconds ?? '?'} s` : `not requested: ${why(input.approval?.error)}`}; the case went on as ${input.approval?.goesOn ?? 'evidence-only'}`,
    });
  }
  await note('case outcome', message.outcome === 'completed' ? 'ok' : 'failed', {
    target: c?.instanceId,
    detail: outcomeLine(message),
  });

  let messageId: string | undefined;
  // A retried Notify (its status write throttled, Lambda's own hiccup) must not publish the outcome
  // again: the case record says whether an attempt before this one already did.
  const already = c ? await alreadyNotified(c.caseId, deps, note) : undefined;
  if (already) {
    messageId = already.messageId;
    await note('sns:Publish', 'skipped', {
      target: deps.topicArn,
      detail: `the ${already.outcome} outcome was published at ${already.at}${already.messageId ? ` (message ${already.messageId})` : ''}; not sent again`,
    });
  } else {
    let requestId: string | undefined;
    try {
      const out = await deps.sns.send(
        new PublishCommand({
          TopicArn: deps.topicArn,
          Subject: message.subject,
          MessageStructure: 'json',
          Message: structuredMessage(message.body, message.chat),
          MessageAttributes: {
            outcome: { DataType: 'String', StringValue: message.outcome },
            ...(c ? { caseId: { DataType: 'String', StringValue: c.caseId } } : {}),
          },
        }),
      );
      messageId = out.MessageId;
      requestId = out.$metadata?.requestId;
    } catch (error) {
      const e = describeError(error);
      await note('sns:Publish', 'failed', { target: deps.topicArn, detail: `${e.name}: ${e.message}` });
      throw new NotificationError(
        `Cannot publish the outcome (${message.outcome}) of ${c ? `case ${c.caseId}` : 'a trigger'}: ${e.name}: ${e.message}`,
        { cause: error },
      );
    }
    await note('sns:Publish', 'ok', { target: deps.topicArn, requestId });
    if (c) await markNotified(c.caseId, message.outcome, messageId, deps, note);
  }
  if (c) {
    try {
      const notContained = notContainedBecause(input) !== undefined;
      await deps.cases.setStatus(
        c.caseId,
        notContained && message.outcome !== 'failed' ? 'evidence-only' : statusFor[message.outcome],
        message.outcome,
      );
      // A case that failed releases the instance so that a responder, or the next finding, can start
      // again; so does a case that gathered evidence without containing it: a later finding (a worse
      // one, another rule) opens a case of its own instead of joining one that is over.
      if (message.outcome === 'failed' || notContained) await deps.cases.unlock(c);
    } catch (error) {
      const e = normaliseError(error);
      await note('case status', 'failed', {
        target: c.caseId,
        detail: `not set to ${statusFor[message.outcome]}: ${e.name}: ${e.message}`,
      });
      const Named = e.constructor as new (message: string, options?: ErrorOptions) => CordonError;
      throw new Named(
        oneLine(
          `The outcome (${message.outcome}) of case ${c.caseId} was notified (message ${messageId ?? 'without an id'}), but the case record could not be updated to match: ${e.name}: ${e.message}`,
          1800,
        ),
        { cause: error },
      );
    }
  }
  // The outcome's case event, once the case record says so, and the outcome in Security Hub beside it;
  // either that cannot be sent is on the timeline.
  let event: EmitResult | undefined;
  let inSecurityHub: SecurityHubStatus[] = [];
  const o = message.outcome;
  if (c && (o === 'completed' || o === 'partial' || o === 'failed')) {
    [event, inSecurityHub] = await Promise.all([
      emitCaseEvent(c, o, {
        events: deps.events,
        recorder: deps.recorder,
        ...(deps.now ? { now: deps.now } : {}),
      }),
      closeFindings(c, o, deps, note, notContainedBecause(input) !== undefined),
    ]);
  }
  await settleTimeline();
  return {
    outcome: message.outcome,
    ...(messageId ? { messageId } : {}),
    ...(event ? { eventSent: event.sent } : {}),
    ...(inSecurityHub.length ? { securityHub: inSecurityHub } : {}),
    steps: message.steps,
    ...(unrecorded ? { unrecorded } : {}),
  };
}

/**
 * The outcome on the case's findings in Security Hub: the one it opened on and those that joined it.
 * RESOLVED for a completed case where the stage says so, NOTIFIED otherwise; the note says the outcome.
 */
async function closeFindings(
  c: Case,
  outcome: 'completed' | 'partial' | 'failed',
  deps: NotifyDeps,
  note: Note,
  notContained: boolean,
): Promise<SecurityHubStatus[]> {
  const sh = deps.securityHub;
  if (!sh) return [];
  const joined = await sh.joined(c.caseId).catch(async (error: unknown) => {
    const e = describeError(error);
    await note('securityhub:BatchUpdateFindings', 'failed', {
      target: c.caseId,
      detail: `the findings that joined the case could not be read, so only the one it opened on hears the outcome: ${e.name}: ${e.message}`,
    });
    return [];
  });
  const results = await tellSecurityHub(
    [c.securityHub, ...joined],
    {
      caseId: c.caseId,
      news: {
        kind: 'outcome',
        outcome,
        resolve: sh.resolveOnComplete,
        ...(notContained ? { notContained: true } : {}),
      },
    },
    { ...sh, recorder: deps.recorder },
  );
  return results.map((r) => r.status);
}

/** The outcome in one timeline line: each step with its status and, where it did not succeed, why. */
function outcomeLine(message: Message): string {
  return `${message.outcome}: ${message.steps
    .map((s) => `${s.name} ${s.status}${s.reason ? ` (${s.reason})` : ''}`)
    .join('; ')}`;
}

type Note = (...args: Parameters<Recorder['note']>) => Promise<void> | undefined;

/**
 * The earlier attempt's publication, if the case record holds one. A record that cannot be read is no
 * reason to stay silent: the outcome is published (perhaps a second time) and the timeline says why.
 */
async function alreadyNotified(caseId: string, deps: NotifyDeps, note: Note) {
  try {
    return await deps.cases.notified(caseId);
  } catch (error) {
    const e = describeError(error);
    await note('case notified', 'failed', {
      target: caseId,
      detail: `could not read whether the outcome was already published, so it is published: ${e.name}: ${e.message}`,
    });
    return undefined;
  }
}

/**
 * Marks the outcome published, after publishing. Marking first would let an attempt that dies between
 * the mark and the publish (a timeout, a crash) silence the case's only message for good; marking after
 * leaves only the opposite risk, a second message when the mark itself cannot be written, which the
 * timeline records. For a case that may be half-contained, a duplicate is the lesser harm.
 */
async function markNotified(
  caseId: string,
  outcome: Outcome,
  messageId: string | undefined,
  deps: NotifyDeps,
  note: Note,
): Promise<void> {
  const at = (deps.now ?? (() => new Date()))().toISOString();
  try {
    await deps.cases.markNotified(caseId, { outcome, at, ...(messageId ? { messageId } : {}) });
  } catch (error) {
    const e = describeError(error);
    await note('case notified', 'failed', {
      target: caseId,
      detail: `the outcome was published but not marked so; a retry would publish it again: ${e.name}: ${e.message}`,
    });
  }
}
