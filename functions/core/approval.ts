import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import type { CaseStore } from './cases.js';
import {
  ApprovalAlreadyDecidedError,
  ApprovalDeliveryError,
  ApprovalNotWaitingError,
  ApprovalTokenMismatchError,
  ApprovalWindowClosedError,
  CaseNotFoundError,
  describeError,
} from './errors.js';
import { oneLine } from './text.js';

/**
 * Human approval of containment (README, Approval). A case whose response is `approve` gathers its
 * evidence at once while the workflow's Await Approval task waits on a task token; Request Approval
 * records on the case item that it waits (`approval`: the token, the deadline, the rule) and a person
 * answers with `cordon approve` or `cordon reject`, through `decideApproval`, the one code path the
 * CLI and the demo share: a conditional update of the case item, then the token's answer.
 */
export const approvalTimeoutActions = ['contain', 'evidence-only'] as const;

/**
 * The longest approval window: two hours, half the forensic execution's four. A longer wait would let the
 * execution time out while it waits, and an execution that times out ends without its notification.
 * Request Approval refuses a longer window, and the case then goes on at once as the timeout's action says.
 */
export const maxApprovalWindowSeconds = 7200;
export type ApprovalTimeoutAction = (typeof approvalTimeoutActions)[number];

/** What the case item holds under `approval`. */
export interface ApprovalRecord {
  status: 'waiting' | 'approved' | 'rejected';
  token: string;
  rule: string;
  requestedAt: string;
  deadline: string;
  /** What the workflow does once the deadline passes without an answer. */
  timeoutAction: ApprovalTimeoutAction;
  /** Who answered (the caller's ARN), when, and for a rejection why. */
  by?: string;
  at?: string;
  reason?: string;
}

/** The task's answer, which the workflow puts at `$.approval`: `goesOn` is what Contain Now? reads. */
export interface ApprovalAnswer {
  decision: 'approved' | 'rejected';
  goesOn: 'contain' | 'evidence-only';
  by: string;
  at: string;
  rule: string;
  reason?: string;
}

/** A task token as Step Functions issues it (at most 1,024 characters), or the local runner's. */
export const taskTokenSchema = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[\x21-\x7e]+$/, 'not a task token');

const caseKey = (caseId: string) => ({ pk: `CASE#${caseId}`, sk: 'CASE' });

/**
 * Records that the case waits for a person. A retried request (a new token for the same wait)
 * replaces the waiting one; an approval already decided is never replaced.
 */
export async function recordApprovalRequest(
  ddb: DynamoDBDocumentClient,
  table: string,
  caseId: string,
  approval: ApprovalRecord,
): Promise<void> {
  try {
    await ddb.send(
      new UpdateCommand({
        TableName: table,
        Key: caseKey(caseId),
        UpdateExpression: 'SET approval = :a, updatedAt = :at',
        ConditionExpression:
          'attribute_exists(pk) AND (attribute_not_exists(approval) OR approval.#s = :waiting)',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':a': approval, ':at': approval.requestedAt, ':waiting': 'waiting' },
      }),
    );
  } catch (error) {
    if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
    throw new ApprovalAlreadyDecidedError(
      `case ${caseId} does not exist or its approval was already decided: a new request would replace the answer`,
      { cause: error },
    );
  }
}

/**
 * Closes the window of a request nobody was told of (its message could not be published): the deadline
 * becomes `at`, so that the case is no longer listed as waiting and an answer is refused as late, which
 * it is: the workflow goes on at once as the timeout's action says. Only this request's (its token).
 */
export async function closeApprovalWindow(
  ddb: DynamoDBDocumentClient,
  table: string,
  caseId: string,
  token: string,
  at: string,
): Promise<void> {
  await ddb.send(
    new UpdateCommand({
      TableName: table,
      Key: caseKey(caseId),
      UpdateExpression: 'SET approval.#dl = :at, updatedAt = :at',
      ConditionExpression: 'approval.#s = :waiting AND approval.#t = :t',
      ExpressionAttributeNames: { '#dl': 'deadline', '#s': 'status', '#t': 'token' },
      ExpressionAttributeValues: { ':at': at, ':waiting': 'waiting', ':t': token },
    }),
  );
}

/** The case's approval as stored, if any. */
export async function readApproval(
  ddb: DynamoDBDocumentClient,
  table: string,
  caseId: string,
): Promise<{ exists: boolean; approval?: ApprovalRecord }> {
  const out = await ddb.send(
    new GetCommand({
      TableName: table,
      Key: caseKey(caseId),
      ConsistentRead: true,
      ProjectionExpression: 'pk, approval',
    }),
  );
  if (!out.Item) return { exists: false };
  const approval = out.Item.approval as ApprovalRecord | undefined;
  return { exists: true, ...(approval && typeof approval.status === 'string' ? { approval } : {}) };
}

export interface DecisionRequest {
  caseId: string;
  decision: 'approved' | 'rejected';
  /** The caller's identity (sts:GetCallerIdentity's ARN). */
  by: string;
  /** Required for a rejection: why. */
  reason?: string;
  /** When given, the token must be the case's own: an answer meant for another case is refused. */
  token?: string;
}

export interface DecisionDeps {
  ddb: DynamoDBDocumentClient;
  table: string;
  /** The case timeline, where the decision is recorded beside the case item. */
  cases: Pick<CaseStore, 'record'>;
  /**
   * Hands the answer to the waiting task: Step Functions' SendTaskSuccess on AWS, the local runner's
   * token store against the emulated account. The only part that differs between the two.
   */
  answer: (token: string, answer: ApprovalAnswer) => Promise<void>;
  now?: () => Date;
}

