import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { caseSchema, type Outcome } from '../shared/case.js';
import type { CaseStatus, CaseStore, Recorder } from '../shared/cases.js';
import { NotificationError, oneLine } from '../shared/errors.js';
import { type OutcomeState, type StepSummary, summarise } from '../shared/outcome.js';
import type { ArchiveResult, NotifyResult } from '../shared/state.js';

/**
 * Notify reads the whole state. Intake may itself have failed, in which case there is no case yet,
 * only the error and the event; what it can say is still said.
 */
export const notifyInputSchema = z.looseObject({
  case: caseSchema.optional(),
  intake: z.looseObject({ decision: z.string() }).optional(),
  error: z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});
export type NotifyInput = z.infer<typeof notifyInputSchema> &
  OutcomeState & { archive?: ArchiveResult; revokedRoles?: string[] };

export interface NotifyDeps {
  sns: SNSClient;
  topicArn: string;
  cases: Pick<CaseStore, 'setStatus' | 'unlock'>;
  recorder?: Recorder;
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
}

/** Builds the one message a case ends with: the outcome first, then what was done and what was not. */
export function composeMessage(input: NotifyInput): Message {
  const c = input.case;
  let { outcome, steps } = summarise(input);
  if (c && input.response && !input.archive) {
    steps = [
      ...steps,
      {
        name: 'archive',
        status: 'failed',
        reason: oneLine(`${input.error?.Error}: ${input.error?.Cause}`, 400),
      },
    ];
    if (outcome === 'completed') outcome = 'partial';
  } else if (input.archive) {
    steps = [...steps, { name: 'archive', status: 'succeeded' }];
  }
  if (!c) {
    const reason = oneLine(
      `${input.error?.Error ?? 'Error'}: ${input.error?.Cause ?? 'no cause recorded'}`,
      600,
    );
    return {
      outcome: 'failed',
      subject: '[Cordon] FAILED: a trigger could not be taken in',
      body: `Cordon could not open a case for a trigger: nothing was done to any instance.\nReason: ${reason}\n`,
      steps: [{ name: 'intake', status: 'failed', reason }],
    };
  }
  const headline: Record<Outcome, string> = {
    completed: 'CONTAINED',
    partial: 'CONTAINED, EVIDENCE INCOMPLETE',
    failed: 'FAILED, CHECK THE INSTANCE NOW',
    rejected: 'REJECTED',
    duplicate: 'DUPLICATE',
  };
  const lines = [
    `Case ${c.caseId}: ${headline[outcome]}`,
    `Instance ${c.instanceId} in account ${c.accountId}, ${c.region}`,
    `Trigger: ${c.trigger.source} ${c.trigger.findingType ?? ''} ${c.trigger.findingId ? `(finding ${c.trigger.findingId})` : ''}`.trim(),
    `Requested by: ${c.trigger.requestedBy}`,
    '',
    'Steps:',
    ...steps.map((s) => `  ${s.status.padEnd(9)} ${s.name}${s.reason ? `: ${oneLine(s.reason, 300)}` : ''}`),
  ];
  if (outcome === 'failed') {
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
  if (c.executionArn) lines.push('', `Execution: ${c.executionArn}`);
  const subject = `[Cordon] ${headline[outcome]}: ${c.instanceId}`.slice(0, 100);
  return { outcome, subject, body: `${lines.join('\n')}\n`, steps };
}

/** Publishes the case's one outcome message and sets the case's status to match. */
export async function notifyOutcome(
  input: NotifyInput,
  deps: NotifyDeps,
): Promise<NotifyResult & { steps: StepSummary[] }> {
  const message = composeMessage(input);
  const publish = () =>
    deps.sns.send(
      new PublishCommand({
        TopicArn: deps.topicArn,
        Subject: message.subject,
        Message: message.body,
        MessageAttributes: {
          outcome: { DataType: 'String', StringValue: message.outcome },
          ...(input.case ? { caseId: { DataType: 'String', StringValue: input.case.caseId } } : {}),
        },
      }),
    );
  let messageId: string | undefined;
  try {
    const out = deps.recorder
      ? await deps.recorder.run('sns:Publish', deps.topicArn, publish)
      : await publish();
    messageId = out.MessageId;
  } catch (error) {
    throw new NotificationError(`Cannot publish the outcome of ${input.case?.caseId ?? 'a trigger'}`, {
      cause: error,
    });
  }
  if (input.case) {
    await deps.cases.setStatus(input.case.caseId, statusFor[message.outcome], message.outcome);
    // A case that failed releases the instance so that a responder, or the next finding, can start again.
    if (message.outcome === 'failed') await deps.cases.unlock(input.case);
  }
  return { outcome: message.outcome, ...(messageId ? { messageId } : {}), steps: message.steps };
}
