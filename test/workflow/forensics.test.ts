import { describe, expect, it } from 'vitest';
import type { StepSummary } from '../../functions/core/outcome.js';
import type { ContainOrder } from '../../functions/core/state.js';
import { type Execution, runStateMachine, type TaskHandler, taskScope } from '../../scripts/local/runner.js';
import { sampleCase } from '../support/core-fakes.js';
import {
  accepted,
  type Doubles,
  disk,
  forensicDoubles,
  handlersOf,
  isolated,
  looked,
  memoryVerified,
  notified,
  protectedInstance,
  revoked,
  triaged,
} from './doubles.js';

/**
 * The real statemachines/forensics.asl.yml, executed locally with each Task bound to a small double:
 * these tests are about the workflow's routing, retries and catches, not about the steps' logic.
 * Archive and Notify decide the outcome from the state as the real steps do, so each route ends as a
 * real case would.
 */
const asl = 'statemachines/forensics.asl.yml';
const executionArn = 'arn:aws:states:us-east-1:123456789012:execution:cordon-forensics-dev:finding-1';

function named(name: string, message = name): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

interface Plan {
  /** What Intake's first look chose; none when undefined. */
  look?: ContainOrder;
  /** What Triage chose. */
  order?: ContainOrder;
}

function doubles(overrides: Doubles = {}, plan: Plan = {}) {
  const { look, order = 'contain-first' } = plan;
  return handlersOf(
    forensicDoubles({ ...(look ? { look } : {}), order, snapshotChecks: 3, memoryChecks: 2 }),
    overrides,
  );
}

/** Whose input each Task state received, in the order the states ran. */
function recording(handlers: Record<string, TaskHandler>) {
  const inputs: { state: string; input: unknown }[] = [];
  const recorded = Object.fromEntries(
    Object.entries(handlers).map(([fn, handler]) => [
      fn,
      async (input: unknown) => {
        inputs.push({ state: taskScope.getStore()?.stateName ?? fn, input });
        return handler(input);
      },
    ]),
  );
  const inputOf = (state: string) => inputs.filter((i) => i.state === state).map((i) => i.input);
  return { handlers: recorded, inputOf };
}

/** A double that fails with `error` in the Task state `state` only, and answers as `then` elsewhere. */
function failingIn(state: string, error: Error, then: TaskHandler): TaskHandler {
  return async (input) => {
    if (taskScope.getStore()?.stateName === state) throw error;
    return then(input);
  };
}

/** The state the execution ended with: its output, or for a Fail state the state it failed with. */
interface Final {
  assessment?: unknown;
  triage?: unknown;
  containment?: Record<
    'protect' | 'isolate' | 'revoke',
    { status: string; error?: unknown; result?: unknown }
  >;
  response?: Record<'loadBalancers' | 'disk', { status: string; error?: unknown }>;
  memory?: { status: string; error?: unknown };
  archive?: { outcome: string };
  notify: { outcome: string; steps: StepSummary[] };
}
const finalState = (run: Execution) => (run.output ?? run.failedState) as Final;

const names = (steps: { name: string }[]) => steps.map((s) => s.name);
const times = (run: Execution, state: string) => run.steps.filter((s) => s.name === state).length;
const containmentSteps = ['Isolate Instance', 'Protect Instance', 'Revoke Credentials'];
const afterContainment = [
  'Check Snapshots',
  'Check Snapshots',
  'Check Snapshots',
  'Leave Load Balancers',
  'Snapshot Volumes',
];
const memorySteps = ['Capture Memory', 'Check Memory', 'Check Memory', 'Verify Memory'];
const sorted = (list: string[]) => [...list].sort();
const allSucceeded: StepSummary[] = [
  'protect',
  'isolate',
  'revoke',
  'triage',
  'load balancers',
  'snapshots',
  'memory',
  'archive',
].map((name) => ({ name, status: 'succeeded' }));

