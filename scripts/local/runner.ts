import './polyfills.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';
import { parse } from 'yaml';

/** What a Task state invokes: a function key from serverless.yml bound to an in-process handler. */
export type TaskHandler = (input: unknown) => Promise<unknown>;

export interface StepRecord {
  name: string;
  status: 'succeeded' | 'failed' | 'skipped';
  ms: number;
  reason?: string;
}

export interface Execution {
  /** ABORTED: stopped by `stopAfter`, as StopExecution stops an execution on AWS. */
  status: 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  output?: unknown;
  error?: { name: string; message: string };
  steps: StepRecord[];
  executionArn: string;
  /** States entered, as Step Functions bills them (one transition per state entered). */
  transitions: number;
  /**
   * FAILED only: the input of the last state entered. For a Fail state that is the whole state the
   * execution ended in (the case, what each step did), which AWS keeps in the history's
   * FailStateEntered event while the execution itself has no output.
   */
  failedState?: unknown;
}

export interface RunSettings {
  handlers: Record<string, TaskHandler>;
  executionArn?: string;
  /** Called after a Task's handler returned, before the workflow moves on (the emulated SSM agent). */
  afterTask?: (stateName: string, output: unknown, input: unknown) => Promise<void>;
  /** Called as each Task finishes, for a live account of the run. */
  onStep?: (step: StepRecord) => void;
  /** Milliseconds for every Wait state and retry interval; 0 runs the loops at once. */
  waitMs?: number;
  /** Keep the ASL's own retry intervals (backoff and jitter) instead of `waitMs`: for load runs. */
  realRetryIntervals?: boolean;
  /** Stops the execution once a Task finishes for which this returns true (benchmarks that need only part of a case). */
  stopAfter?: (step: StepRecord) => boolean;
}

type Json = Record<string, unknown>;

/**
 * The Task state (and execution, and serverless.yml function) whose handler is running: lets meters
 * and recorders attribute AWS calls to steps and to the role that makes them.
 */
export const taskScope = new AsyncLocalStorage<{ stateName: string; executionArn: string; fn?: string }>();

export const repoRoot = resolve(import.meta.dirname, '..', '..');

/**
 * Loads an ASL file exactly as deployed and replaces each Task's `Fn::GetAtt: [function, Arn]` with a
 * local ARN, returning the function each Task state calls, Parallel branches included.
 */
export function loadDefinition(file: string): {
  definition: Json;
  tasks: Map<string, string>;
  waits: string[];
} {
  const definition = parse(readFileSync(resolve(repoRoot, file), 'utf8'), { merge: true }) as Json;
  const tasks = new Map<string, string>();
  const waits: string[] = [];
  const visit = (states: Record<string, Json>) => {
    for (const [name, state] of Object.entries(states)) {
      if (state.Type === 'Task') {
        const getAtt = (state.Resource as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt'];
        if (!getAtt) throw new Error(`Task ${name} does not call a Cordon function`);
        tasks.set(name, getAtt[0]);
        state.Resource = `arn:aws:lambda:us-east-1:000000000000:function:cordon-local-${getAtt[0]}`;
      }
      if (state.Type === 'Wait') waits.push(name);
      for (const branch of (state.Branches as { States: Record<string, Json> }[] | undefined) ?? []) {
        visit(branch.States);
      }
    }
  };
  visit(definition.States as Record<string, Json>);
  return { definition, tasks, waits };
}

function stepStatus(output: unknown): { status: StepRecord['status']; reason?: string } {
  const o = output as { status?: unknown; reason?: unknown } | null;
  if (o && o.status === 'skipped') return { status: 'skipped', reason: String(o.reason ?? '') };
  return { status: 'succeeded' };
}

/**
 * Each ASL file loaded and validated once per process: validation compiles the ASL's JSON schema, a
 * quarter of a second of CPU that suites running many executions would otherwise pay every time.
 */
const machines = new Map<
  string,
  ReturnType<typeof loadDefinition> & { machine: StateMachine; timeoutSeconds?: number }
>();
function compiled(file: string) {
  let found = machines.get(file);
  if (!found) {
    const loaded = loadDefinition(file);
    // aws-local-stepfunctions 3.0.0 arms a timer for the execution's TimeoutSeconds before it copies the
    // input, and clears it only once the run has started: an input it cannot copy (JSON nested 10,000
    // levels deep overflows the stack) leaves 4 hours of timer that keep a CLI from exiting after it
    // printed "Case FAILED". The runner keeps that timeout itself, and always clears it.
    const { TimeoutSeconds, ...definition } = loaded.definition;
    const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false } });
    found = {
      ...loaded,
      machine,
      ...(typeof TimeoutSeconds === 'number' ? { timeoutSeconds: TimeoutSeconds } : {}),
    };
    machines.set(file, found);
  }
  return found;
}

