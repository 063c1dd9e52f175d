import { describe, expect, it } from 'vitest';
import type { ContainOrder } from '../../functions/core/state.js';
import { runStateMachine } from '../../scripts/local/runner.js';
import { accepted, type Doubles, forensicDoubles, handlersOf, isolated, notified } from './doubles.js';

/**
 * The real statemachines/forensics.asl.yml, executed locally with each Task bound to a small double:
 * these tests are about the workflow's routing, retries and catches, not about the steps' logic.
 */
const asl = 'statemachines/forensics.asl.yml';
const executionArn = 'arn:aws:states:us-east-1:123456789012:execution:cordon-forensics-dev:finding-1';

function named(name: string, message = name): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

function doubles(overrides: Doubles = {}, order: ContainOrder = 'contain-first') {
  return handlersOf(forensicDoubles({ order, snapshotChecks: 3, memoryChecks: 2 }), overrides);
}

const names = (steps: { name: string }[]) => steps.map((s) => s.name);

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

  it('ends without a second response when the finding joins an open case', async () => {
    const handlers = doubles({
      'intake-finding': async () => ({
        intake: { decision: 'duplicate', reason: 'joined', caseId: 'case-0' },
      }),
    });
    const run = await runStateMachine(asl, {}, { handlers });
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

  it('contains before capturing memory when SSM survives isolation', async () => {
    const run = await runStateMachine(asl, {}, { handlers: doubles() });
    const steps = names(run.steps);
    expect(run.status).toBe('SUCCEEDED');
    expect(steps.indexOf('Revoke Credentials')).toBeLessThan(steps.indexOf('Capture Memory'));
    expect(steps.filter((s) => s === 'Check Snapshots')).toHaveLength(3);
    expect(steps.slice(-2)).toEqual(['Archive Evidence', 'Notify Outcome']);
  });

  it('captures memory before isolating when isolation would cut SSM off', async () => {
    const run = await runStateMachine(asl, {}, { handlers: doubles({}, 'capture-first') });
    const steps = names(run.steps);
    expect(run.status).toBe('SUCCEEDED');
    expect(steps.indexOf('Verify Memory')).toBeLessThan(steps.indexOf('Isolate Instance'));
    expect(steps.filter((s) => s === 'Capture Memory')).toHaveLength(1);
    expect(steps.slice(-2)).toEqual(['Archive Evidence', 'Notify Outcome']);
  });

  it('still contains the instance when memory capture fails first in the capture-first plan', async () => {
    const handlers = doubles(
      { 'capture-memory': async () => Promise.reject(named('SsmUnavailableError')) },
      'capture-first',
    );
    const run = await runStateMachine(asl, {}, { handlers });
    const output = run.output as { memory: unknown; response: { contain: { status: string } } };
    expect(names(run.steps)).toContain('Revoke Credentials');
    expect(output.memory).toEqual({
      status: 'failed',
      error: { Error: 'SsmUnavailableError', Cause: 'SsmUnavailableError' },
    });
    expect(output.response.contain.status).toBe('succeeded');
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
  });

  it('archives and notifies, then fails the execution, when containment fails', async () => {
    const handlers = doubles({
      'revoke-credentials': async () => Promise.reject(named('RevocationError', 'PutRolePolicy denied')),
    });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(run.status).toBe('FAILED');
    expect(names(run.steps).slice(-2)).toEqual(['Archive Evidence', 'Notify Outcome']);
    expect(run.steps.filter((s) => s.name === 'Revoke Credentials')).toHaveLength(1);
  });

  it('keeps snapshot failures inside the disk branch so containment still completes', async () => {
    const handlers = doubles({
      'check-snapshots': async () => Promise.reject(named('SnapshotTimeoutError')),
    });
    const run = await runStateMachine(asl, {}, { handlers });
    const output = run.output as { response: { contain: { status: string }; disk: { status: string } } };
    expect(output.response).toMatchObject({ contain: { status: 'succeeded' }, disk: { status: 'failed' } });
  });

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
  });

  it('notifies with the error and fails the execution when triage fails', async () => {
    let seen: unknown;
    const handlers = doubles({
      'triage-instance': async () =>
        Promise.reject(named('InstanceNotFoundError', 'i-0123456789abcdef0 is gone')),
      'notify-outcome': async (state) => {
        seen = state;
        return notified('failed');
      },
    });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(run.status).toBe('FAILED');
    expect(names(run.steps)).toEqual(['Intake Finding', 'Triage Instance', 'Notify Outcome']);
    expect(seen).toMatchObject({
      error: { Error: 'InstanceNotFoundError', Cause: 'i-0123456789abcdef0 is gone' },
    });
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
    expect(run.status).toBe('FAILED');
  });
});