describe('forensic workflow', () => {
  it('ends without touching anything when Intake rejects the trigger', async () => {
    const handlers = doubles({
      'intake-finding': async () => ({
        intake: { decision: 'rejected', reason: 'RESOURCE_NOT_INSTANCE: AccessKey' },
      }),
    });
    const run = await runStateMachine(asl, { any: 'event' }, { handlers });
    expect(run.status).toBe('SUCCEEDED');
    expect(names(run.steps)).toEqual(['Intake Finding']);
  });

  it('notifies, and touches nothing, when the response policy exempts the instance', async () => {
    let notified: unknown;
    const handlers = doubles({
      'intake-finding': async () => ({
        intake: {
          decision: 'rejected',
          reason:
            'EXEMPT: i-0123456789abcdef0 in 123456789012 us-east-1 is exempt by response policy rule "payments"',
        },
      }),
      'notify-outcome': async (input) => {
        notified = input;
        return { outcome: 'rejected', steps: [] };
      },
    });
    const run = await runStateMachine(asl, { any: 'event' }, { handlers });
    expect(run.status, JSON.stringify(run.error)).toBe('SUCCEEDED');
    expect(names(run.steps)).toEqual(['Intake Finding', 'Notify Outcome']);
    expect(notified).toMatchObject({
      intake: { decision: 'rejected', reason: expect.stringMatching(/^EXEMPT: /) },
    });
  });

  it('ends without a second response when the finding joins an open case', async () => {
    const handlers = doubles({
      'intake-finding': async () => ({
        intake: { decision: 'duplicate', reason: 'joined', caseId: 'case-0' },
      }),
    });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(run.status).toBe('SUCCEEDED');
    expect(names(run.steps)).toEqual(['Intake Finding']);
  });

  it('hands Intake the execution ARN along with the event', async () => {
    let seen: unknown;
    const handlers = doubles({
      'intake-finding': async (input) => {
        seen = input;
        return { intake: { decision: 'rejected', reason: 'X: y' } };
      },
    });
    await runStateMachine(
      asl,
      { detail: { id: 'f' } },
      { handlers, executionArn: 'arn:aws:states:us-east-1:1:execution:m:e' },
    );
    expect(seen).toEqual({
      event: { detail: { id: 'f' } },
      executionArn: 'arn:aws:states:us-east-1:1:execution:m:e',
    });
  });

  it.each([[null], [0], [false], [''], [[1, 2]]])(
    'hands Intake a trigger that is not a JSON object (%j) so that it can refuse it by name',
    async (trigger) => {
      let seen: unknown;
      const handlers = doubles({
        'intake-finding': async (input) => {
          seen = input;
          return { intake: { decision: 'rejected', reason: 'MALFORMED: the trigger is not a JSON object' } };
        },
      });
      const run = await runStateMachine(asl, trigger, { handlers });
      expect(run.status, JSON.stringify(run.error)).toBe('SUCCEEDED');
      expect((seen as { event: unknown }).event).toEqual(trigger);
    },
  );
});

