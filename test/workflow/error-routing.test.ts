import { describe, expect, it } from 'vitest';
import { type Execution, runStateMachine, type TaskHandler } from '../../scripts/local/runner.js';
import { exfiltrationCase } from '../support/playbooks-fixtures.js';
import { credentialDoubles, forensicDoubles, handlersOf, notified, released } from './doubles.js';

/**
 * How the real ASL routes each named error, state by state: what may pass on its own is retried, and
 * input a step cannot use, a bug, a missing setting or a denied call is not: the step runs once and
 * the error lands, by name, where the state's Catch puts it (or fails the execution, for the Notify
 * states, which have no Catch). Every Task is bound to a double that succeeds unless told otherwise.
 */
function named(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

/** A double that fails with `name` the first `times` calls, then answers as `then` does. */
function failing(name: string, then: TaskHandler, times = Number.POSITIVE_INFINITY) {
  const calls: unknown[] = [];
  const handler: TaskHandler = async (input) => {
    calls.push(input);
    if (calls.length <= times) throw named(name, `${name} (test)`);
    return then(input);
  };
  return { handler, calls };
}

interface Workflow {
  asl: string;
  /** Every function's double; the Notify double hands the state it received to `seen`. */
  doubles: (seen: (state: unknown) => void) => Record<string, TaskHandler>;
  notify: string;
}

/** A Notify double that hands the state it receives to `seen`, then answers as a clean run's does. */
const notifying = (seen: (state: unknown) => void) => async (state: unknown) => {
  seen(state);
  return notified('completed');
};

const forensics: Workflow = {
  asl: 'statemachines/forensics.asl.yml',
  notify: 'notify-outcome',
  doubles: (seen) => handlersOf(forensicDoubles(), { 'notify-outcome': notifying(seen) }),
};

const credentials: Workflow = {
  asl: 'statemachines/credentials.asl.yml',
  notify: 'credential-notify',
  // Exfiltrated instance credentials: the run goes through Start Instance Response too.
  doubles: (seen) =>
    handlersOf(credentialDoubles(exfiltrationCase), { 'credential-notify': notifying(seen) }),
};

const release: Workflow = {
  asl: 'statemachines/release.asl.yml',
  notify: 'release-instance',
  doubles: () => handlersOf({ 'release-instance': async () => released }),
};

/**
 * Each Task with a Catch: its function, and where its Catch leaves the error in the state the Notify
 * step receives (after the Parallel's and Memory Failed's own reshaping).
 */
const caught: [Workflow, string, string, string][] = [
  [forensics, 'Intake Finding', 'intake-finding', 'error'],
  [forensics, 'Triage Instance', 'triage-instance', 'error'],
  [forensics, 'Protect Instance', 'protect-instance', 'error'],
  [forensics, 'Isolate Instance', 'isolate-instance', 'response.contain.error'],
  [forensics, 'Revoke Credentials', 'revoke-credentials', 'response.contain.error'],
  [forensics, 'Snapshot Volumes', 'snapshot-volumes', 'response.disk.error'],
  [forensics, 'Check Snapshots', 'check-snapshots', 'response.disk.error'],
  [forensics, 'Capture Memory', 'capture-memory', 'memory.error'],
  [forensics, 'Check Memory', 'check-memory', 'memory.error'],
  [forensics, 'Verify Memory', 'verify-memory', 'memory.error'],
  [forensics, 'Archive Evidence', 'archive-evidence', 'error'],
  [credentials, 'Credential Intake', 'credential-intake', 'error'],
  [credentials, 'Deactivate Access Key', 'deactivate-access-key', 'deactivate'],
  [credentials, 'Quarantine Principal', 'quarantine-principal', 'quarantine'],
  [credentials, 'Revoke Sessions', 'revoke-sessions', 'revoke'],
  [credentials, 'Start Instance Response', 'start-instance-response', 'instance'],
  [credentials, 'Collect Activity', 'collect-activity', 'activity'],
  [credentials, 'Credential Archive', 'credential-archive', 'error'],
];
/** Tasks whose failure ends the execution with the error's own name. */
const ending: [Workflow, string, string][] = [
  [forensics, 'Notify Outcome', 'notify-outcome'],
  [credentials, 'Credential Notify', 'credential-notify'],
  [release, 'Release Instance', 'release-instance'],
];
const allTasks: [Workflow, string, string][] = [
  ...caught.map(([w, state, fn]) => [w, state, fn] as [Workflow, string, string]),
  ...ending,
];

const notRetried = ['InvalidStepInputError', 'InternalError', 'ConfigurationError', 'AwsAccessDeniedError'];
const retried = ['AwsThrottlingError', 'AwsServiceError'];

async function run(workflow: Workflow, fn: string, handler: TaskHandler) {
  let notified: unknown;
  const handlers = { ...workflow.doubles((state) => (notified = state)), [fn]: handler };
  const execution = await runStateMachine(workflow.asl, { caseId: 'case-3' }, { handlers });
  return { execution, notified };
}

const attempts = (execution: Execution, state: string) =>
  execution.steps.filter((s) => s.name === state).map((s) => s.status);

function at(value: unknown, path: string): unknown {
  return path.split('.').reduce((v, key) => (v as Record<string, unknown> | undefined)?.[key], value);
}

describe('a named error a step cannot get past by trying again', () => {
  describe.each(notRetried)('%s', (name) => {
    it.each(caught.map(([w, state, fn, path]) => [state, w, fn, path] as const))(
      'from %s is not retried and lands where the Catch puts it, by name',
      async (state, workflow, fn, path) => {
        // Prepare
        const step = failing(name, async () => ({}));

        // Act
        const { execution, notified } = await run(workflow, fn, step.handler);

        // Assess
        expect(step.calls).toHaveLength(1);
        expect(attempts(execution, state)).toEqual(['failed']);
        expect(execution.steps.at(-1)?.name).toBe(
          workflow === forensics ? 'Notify Outcome' : 'Credential Notify',
        );
        expect(at(notified, path)).toEqual({ Error: name, Cause: `${name} (test)` });
      },
    );

    it.each(ending.map(([w, state, fn]) => [state, w, fn] as const))(
      'from %s is not retried and fails the execution with its name',
      async (state, workflow, fn) => {
        const step = failing(name, async () => ({}));

        const { execution } = await run(workflow, fn, step.handler);

        expect(step.calls).toHaveLength(1);
        expect(attempts(execution, state)).toEqual(['failed']);
        expect(execution).toMatchObject({ status: 'FAILED', error: { name } });
      },
    );
  });
});

describe('a named error that may pass on its own', () => {
  describe.each(retried)('%s', (name) => {
    it.each(allTasks.map(([w, state, fn]) => [state, w, fn] as const))(
      'from %s once is retried, and the run goes on',
      async (state, workflow, fn) => {
        const handlers = workflow.doubles(() => undefined);
        const then = handlers[fn] as TaskHandler;
        const step = failing(name, then, 1);

        const { execution } = await run(workflow, fn, step.handler);

        expect(step.calls).toHaveLength(2);
        expect(attempts(execution, state)).toEqual(['failed', 'succeeded']);
        expect(execution.status).toBe('SUCCEEDED');
      },
    );
  });

  it('from a step throttled for good is retried six times, then lands where the Catch puts it', async () => {
    const step = failing('AwsThrottlingError', async () => ({}));

    const { execution, notified } = await run(forensics, 'triage-instance', step.handler);

    expect(step.calls).toHaveLength(7);
    expect(attempts(execution, 'Triage Instance')).toHaveLength(7);
    expect(notified).toMatchObject({ error: { Error: 'AwsThrottlingError' } });
  });

  it('from a step whose AWS service fails for good is retried twice, then lands where the Catch puts it', async () => {
    const step = failing('AwsServiceError', async () => ({}));

    const { execution, notified } = await run(forensics, 'isolate-instance', step.handler);

    expect(step.calls).toHaveLength(3);
    expect(attempts(execution, 'Isolate Instance')).toHaveLength(3);
    expect(notified).toMatchObject({
      response: { contain: { status: 'failed', error: { Error: 'AwsServiceError' } } },
    });
  });
});

describe('an error a step leaves to States.ALL', () => {
  it('is not retried and still lands where the Catch puts it, by name', async () => {
    const step = failing('ContainmentError', async () => ({}));

    const { notified } = await run(forensics, 'isolate-instance', step.handler);

    expect(step.calls).toHaveLength(1);
    expect(notified).toMatchObject({
      response: { contain: { status: 'failed', error: { Error: 'ContainmentError' } } },
    });
  });
});
