import { describe, expect, it } from 'vitest';
import { summarise } from '../../../functions/core/outcome.js';

const contained = { status: 'succeeded' };
const failed = {
  status: 'failed',
  error: { Error: 'ContainmentError', Cause: 'ENI eni-1 still holds sg-1' },
};

describe('summarise', () => {
  it('calls a case completed when containment, snapshots and memory all succeeded', () => {
    const { outcome, steps } = summarise({
      triage: {},
      protect: {},
      response: { contain: contained, disk: contained },
      memory: { status: 'verified' },
    });
    expect(outcome).toBe('completed');
    expect(steps.map((s) => s.status)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
  });

  it('calls a contained case partial when memory was skipped, and says why', () => {
    const { outcome, steps } = summarise({
      triage: {},
      protect: {},
      response: { contain: contained, disk: contained },
      memory: { status: 'skipped', reason: 'the instance is not managed by SSM' },
    });
    expect(outcome).toBe('partial');
    expect(steps).toContainEqual({
      name: 'memory',
      status: 'skipped',
      reason: 'the instance is not managed by SSM',
    });
  });

  it('calls a contained case partial when the snapshots failed', () => {
    const { outcome } = summarise({
      triage: {},
      protect: {},
      response: { contain: contained, disk: failed },
      memory: { status: 'verified' },
    });
    expect(outcome).toBe('partial');
  });

  it('calls a case failed when containment failed, whatever the evidence', () => {
    const { outcome, steps } = summarise({
      triage: {},
      protect: {},
      response: { contain: failed, disk: contained },
      memory: { status: 'verified' },
    });
    expect(outcome).toBe('failed');
    expect(steps).toContainEqual({
      name: 'contain',
      status: 'failed',
      reason: 'ContainmentError: ENI eni-1 still holds sg-1',
    });
  });

  it('calls a case failed when triage failed, with the error as the reason', () => {
    const { outcome, steps } = summarise({
      error: { Error: 'InstanceNotFoundError', Cause: 'i-1 does not exist' },
    });
    expect(outcome).toBe('failed');
    expect(steps).toEqual([
      { name: 'triage', status: 'failed', reason: 'InstanceNotFoundError: i-1 does not exist' },
    ]);
  });

  it('calls a case failed when protection failed and containment never ran', () => {
    const { outcome, steps } = summarise({ triage: {}, error: { Error: 'AwsServiceError', Cause: 'boom' } });
    expect(outcome).toBe('failed');
    expect(steps.at(-1)).toEqual({ name: 'protect', status: 'failed', reason: 'AwsServiceError: boom' });
  });

  it('reads the reason out of the JSON cause Step Functions records for a Lambda error', () => {
    const cause = JSON.stringify({
      errorType: 'ContainmentError',
      errorMessage: 'Isolation stopped at "isolation group applied". Applied: a. Not applied: b.',
      trace: ['ContainmentError: Isolation stopped', '    at isolateInstance (/var/task/index.js:1:1)'],
    });
    const { steps } = summarise({
      triage: {},
      protect: {},
      response: { contain: { status: 'failed', error: { Error: 'ContainmentError', Cause: cause } } },
    });
    expect(steps).toContainEqual({
      name: 'contain',
      status: 'failed',
      reason: 'ContainmentError: Isolation stopped at "isolation group applied". Applied: a. Not applied: b.',
    });
  });

  it('keeps a long reason whole enough to say what was and was not applied', () => {
    const cause = `${'x'.repeat(700)} Applied: protect. Not applied: isolation group applied.`;
    const { steps } = summarise({
      triage: {},
      protect: {},
      response: { contain: { status: 'failed', error: { Error: 'ContainmentError', Cause: cause } } },
    });
    expect(steps.find((s) => s.name === 'contain')?.reason).toContain(
      'Not applied: isolation group applied.',
    );
  });

  it('says what isolation left in place when it succeeded with warnings', () => {
    const { outcome, steps } = summarise({
      triage: {},
      protect: {},
      response: {
        contain: {
          status: 'succeeded',
          isolate: { warnings: ['203.0.113.9 stays associated with eni-1: AwsAccessDeniedError: denied'] },
        },
        disk: contained,
      },
      memory: { status: 'verified' },
    });
    expect(outcome).toBe('completed');
    expect(steps).toContainEqual({
      name: 'contain',
      status: 'succeeded',
      reason: 'with warnings: 203.0.113.9 stays associated with eni-1: AwsAccessDeniedError: denied',
    });
  });
});