describe('a case whose first look at Intake chose containment first', () => {
  const plan = { look: 'contain-first' } as const;

  it('contains at once, the three steps side by side, then triages, then leaves the load balancers and snapshots, then captures memory', async () => {
    const run = await runStateMachine(asl, {}, { handlers: doubles({}, plan) });

    const steps = names(run.steps);
    expect(run.status, JSON.stringify(run.error)).toBe('SUCCEEDED');
    expect(steps[0]).toBe('Intake Finding');
    expect(sorted(steps.slice(1, 4))).toEqual(containmentSteps);
    expect(steps[4]).toBe('Triage Instance');
    expect(sorted(steps.slice(5, 10))).toEqual(afterContainment);
    expect(steps.slice(10)).toEqual([...memorySteps, 'Archive Evidence', 'Notify Outcome']);
    expect(finalState(run).notify).toEqual({ ...notified('completed'), steps: allSucceeded });
  });

  it('hands Isolate the first look, and Protect and Revoke the case alone', async () => {
    const { handlers, inputOf } = recording(doubles({}, plan));

    await runStateMachine(asl, {}, { handlers });

    expect(inputOf('Protect Instance')).toEqual([{ case: sampleCase }]);
    expect(inputOf('Isolate Instance')).toEqual([
      { case: sampleCase, triage: looked('contain-first').assessment },
    ]);
    expect(inputOf('Revoke Credentials')).toEqual([{ case: sampleCase }]);
    expect(inputOf('Triage Instance')).toEqual([{ case: sampleCase }]);
  });

  it("keeps each branch's result in its own slot, and After Containment's beside them", async () => {
    const run = await runStateMachine(asl, {}, { handlers: doubles({}, plan) });

    const state = finalState(run);
    expect(state.containment).toEqual({
      protect: { status: 'succeeded', result: protectedInstance },
      isolate: { status: 'succeeded', result: isolated },
      revoke: { status: 'succeeded', result: revoked },
    });
    expect(state.response).toEqual({
      loadBalancers: { status: 'succeeded', result: protectedInstance },
      disk: { status: 'succeeded', snapshots: disk(true, 30) },
    });
    expect(state.memory).toEqual(memoryVerified);
    expect(state.archive?.outcome).toBe('completed');
  });

  it('takes the instance out of the load balancers Triage found, and hands Snapshot Volumes the containment it announces', async () => {
    const { handlers, inputOf } = recording(doubles({}, plan));

    const run = await runStateMachine(asl, {}, { handlers });

    const triage = triaged('contain-first');
    expect(inputOf('Leave Load Balancers')).toEqual([{ case: sampleCase, triage }]);
    expect(inputOf('Snapshot Volumes')).toEqual([
      { case: sampleCase, triage, containment: finalState(run).containment },
    ]);
    expect(inputOf('Capture Memory')).toEqual([{ case: sampleCase, triage }]);
  });

  it('still captures memory, after containment, when Triage looking closer would have captured it first', async () => {
    const run = await runStateMachine(
      asl,
      {},
      { handlers: doubles({}, { ...plan, order: 'capture-first' }) },
    );

    const steps = names(run.steps);
    expect(run.status, JSON.stringify(run.error)).toBe('SUCCEEDED');
    expect(sorted(steps.slice(1, 4))).toEqual(containmentSteps);
    expect(steps[4]).toBe('Triage Instance');
    expect(steps.slice(10)).toEqual([...memorySteps, 'Archive Evidence', 'Notify Outcome']);
    expect(finalState(run).notify.outcome).toBe('completed');
  });
});

