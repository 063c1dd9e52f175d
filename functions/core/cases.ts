import { randomBytes } from 'node:crypto';
import {
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { type Case, type Outcome, type SecurityHubFinding, securityHubFindingSchema } from './case.js';
import { AwsThrottlingError, type CordonError, describeError, normaliseError } from './errors.js';
import type { Artifact } from './evidence.js';
import { oneLine } from './text.js';

/**
 * The Cases table, one item per kind:
 *   pk CASE#<caseId>       sk CASE                  the case (status, outcome, what containment changed)
 *   pk CASE#<caseId>       sk T#<iso time>#<seq><rand> one timeline event (seq: its order within a batch)
 *   pk INSTANCE#<acct>#<region>#<instance> sk OPEN  the lock that keeps one open case per instance
 *   pk <subject lock>      sk OPEN                  the same for a playbook's subject (BLOCK#…, PRINCIPAL#…)
 *   pk DUE#<queue>         sk <iso time>#<caseId>   something due for a case at a time (a block's expiry)
 * and the index `byInstance` (instanceKey, openedAt) over case items.
 */
/** `evidence-only`: the case ended with its evidence and, by decision, without containment. */
export type CaseStatus = 'open' | 'contained' | 'partial' | 'failed' | 'released' | 'evidence-only';

export interface CaseRecord extends Case {
  status: CaseStatus;
  outcome?: Outcome;
  updatedAt: string;
  findingIds: string[];
  /** What each step changed, keyed by step, for Release to restore and for the CLI to show. */
  changes?: Record<string, unknown>;
  /** Set once Notify has published the outcome, so that a retried Notify does not publish it again. */
  notified?: Notified;
  /** The Security Hub findings that joined the case after it opened (functions/core/securityhub.ts). */
  securityHubFindings?: SecurityHubFinding[];
}

/** That a case's outcome message was published: which outcome, when, and SNS's message id. */
export interface Notified {
  outcome: Outcome;
  at: string;
  messageId?: string;
}

export interface TimelineEvent {
  at: string;
  step: string;
  action: string;
  status: 'ok' | 'failed' | 'skipped' | 'info';
  target?: string;
  requestId?: string;
  detail?: string;
  /** Set on the event that stored a piece of evidence: Archive builds the manifest from these. */
  artifact?: Artifact;
}

/** A timeline event as a step records it; `at` defaults to the moment it is written. */
export type TimelineEntry = Omit<TimelineEvent, 'at'> & { at?: string };

/** BatchWriteItem's limit of items per request. */
const batchWriteLimit = 25;
/** Attempts at the items DynamoDB leaves unprocessed (it does so when throttling a batch). */
const unprocessedAttempts = 6;

export type OpenResult = { opened: true } | { opened: false; existingCaseId: string };

const caseKey = (caseId: string) => ({ pk: `CASE#${caseId}`, sk: 'CASE' });
/**
 * Where a case's timeline events live: the workflow's beside the case item, and investigators' own
 * (a disk attached to a workstation) in a partition of their own, the only one their role may write,
 * so that it can never replace the case item or a step's event.
 */
const timelinePartition = (caseId: string, by: 'workflow' | 'investigator') =>
  by === 'investigator' ? `INVESTIGATION#${caseId}` : `CASE#${caseId}`;
export const instanceKey = (c: Pick<Case, 'accountId' | 'region' | 'instanceId'>) =>
  `INSTANCE#${c.accountId}#${c.region}#${c.instanceId}`;

export class CaseStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Opens a case unless the instance already has one: the lock item and the case item are written in
   * one transaction conditioned on the lock's absence, so two findings racing on one instance cannot
   * both start a response.
   */
  async open(c: Case): Promise<OpenResult> {
    const lock = { pk: instanceKey(c), sk: 'OPEN' };
    const at = this.now().toISOString();
    try {
      await this.ddb.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.table,
                Item: { ...lock, caseId: c.caseId, openedAt: c.openedAt },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            {
              Put: {
                TableName: this.table,
                Item: {
                  ...caseKey(c.caseId),
                  ...c,
                  instanceKey: lock.pk,
                  status: 'open',
                  updatedAt: at,
                  findingIds: c.trigger.findingId ? [c.trigger.findingId] : [],
                  changes: {},
                },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      );
      return { opened: true };
    } catch (error) {
      if ((error as { name?: string }).name !== 'TransactionCanceledException') throw error;
      const held = await this.ddb.send(
        new GetCommand({ TableName: this.table, Key: lock, ConsistentRead: true }),
      );
      const existingCaseId = held.Item?.caseId;
      if (typeof existingCaseId !== 'string') throw error;
      return { opened: false, existingCaseId };
    }
  }

  async get(caseId: string): Promise<CaseRecord | undefined> {
    const out = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: caseKey(caseId), ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    const { pk: _pk, sk: _sk, instanceKey: _ik, ...record } = out.Item;
    return record as CaseRecord;
  }

  /**
   * Records that a further finding joined an open case, and its identity in Security Hub when it has
   * one (so that the case's end reaches it too). Says whether the finding was new to the case: an
   * update of a finding already listed (GuardDuty re-sends them) adds nothing.
   */
  async join(
    caseId: string,
    findingId: string | undefined,
    securityHub?: SecurityHubFinding,
  ): Promise<boolean> {
    if (!findingId) return false;
    return this.ddb
      .send(
        new UpdateCommand({
          TableName: this.table,
          Key: caseKey(caseId),
          UpdateExpression: securityHub
            ? 'SET findingIds = list_append(if_not_exists(findingIds, :empty), :f), securityHubFindings = list_append(if_not_exists(securityHubFindings, :empty), :sh), updatedAt = :at'
            : 'SET findingIds = list_append(if_not_exists(findingIds, :empty), :f), updatedAt = :at',
          ConditionExpression: 'attribute_exists(pk) AND NOT contains(findingIds, :fid)',
          ExpressionAttributeValues: {
            ':f': [findingId],
            ':fid': findingId,
            ':empty': [],
            ':at': this.now().toISOString(),
            ...(securityHub ? { ':sh': [securityHub] } : {}),
          },
        }),
      )
      .then(
        () => true,
        (error: unknown) => {
          // The finding is already listed: an update of the same finding, nothing to add.
          if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
          return false;
        },
      );
  }

  /**
   * The Security Hub findings that joined a case after it opened (the one it opened on is the case's
   * own `securityHub`), each checked again: the record is Cordon's, but what it sends AWS is checked
   * where it is sent from.
   */
  async securityHubFindings(caseId: string): Promise<SecurityHubFinding[]> {
    const out = await this.ddb.send(
      new GetCommand({
        TableName: this.table,
        Key: caseKey(caseId),
        ConsistentRead: true,
        ProjectionExpression: 'securityHubFindings',
      }),
    );
    const listed: unknown = out.Item?.securityHubFindings;
    return (Array.isArray(listed) ? listed : []).flatMap((f) => {
      const parsed = securityHubFindingSchema.safeParse(f);
      return parsed.success ? [parsed.data] : [];
    });
  }

  /**
   * Saves what a step changed, so that Release can restore it even if later steps fail. One write on
   * the containment path: cases open with an empty `changes` map. A case without one (opened before
   * the map existed) gets it first, then the write again.
   */
  async saveChanges(caseId: string, step: string, changes: unknown): Promise<void> {
    const save = () =>
      this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: caseKey(caseId),
          UpdateExpression: 'SET changes.#step = :c, updatedAt = :at',
          ExpressionAttributeNames: { '#step': step },
          ExpressionAttributeValues: { ':c': changes, ':at': this.now().toISOString() },
        }),
      );
    try {
      await save();
    } catch (error) {
      // "The document path provided in the update expression is invalid for update": no map yet.
      if ((error as { name?: string }).name !== 'ValidationException') throw error;
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: caseKey(caseId),
          UpdateExpression: 'SET changes = if_not_exists(changes, :empty)',
          ExpressionAttributeValues: { ':empty': {} },
        }),
      );
      await save();
    }
  }

  async setStatus(caseId: string, status: CaseStatus, outcome?: Outcome): Promise<void> {
    await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: caseKey(caseId),
        UpdateExpression: outcome
          ? 'SET #s = :s, outcome = :o, updatedAt = :at'
          : 'SET #s = :s, updatedAt = :at',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':s': status,
          ':at': this.now().toISOString(),
          ...(outcome ? { ':o': outcome } : {}),
        },
      }),
    );
  }

  /**
   * The outcome message already published for a case, if any: the marker `markNotified` leaves, read
   * consistently so that a retried Notify sees the write of the attempt before it.
   */
  async notified(caseId: string): Promise<Notified | undefined> {
    const out = await this.ddb.send(
      new GetCommand({
        TableName: this.table,
        Key: caseKey(caseId),
        ConsistentRead: true,
        ProjectionExpression: '#n',
        ExpressionAttributeNames: { '#n': 'notified' },
      }),
    );
    const n = out.Item?.notified as Notified | undefined;
    return n && typeof n.outcome === 'string' ? n : undefined;
  }

  /**
   * Marks the case's outcome as published, once: the write is conditioned on the case existing and on
   * no marker yet, so a second attempt cannot overwrite the first's message id. Says whether this call
   * wrote it.
   */
  async markNotified(caseId: string, notified: Notified): Promise<boolean> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: caseKey(caseId),
          UpdateExpression: 'SET #n = :n',
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#n)',
          ExpressionAttributeNames: { '#n': 'notified' },
          ExpressionAttributeValues: { ':n': notified },
        }),
      );
      return true;
    } catch (error) {
      if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
      return false;
    }
  }

  /** Frees the instance for a new case (after release, or after a case that failed outright). */
  async unlock(c: Pick<Case, 'accountId' | 'region' | 'instanceId' | 'caseId'>): Promise<void> {
    await this.ddb
      .send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Delete: {
                TableName: this.table,
                Key: { pk: instanceKey(c), sk: 'OPEN' },
                ConditionExpression: 'caseId = :c',
                ExpressionAttributeValues: { ':c': c.caseId },
              },
            },
          ],
        }),
      )
      .catch((error: unknown) => {
        // Already unlocked, or locked by a later case: either way not ours to remove.
        if ((error as { name?: string }).name !== 'TransactionCanceledException') throw error;
      });
  }

  /**
   * Opens a case that is not about one instance (a blocked range, a compromised principal): the case
   * item and one lock item per key in `locks`, written in one transaction conditioned on every lock's
   * absence. When a lock is held, says which case holds it (the first held lock, in the order given).
   */
  async openSubject(
    locks: readonly string[],
    item: Record<string, unknown> & { caseId: string; openedAt: string },
  ): Promise<OpenResult> {
    const at = this.now().toISOString();
    try {
      await this.ddb.send(
        new TransactWriteCommand({
          TransactItems: [
            ...locks.map((pk) => ({
              Put: {
                TableName: this.table,
                Item: { pk, sk: 'OPEN', caseId: item.caseId, openedAt: item.openedAt },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            })),
            {
              Put: {
                TableName: this.table,
                Item: { ...caseKey(item.caseId), ...item, status: 'open', updatedAt: at },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      );
      return { opened: true };
    } catch (error) {
      if ((error as { name?: string }).name !== 'TransactionCanceledException') throw error;
      for (const pk of locks) {
        const held = await this.ddb.send(
          new GetCommand({ TableName: this.table, Key: { pk, sk: 'OPEN' }, ConsistentRead: true }),
        );
        if (typeof held.Item?.caseId === 'string') return { opened: false, existingCaseId: held.Item.caseId };
      }
      throw error;
    }
  }

  /** The case holding a subject lock, if any. */
  async holder(lock: string): Promise<string | undefined> {
    const held = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk: lock, sk: 'OPEN' }, ConsistentRead: true }),
    );
    return typeof held.Item?.caseId === 'string' ? held.Item.caseId : undefined;
  }

  /** Frees a subject lock, if this case still holds it. */
  async releaseSubject(lock: string, caseId: string): Promise<void> {
    await this.ddb
      .send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Delete: {
                TableName: this.table,
                Key: { pk: lock, sk: 'OPEN' },
                ConditionExpression: 'caseId = :c',
                ExpressionAttributeValues: { ':c': caseId },
              },
            },
          ],
        }),
      )
      .catch((error: unknown) => {
        if ((error as { name?: string }).name !== 'TransactionCanceledException') throw error;
      });
  }

  /**
   * Something to do for a case at a set time (a block's expiry): one item in the queue's partition,
   * sorted by time, so that `due` is a single query.
   */
  async schedule(queue: string, caseId: string, dueAt: string): Promise<void> {
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: `DUE#${queue}`, sk: `${dueAt}#${caseId}`, caseId, dueAt },
      }),
    );
  }

  async unschedule(queue: string, caseId: string, dueAt: string): Promise<void> {
    await this.ddb.send(
      new DeleteCommand({ TableName: this.table, Key: { pk: `DUE#${queue}`, sk: `${dueAt}#${caseId}` } }),
    );
  }

  /** What is due in a queue at `now`, oldest first, at most `limit` items. */
  async due(queue: string, now: Date, limit: number): Promise<{ caseId: string; dueAt: string }[]> {
    const out = await this.ddb.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk <= :now',
        ExpressionAttributeValues: { ':pk': `DUE#${queue}`, ':now': `${now.toISOString()}#~` },
        ConsistentRead: true,
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map((i) => ({ caseId: String(i.caseId), dueAt: String(i.dueAt) }));
  }

  async record(
    caseId: string,
    event: TimelineEntry,
    by: 'workflow' | 'investigator' = 'workflow',
  ): Promise<void> {
    await this.ddb.send(
      new PutCommand({ TableName: this.table, Item: this.timelineItem(caseId, event, 0, by) }),
    );
  }

  /**
   * Writes a step's events in as few requests as DynamoDB allows (BatchWriteItem, 25 items each, the
   * requests at once), retrying what DynamoDB leaves unprocessed under load. Each event keeps the time
   * it happened (`at`, set when it was recorded) and its place in the batch, so the timeline reads back
   * in the order the step recorded it.
   */
  async recordMany(caseId: string, events: readonly TimelineEntry[]): Promise<void> {
    const items = events.map((e, i) => this.timelineItem(caseId, e, i, 'workflow'));
    const chunks: Record<string, unknown>[][] = [];
    for (let i = 0; i < items.length; i += batchWriteLimit) chunks.push(items.slice(i, i + batchWriteLimit));
    await Promise.all(chunks.map((chunk) => this.batchPut(chunk)));
  }

  private async batchPut(items: Record<string, unknown>[]): Promise<void> {
    let requests = items.map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      if (attempt === unprocessedAttempts) {
        throw new AwsThrottlingError(
          `DynamoDB left ${requests.length} timeline event(s) unprocessed after ${unprocessedAttempts} attempts`,
        );
      }
      if (attempt > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt * Math.random()));
      const out = await this.ddb.send(new BatchWriteCommand({ RequestItems: { [this.table]: requests } }));
      requests = (out.UnprocessedItems?.[this.table] ?? []) as typeof requests;
    }
  }

  private timelineItem(
    caseId: string,
    event: TimelineEntry,
    seq: number,
    by: 'workflow' | 'investigator',
  ): Record<string, unknown> {
    const at = event.at ?? this.now().toISOString();
    return {
      pk: timelinePartition(caseId, by),
      sk: `T#${at}#${String(seq).padStart(3, '0')}${randomBytes(4).toString('hex')}`,
      ...event,
      at,
      ...(event.target ? { target: oneLine(event.target, 300) } : {}),
      ...(event.detail ? { detail: oneLine(event.detail, 1000) } : {}),
    };
  }

  async timeline(caseId: string, by: 'workflow' | 'investigator' = 'workflow'): Promise<TimelineEvent[]> {
    const events: TimelineEvent[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.ddb.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :t)',
          ExpressionAttributeValues: { ':pk': timelinePartition(caseId, by), ':t': 'T#' },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        const { pk: _pk, sk: _sk, ...event } = item;
        events.push(event as TimelineEvent);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return events;
  }

  async byInstance(key: string): Promise<CaseRecord[]> {
    const out = await this.ddb.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'byInstance',
        KeyConditionExpression: 'instanceKey = :k',
        ExpressionAttributeValues: { ':k': key },
        ScanIndexForward: false,
      }),
    );
    return (out.Items ?? []) as CaseRecord[];
  }
}