/** Raised when an execution runs past its definition's TimeoutSeconds; AWS names it States.Timeout. */
class ExecutionTimedOut extends Error {
  constructor(seconds: number) {
    super(`the execution ran longer than its TimeoutSeconds (${seconds} s)`);
    this.name = 'States.Timeout';
  }
}

/**
 * Runs the real ASL with aws-local-stepfunctions, every Task bound to its handler in this process,
 * and returns the outcome with one record per Task run (name, status, milliseconds, reason).
 */
export async function runStateMachine(
  file: string,
  input: unknown,
  settings: RunSettings,
): Promise<Execution> {
  const { tasks, waits, machine, timeoutSeconds } = compiled(file);
  const executionArn =
    settings.executionArn ?? `arn:aws:states:us-east-1:000000000000:execution:cordon-local:${randomUUID()}`;
  const steps: StepRecord[] = [];
  let stopped = false;
  const local: Record<string, (input: unknown) => Promise<unknown>> = {};
  for (const [stateName, fn] of tasks) {
    const handler = settings.handlers[fn];
    if (!handler) throw new Error(`No local handler for function ${fn} (state ${stateName})`);
    local[stateName] = async (taskInput) => {
      const started = performance.now();
      try {
        const output = await taskScope.run({ stateName, executionArn, fn }, () => handler(taskInput));
        const step = { name: stateName, ...stepStatus(output), ms: Math.round(performance.now() - started) };
        steps.push(step);
        settings.onStep?.(step);
        if (settings.stopAfter?.(step)) {
          stopped = true;
          run.abort();
          return output;
        }
        await settings.afterTask?.(stateName, output, taskInput);
        return output;
      } catch (error) {
        const e = error as Error;
        const step: StepRecord = {
          name: stateName,
          status: 'failed',
          ms: Math.round(performance.now() - started),
          reason: `${e.name}: ${e.message}`,
        };
        steps.push(step);
        settings.onStep?.(step);
        throw error;
      }
    };
  }
  const waitMs = settings.waitMs ?? 0;
  // biome-ignore lint/style/useConst: the Task handlers above refer to the run they belong to.
  let run = machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers: local as never,
      waitTimeOverrides: Object.fromEntries(waits.map((w) => [w, waitMs])),
      ...(settings.realRetryIntervals
        ? {}
        : { retryIntervalOverrides: Object.fromEntries([...tasks.keys()].map((t) => [t, waitMs])) }),
    },
    context: {
      Execution: {
        Id: executionArn,
        Name: executionArn.split(':').pop(),
        StartTime: new Date().toISOString(),
      },
    } as never,
  });
  let transitions = 0;
  let lastEntered: unknown;
  const counting = (async () => {
    for await (const event of run.eventLogs) {
      if (event.type !== 'StateEntered') continue;
      transitions += 1;
      lastEntered = event.state.input;
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const timeout =
    timeoutSeconds === undefined
      ? undefined
      : new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            run.abort();
            reject(new ExecutionTimedOut(timeoutSeconds));
          }, timeoutSeconds * 1000);
        });
  try {
    const output = await (timeout ? Promise.race([run.result, timeout]) : run.result);
    await counting;
    return { status: 'SUCCEEDED', output, steps, executionArn, transitions };
  } catch (error) {
    if (error instanceof ExecutionTimedOut) {
      return {
        status: 'FAILED',
        error: { name: error.name, message: error.message },
        steps,
        executionArn,
        transitions,
        ...(lastEntered === undefined ? {} : { failedState: lastEntered }),
      };
    }
    // The event log may stay open after a failed run: count what was seen, do not wait on it. Its
    // events are queued synchronously and read in microtasks, so one turn of the event loop reads them all.
    const drained = counting.catch(() => undefined);
    await Promise.race([drained, new Promise((resolve) => setImmediate(resolve))]);
    const e = error as Error & { cause?: unknown };
    if (stopped) return { status: 'ABORTED', steps, executionArn, transitions };
    // aws-local-stepfunctions wraps what failed the execution in its own ExecutionError: report the
    // error Step Functions reports (a Task's error name, or a Fail state's Error), as AWS would.
    const failure = e.cause instanceof Error ? e.cause : e;
    return {
      status: 'FAILED',
      error: { name: failure.name, message: failure.message },
      steps,
      executionArn,
      transitions,
      ...(lastEntered === undefined ? {} : { failedState: lastEntered }),
    };
  } finally {
    clearTimeout(timer);
  }
}

