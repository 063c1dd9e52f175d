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
  /**
   * Where a `.waitForTaskToken` Task's answer comes from (the Step Functions service is not here to
   * receive SendTaskSuccess): by default a store in this process (`memoryTaskTokens`); the emulated
   * stack's is the Cases table (scripts/local/task-tokens.ts), which another process can answer.
   */
  taskTokens?: TaskTokens;
  /**
   * Milliseconds a `.waitForTaskToken` Task waits before it fails with States.Timeout, instead of its
   * TimeoutSeconds(Path): tests shorten the approval window as `waitMs` shortens Wait states.
   */
  taskTimeoutMs?: number;
  /** The stage parameters `${param:NAME}` in the ASL stand for (serverless.yml's defaults otherwise). */
  params?: Record<string, string>;
  /** Called as each state is entered, nested ones included, with the state's input. */
  onStateEntered?: (stateName: string, input: unknown) => void;
  /** Stops the execution when aborted, as StopExecution does (the result is ABORTED). */
  signal?: AbortSignal;
}

/**
 * The answer to a task token, as the local runner receives it: `answer` is what SendTaskSuccess
 * (output) or SendTaskFailure (error, cause) is on AWS; `wait` resolves with the output, or rejects with
 * the error named as given, once the token is answered.
 */
export interface TaskTokens {
  answer(token: string, result: TaskTokenResult): Promise<void>;
  wait(token: string, signal: AbortSignal): Promise<unknown>;
}
export type TaskTokenResult = { output: unknown } | { error: string; cause?: string };

/** Raises the error a SendTaskFailure named, as Step Functions reports it to the waiting Task. */
export function taskTokenOutcome(result: TaskTokenResult): unknown {
  if ('output' in result) return result.output;
  const e = new Error(result.cause ?? result.error);
  e.name = result.error;
  throw e;
}

/** Task tokens answered within this process: what workflow tests and a single-process demo need. */
export function memoryTaskTokens(): TaskTokens {
  const answers = new Map<string, TaskTokenResult>();
  const waiting = new Map<string, (result: TaskTokenResult) => void>();
  return {
    async answer(token, result) {
      const waiter = waiting.get(token);
      if (waiter) waiter(result);
      else answers.set(token, result);
    },
    wait(token, signal) {
      const ready = answers.get(token);
      if (ready) return Promise.resolve().then(() => taskTokenOutcome(ready));
      return new Promise((resolve, reject) => {
        const abort = () => {
          waiting.delete(token);
          reject(signal.reason);
        };
        signal.addEventListener('abort', abort, { once: true });
        waiting.set(token, (result) => {
          waiting.delete(token);
          signal.removeEventListener('abort', abort);
          try {
            resolve(taskTokenOutcome(result));
          } catch (error) {
            reject(error);
          }
        });
      });
    },
  };
}

