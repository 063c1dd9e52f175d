import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { accountIdSchema, instanceIdSchema, regionSchema } from '../../functions/core/case.js';
import { safeTextSchema } from '../../functions/core/text.js';
import type { LocalStack } from '../local/stack.js';
import { UsageError } from './errors.js';
import { safe } from './output.js';

/** One Task of a run, as a person follows it: one line when it finishes. */
export interface StepLine {
  name: string;
  status: 'succeeded' | 'failed' | 'skipped';
  seconds?: number;
  reason?: string;
  /** Set by Intake Finding once it has opened (or joined) a case. */
  caseId?: string;
  /** Intake Finding's decision: accepted, rejected or duplicate. */
  decision?: string;
}

export interface RunResult {
  status: string;
  caseId?: string;
  /** completed | partial | failed | rejected | duplicate, or `released` for the release workflow. */
  outcome: string;
  reason: string;
  steps: StepLine[];
  executionArn?: string;
}

const reasonText = z
  .string()
  .trim()
  .min(1, 'is empty')
  // Intake's own rule for typed text, so that what it would refuse is refused here, before any call.
  .pipe(safeTextSchema);

const manualStartSchema = z.object({
  instanceId: instanceIdSchema,
  accountId: accountIdSchema.optional(),
  region: regionSchema.optional(),
  reason: reasonText,
  requestedBy: z.string().min(1).max(512),
});
export type ManualStart = z.infer<typeof manualStartSchema>;

/**
 * The execution input of a manual start, as Intake takes it. Checked here so that a typing mistake is
 * refused before any AWS call, with the field it concerns.
 */
export function manualStartInput(fields: {
  instanceId: string;
  accountId?: string | undefined;
  region?: string | undefined;
  reason: string;
  requestedBy: string;
}): ManualStart {
  const parsed = manualStartSchema.safeParse(
    Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)),
  );
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = {
      instanceId: '--instance',
      accountId: '--account',
      region: '--instance-region',
      reason: '--reason',
    }[String(issue?.path[0]) as 'instanceId'];
    throw new UsageError(`${field ?? String(issue?.path[0])} ${issue?.message ?? 'is invalid'}`);
  }
  return parsed.data;
}

/** Step Functions refuses larger execution input; a file this big is not a finding. */
export const maxTriggerBytes = 256 * 1024;

