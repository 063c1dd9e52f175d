import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import {
  type ApprovalRecord,
  approvalTimeoutActions,
  closeApprovalWindow,
  maxApprovalWindowSeconds,
  recordApprovalRequest,
  taskTokenSchema,
} from '../../core/approval.js';
import { caseSchema } from '../../core/case.js';
import type { Recorder } from '../../core/cases.js';
import { type ChatNotification, structuredMessage } from '../../core/chat.js';
import { describeError, NotificationError } from '../../core/errors.js';
import { oneLine } from '../../core/text.js';

/** Await Approval's payload: the task token Step Functions waits on, the case, and the window. */
export const requestApprovalInputSchema = z.object({
  taskToken: taskTokenSchema,
  case: caseSchema,
  timeoutSeconds: z.number().int().min(1).max(maxApprovalWindowSeconds),
  timeoutAction: z.enum(approvalTimeoutActions),
});
export type RequestApprovalInput = z.infer<typeof requestApprovalInputSchema>;

export interface RequestApprovalDeps {
  ddb: DynamoDBDocumentClient;
  table: string;
  sns: SNSClient;
  topicArn: string;
  recorder: Recorder;
  now: () => Date;
}

export interface RequestApprovalResult {
  caseId: string;
  deadline: string;
  messageId?: string;
}

/** The message that says what waits, until when, and the exact commands that answer. */
export function approvalMessage(input: RequestApprovalInput, deadline: string) {
  const c = input.case;
  const rule = c.response?.rule ?? 'default';
  const approve = `cordon approve ${c.caseId}`;
  const reject = `cordon reject ${c.caseId} --reason TEXT`;
  const lines = [
    `Case ${c.caseId}: APPROVAL NEEDED to contain ${c.instanceId}`,
    `Instance ${c.instanceId} in account ${c.accountId}, ${c.region}`,
    `Trigger: ${c.trigger.source} ${oneLine(c.trigger.findingType ?? '', 300)}`.trim(),
    `Response policy rule: ${rule} (approve)`,
    '',
    "Waiting: isolation of every network interface, revocation of the instance role's credentials and",
    'the quarantine profile, protection, and removal from its Auto Scaling group and load balancers.',
    'The evidence (triage, snapshots, memory) is being gathered now and does not wait.',
    '',
    `Answer before ${deadline}:`,
    `  ${approve}`,
    `  ${reject}`,
    '',
    `Without an answer by then the case goes on as ${input.timeoutAction}${input.timeoutAction === 'contain' ? ' (contained)' : ' (evidence only, not contained)'}.`,
  ];
  const subject = `[Cordon] APPROVAL NEEDED: contain ${c.instanceId}?`.slice(0, 100);
  const chat: ChatNotification = {
    version: '1.0',
    source: 'custom',
    id: `${c.caseId}:approval`,
    content: {
      textType: 'client-markdown',
      title: `:raised_hand: Cordon case ${c.caseId}: approval needed`,
      description: [
        `Containment of \`${c.instanceId}\` in account ${c.accountId}, ${c.region} waits for a person (rule ${rule}).`,
        'The evidence is being gathered now.',
        `Deadline: ${deadline}; then: ${input.timeoutAction}.`,
      ].join('\n'),
      nextSteps: [`\`${approve}\``, `\`${reject}\``],
    },
    metadata: {
      threadId: c.caseId,
      summary: subject,
      eventType: 'cordon.case.approval-needed',
      relatedResources: [c.instanceId],
      additionalContext: { caseId: c.caseId, accountId: c.accountId, region: c.region, deadline },
    },
  };
  return { subject, body: `${lines.join('\n')}\n`, chat };
}

/**
 * Records on the case that its containment waits for a person (the task token, the deadline, the
 * rule), then publishes what waits and the commands that answer. The workflow waits for the answer,
 * not for this function: what it returns is not read.
 */
export async function requestApproval(
  input: RequestApprovalInput,
  deps: RequestApprovalDeps,
): Promise<RequestApprovalResult> {
  const c = input.case;
  const now = deps.now();
  const deadline = new Date(now.getTime() + input.timeoutSeconds * 1000).toISOString();
  const approval: ApprovalRecord = {
    status: 'waiting',
    token: input.taskToken,
    rule: c.response?.rule ?? 'default',
    requestedAt: now.toISOString(),
    deadline,
    timeoutAction: input.timeoutAction,
  };
  await recordApprovalRequest(deps.ddb, deps.table, c.caseId, approval);
  await deps.recorder.note('approval requested', 'info', {
    target: c.instanceId,
    detail: `containment waits for a person until ${deadline} (rule ${approval.rule}); then ${input.timeoutAction}`,
  });
  const message = approvalMessage(input, deadline);
  try {
    const out = await deps.recorder.run('sns:Publish', deps.topicArn, () =>
      deps.sns.send(
        new PublishCommand({
          TopicArn: deps.topicArn,
          Subject: message.subject,
          MessageStructure: 'json',
          Message: structuredMessage(message.body, message.chat),
          MessageAttributes: {
            outcome: { DataType: 'String', StringValue: 'awaiting-approval' },
            caseId: { DataType: 'String', StringValue: c.caseId },
          },
        }),
      ),
    );
    return { caseId: c.caseId, deadline, ...(out.MessageId ? { messageId: out.MessageId } : {}) };
  } catch (error) {
    const e = describeError(error);
    // Nobody was told: the request must not stay listed as waiting for an answer that would be refused.
    const closed = await closeApprovalWindow(
      deps.ddb,
      deps.table,
      c.caseId,
      input.taskToken,
      deps.now().toISOString(),
    )
      .then(() => '')
      .catch((failure: unknown) => {
        const f = describeError(failure);
        return `; its window could not be closed either (${f.name}: ${f.message})`;
      });
    throw new NotificationError(
      `Cannot publish the approval request of case ${c.caseId}: ${e.name}: ${e.message}${closed}`,
      { cause: error },
    );
  }
}