/** A `.waitForTaskToken` Task that ran out of time: the name Step Functions gives it. */
class TaskTimedOut extends Error {
  constructor(ms: number) {
    super(`the task was not answered within ${ms} ms`);
    this.name = 'States.Timeout';
  }
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
export function loadDefinition(
  file: string,
  params: Record<string, string> = {},
): {
  definition: Json;
  tasks: Map<string, string>;
  /** The Tasks that wait for their task token to be answered (`.waitForTaskToken`). */
  tokenTasks: Set<string>;
  waits: string[];
} {
  const text = readFileSync(resolve(repoRoot, file), 'utf8').replace(
    /\$\{param:(\w+)\}/g,
    (_, name: string) => {
      const value = params[name] ?? stageParams()[name];
      if (value === undefined)
        throw new Error(`${file} names the stage parameter ${name}, which has no value`);
      return value;
    },
  );
  const definition = parse(text, { merge: true }) as Json;
  const tasks = new Map<string, string>();
  const tokenTasks = new Set<string>();
  const waits: string[] = [];
  const visit = (states: Record<string, Json>) => {
    for (const [name, state] of Object.entries(states)) {
      if (state.Type === 'Task' && state.Resource === waitForTaskToken) {
        // A Lambda invoked with a task token: the function is the Parameters' FunctionName.
        const parameters = state.Parameters as { FunctionName?: { 'Fn::GetAtt'?: [string, string] } };
        const getAtt = parameters?.FunctionName?.['Fn::GetAtt'];
        if (!getAtt) throw new Error(`Task ${name} does not invoke a Cordon function`);
        tasks.set(name, getAtt[0]);
        tokenTasks.add(name);
        (state.Parameters as Json).FunctionName = localArn(getAtt[0]);
      } else if (state.Type === 'Task') {
        const getAtt = (state.Resource as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt'];
        if (!getAtt) throw new Error(`Task ${name} does not call a Cordon function`);
        tasks.set(name, getAtt[0]);
        state.Resource = localArn(getAtt[0]);
      }
      if (state.Type === 'Wait') waits.push(name);
      for (const branch of (state.Branches as { States: Record<string, Json> }[] | undefined) ?? []) {
        visit(branch.States);
      }
    }
  };
  visit(definition.States as Record<string, Json>);
  return { definition, tasks, tokenTasks, waits };
}

const waitForTaskToken = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
const localArn = (fn: string) => `arn:aws:lambda:us-east-1:000000000000:function:cordon-local-${fn}`;

let paramsRead: { text: string; params: Record<string, string> } | undefined;
/** serverless.yml's default stage parameters, as text (what `${param:NAME}` resolves to when deployed). */
export function stageParams(): Record<string, string> {
  const text = readFileSync(resolve(repoRoot, 'serverless.yml'), 'utf8');
  if (paramsRead?.text !== text) {
    const doc = parse(text, { logLevel: 'error' }) as { params?: { default?: Record<string, unknown> } };
    paramsRead = {
      text,
      params: Object.fromEntries(Object.entries(doc.params?.default ?? {}).map(([k, v]) => [k, String(v)])),
    };
  }
  return paramsRead.params;
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
function compiled(file: string, params: Record<string, string> = {}) {
  const key = `${file}\n${JSON.stringify(params)}`;
  let found = machines.get(key);
  if (!found) {
    const loaded = loadDefinition(file, params);
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
    machines.set(key, found);
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
  const { tasks, tokenTasks, waits, machine, timeoutSeconds } = compiled(file, settings.params);
  const executionArn =
    settings.executionArn ?? `arn:aws:states:us-east-1:000000000000:execution:cordon-local:${randomUUID()}`;
  // One task token per execution ($$.Task.Token; Step Functions issues one per Task attempt), and every
  // wait for one ends with the run.
  const taskToken = `local-${randomUUID()}`;
  const tokens = settings.taskTokens ?? memoryTaskTokens();
  const ended = new AbortController();
  const steps: StepRecord[] = [];
  let stopped = false;
  const local: Record<string, (input: unknown) => Promise<unknown>> = {};
  for (const [stateName, fn] of tasks) {
    const handler = settings.handlers[fn];
    if (!handler) throw new Error(`No local handler for function ${fn} (state ${stateName})`);
    const invoke: TaskHandler = tokenTasks.has(stateName)
      ? async (taskInput) => {
          // lambda:invoke.waitForTaskToken: the function gets the Payload, and the Task's result is
          // the token's answer, not what the function returned.
          const payload = (taskInput as { Payload?: unknown }).Payload;
          await handler(payload);
          const token = (payload as { taskToken?: unknown } | undefined)?.taskToken;
          if (typeof token !== 'string')
            throw new Error(`Task ${stateName} passed its function no taskToken`);
          const waiting = new AbortController();
          const stop = () => waiting.abort(ended.signal.reason);
          ended.signal.addEventListener('abort', stop, { once: true });
          let timer: NodeJS.Timeout | undefined;
          try {
            const answered = tokens.wait(token, waiting.signal);
            if (settings.taskTimeoutMs === undefined) return await answered;
            const ms = settings.taskTimeoutMs;
            const timedOut = new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new TaskTimedOut(ms)), ms);
            });
            return await Promise.race([answered, timedOut]);
          } catch (error) {
            // The run ended (aborted, timed out, its Task's own timeout fired): nobody reads this Task.
            if (ended.signal.aborted) return undefined;
            throw error;
          } finally {
            clearTimeout(timer);
            waiting.abort(new Error('the wait ended'));
            ended.signal.removeEventListener('abort', stop);
          }
        }
      : handler;
    local[stateName] = async (taskInput) => {
      const started = performance.now();
      try {
        const output = await taskScope.run({ stateName, executionArn, fn }, () => invoke(taskInput));
        // The execution was stopped meanwhile (a wait for a token ends so): nothing ran to record.
        if (stopped) return output;
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
      Task: { Token: taskToken },
    } as never,
  });
  let transitions = 0;
  let lastEntered: unknown;
  const counting = (async () => {
    for await (const event of run.eventLogs) {
      if (event.type !== 'StateEntered') continue;
      transitions += 1;
      lastEntered = event.state.input;
      settings.onStateEntered?.(event.state.name, event.state.input);
    }
  })();
  const stop = () => {
    stopped = true;
    run.abort();
  };
  if (settings.signal?.aborted) stop();
  else settings.signal?.addEventListener('abort', stop, { once: true });
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
    settings.signal?.removeEventListener('abort', stop);
    ended.abort(new Error('the execution ended'));
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
  'request-approval',
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