/**
 * The timeline's error, keeping its name (so that Step Functions retries it or not, as before), saying
 * which action it failed to record.
 */
export function unrecorded(what: string, error: unknown): CordonError {
  const e = normaliseError(error);
  const Named = e.constructor as new (message: string, options?: ErrorOptions) => CordonError;
  return new Named(
    oneLine(`${what}, but the case timeline could not record it: ${e.name}: ${e.message}`, 1800),
    { cause: error },
  );
}

/**
 * A step's record of its own actions. `run` performs one AWS call and records what was attempted, on
 * what, whether it worked and AWS's request id. The timeline is written behind the calls, never in
 * front of them: an event is queued and written at once if no write is in flight, else with the next
 * batch (one BatchWriteItem for everything the step recorded meanwhile), so recording adds no round
 * trip to a step's path. A failure is written before it is rethrown. `flush` waits for every write and
 * fails, by name, if any event could not be written: the handler flushes before a step reports
 * (functions/core/handler.ts), so a step never reports success with its record missing.
 */
/** What an event may carry beside its action and status. */
type NoteExtra = {
  target?: string | undefined;
  requestId?: string | undefined;
  detail?: string | undefined;
  artifact?: Artifact | undefined;
};

export class Recorder {
  private queued: TimelineEntry[] = [];
  private writing: Promise<void> | undefined;
  private lost: { what: string; error: unknown } | undefined;