/** Why an answer cannot be taken, from the case item as it is: the refusal a person reads. */
function refusal(
  caseId: string,
  found: { exists: boolean; approval?: ApprovalRecord },
  now: Date,
  token?: string,
) {
  if (!found.exists) return new CaseNotFoundError(`there is no case ${caseId}`);
  const a = found.approval;
  if (!a) {
    return new ApprovalNotWaitingError(
      `case ${caseId} is not waiting for approval: its response policy did not ask for one`,
    );
  }
  if (token !== undefined && token !== a.token) {
    return new ApprovalTokenMismatchError(
      `the task token given belongs to another case (or another request) than ${caseId}'s waiting approval`,
    );
  }
  if (a.status !== 'waiting') {
    return new ApprovalAlreadyDecidedError(
      `case ${caseId} was already ${a.status} by ${a.by ?? 'someone'} at ${a.at ?? 'an unrecorded time'}`,
    );
  }
  if (Date.parse(a.deadline) <= now.getTime()) {
    return new ApprovalWindowClosedError(
      `the approval window of case ${caseId} closed at ${a.deadline}; the case went on as ${a.timeoutAction}`,
    );
  }
  return undefined;
}

/**
 * Takes a person's answer: refused by name when the case does not exist, is not waiting, was already
 * decided, its window closed, or the token is another's; otherwise recorded on the case item by a
 * conditional update (still waiting, the same token, before the deadline), so that two answers racing
 * cannot both win, then handed to the waiting task. Should that hand-over fail, the record is put back
 * to waiting and the error says so: the case item never claims an answer the workflow did not get.
 */
export async function decideApproval(request: DecisionRequest, deps: DecisionDeps): Promise<ApprovalAnswer> {
  const now = (deps.now ?? (() => new Date()))();
  const found = await readApproval(deps.ddb, deps.table, request.caseId);
  const refused = refusal(request.caseId, found, now, request.token);
  if (refused) throw refused;
  const approval = found.approval as ApprovalRecord;
  const at = now.toISOString();
  const reason = request.reason === undefined ? undefined : oneLine(request.reason, 512);
  try {
    await deps.ddb.send(
      new UpdateCommand({
        TableName: deps.table,
        Key: caseKey(request.caseId),
        UpdateExpression: `SET approval.#s = :d, approval.#by = :by, approval.#at = :at, updatedAt = :at${reason ? ', approval.#r = :r' : ''}`,
        ConditionExpression: 'approval.#s = :waiting AND approval.#t = :t AND approval.#dl > :at',
        ExpressionAttributeNames: {
          '#s': 'status',
          '#by': 'by',
          '#at': 'at',
          '#t': 'token',
          '#dl': 'deadline',
          ...(reason ? { '#r': 'reason' } : {}),
        },
        ExpressionAttributeValues: {
          ':d': request.decision,
          ':by': request.by,
          ':at': at,
          ':waiting': 'waiting',
          ':t': approval.token,
          ...(reason ? { ':r': reason } : {}),
        },
      }),
    );
  } catch (error) {
    if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
    // Someone answered (or the window closed) between the read and the write: say which.
    const again = await readApproval(deps.ddb, deps.table, request.caseId);
    throw (
      refusal(request.caseId, again, now, request.token) ??
      new ApprovalAlreadyDecidedError(`case ${request.caseId}'s approval changed while it was being answered`)
    );
  }
  const answer: ApprovalAnswer = {
    decision: request.decision,
    goesOn: request.decision === 'approved' ? 'contain' : 'evidence-only',
    by: request.by,
    at,
    rule: approval.rule,
    ...(reason ? { reason } : {}),
  };
  try {
    await deps.answer(approval.token, answer);
  } catch (error) {
    const e = describeError(error);
    await deps.ddb
      .send(
        new UpdateCommand({
          TableName: deps.table,
          Key: caseKey(request.caseId),
          UpdateExpression: 'SET approval.#s = :waiting REMOVE approval.#by, approval.#at, approval.#r',
          ConditionExpression: 'approval.#s = :d AND approval.#t = :t',
          ExpressionAttributeNames: {
            '#s': 'status',
            '#by': 'by',
            '#at': 'at',
            '#r': 'reason',
            '#t': 'token',
          },
          ExpressionAttributeValues: { ':waiting': 'waiting', ':d': request.decision, ':t': approval.token },
        }),
      )
      .catch(() => undefined);
    throw new ApprovalDeliveryError(
      `the workflow did not take the answer (${e.name}: ${e.message}); case ${request.caseId} was not ${request.decision}`,
      { cause: error },
    );
  }
  await deps.cases
    .record(request.caseId, {
      step: 'approval',
      action: `approval ${request.decision}`,
      status: 'ok',
      target: request.caseId,
      detail: `${request.decision} by ${request.by} at ${at}${reason ? `: ${reason}` : ''}; the case goes on as ${answer.goesOn}`,
    })
    .catch(() => undefined);
  return answer;
}

/** Whether the case item's approval still waits at `now` (for `cordon cases --waiting`). */
export function isWaiting(approval: ApprovalRecord | undefined, now: Date): boolean {
  return approval?.status === 'waiting' && Date.parse(approval.deadline) > now.getTime();
}
