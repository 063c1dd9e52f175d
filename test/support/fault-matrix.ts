/**
 * The machinery of the fault-matrix suite (test/integration/fault-matrix.test.ts): runs forensic cases
 * on one emulated stack, many at once, each with its own instance and its own faults, and gathers for
 * each what a responder would see afterwards: how the execution ended, the notification, the case
 * record and its timeline, and what the instance looks like.
 */
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeAddressesCommand,
  DescribeIamInstanceProfileAssociationsCommand,
  DescribeNetworkInterfacesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { type CaseRecord, CaseStore, instanceKey, type TimelineEvent } from '../../functions/core/cases.js';
import { runWorkflowLocally } from '../../scripts/local/case.js';
import { mapEvent } from '../../scripts/local/map-event.js';
import { quickHost } from '../../scripts/local/quick-host.js';
import type { Execution } from '../../scripts/local/runner.js';
import { type SeededAccount, seedAccount } from '../../scripts/local/seed.js';
import { type LocalStack, localAccountId, localRegion } from '../../scripts/local/stack.js';
import type { Attempt, Fault, FaultInjector } from './faults.js';

/** A state and an AWS operation it calls: one row of the matrix. */
export interface Pair {
  stateName: string;
  operation: string;
}
export const pairKey = (p: Pair) => `${p.stateName} | ${p.operation}`;

export interface Notification {
  subject: string;
  body: string;
  outcome?: string;
  caseId?: string;
}

/** One case run under faults, and everything a responder could look at afterwards. */
export interface CaseRun {
  faults: Fault[];
  seeded: SeededAccount;
  execution: Execution;
  attempts: Attempt[];
  /**
   * The outcome Notify decided: its result, or (when the execution then failed and left no output)
   * the outcome its message carries. Undefined when Notify sent nothing.
   */
  outcome?: string;
  caseRecord?: CaseRecord;
  /** The case that holds the instance's one-open-case lock afterwards, if any. */
  lockHolder?: string;
  timeline: TimelineEvent[];
  notifications: Notification[];
  /** What the instance looks like now: its interfaces' groups, its instance profile, its public addresses. */
  instance: { eniGroups: string[][]; profileArn?: string; elasticIps: string[] };
}

interface State {
  case?: { caseId: string };
  notify?: { outcome?: string };
}

/** Reads AWS directly, as an investigator would: one attempt per call, no plugin of Cordon's. */
export function inspector(stack: LocalStack) {
  const base = {
    endpoint: stack.env.AWS_ENDPOINT_URL as string,
    region: localRegion,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  };
  const cases = new CaseStore(DynamoDBDocumentClient.from(new DynamoDBClient(base)), stack.table);
  const ec2 = new EC2Client(base);
  const sqs = new SQSClient(base);
  return {
    cases,
    /** Every message the alert queue holds (each is received once: call after the runs end). */
    async notifications(): Promise<Notification[]> {
      const all: Notification[] = [];
      for (;;) {
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: stack.alertQueueUrl,
            MaxNumberOfMessages: 10,
            VisibilityTimeout: 600,
          }),
        );
        const messages = out.Messages ?? [];
        if (messages.length === 0) return all;
        for (const m of messages) {
          const envelope = JSON.parse(m.Body ?? '{}') as {
            Subject?: string;
            Message?: string;
            MessageAttributes?: Record<string, { Value?: string }>;
          };
          all.push({
            subject: envelope.Subject ?? '',
            body: envelope.Message ?? '',
            ...(envelope.MessageAttributes?.outcome?.Value
              ? { outcome: envelope.MessageAttributes.outcome.Value }
              : {}),
            ...(envelope.MessageAttributes?.caseId?.Value
              ? { caseId: envelope.MessageAttributes.caseId.Value }
              : {}),
          });
        }
      }
    },
    async instance(seeded: SeededAccount): Promise<CaseRun['instance']> {
      const enis = await ec2.send(
        new DescribeNetworkInterfacesCommand({
          Filters: [{ Name: 'attachment.instance-id', Values: [seeded.instanceId] }],
        }),
      );
      const associations = await ec2.send(
        new DescribeIamInstanceProfileAssociationsCommand({
          Filters: [
            { Name: 'instance-id', Values: [seeded.instanceId] },
            { Name: 'state', Values: ['associated'] },
          ],
        }),
      );
      const profileArn = associations.IamInstanceProfileAssociations?.[0]?.IamInstanceProfile?.Arn;
      const addresses = await ec2.send(
        new DescribeAddressesCommand({ Filters: [{ Name: 'instance-id', Values: [seeded.instanceId] }] }),
      );
      return {
        eniGroups: (enis.NetworkInterfaces ?? []).map((n) => (n.Groups ?? []).map((g) => g.GroupId ?? '')),
        ...(profileArn ? { profileArn } : {}),
        elasticIps: (addresses.Addresses ?? []).map((a) => a.PublicIp ?? ''),
      };
    },
  };
}