describe('a case whose plan Triage chooses, Intake having taken no look or found that memory comes first', () => {
  it.each([
    ['no first look', undefined],
    ['a capture-first look', 'capture-first'],
  ] as const)(
    'with %s, triages first, then contains with Triage picture, when SSM survives isolation',
    async (_, look) => {
      const { handlers, inputOf } = recording(
        doubles({}, { ...(look ? { look } : {}), order: 'contain-first' }),
      );

      const run = await runStateMachine(asl, {}, { handlers });

      const steps = names(run.steps);
      const triage = triaged('contain-first');
      expect(run.status, JSON.stringify(run.error)).toBe('SUCCEEDED');
      expect(steps.slice(0, 2)).toEqual(['Intake Finding', 'Triage Instance']);
      expect(sorted(steps.slice(2, 5))).toEqual(containmentSteps);
      expect(sorted(steps.slice(5, 10))).toEqual(afterContainment);
      expect(steps.slice(10)).toEqual([...memorySteps, 'Archive Evidence', 'Notify Outcome']);
      expect(inputOf('Isolate Instance')).toEqual([{ case: sampleCase, triage }]);
      expect(finalState(run).assessment).toEqual(triage);
      expect(finalState(run).notify).toEqual({ ...notified('completed'), steps: allSucceeded });
    },
  );

  it.each([
    ['no first look', undefined],
    ['a capture-first look', 'capture-first'],
  ] as const)(
    'with %s, captures memory first, then contains once, when isolation would cut SSM off',
    async (_, look) => {
      const { handlers, inputOf } = recording(
        doubles({}, { ...(look ? { look } : {}), order: 'capture-first' }),
      );

      const run = await runStateMachine(asl, {}, { handlers });

      const steps = names(run.steps);
      expect(run.status, JSON.stringify(run.error)).toBe('SUCCEEDED');
      // Protected (and tagged with the case) before the capture, then Protect again beside isolation.
      expect(steps.slice(0, 7)).toEqual([
        'Intake Finding',
        'Triage Instance',
        'Protect Before Capture',
        ...memorySteps,
      ]);
      expect(sorted(steps.slice(7, 10))).toEqual(containmentSteps);
      expect(sorted(steps.slice(10, 15))).toEqual(afterContainment);
      expect(steps.slice(15)).toEqual(['Archive Evidence', 'Notify Outcome']);
      expect(inputOf('Isolate Instance')).toEqual([{ case: sampleCase, triage: triaged('capture-first') }]);
      expect(finalState(run).notify).toEqual({ ...notified('completed'), steps: allSucceeded });
    },
  );

  const memoryEnds: [string, Doubles, unknown][] = [
    [
      'capture fails',
      { 'capture-memory': async () => Promise.reject(named('SsmUnavailableError')) },
      { status: 'failed', error: { Error: 'SsmUnavailableError', Cause: 'SsmUnavailableError' } },
    ],
    [
      'verification fails',
      { 'verify-memory': async () => Promise.reject(named('EvidenceIntegrityError', 'sizes differ')) },
      { status: 'failed', error: { Error: 'EvidenceIntegrityError', Cause: 'sizes differ' } },
    ],
    [
      'capture is skipped',
      { 'capture-memory': async () => ({ status: 'skipped', reason: 'not managed by SSM' }) },
      { status: 'skipped', reason: 'not managed by SSM' },
    ],
  ];

  it.each(memoryEnds)(
    'comes back from memory to containment once when %s, and calls the contained case partial',
    async (_, overrides, memory) => {
      const run = await runStateMachine(
        asl,
        {},
        { handlers: doubles(overrides, { order: 'capture-first' }) },
      );

      const steps = names(run.steps);
      expect(run.status, JSON.stringify(run.error)).toBe('SUCCEEDED');
      expect(steps.indexOf('Triage Instance')).toBe(1);
      for (const state of [...containmentSteps, 'Capture Memory', 'Leave Load Balancers', 'Snapshot Volumes'])
        expect(times(run, state), state).toBe(1);
      expect(steps.lastIndexOf('Capture Memory')).toBeLessThan(steps.indexOf('Isolate Instance'));
      expect(steps.slice(-2)).toEqual(['Archive Evidence', 'Notify Outcome']);
      const state = finalState(run);
      expect(state.memory).toEqual(memory);
      expect(state.containment?.isolate.status).toBe('succeeded');
      expect(state.notify.outcome).toBe('partial');
    },
  );

  it('goes on to seal a capture-first case whose containment then fails, without capturing memory again', async () => {
    const handlers = doubles(
      { 'revoke-credentials': async () => Promise.reject(named('RevocationError', 'PutRolePolicy denied')) },
      { order: 'capture-first' },
    );

    const run = await runStateMachine(asl, {}, { handlers });

    const state = finalState(run);
    expect(run).toMatchObject({ status: 'FAILED', error: { name: 'CaseFailed' } });
    expect(times(run, 'Capture Memory')).toBe(1);
    expect(times(run, 'Revoke Credentials')).toBe(1);
    expect(names(run.steps).slice(-2)).toEqual(['Archive Evidence', 'Notify Outcome']);
    expect(state.memory).toEqual(memoryVerified);
    expect(state.containment?.revoke).toEqual({
      status: 'failed',
      error: { Error: 'RevocationError', Cause: 'PutRolePolicy denied' },
    });
    expect(state.notify.outcome).toBe('failed');
  });

  it('goes on to seal a contain-first case whose memory capture fails, without containing again', async () => {
    const handlers = doubles({
      'check-memory': async () => Promise.reject(named('MemoryCaptureError', 'exit 1')),
    });

    const run = await runStateMachine(asl, {}, { handlers });

    const state = finalState(run);
    expect(run.status).toBe('SUCCEEDED');
    for (const step of containmentSteps) expect(times(run, step), step).toBe(1);
    expect(names(run.steps).slice(-4)).toEqual([
      'Capture Memory',
      'Check Memory',
      'Archive Evidence',
      'Notify Outcome',
    ]);
    expect(state.memory).toEqual({
      status: 'failed',
      error: { Error: 'MemoryCaptureError', Cause: 'exit 1' },
    });
    expect(state.notify.outcome).toBe('partial');
  });

  it('skips the memory loop when Capture Memory reports a skip', async () => {
    const handlers = doubles({
      'capture-memory': async () => ({ status: 'skipped', reason: 'not managed by SSM' }),
    });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(names(run.steps)).not.toContain('Check Memory');
    expect(run.steps.find((s) => s.name === 'Capture Memory')).toMatchObject({
      status: 'skipped',
      reason: 'not managed by SSM',
    });
    expect(finalState(run).notify.outcome).toBe('partial');
  });
});