  constructor(
    private readonly store: Pick<CaseStore, 'recordMany'>,
    readonly caseId: string,
    readonly step: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async run<T extends { $metadata?: { requestId?: string } }>(
    action: string,
    target: string | undefined,
    call: () => Promise<T>,
  ): Promise<T> {
    let out: T;
    try {
      out = await call();
    } catch (error) {
      const e = describeError(error);
      const requestId = (error as { $metadata?: { requestId?: string } }).$metadata?.requestId;
      this.enqueue(action, 'failed', { target, requestId, detail: `${e.name}: ${e.message}` });
      // The failure is on the timeline before the step reports it; best effort when AWS is already
      // failing: the error itself still propagates.
      await this.settled();
      throw error;
    }
    this.enqueue(action, 'ok', { target, requestId: out.$metadata?.requestId });
    return out;
  }

  async note(action: string, status: TimelineEvent['status'], extra: NoteExtra = {}): Promise<void> {
    this.enqueue(action, status, extra);
  }

  /**
   * Waits until everything recorded so far is written. If an event could not be written, fails with
   * the timeline's error (its name kept, so that the workflow retries the step or not, as before),
   * saying which action went unrecorded: the action happened; only its record did not.
   */
  async flush(): Promise<void> {
    await this.settled();
    const lost = this.lost;
    if (!lost) return;
    this.lost = undefined;
    throw unrecorded(lost.what, lost.error);
  }

  /** Waits for the writes in flight and queued, whatever their result. */
  private async settled(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private enqueue(action: string, status: TimelineEvent['status'], extra: NoteExtra): void {
    this.queued.push({
      at: this.now().toISOString(),
      step: this.step,
      action,
      status,
      ...(extra.target ? { target: extra.target } : {}),
      ...(extra.requestId ? { requestId: extra.requestId } : {}),
      ...(extra.detail ? { detail: extra.detail } : {}),
      ...(extra.artifact ? { artifact: extra.artifact } : {}),
    });
    this.writing ??= this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.queued.length > 0) {
        const batch = this.queued.splice(0);
        try {
          await this.store.recordMany(this.caseId, batch);
        } catch (error) {
          const first = batch[0] as TimelineEntry;
          const what = `${first.action}${first.target ? ` on ${first.target}` : ''}${
            batch.length > 1 ? ` and ${batch.length - 1} more event(s)` : ''
          } ${first.status === 'failed' ? 'failed' : 'was done'}`;
          this.lost ??= { what, error };
        }
      }
    } finally {
      this.writing = undefined;
    }
  }
}
