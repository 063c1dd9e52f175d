import { describe, expect, it } from 'vitest';
import type { CredentialCase } from '../../functions/core/credentials.js';
import { type Execution, runStateMachine } from '../../scripts/local/runner.js';
import { exfiltrationCase, userCredentialCase } from '../support/playbooks-fixtures.js';
import { credentialDoubles, type Doubles, handlersOf, notified, succeeded } from './doubles.js';

/**
 * The real statemachines/credentials.asl.yml, executed locally with each Task bound to a small double:
 * these tests are about the playbook's routing, retries and catches, not about the steps' logic.
 */
const asl = 'statemachines/credentials.asl.yml';

function named(name: string, message = name): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

function doubles(overrides: Doubles = {}, theCase: CredentialCase = userCredentialCase) {
  return handlersOf(credentialDoubles(theCase), overrides);
}

const names = (run: Execution) => run.steps.map((s) => s.name);
const output = (run: Execution) => run.output as Record<string, unknown>;

describe('credential workflow', () => {
  it('ends without touching anything when intake rejects the trigger', async () => {
    const handlers = doubles({
      'credential-intake': async () => ({
        intake: { decision: 'rejected', reason: 'RESOURCE_NOT_ACCESS_KEY: x' },
      }),
    });
    const run = await runStateMachine(asl, { any: 'event' }, { handlers });
    expect(run.status).toBe('SUCCEEDED');
    expect(names(run)).toEqual(['Credential Intake']);
  });

  it('ends without a second response when the finding joins an open case', async () => {
    const handlers = doubles({
      'credential-intake': async () => ({
        intake: { decision: 'duplicate', reason: 'DUPLICATE', caseId: 'c0' },
      }),
    });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(names(run)).toEqual(['Credential Intake']);
  });

  it('hands intake the event and the execution ARN', async () => {
    let seen: unknown;
    const handlers = doubles({
      'credential-intake': async (input) => {
        seen = input;
        return { intake: { decision: 'rejected', reason: 'X: y' } };
      },
    });
    await runStateMachine(
      asl,
      { detail: { id: 'f' } },
      { handlers, executionArn: 'arn:aws:states:us-east-1:1:execution:c:e' },
    );
    expect(seen).toEqual({
      event: { detail: { id: 'f' } },
      executionArn: 'arn:aws:states:us-east-1:1:execution:c:e',
    });
  });

  it("contains a user's credentials in order, collects its activity, seals and notifies", async () => {
    const run = await runStateMachine(asl, {}, { handlers: doubles() });
    expect(run.status).toBe('SUCCEEDED');
    expect(names(run)).toEqual([
      'Credential Intake',
      'Deactivate Access Key',
      'Quarantine Principal',
      'Revoke Sessions',
      'Collect Activity',
      'Credential Archive',
      'Credential Notify',
    ]);
  });

  it('hands each containment step only the case', async () => {
    const inputs: unknown[] = [];
    const record = async (input: unknown) => {
      inputs.push(input);
      return succeeded('ok');
    };
    const handlers = doubles({
      'deactivate-access-key': record,
      'quarantine-principal': record,
      'revoke-sessions': record,
    });
    await runStateMachine(asl, {}, { handlers });
    expect(inputs).toEqual([
      { case: userCredentialCase },
      { case: userCredentialCase },
      { case: userCredentialCase },
    ]);
  });

  it('starts the instance workflow when instance credentials were exfiltrated', async () => {
    const run = await runStateMachine(asl, {}, { handlers: doubles({}, exfiltrationCase) });
    const steps = names(run);
    expect(steps.indexOf('Start Instance Response')).toBe(steps.indexOf('Revoke Sessions') + 1);
    expect(steps.indexOf('Collect Activity')).toBe(steps.indexOf('Start Instance Response') + 1);
  });

  it('does not start the instance workflow for exfiltration findings that name no instance', async () => {
    const noInstance = {
      ...exfiltrationCase,
      finding: { ...exfiltrationCase.finding, instanceId: undefined },
    };
    const run = await runStateMachine(
      asl,
      {},
      { handlers: doubles({}, JSON.parse(JSON.stringify(noInstance))) },
    );
    expect(names(run)).not.toContain('Start Instance Response');
  });

  it('goes on quarantining and revoking when deactivation fails, keeping the error in its slot', async () => {
    const handlers = doubles({
      'deactivate-access-key': async () =>
        Promise.reject(named('AwsAccessDeniedError', 'iam:UpdateAccessKey denied')),
    });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(names(run)).toContain('Quarantine Principal');
    expect(names(run)).toContain('Revoke Sessions');
    expect(output(run).deactivate).toMatchObject({ Error: 'AwsAccessDeniedError' });
    expect(output(run).quarantine).toEqual(succeeded('quarantined'));
  });

  it('retries a throttled step and goes on with its result', async () => {
    let calls = 0;
    const handlers = doubles({
      'revoke-sessions': async () => {
        calls++;
        if (calls < 3) throw named('AwsThrottlingError');
        return succeeded('revoked on the third try');
      },
    });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(calls).toBe(3);
    expect(output(run).revoke).toEqual(succeeded('revoked on the third try'));
  });

  it('does not retry a step that was refused access', async () => {
    let calls = 0;
    const handlers = doubles({
      'quarantine-principal': async () => {
        calls++;
        throw named('AwsAccessDeniedError');
      },
    });
    await runStateMachine(asl, {}, { handlers });
    expect(calls).toBe(1);
  });

  it('still seals and notifies when activity collection fails', async () => {
    const handlers = doubles({
      'collect-activity': async () => Promise.reject(named('AwsServiceError', 'LookupEvents unavailable')),
    });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(names(run).slice(-2)).toEqual(['Credential Archive', 'Credential Notify']);
    expect(output(run).activity).toMatchObject({ Error: 'AwsServiceError' });
  });

  it('notifies with the error when intake itself fails', async () => {
    const handlers = doubles({
      'credential-intake': async () => Promise.reject(named('InvalidStepInputError')),
    });
    const run = await runStateMachine(asl, { some: 'event' }, { handlers });
    expect(names(run)).toEqual(['Credential Intake', 'Credential Notify']);
    expect(output(run).error).toMatchObject({ Error: 'InvalidStepInputError' });
  });

  it('notifies with the error when sealing fails', async () => {
    const handlers = doubles({ 'credential-archive': async () => Promise.reject(named('SigningError')) });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(names(run).slice(-2)).toEqual(['Credential Archive', 'Credential Notify']);
    expect(output(run).error).toMatchObject({ Error: 'SigningError' });
  });

  it('gives notify every slot the outcome is decided from', async () => {
    let keys: string[] = [];
    const handlers = doubles({
      'credential-notify': async (state) => {
        keys = Object.keys(state as object).sort();
        return notified('completed');
      },
    });
    await runStateMachine(asl, {}, { handlers });
    expect(keys).toEqual(['activity', 'archive', 'case', 'deactivate', 'intake', 'quarantine', 'revoke']);
  });

  it('fails the execution, for the alarm to see, when the outcome cannot be published', async () => {
    const handlers = doubles({ 'credential-notify': async () => Promise.reject(named('NotificationError')) });
    const run = await runStateMachine(asl, {}, { handlers });
    expect(run.status).toBe('FAILED');
  });
});