describe('a containment step that fails', () => {
  it.each([
    ['Protect Instance', 'partial', 'protect-instance', 'protect', 'SUCCEEDED'],
    ['Isolate Instance', 'failed', 'isolate-instance', 'isolate', 'FAILED'],
    ['Revoke Credentials', 'failed', 'revoke-credentials', 'revoke', 'FAILED'],
  ] as const)(
    'leaves the other branches running when %s fails, and the case goes on to end %s',
    async (failing, outcome, fn, slot, status) => {
      const clean = doubles({}, { look: 'contain-first' });
      const error = named('ContainmentError', `${failing} stopped. Applied: a. Not applied: b.`);
      const handlers = { ...clean, [fn]: failingIn(failing, error, clean[fn] as TaskHandler) };

      const run = await runStateMachine(asl, {}, { handlers });

      const state = finalState(run);
      expect(run.status).toBe(status);
      expect(times(run, failing)).toBe(1);
      for (const other of containmentSteps.filter((s) => s !== failing)) {
        expect(run.steps.filter((s) => s.name === other).map((s) => s.status)).toEqual(['succeeded']);
      }
      expect(state.containment?.[slot]).toEqual({
        status: 'failed',
        error: { Error: 'ContainmentError', Cause: error.message },
      });
      for (const other of (['protect', 'isolate', 'revoke'] as const).filter((s) => s !== slot)) {
        expect(state.containment?.[other].status).toBe('succeeded');
      }
      // The case goes on: the evidence is taken and sealed, and the responders are told.
      expect(names(run.steps).slice(4, 5)).toEqual(['Triage Instance']);
      expect(names(run.steps).slice(-2)).toEqual(['Archive Evidence', 'Notify Outcome']);
      expect(state.response?.disk.status).toBe('succeeded');
      expect(state.archive?.outcome).toBe(outcome);
      expect(state.notify.outcome).toBe(outcome);
      expect(state.notify.steps).toContainEqual({
        name: slot,
        status: 'failed',
        reason: `ContainmentError: ${error.message}`,
      });
      if (status === 'FAILED') expect(run.error).toMatchObject({ name: 'CaseFailed' });
    },
  );

  it('fails the case, and still seals its evidence, when all three fail', async () => {
    const fail = async () => Promise.reject(named('AwsServiceError', 'EC2 down'));
    const handlers = doubles(
      { 'protect-instance': fail, 'isolate-instance': fail, 'revoke-credentials': fail },
      { look: 'contain-first' },
    );

    const run = await runStateMachine(asl, {}, { handlers });

    const state = finalState(run);
    expect(run).toMatchObject({ status: 'FAILED', error: { name: 'CaseFailed' } });
    for (const slot of ['protect', 'isolate', 'revoke'] as const) {
      expect(state.containment?.[slot]).toMatchObject({
        status: 'failed',
        error: { Error: 'AwsServiceError' },
      });
    }
    expect(state.notify.outcome).toBe('failed');
    expect(state.archive?.outcome).toBe('failed');
  });
});