let settingsRead: { text: string; handlers: Record<string, string> } | undefined;

/**
 * Each function's `handler` setting in serverless.yml: `functions/<workflow>/<step>/<file>.handler`.
 * The file is parsed again only when it changed: a run binds every function of every case through here.
 */
export function handlerSettings(): Record<string, string> {
  const text = readFileSync(resolve(repoRoot, 'serverless.yml'), 'utf8');
  if (settingsRead?.text !== text) {
    const doc = parse(text, { logLevel: 'error' }) as { functions: Record<string, { handler: string }> };
    settingsRead = {
      text,
      handlers: Object.fromEntries(Object.entries(doc.functions).map(([fn, f]) => [fn, f.handler])),
    };
  }
  return { ...settingsRead.handlers };
}

type LambdaHandler = (event: unknown, context: unknown) => Promise<unknown>;

/** A function's handler from its TypeScript source, found through its serverless.yml `handler`. */
export async function sourceHandler(fn: string): Promise<LambdaHandler> {
  const setting = handlerSettings()[fn];
  const [, workflow, step, file, exported] =
    /^functions\/([\w-]+)\/([\w-]+)\/([\w-]+)\.(\w+)$/.exec(setting ?? '') ?? [];
  if (!workflow || !step || !file || !exported) {
    throw new Error(
      `serverless.yml gives ${fn} no handler of the form functions/<workflow>/<step>/<file>.<export>`,
    );
  }
  // One variable per path segment: the form bundlers (and vitest) can resolve.
  const mod = (await import(`../../functions/${workflow}/${step}/${file}.ts`)) as Record<string, unknown>;
  const handler = mod[exported];
  if (typeof handler !== 'function') throw new Error(`${setting} exports no function ${exported}`);
  return handler as LambdaHandler;
}

/** The deployed functions, each as Lambda would call it: `handler(event, context)`. */
export const functionKeys = [
  'intake-finding',
  'hold-trigger',
  'triage-instance',
  'protect-instance',
  'isolate-instance',
  'revoke-credentials',
  'snapshot-volumes',
  'check-snapshots',
  'capture-memory',
  'check-memory',
  'verify-memory',
  'archive-evidence',
  'notify-outcome',
  'release-instance',
] as const;

export function lambdaContext(fn: string) {
  const deadline = Date.now() + 300_000;
  return {
    functionName: `cordon-local-${fn}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:cordon-local-${fn}`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/cordon-local-${fn}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/**
 * Binds every function the forensic and release workflows call for the runner: the TypeScript
 * sources by default, or, given the folder `osls package` wrote, each function's packaged bundle
 * (loaded afresh, as a new Lambda environment would). Call after the environment is configured.
 */
export async function realHandlers(bundles?: string): Promise<Record<string, TaskHandler>> {
  if (bundles) {
    const { loadBundle } = await import('./bundles.js');
    return Object.fromEntries(
      functionKeys.map((fn) => {
        const handler = loadBundle(bundles, fn);
        return [fn, (input: unknown) => handler(input, lambdaContext(fn))] as const;
      }),
    );
  }
  const entries = await Promise.all(
    functionKeys.map(async (fn) => {
      const handler = await sourceHandler(fn);
      return [fn, (input: unknown) => handler(input, lambdaContext(fn))] as const;
    }),
  );
  return Object.fromEntries(entries);
}
