import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import { type DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { type ApprovalRecord, isWaiting } from '../../functions/core/approval.js';
import { type CaseRecord, CaseStore, instanceKey, type TimelineEvent } from '../../functions/core/cases.js';
import { awsErrorCode } from '../../functions/core/errors.js';
import { explain, UnknownCaseError } from './errors.js';
import { type StepLine, stepsFromHistory } from './workflow.js';

export interface CaseRow extends CaseRecord {
  /** The case still holds its instance (the one-open-case lock): not yet released. */
  holdsInstance: boolean;
}

function caseFrom(item: Record<string, unknown>): CaseRecord {
  const { pk: _pk, sk: _sk, instanceKey: _ik, ...record } = item;
  return record as unknown as CaseRecord;
}

const newestFirst = (a: CaseRecord, b: CaseRecord) => String(b.openedAt).localeCompare(String(a.openedAt));

/**
 * The cases in the table, newest first. With an instance, the `byInstance` index answers; otherwise a
 * Scan reads the case items and the instance locks together (the lock tells which cases still hold
 * their instance).
 */
export async function listCases(
  ddb: DynamoDBDocumentClient,
  table: string,
  filter: {
    open?: boolean;
    /** Only the cases whose containment waits for a person, at `waiting` (functions/core/approval.ts). */
    waiting?: Date;
    instance?: { instanceId: string; accountId: string; region: string };
  } = {},
): Promise<CaseRow[]> {
  let rows: CaseRow[];
  if (filter.instance) {
    const key = instanceKey(filter.instance);
    const [records, lock] = await Promise.all([
      new CaseStore(ddb, table).byInstance(key),
      ddb.send(new GetCommand({ TableName: table, Key: { pk: key, sk: 'OPEN' }, ConsistentRead: true })),
    ]);
    const holder = lock.Item?.caseId;
    rows = records.map((r) => {
      const record = caseFrom(r as unknown as Record<string, unknown>);
      return { ...record, holdsInstance: record.caseId === holder };
    });
  } else {
    const cases: CaseRecord[] = [];
    const holders = new Set<string>();
    let start: Record<string, unknown> | undefined;
    do {
      const page = await ddb.send(
        new ScanCommand({
          TableName: table,
          FilterExpression: 'sk IN (:case, :open)',
          ExpressionAttributeValues: { ':case': 'CASE', ':open': 'OPEN' },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        if (item.sk === 'CASE') cases.push(caseFrom(item));
        else if (typeof item.caseId === 'string') holders.add(item.caseId);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    rows = cases.map((c) => ({ ...c, holdsInstance: holders.has(c.caseId) }));
  }
  rows.sort(newestFirst);
  if (filter.waiting) {
    const at = filter.waiting;
    rows = rows.filter((r) => isWaiting((r as { approval?: ApprovalRecord }).approval, at));
  }
  return (filter.open ? rows.filter((r) => r.holdsInstance) : rows).map(shown);
}

export interface ExecutionView {
  executionArn: string;
  /** RUNNING, SUCCEEDED, FAILED…; `unknown` when Step Functions does not know the execution. */
  status: string;
  startDate?: string;
  stopDate?: string;
  steps: StepLine[];
  note?: string;
}

/** The case's execution as Step Functions recorded it, or why it cannot be shown. */
export async function executionView(sfn: SFNClient, executionArn: string): Promise<ExecutionView> {
  try {
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    const events: HistoryEvent[] = [];
    let nextToken: string | undefined;
    do {
      const page = await sfn.send(
        new GetExecutionHistoryCommand({
          executionArn,
          maxResults: 1000,
          includeExecutionData: true,
          nextToken,
        }),
      );
      events.push(...(page.events ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
    return {
      executionArn,
      status: d.status ?? 'unknown',
      ...(d.startDate ? { startDate: d.startDate.toISOString() } : {}),
      ...(d.stopDate ? { stopDate: d.stopDate.toISOString() } : {}),
      steps: stepsFromHistory(events),
    };
  } catch (error) {
    if (awsErrorCode(error) !== 'ExecutionDoesNotExist') {
      // The case and its timeline are still worth showing when the history cannot be read.
      return {
        executionArn,
        status: 'unknown',
        steps: [],
        note: `could not read the execution: ${explain(error).message}`,
      };
    }
    return {
      executionArn,
      status: 'unknown',
      steps: [],
      note: 'Step Functions does not know this execution: it ran in-process on the emulator, or its history has expired (90 days).',
    };
  }
}

export interface CaseStatus {
  case: CaseRecord;
  timeline: TimelineEvent[];
  execution?: ExecutionView;
}

/**
 * A case record as the CLI shows it: without the task token of an approval, which with
 * states:SendTaskSuccess answers the waiting workflow directly, past the checks `cordon approve` makes.
 * A terminal, a ticket or a CI log never gets it.
 */
export function shown<T extends object>(record: T): T {
  const approval = (record as { approval?: Record<string, unknown> }).approval;
  if (!approval || !('token' in approval)) return record;
  const { token: _token, ...rest } = approval;
  return { ...record, approval: rest };
}

/** A case with its timeline and its execution's history. An unknown case is an error, named. */
export async function caseStatus(
  deps: { ddb: DynamoDBDocumentClient; sfn: SFNClient; table: string },
  caseId: string,
): Promise<CaseStatus> {
  const store = new CaseStore(deps.ddb, deps.table);
  const record = await store.get(caseId);
  if (!record) {
    throw new UnknownCaseError(
      `There is no case ${caseId} in the table ${deps.table}.`,
      'List the cases with `cordon cases`; check --stage and --region.',
    );
  }
  // The workflow's events, then what investigators did with the evidence since (disks attached...).
  const timeline = [...(await store.timeline(caseId)), ...(await store.timeline(caseId, 'investigator'))];
  timeline.sort((a, b) => String(a.at).localeCompare(String(b.at)));
  const execution = record.executionArn ? await executionView(deps.sfn, record.executionArn) : undefined;
  return { case: shown(record), timeline, ...(execution ? { execution } : {}) };
}
