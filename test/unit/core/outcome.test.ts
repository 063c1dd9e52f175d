import { describe, expect, it } from 'vitest';
import { type OutcomeState, summarise } from '../../../functions/core/outcome.js';

/** A branch of a Parallel state as the ASL leaves it: `{status, result}`, or `{status, error}`. */
const succeeded = { status: 'succeeded', result: {} };
const failedWith = (name: string, cause: string) => ({
  status: 'failed',
  error: { Error: name, Cause: cause },
});

/** Everything done: contained, triaged, out of the load balancers, snapshots and memory kept. */
const complete: OutcomeState = {
  triage: { plan: { memory: 'capture', reason: 'SSM manages the instance' } },
  containment: { protect: succeeded, isolate: succeeded, revoke: succeeded },
  response: { loadBalancers: succeeded, disk: succeeded },
  memory: { status: 'verified' },
};

describe('summarise', () => {
  it('calls a case completed when every containment step, triage, the load balancers, snapshots and memory succeeded', () => {
    const { outcome, steps } = summarise(complete);

    expect(outcome).toBe('completed');
    expect(steps).toEqual([
      { name: 'protect', status: 'succeeded' },
      { name: 'isolate', status: 'succeeded' },
      { name: 'revoke', status: 'succeeded' },
      { name: 'triage', status: 'succeeded' },
      { name: 'load balancers', status: 'succeeded' },
      { name: 'snapshots', status: 'succeeded' },
      { name: 'memory', status: 'succeeded' },
    ]);
  });

  it('calls a contained case partial when memory was skipped, and says why', () => {
    const { outcome, steps } = summarise({
      ...complete,
      memory: { status: 'skipped', reason: 'the instance is not managed by SSM' },
    });

    expect(outcome).toBe('partial');
    expect(steps).toContainEqual({
      name: 'memory',
      status: 'skipped',
      reason: 'the instance is not managed by SSM',
    });
  });

  it("gives the plan's reason for a memory skip that gives none of its own", () => {
    const { steps } = summarise({ ...complete, memory: { status: 'skipped' } });

    expect(steps.at(-1)).toEqual({ name: 'memory', status: 'skipped', reason: 'SSM manages the instance' });
  });

  it('calls a contained case partial when memory capture failed, and says why', () => {
    const { outcome, steps } = summarise({
      ...complete,
      memory: { status: 'failed', error: { Error: 'SsmUnavailableError', Cause: 'agent offline' } },
    });

    expect(outcome).toBe('partial');
    expect(steps.at(-1)).toEqual({
      name: 'memory',
      status: 'failed',
      reason: 'SsmUnavailableError: agent offline',
    });
  });

  it('calls a contained case partial when memory capture never ran', () => {
    const { memory: _, ...withoutMemory } = complete;

    const { outcome, steps } = summarise(withoutMemory);

    expect(outcome).toBe('partial');
    expect(steps.map((s) => s.name)).not.toContain('memory');
  });

  it('calls a contained case partial when the snapshots failed, and says why', () => {
    const { outcome, steps } = summarise({
      ...complete,
      response: {
        loadBalancers: succeeded,
        disk: failedWith('SnapshotTimeoutError', 'snap-1 still pending'),
      },
    });

    expect(outcome).toBe('partial');
    expect(steps).toContainEqual({
      name: 'snapshots',
      status: 'failed',
      reason: 'SnapshotTimeoutError: snap-1 still pending',
    });
  });

  it('calls a contained case partial when the instance could not be taken out of its load balancers', () => {
    const { outcome, steps } = summarise({
      ...complete,
      response: {
        loadBalancers: failedWith('AwsAccessDeniedError', 'DeregisterTargets denied'),
        disk: succeeded,
      },
    });

    expect(outcome).toBe('partial');
    expect(steps).toContainEqual({
      name: 'load balancers',
      status: 'failed',
      reason: 'AwsAccessDeniedError: DeregisterTargets denied',
    });
  });

  it('calls a contained case partial when nothing ran after containment (no snapshots, no memory)', () => {
    const { outcome, steps } = summarise({
      triage: {},
      containment: { protect: succeeded, isolate: succeeded, revoke: succeeded },
    });

    expect(outcome).toBe('partial');
    expect(steps.every((s) => s.status === 'succeeded')).toBe(true);
  });

  it('calls a case partial when Protect failed but isolation and revocation held', () => {
    const { outcome, steps } = summarise({
      ...complete,
      containment: {
        protect: failedWith('ContainmentError', 'termination protection not set'),
        isolate: succeeded,
        revoke: succeeded,
      },
    });

    expect(outcome).toBe('partial');
    expect(steps[0]).toEqual({
      name: 'protect',
      status: 'failed',
      reason: 'ContainmentError: termination protection not set',
    });
  });

  it.each([
    ['isolate', 'revoke'],
    ['revoke', 'isolate'],
  ] as const)(
    'calls a case failed when %s failed, whatever else succeeded, and says why',
    (failing, held) => {
      const { outcome, steps } = summarise({
        ...complete,
        containment: {
          protect: succeeded,
          [held]: succeeded,
          [failing]: failedWith('ContainmentError', 'ENI eni-1 still holds sg-1'),
        },
      });

      expect(outcome).toBe('failed');
      expect(steps).toContainEqual({
        name: failing,
        status: 'failed',
        reason: 'ContainmentError: ENI eni-1 still holds sg-1',
      });
      expect(steps.find((s) => s.name === held)).toEqual({ name: held, status: 'succeeded' });
    },
  );

  it('calls a case failed when containment ran without an isolation or a revocation to show for it', () => {
    expect(summarise({ ...complete, containment: { protect: succeeded, isolate: succeeded } }).outcome).toBe(
      'failed',
    );
    expect(summarise({ ...complete, containment: { protect: succeeded, revoke: succeeded } }).outcome).toBe(
      'failed',
    );
  });

  it('calls a contained case partial when triage failed after containment, with the error as the reason', () => {
    const { outcome, steps } = summarise({
      containment: { protect: succeeded, isolate: succeeded, revoke: succeeded },
      error: { Error: 'InstanceNotFoundError', Cause: 'i-1 does not exist' },
    });

    expect(outcome).toBe('partial');
    expect(steps).toEqual([
      { name: 'protect', status: 'succeeded' },
      { name: 'isolate', status: 'succeeded' },
      { name: 'revoke', status: 'succeeded' },
      { name: 'triage', status: 'failed', reason: 'InstanceNotFoundError: i-1 does not exist' },
    ]);
  });

  it('calls a case failed when triage failed before containment, which then never ran', () => {
    const { outcome, steps } = summarise({
      error: { Error: 'InstanceNotFoundError', Cause: 'i-1 does not exist' },
    });

    expect(outcome).toBe('failed');
    expect(steps).toEqual([
      { name: 'triage', status: 'failed', reason: 'InstanceNotFoundError: i-1 does not exist' },
      { name: 'contain', status: 'failed', reason: 'containment did not run' },
    ]);
  });

  it('names the error that stopped a triaged case before containment', () => {
    const { outcome, steps } = summarise({ triage: {}, error: { Error: 'AwsServiceError', Cause: 'boom' } });

    expect(outcome).toBe('failed');
    expect(steps).toEqual([
      { name: 'triage', status: 'succeeded' },
      { name: 'contain', status: 'failed', reason: 'AwsServiceError: boom' },
    ]);
  });

  it('says no reason was recorded for a branch that failed without an error', () => {
    const { outcome, steps } = summarise({
      ...complete,
      containment: { protect: succeeded, isolate: { status: 'failed' }, revoke: succeeded },
    });

    expect(outcome).toBe('failed');
    expect(steps[1]).toEqual({ name: 'isolate', status: 'failed', reason: 'no reason recorded' });
  });

  it('reads the reason out of the JSON cause Step Functions records for a Lambda error', () => {
    const cause = JSON.stringify({
      errorType: 'ContainmentError',
      errorMessage: 'Isolation stopped at "isolation group applied". Applied: a. Not applied: b.',
      trace: ['ContainmentError: Isolation stopped', '    at isolateInstance (/var/task/index.js:1:1)'],
    });

    const { steps } = summarise({
      ...complete,
      containment: { protect: succeeded, isolate: failedWith('ContainmentError', cause), revoke: succeeded },
    });

    expect(steps).toContainEqual({
      name: 'isolate',
      status: 'failed',
      reason: 'ContainmentError: Isolation stopped at "isolation group applied". Applied: a. Not applied: b.',
    });
  });

  it('keeps a long reason whole enough to say what was and was not applied', () => {
    const cause = `${'x'.repeat(700)} Applied: protect. Not applied: isolation group applied.`;

    const { steps } = summarise({
      ...complete,
      containment: { protect: succeeded, isolate: failedWith('ContainmentError', cause), revoke: succeeded },
    });

    expect(steps.find((s) => s.name === 'isolate')?.reason).toContain(
      'Not applied: isolation group applied.',
    );
  });

  it('says what isolation left in place when it succeeded with warnings', () => {
    const { outcome, steps } = summarise({
      ...complete,
      containment: {
        protect: succeeded,
        isolate: {
          status: 'succeeded',
          result: { warnings: ['203.0.113.9 stays associated with eni-1: AwsAccessDeniedError: denied'] },
        },
        revoke: succeeded,
      },
    });

    expect(outcome).toBe('completed');
    expect(steps).toContainEqual({
      name: 'isolate',
      status: 'succeeded',
      reason: 'with warnings: 203.0.113.9 stays associated with eni-1: AwsAccessDeniedError: denied',
    });
  });
});
