import { describe, expect, it } from 'vitest';
import { type Execution, runStateMachine, type TaskHandler, taskScope } from '../../scripts/local/runner.js';
import { exfiltrationCase } from '../support/playbooks-fixtures.js';
import { credentialDoubles, forensicDoubles, handlersOf, notified, released } from './doubles.js';

/**
 * How the real ASL routes each named error, state by state: what may pass on its own is retried, and
 * input a step cannot use, a bug, a missing setting or a denied call is not: the step runs once and
 * the error lands, by name, where the state's Catch puts it (or fails the execution, for the Notify
 * states, which have no Catch). Every Task is bound to a double that succeeds unless told otherwise;
 * the one under test fails in its own state only (Protect Instance and Leave Load Balancers are the
 * same function).
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
  /** How the test names say which run it is. */
  name: string;
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

/** Intake took no look: Triage runs first and chooses the plan, containment follows. */
const forensics: Workflow = {
  name: 'forensics',
  asl: 'statemachines/forensics.asl.yml',
  notify: 'notify-outcome',
  doubles: (seen) => handlersOf(forensicDoubles(), { 'notify-outcome': notifying(seen) }),
};

/** Intake's first look chose containment first: Triage runs after it. */
const forensicsLooked: Workflow = {
  name: 'forensics, contained first',
  asl: 'statemachines/forensics.asl.yml',
  notify: 'notify-outcome',
  doubles: (seen) =>
    handlersOf(forensicDoubles({ look: 'contain-first' }), { 'notify-outcome': notifying(seen) }),
};

const credentials: Workflow = {
  name: 'credentials',
  asl: 'statemachines/credentials.asl.yml',
  notify: 'credential-notify',
  // Exfiltrated instance credentials: the run goes through Start Instance Response too.
  doubles: (seen) =>
    handlersOf(credentialDoubles(exfiltrationCase), { 'credential-notify': notifying(seen) }),
};

const release: Workflow = {
  name: 'release',
  asl: 'statemachines/release.asl.yml',
  notify: 'release-instance',
  doubles: () => handlersOf({ 'release-instance': async () => released }),
};

/**
 * Each Task with a Catch: its function, and where its Catch leaves the error in the state the Notify
 * step receives (after the Parallel states' and Memory Failed's own reshaping).
 */