function parseJson(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Lambda puts `{"errorType", "errorMessage"}` in a failure's cause; keep the message. */
function failureReason(error: string | undefined, cause: string | undefined): string {
  const parsed = parseJson(cause) as { errorMessage?: unknown } | undefined;
  const message = typeof parsed?.errorMessage === 'string' ? parsed.errorMessage : (cause ?? '');
  return safe(`${error ?? 'Error'}: ${message}`, 300);
}

function resultOf(
  e: HistoryEvent,
): { ok: true; output: unknown } | { ok: false; reason: string } | undefined {
  switch (e.type) {
    case 'LambdaFunctionSucceeded':
      return { ok: true, output: parseJson(e.lambdaFunctionSucceededEventDetails?.output) };
    case 'TaskSucceeded':
      return { ok: true, output: parseJson(e.taskSucceededEventDetails?.output) };
    case 'LambdaFunctionFailed': {
      const d = e.lambdaFunctionFailedEventDetails;
      return { ok: false, reason: failureReason(d?.error, d?.cause) };
    }
    case 'LambdaFunctionTimedOut': {
      const d = e.lambdaFunctionTimedOutEventDetails;
      return { ok: false, reason: failureReason(d?.error ?? 'States.Timeout', d?.cause) };
    }
    case 'LambdaFunctionScheduleFailed': {
      const d = e.lambdaFunctionScheduleFailedEventDetails;
      return { ok: false, reason: failureReason(d?.error, d?.cause) };
    }
    case 'LambdaFunctionStartFailed': {
      const d = e.lambdaFunctionStartFailedEventDetails;
      return { ok: false, reason: failureReason(d?.error, d?.cause) };
    }
    case 'TaskFailed': {
      const d = e.taskFailedEventDetails;
      return { ok: false, reason: failureReason(d?.error, d?.cause) };
    }
    case 'TaskTimedOut': {
      const d = e.taskTimedOutEventDetails;
      return { ok: false, reason: failureReason(d?.error ?? 'States.Timeout', d?.cause) };
    }
    default:
      return undefined;
  }
}

/**
 * The Tasks of an execution's history, one line per attempt that finished, in the order they finished.
 * Each result event is tied to its state by walking `previousEventId` back to the TaskStateEntered
 * event, which also holds in Parallel branches, where the branches' events interleave.
 */
export function stepsFromHistory(events: readonly HistoryEvent[]): StepLine[] {
  const byId = new Map(events.map((e) => [e.id, e]));
  const lines: StepLine[] = [];
  for (const e of events) {
    const result = resultOf(e);
    if (!result) continue;
    let entered: HistoryEvent | undefined = e;
    for (let hops = 0; entered && entered.type !== 'TaskStateEntered' && hops < 1000; hops++) {
      entered = entered.previousEventId === undefined ? undefined : byId.get(entered.previousEventId);
    }
    const name = safe(entered?.stateEnteredEventDetails?.name ?? 'Task', 80);
    const seconds =
      entered?.timestamp && e.timestamp
        ? Math.max(0, (e.timestamp.getTime() - entered.timestamp.getTime()) / 1000)
        : undefined;
    const base = { name, ...(seconds === undefined ? {} : { seconds }) };
    if (!result.ok) {
      lines.push({ ...base, status: 'failed', reason: result.reason });
      continue;
    }
    const out = result.output as {
      status?: unknown;
      reason?: unknown;
      intake?: { caseId?: unknown; decision?: unknown; reason?: unknown };
    } | null;
    const caseId = typeof out?.intake?.caseId === 'string' ? out.intake.caseId : undefined;
    const decision = typeof out?.intake?.decision === 'string' ? out.intake.decision : undefined;
    if (out && out.status === 'skipped') {
      lines.push({ ...base, status: 'skipped', reason: safe(out.reason, 300) });
    } else {
      lines.push({
        ...base,
        status: 'succeeded',
        ...(caseId ? { caseId: safe(caseId, 64) } : {}),
        ...(decision ? { decision: safe(decision, 20) } : {}),
        ...(decision && typeof out?.intake?.reason === 'string'
          ? { reason: safe(out.intake.reason, 300) }
          : {}),
      });
    }
  }
  return lines;
}

async function fullHistory(sfn: SFNClient, executionArn: string): Promise<HistoryEvent[]> {
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
  return events;
}

interface FinalState {
  intake?: { decision?: string; reason?: string; caseId?: string };
  case?: { caseId?: string };
  notify?: { outcome?: string };
  release?: { restored?: string[]; notes?: string[] };
}

/** What a finished forensic run came to, from its output (or, when it failed, its error). */
export function forensicOutcome(
  status: string,
  output: unknown,
  error: { name?: string; message?: string } | undefined,
  steps: readonly StepLine[],
): Pick<RunResult, 'caseId' | 'outcome' | 'reason'> {
  const state = (output ?? {}) as FinalState;
  const caseId = state.case?.caseId ?? state.intake?.caseId ?? steps.find((s) => s.caseId)?.caseId;
  const withCase = caseId ? { caseId: safe(caseId, 64) } : {};
  const decision = state.intake?.decision;
  if (decision === 'rejected' || decision === 'duplicate') {
    return { ...withCase, outcome: decision, reason: safe(state.intake?.reason, 300) };
  }
  if (status === 'SUCCEEDED' && state.notify?.outcome) {
    const problems = steps
      .filter((s) => s.status !== 'succeeded')
      .map((s) => `${s.name}: ${s.reason ?? s.status}`);
    return {
      ...withCase,
      outcome: safe(state.notify.outcome, 20),
      reason: problems.length ? problems.join('; ') : 'every planned step succeeded',
    };
  }
  const failed = [...steps].reverse().find((s) => s.status === 'failed');
  return {
    ...withCase,
    outcome: 'failed',
    reason: failed
      ? `${failed.name}: ${failed.reason ?? 'failed'}`
      : safe(`${error?.name ?? status}: ${error?.message ?? 'the workflow did not finish'}`, 300),
  };
}

export interface FollowOptions {
  onStep?: (step: StepLine) => void;
  /** Stop following once this returns true for the steps so far (e.g. Intake has decided). */
  until?: (steps: readonly StepLine[]) => boolean;
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Follows an execution on AWS: DescribeExecution for its status, GetExecutionHistory for the Tasks that
 * finished since the last look, until it ends (or `until` says enough).
 */
export async function followExecution(
  sfn: SFNClient,
  executionArn: string,
  options: FollowOptions = {},
): Promise<{
  status: string;
  output?: unknown;
  error?: { name?: string; message?: string };
  steps: StepLine[];
}> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let reported = 0;
  for (;;) {
    const described = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    const steps = stepsFromHistory(await fullHistory(sfn, executionArn));
    for (const step of steps.slice(reported)) options.onStep?.(step);
    reported = steps.length;
    const status = described.status ?? 'UNKNOWN';
    if (status !== 'RUNNING' && status !== 'PENDING_REDRIVE') {
      return {
        status,
        ...(described.output ? { output: parseJson(described.output) } : {}),
        ...(described.error || described.cause
          ? { error: { name: described.error ?? status, message: described.cause ?? '' } }
          : {}),
        steps,
      };
    }
    if (options.until?.(steps)) return { status, steps };
    await sleep(options.pollMs ?? 2000);
  }
}

export async function startExecution(
  sfn: SFNClient,
  stateMachineArn: string,
  input: unknown,
  name?: string,
): Promise<string> {
  const out = await sfn.send(
    new StartExecutionCommand({ stateMachineArn, input: JSON.stringify(input), ...(name ? { name } : {}) }),
  );
  if (!out.executionArn) throw new Error('StartExecution returned no execution ARN');
  return out.executionArn;
}

/** A readable, unique execution name for a manual start: `manual-<instance>-<UTC time>`. */
export function manualExecutionName(instanceId: string, now: Date): string {
  return `manual-${instanceId}-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z')}`;
}

/**
 * Runs a workflow in this process against the emulator: moto's Step Functions stores state machines
 * but does not run them, so the real ASL runs here with every Task bound to the real handler.
 */
export async function runLocally(
  stack: LocalStack,
  machine: 'forensics' | 'release',
  input: unknown,
  onStep: (step: StepLine) => void,
  options: { debug?: boolean } = {},
): Promise<{
  status: string;
  output?: unknown;
  error?: { name?: string; message?: string };
  steps: StepLine[];
}> {
  // The functions log to stdout, and their logger reads its level once, from the environment, when they
  // load: set for the run, since a CLI must keep stdout for its own answer.
  const quiet: Record<string, string> = process.env.POWERTOOLS_LOG_LEVEL
    ? {}
    : { POWERTOOLS_LOG_LEVEL: options.debug ? 'INFO' : 'SILENT' };
  const [{ runWorkflowLocally }, { withEnvironment }] = await Promise.all([
    import('../local/case.js'),
    import('../local/environment.js'),
  ]);
  const steps: StepLine[] = [];
  // The handlers read their settings from the environment as on Lambda, so the runner sets the
  // stack's there; scoped to the run, so that the CLI's own clients never see the functions' settings.
  const execution = await withEnvironment(quiet, () =>
    runWorkflowLocally(stack, machine, input, {
      onStep: (s) => {
        const line: StepLine = {
          name: safe(s.name, 80),
          status: s.status,
          seconds: s.ms / 1000,
          ...(s.reason ? { reason: safe(s.reason, 300) } : {}),
        };
        steps.push(line);
        onStep(line);
      },
    }),
  );
  // A failed case ends in a Fail state, which has no output; the state it failed in still holds the case.
  const output = execution.output ?? execution.failedState;
  return {
    status: execution.status,
    ...(output === undefined ? {} : { output }),
    ...(execution.error ? { error: execution.error } : {}),
    steps,
  };
}
