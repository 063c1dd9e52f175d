import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import type { Outcome } from '../../core/case.js';
import type { CaseStatus, CaseStore, Recorder } from '../../core/cases.js';
import {
  type CredentialCase,
  type CredentialOutcomeState,
  credentialCaseSchema,
  credentialOutcome,
  findingLock,
  principalLock,
} from '../../core/credentials.js';
import { NotificationError } from '../../core/errors.js';
import type { StepSummary } from '../../core/outcome.js';
import { type SecurityHubDeps, tellSecurityHub } from '../../core/securityhub.js';
import { oneLine } from '../../core/text.js';

/** Notify reads the whole state; when intake itself failed there is no case, only the error. */
export const credentialNotifyInputSchema = z
  .looseObject({
    case: credentialCaseSchema.optional(),
    error: z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
    archive: z
      .looseObject({
        outcome: z.string(),
        manifest: z.looseObject({ key: z.string(), versionId: z.string() }),
      })
      .optional(),
  })
  // Every path to Notify carries one of them; a state with none is not from this workflow.
  .refine((s) => s.case !== undefined || s.error !== undefined, { message: 'no case or error to report' });
export type CredentialNotifyInput = z.infer<typeof credentialNotifyInputSchema> & CredentialOutcomeState;

export interface CredentialNotifyDeps {
  sns: SNSClient;
  topicArn: string;
  cases: Pick<CaseStore, 'setStatus' | 'releaseSubject'>;
  recorder?: Recorder;
  /** Where the finding hears the outcome (functions/core/securityhub.ts); never fails Notify. */
  securityHub?: SecurityHubDeps & { resolveOnComplete: boolean };
}

const statusFor: Record<Outcome, CaseStatus> = {
  completed: 'contained',
  partial: 'partial',
  failed: 'failed',
  rejected: 'failed',
  duplicate: 'open',
};

const headline: Record<Outcome, string> = {
  completed: 'CREDENTIALS CONTAINED',
  partial: 'CREDENTIALS CONTAINED, EVIDENCE INCOMPLETE',
  failed: 'CREDENTIALS NOT CONTAINED, ACT NOW',
  rejected: 'REJECTED',
  duplicate: 'DUPLICATE',
};

function who(c: CredentialCase): string {
  const p = c.principal;
  const name = p.type === 'Root' ? 'root user' : `${p.type} ${p.name ?? p.principalId ?? ''}`.trim();
  return `${name}${p.accessKeyId ? ` (access key ${p.accessKeyId})` : ''}`;
}

export function composeCredentialMessage(input: CredentialNotifyInput): {
  outcome: Outcome;
  subject: string;
  body: string;
  steps: StepSummary[];
} {
  const c = input.case;
  if (!c) {
    const reason = oneLine(
      `${input.error?.Error ?? 'Error'}: ${input.error?.Cause ?? 'no cause recorded'}`,
      600,
    );
    return {
      outcome: 'failed',
      subject: '[Cordon] FAILED: a credential finding could not be taken in',
      body: `Cordon could not open a credential case: nothing was done to any principal.\nReason: ${reason}\n`,
      steps: [{ name: 'intake', status: 'failed', reason }],
    };
  }
  let { outcome, steps } = credentialOutcome(input);
  if (input.archive) steps = [...steps, { name: 'archive', status: 'succeeded' }];
  else {
    steps = [
      ...steps,
      {
        name: 'archive',
        status: 'failed',
        reason: oneLine(`${input.error?.Error}: ${input.error?.Cause}`, 400),
      },
    ];
    if (outcome === 'completed') outcome = 'partial';
  }
  const lines = [
    `Case ${c.caseId}: ${headline[outcome]}`,
    `Principal: ${who(c)} in account ${c.accountId}`,
    `Finding: ${c.finding.type} (severity ${c.finding.severity}, finding ${c.finding.id})`,
    ...(c.finding.remoteIps.length ? [`Used from: ${c.finding.remoteIps.join(', ')}`] : []),
    ...(c.finding.instanceId ? [`Instance: ${c.finding.instanceId}`] : []),
    `Requested by: ${oneLine(c.trigger.requestedBy, 300)}`,
    '',
    'Steps:',
    ...steps.map((s) => `  ${s.status.padEnd(9)} ${s.name}${s.reason ? `: ${oneLine(s.reason, 300)}` : ''}`),
  ];
  if (outcome === 'failed') {
    lines.push(
      '',
      'The principal may still hold working credentials. The case timeline lists every change made;',
      'deactivate its keys and deny its sessions by hand now.',
    );
  }
  if (input.archive)
    lines.push('', `Manifest: ${input.archive.manifest.key} (version ${input.archive.manifest.versionId})`);
  if (c.executionArn) lines.push('', `Execution: ${oneLine(c.executionArn, 300)}`);
  return {
    outcome,
    subject:
      `[Cordon] ${headline[outcome]}: ${c.principal.type === 'Root' ? 'root' : (c.principal.name ?? c.principal.type)}`.slice(
        0,
        100,
      ),
    body: `${lines.join('\n')}\n`,
    steps,
  };
}

/**
 * Publishes the case's one outcome message, sets the case's status, and frees the principal for the
 * next finding. A failed case also frees the finding itself, so that GuardDuty's next update of it
 * starts a fresh attempt instead of joining a case that achieved nothing.
 */
export async function credentialNotify(
  input: CredentialNotifyInput,
  deps: CredentialNotifyDeps,
): Promise<{ outcome: Outcome; messageId?: string; steps: StepSummary[] }> {
  const message = composeCredentialMessage(input);
  const publish = () =>
    deps.sns.send(
      new PublishCommand({
        TopicArn: deps.topicArn,
        Subject: message.subject,
        Message: message.body,
        MessageAttributes: {
          outcome: { DataType: 'String', StringValue: message.outcome },
          playbook: { DataType: 'String', StringValue: 'credentials' },
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
    throw new NotificationError(
      `Cannot publish the outcome of ${input.case?.caseId ?? 'a credential trigger'}`,
      {
        cause: error,
      },
    );
  }
  const o = message.outcome;
  // Beside the case's own writes, never in their way: it does not throw.
  const told =
    input.case && deps.securityHub && (o === 'completed' || o === 'partial' || o === 'failed')
      ? tellSecurityHub(
          [input.case.securityHub],
          {
            caseId: input.case.caseId,
            news: { kind: 'outcome', outcome: o, resolve: deps.securityHub.resolveOnComplete },
          },
          { ...deps.securityHub, recorder: deps.recorder },
        )
      : undefined;
  if (input.case) {
    await deps.cases.setStatus(input.case.caseId, statusFor[message.outcome], message.outcome);
    await deps.cases.releaseSubject(principalLock(input.case), input.case.caseId);
    if (message.outcome === 'failed')
      await deps.cases.releaseSubject(findingLock(input.case), input.case.caseId);
  }
  await told;
  return { outcome: message.outcome, ...(messageId ? { messageId } : {}), steps: message.steps };
}