/**
 * Runs `plans` (each a list of faults) as forensic cases on `stack`, at most `concurrency` at a time,
 * each on a freshly seeded instance (one ENI, one volume, a 64 KiB memory image written by the quick
 * host double), then reads what each left behind. Notifications are matched to cases by the instance they name.
 */
export async function runCases(
  stack: LocalStack,
  injector: FaultInjector,
  event: unknown,
  plans: Fault[][],
  concurrency: number,
): Promise<CaseRun[]> {
  const endpoint = stack.env.AWS_ENDPOINT_URL as string;
  const look = inspector(stack);
  const host = quickHost({
    endpoint,
    region: localRegion,
    toolsBucket: stack.toolsBucket,
    imageBytes: 64 * 1024,
  });
  const runs: Omit<CaseRun, 'notifications' | 'caseRecord' | 'timeline' | 'instance'>[] = new Array(
    plans.length,
  );
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < plans.length; i = next++) {
      const faults = plans[i] as Fault[];
      const seeded = await seedAccount(endpoint, { enis: 1, volumes: 1, vpcEndpoints: true });
      const { event: mapped } = mapEvent(event, {
        instanceId: seeded.instanceId,
        accountId: localAccountId,
        region: localRegion,
      });
      const executionArn = `${stack.forensicsStateMachineArn.replace(':stateMachine:', ':execution:')}:${randomUUID()}`;
      injector.arm(executionArn, faults);
      const execution = await runWorkflowLocally(stack, 'forensics', mapped, { executionArn, host });
      const outcome = (execution.output as State | undefined)?.notify?.outcome;
      runs[i] = {
        faults,
        seeded,
        execution,
        attempts: injector.of(executionArn),
        ...(outcome ? { outcome } : {}),
      };
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, plans.length) }, worker));

  const messages = await look.notifications();
  return Promise.all(
    runs.map(async (run) => {
      const instanceId = run.seeded.instanceId;
      const lock = instanceKey({ accountId: localAccountId, region: localRegion, instanceId });
      const lockHolder = await look.cases.holder(lock);
      const fromState = (run.execution.output as State | undefined)?.case?.caseId;
      // An execution that failed, or an Intake that failed after opening the case, leaves no case in the
      // output: the case index by instance still finds it.
      const caseId = fromState ?? (await look.cases.byInstance(lock))[0]?.caseId;
      const caseRecord = caseId ? await look.cases.get(caseId) : undefined;
      const notifications = messages.filter(
        (m) => m.subject.includes(instanceId) || m.body.includes(instanceId),
      );
      const outcome = run.outcome ?? notifications[0]?.outcome;
      return {
        ...run,
        ...(outcome ? { outcome } : {}),
        ...(caseRecord ? { caseRecord } : {}),
        ...(lockHolder ? { lockHolder } : {}),
        timeline: caseId ? await look.cases.timeline(caseId) : [],
        notifications,
        instance: await look.instance(run.seeded),
      };
    }),
  );
}

/** The (state, operation) pairs a run called, in the order first called. */
export function pairsOf(attempts: readonly Attempt[]): Pair[] {
  const seen = new Map<string, Pair>();
  for (const a of attempts) {
    const pair = { stateName: a.stateName, operation: a.operation };
    if (!seen.has(pairKey(pair))) seen.set(pairKey(pair), pair);
  }
  return [...seen.values()];
}

/** Renders rows as a Markdown table, every column padded to its widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