const caught: [Workflow, string, string, string][] = [
  [forensics, 'Intake Finding', 'intake-finding', 'error'],
  [forensics, 'Triage Instance', 'triage-instance', 'error'],
  [forensicsLooked, 'Triage Instance', 'triage-instance', 'error'],
  [forensics, 'Protect Instance', 'protect-instance', 'containment.protect.error'],
  [forensics, 'Isolate Instance', 'isolate-instance', 'containment.isolate.error'],
  [forensics, 'Revoke Credentials', 'revoke-credentials', 'containment.revoke.error'],
  [forensics, 'Leave Load Balancers', 'protect-instance', 'response.loadBalancers.error'],
  [forensics, 'Snapshot Volumes', 'snapshot-volumes', 'response.disk.error'],
  [forensics, 'Check Snapshots', 'check-snapshots', 'response.disk.error'],
  [forensics, 'Capture Memory', 'capture-memory', 'memory.error'],
  [forensics, 'Check Memory', 'check-memory', 'memory.error'],
  [forensics, 'Verify Memory', 'verify-memory', 'memory.error'],
  [forensics, 'Archive Evidence', 'archive-evidence', 'archiveError'],
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

const notRetried = [
  'InvalidStepInputError',
  'InternalError',
  'ConfigurationError',
  'AwsAccessDeniedError',
  'AssumeRoleError',
];
const retried = ['AwsThrottlingError', 'AwsServiceError'];

/** Runs `workflow` with `handler` in the Task state `state` (function `fn`); elsewhere `fn` is clean. */
async function run(workflow: Workflow, state: string, fn: string, handler: TaskHandler) {
  let notified: unknown;
  const handlers = workflow.doubles((s) => (notified = s));
  const clean = handlers[fn] as TaskHandler;
  handlers[fn] = async (input) => (taskScope.getStore()?.stateName === state ? handler(input) : clean(input));
  const execution = await runStateMachine(workflow.asl, { caseId: 'case-3' }, { handlers });
  return { execution, notified };
}

const attempts = (execution: Execution, state: string) =>
  execution.steps.filter((s) => s.name === state).map((s) => s.status);

function at(value: unknown, path: string): unknown {
  return path.split('.').reduce((v, key) => (v as Record<string, unknown> | undefined)?.[key], value);
}

/** The Notify state every caught error ends in: the workflow's last step. */
const notifyState = (workflow: Workflow) =>
  workflow.asl === forensics.asl ? 'Notify Outcome' : 'Credential Notify';

describe('a named error a step cannot get past by trying again', () => {
  describe.each(notRetried)('%s', (name) => {
    it.each(caught.map(([w, state, fn, path]) => [state, w.name, w, fn, path] as const))(
      'from %s (%s) is not retried and lands where the Catch puts it, by name',
      async (state, _, workflow, fn, path) => {
        // Prepare
        const step = failing(name, async () => ({}));

        // Act
        const { execution, notified } = await run(workflow, state, fn, step.handler);

        // Assess
        expect(step.calls).toHaveLength(1);
        expect(attempts(execution, state)).toEqual(['failed']);
        expect(execution.steps.at(-1)?.name).toBe(notifyState(workflow));
        expect(at(notified, path)).toEqual({ Error: name, Cause: `${name} (test)` });
      },
    );

    it.each(ending.map(([w, state, fn]) => [state, w.name, w, fn] as const))(
      'from %s (%s) is not retried and fails the execution with its name',
      async (state, _, workflow, fn) => {
        const step = failing(name, async () => ({}));

        const { execution } = await run(workflow, state, fn, step.handler);

        expect(step.calls).toHaveLength(1);
        expect(attempts(execution, state)).toEqual(['failed']);
        expect(execution).toMatchObject({ status: 'FAILED', error: { name } });
      },
    );
  });
});

describe('a named error that may pass on its own', () => {
  describe.each(retried)('%s', (name) => {
    it.each(allTasks.map(([w, state, fn]) => [state, w.name, w, fn] as const))(
      'from %s (%s) once is retried, and the run goes on',
      async (state, _, workflow, fn) => {
        const handlers = workflow.doubles(() => undefined);
        const then = handlers[fn] as TaskHandler;
        const step = failing(name, then, 1);

        const { execution } = await run(workflow, state, fn, step.handler);

        expect(step.calls).toHaveLength(2);
        expect(attempts(execution, state)).toEqual(['failed', 'succeeded']);
        expect(execution.status).toBe('SUCCEEDED');
      },
    );
  });

  it('from a step throttled for good is retried six times, then lands where the Catch puts it', async () => {
    const step = failing('AwsThrottlingError', async () => ({}));

    const { execution, notified } = await run(forensics, 'Triage Instance', 'triage-instance', step.handler);

    expect(step.calls).toHaveLength(7);
    expect(attempts(execution, 'Triage Instance')).toHaveLength(7);
    expect(notified).toMatchObject({ error: { Error: 'AwsThrottlingError' } });
  });

  it('from a step whose AWS service fails for good is retried twice, then lands where the Catch puts it', async () => {
    const step = failing('AwsServiceError', async () => ({}));

    const { execution, notified } = await run(
      forensics,
      'Isolate Instance',
      'isolate-instance',
      step.handler,
    );

    expect(step.calls).toHaveLength(3);
    expect(attempts(execution, 'Isolate Instance')).toHaveLength(3);
    expect(notified).toMatchObject({
      containment: { isolate: { status: 'failed', error: { Error: 'AwsServiceError' } } },
    });
  });
});

/**
 * A name of each step's own that its Catch leaves to States.ALL (test/template/workflow-contract.test.ts
 * says why for each), and where the error lands.
 */
const leftToStatesAll: [Workflow, string, string, string, string][] = [
  [forensics, 'Triage Instance', 'triage-instance', 'InstanceNotFoundError', 'error'],
  [forensicsLooked, 'Triage Instance', 'triage-instance', 'InstanceNotFoundError', 'error'],
  [forensics, 'Protect Instance', 'protect-instance', 'ContainmentError', 'containment.protect.error'],
  [forensics, 'Isolate Instance', 'isolate-instance', 'ContainmentError', 'containment.isolate.error'],
  [forensics, 'Revoke Credentials', 'revoke-credentials', 'RevocationError', 'containment.revoke.error'],
  [forensics, 'Leave Load Balancers', 'protect-instance', 'ContainmentError', 'response.loadBalancers.error'],
  [forensics, 'Snapshot Volumes', 'snapshot-volumes', 'SnapshotError', 'response.disk.error'],
  [forensics, 'Check Snapshots', 'check-snapshots', 'SnapshotTimeoutError', 'response.disk.error'],
  [forensics, 'Capture Memory', 'capture-memory', 'MemoryCaptureError', 'memory.error'],
  [forensics, 'Check Memory', 'check-memory', 'MemoryCaptureTimeoutError', 'memory.error'],
  [forensics, 'Verify Memory', 'verify-memory', 'EvidenceIntegrityError', 'memory.error'],
  [forensics, 'Archive Evidence', 'archive-evidence', 'SigningError', 'archiveError'],
];

describe('an error a step leaves to States.ALL', () => {
  it.each(leftToStatesAll.map(([w, state, fn, name, path]) => [name, state, w.name, w, fn, path] as const))(
    'such as %s from %s (%s) is not retried and still lands where the Catch puts it, by name',
    async (name, state, _, workflow, fn, path) => {
      const step = failing(name, async () => ({}));

      const { execution, notified } = await run(workflow, state, fn, step.handler);

      expect(step.calls).toHaveLength(1);
      expect(attempts(execution, state)).toEqual(['failed']);
      expect(execution.steps.at(-1)?.name).toBe('Notify Outcome');
      expect(at(notified, path)).toEqual({ Error: name, Cause: `${name} (test)` });
    },
  );
});