describe('Triage failing', () => {
  it('after containment, seals the evidence and calls the contained case partial, saying why', async () => {
    const handlers = doubles(
      {
        'triage-instance': async () =>
          Promise.reject(named('InstanceNotFoundError', 'i-0123456789abcdef0 is gone')),
      },
      { look: 'contain-first' },
    );

    const run = await runStateMachine(asl, {}, { handlers });

    const steps = names(run.steps);
    const state = finalState(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(steps[0]).toBe('Intake Finding');
    expect(sorted(steps.slice(1, 4))).toEqual(containmentSteps);
    expect(steps.slice(4)).toEqual(['Triage Instance', 'Archive Evidence', 'Notify Outcome']);
    expect(state.archive?.outcome).toBe('partial');
    expect(state.notify).toEqual(
      notified('partial', [
        { name: 'protect', status: 'succeeded' },
        { name: 'isolate', status: 'succeeded' },
        { name: 'revoke', status: 'succeeded' },
        { name: 'triage', status: 'failed', reason: 'InstanceNotFoundError: i-0123456789abcdef0 is gone' },
        { name: 'archive', status: 'succeeded' },
      ]),
    );
  });

  it("after containment, keeps Triage's own reason when Archive then fails too", async () => {
    const handlers = doubles(
      {
        'triage-instance': async () =>
          Promise.reject(named('InstanceNotFoundError', 'i-0123456789abcdef0 is gone')),
        'archive-evidence': async () => Promise.reject(named('SigningError', 'key disabled')),
      },
      { look: 'contain-first' },
    );

    const run = await runStateMachine(asl, {}, { handlers });

    expect(run.status).toBe('SUCCEEDED');
    expect(finalState(run).notify).toEqual(
      notified('partial', [
        { name: 'protect', status: 'succeeded' },
        { name: 'isolate', status: 'succeeded' },
        { name: 'revoke', status: 'succeeded' },
        { name: 'triage', status: 'failed', reason: 'InstanceNotFoundError: i-0123456789abcdef0 is gone' },
        { name: 'archive', status: 'failed', reason: 'SigningError: key disabled' },
      ]),
    );
  });

  it.each([
    ['no first look', undefined],
    ['a capture-first look', 'capture-first'],
  ] as const)(
    'with %s, before containment, notifies with the error and fails the execution, nothing touched',
    async (_, look) => {
      let seen: unknown;
      const handlers = doubles(
        {
          'triage-instance': async () =>
            Promise.reject(named('InstanceNotFoundError', 'i-0123456789abcdef0 is gone')),
          'notify-outcome': async (state) => {
            seen = state;
            return notified('failed');
          },
        },
        look ? { look } : {},
      );

      const run = await runStateMachine(asl, {}, { handlers });

      expect(run).toMatchObject({ status: 'FAILED', error: { name: 'CaseFailed' } });
      expect(names(run.steps)).toEqual(['Intake Finding', 'Triage Instance', 'Notify Outcome']);
      expect(seen).toMatchObject({
        error: { Error: 'InstanceNotFoundError', Cause: 'i-0123456789abcdef0 is gone' },
      });
      expect(seen).not.toHaveProperty('containment');
    },
  );
});

describe('after containment', () => {
  it('calls the case partial when the instance cannot be taken out of its load balancers, the rest still done', async () => {
    const clean = doubles({}, { look: 'contain-first' });
    const error = named('AwsAccessDeniedError', 'elasticloadbalancing:DeregisterTargets denied');
    const handlers = {
      ...clean,
      'protect-instance': failingIn('Leave Load Balancers', error, clean['protect-instance'] as TaskHandler),
    };

    const run = await runStateMachine(asl, {}, { handlers });

    const state = finalState(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(times(run, 'Leave Load Balancers')).toBe(1);
    expect(state.containment?.protect.status).toBe('succeeded');
    expect(state.response).toEqual({
      loadBalancers: { status: 'failed', error: { Error: error.name, Cause: error.message } },
      disk: { status: 'succeeded', snapshots: disk(true, 30) },
    });
    expect(state.memory).toEqual(memoryVerified);
    expect(state.notify.outcome).toBe('partial');
    expect(state.notify.steps).toContainEqual({
      name: 'load balancers',
      status: 'failed',
      reason: `${error.name}: ${error.message}`,
    });
  });

  it('keeps snapshot failures inside the disk branch so that the case goes on, partial', async () => {
    const handlers = doubles({
      'check-snapshots': async () => Promise.reject(named('SnapshotTimeoutError')),
    });

    const run = await runStateMachine(asl, {}, { handlers });

    const state = finalState(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(state.response).toEqual({
      loadBalancers: { status: 'succeeded', result: protectedInstance },
      disk: { status: 'failed', error: { Error: 'SnapshotTimeoutError', Cause: 'SnapshotTimeoutError' } },
    });
    expect(names(run.steps)).toContain('Verify Memory');
    expect(state.notify.outcome).toBe('partial');
  });

  it('tells the responders the evidence went unsealed when Archive fails, the contained case partial', async () => {
    const handlers = doubles({
      'archive-evidence': async () => Promise.reject(named('SigningError', 'key disabled')),
    });

    const run = await runStateMachine(asl, {}, { handlers });

    expect(run.status).toBe('SUCCEEDED');
    expect(names(run.steps).slice(-2)).toEqual(['Archive Evidence', 'Notify Outcome']);
    expect(finalState(run).notify).toEqual(
      notified('partial', [
        ...allSucceeded.slice(0, -1),
        { name: 'archive', status: 'failed', reason: 'SigningError: key disabled' },
      ]),
    );
  });
});

describe('retries and the trigger', () => {
  it('retries a throttled step and goes on when it succeeds', async () => {
    let calls = 0;
    const handlers = doubles({
      'isolate-instance': async () => {
        calls += 1;
        if (calls < 3) throw named('AwsThrottlingError');
        return isolated;
      },
    });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(run.status).toBe('SUCCEEDED');
    expect(calls).toBe(3);
    expect(finalState(run).containment?.isolate).toEqual({ status: 'succeeded', result: isolated });
  });

  it('holds the trigger for redrive, then notifies, when Intake cannot open a case', async () => {
    const trigger = { source: 'aws.guardduty', detail: { id: 'finding-1' } };
    let held: unknown;
    let notifiedWith: unknown;
    const handlers = doubles({
      'intake-finding': async () => Promise.reject(named('AwsServiceError', 'DynamoDB down')),
      'hold-trigger': async (input) => {
        held = input;
        return { held: true, messageId: 'message-7', redrive: 'cordon redrive' };
      },
      'notify-outcome': async (state) => {
        notifiedWith = state;
        return notified('failed');
      },
    });
    const run = await runStateMachine(asl, trigger, { handlers, executionArn });
    expect(names(run.steps).filter((n) => n !== 'Intake Finding')).toEqual([
      'Hold Trigger',
      'Notify Outcome',
    ]);
    // Intake outlasts minutes of server errors before giving up: 1 + 8 attempts.
    expect(names(run.steps).filter((n) => n === 'Intake Finding')).toHaveLength(9);
    // The trigger exactly as the execution received it, with who held it and why.
    expect(held).toEqual({
      trigger,
      executionArn,
      error: { Error: 'AwsServiceError', Cause: expect.stringContaining('DynamoDB down') },
    });
    expect(notifiedWith).toMatchObject({ held: { messageId: 'message-7' } });
    expect(run.status).toBe('FAILED');
  });

  it('outlasts ten throttled Intake attempts', async () => {
    let calls = 0;
    const handlers = doubles({
      'intake-finding': async () => {
        calls += 1;
        if (calls < 10) throw named('AwsThrottlingError', 'Rate exceeded');
        return accepted;
      },
    });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(calls).toBe(10);
    expect(names(run.steps)).not.toContain('Hold Trigger');
    expect(run.status).toBe('SUCCEEDED');
  });

  it('notifies, saying so, when the trigger cannot be held either', async () => {
    let notifiedWith: unknown;
    const handlers = doubles({
      'intake-finding': async () => Promise.reject(named('AwsAccessDeniedError', 'not allowed')),
      'hold-trigger': async () => Promise.reject(named('AwsAccessDeniedError', 'sqs:SendMessage denied')),
      'notify-outcome': async (state) => {
        notifiedWith = state;
        return notified('failed');
      },
    });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(names(run.steps).filter((n) => n !== 'Intake Finding' && n !== 'Hold Trigger')).toEqual([
      'Notify Outcome',
    ]);
    expect(notifiedWith).toMatchObject({ holdError: { Error: 'AwsAccessDeniedError' } });
    expect(run.status).toBe('FAILED');
  });

  it('fails the execution loudly when the notification itself cannot be sent', async () => {
    const handlers = doubles({ 'notify-outcome': async () => Promise.reject(named('NotificationError')) });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(run).toMatchObject({ status: 'FAILED', error: { name: 'NotificationError' } });
  });
});
