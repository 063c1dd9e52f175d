import { describe, expect, inject, it } from 'vitest';
import * as errors from '../../functions/core/errors.js';
import { stepErrors } from '../../functions/core/step-errors.js';
import {
  type CfnTemplate,
  loadServerlessConfig,
  loadTemplate,
  resource,
  resourcesOfType,
} from '../support/template-model.js';

const template: CfnTemplate = loadTemplate(inject('cfnTemplates').dev);
const stage = 'dev';

interface AslState {
  Type: string;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  Retry?: { ErrorEquals: string[] }[];
  Catch?: { ErrorEquals: string[] }[];
  Branches?: AslMachine[];
  Iterator?: AslMachine;
  ItemProcessor?: AslMachine;
}
interface AslMachine {
  States: Record<string, AslState>;
}

/**
 * The definition as deployed: serverless-step-functions turns it into `Fn::Sub [json, placeholders]`
 * where each Task's `Fn::GetAtt` became a `${placeholder}`.
 */
function deployedDefinition(machineId: string): { asl: AslMachine; placeholders: Record<string, unknown> } {
  const definition = resource(template, machineId).Properties?.DefinitionString as
    | { 'Fn::Sub': [string, Record<string, unknown>] }
    | string;
  if (typeof definition === 'string') return { asl: JSON.parse(definition) as AslMachine, placeholders: {} };
  const [json, placeholders] = definition['Fn::Sub'];
  return { asl: JSON.parse(json) as AslMachine, placeholders };
}

/** Every state, nested Parallel branches and Map processors included, with its path for messages. */
function allStates(machine: AslMachine, prefix = ''): [string, AslState][] {
  return Object.entries(machine.States).flatMap(([name, state]) => {
    const path = `${prefix}${name}`;
    const nested = [...(state.Branches ?? []), state.Iterator, state.ItemProcessor].filter(
      (m): m is AslMachine => m !== undefined,
    );
    return [[path, state] as [string, AslState], ...nested.flatMap((m) => allStates(m, `${path} > `))];
  });
}

/**
 * The function a Task names: its Resource, or for a Lambda invoked with a task token
 * (`lambda:invoke.waitForTaskToken`) its Parameters' FunctionName.
 */
function functionRef(state: AslState): string | undefined {
  return state.Resource === 'arn:aws:states:::lambda:invoke.waitForTaskToken'
    ? (state.Parameters?.FunctionName as string | undefined)
    : state.Resource;
}

/** The serverless.yml key of the function a Task invokes, read from the deployed template. */
function functionKeyOf(state: AslState, placeholders: Record<string, unknown>): string | undefined {
  const placeholder = /^\$\{(\w+)\}$/.exec(functionRef(state) ?? '')?.[1];
  const ref = placeholder ? (placeholders[placeholder] as { 'Fn::GetAtt'?: [string, string] }) : undefined;
  const logicalId = ref?.['Fn::GetAtt']?.[0];
  const fn = logicalId ? template.Resources[logicalId] : undefined;
  if (fn?.Type !== 'AWS::Lambda::Function') return undefined;
  const name = String(fn.Properties?.FunctionName ?? '');
  return name.startsWith(`cordon-${stage}-`) ? name.slice(`cordon-${stage}-`.length) : undefined;
}

const matched = (rules: { ErrorEquals: string[] }[] | undefined) =>
  (rules ?? []).flatMap((r) => r.ErrorEquals);
const isCordonName = (name: string) => !name.startsWith('States.') && !name.startsWith('Lambda.');

/** Cordon's names whose error may pass on its own: the only ones of ours a Retrier may name. */
const retryable = new Set<string>(
  Object.values(errors as Record<string, unknown>)
    .filter(
      (value): value is new (message: string) => errors.CordonError =>
        typeof value === 'function' && value.prototype instanceof errors.CordonError,
    )
    .map((ErrorClass) => new ErrorClass('probe'))
    .filter((e) => e.retryable)
    .map((e) => e.name),
);

/** What no Retrier may match, by name or through a wildcard: retrying gives the same answer. */
const neverRetried = ['InvalidStepInputError', 'InternalError', 'ConfigurationError', 'AwsAccessDeniedError'];
const wildcards = ['States.ALL', 'States.TaskFailed'];

/**
 * Names a step can throw that its state leaves to `States.ALL` on purpose: none needs a route of its
 * own, and no Retrier names it.
 */
const leftToStatesAll: Record<string, string> = {
  RejectedInputError: 'Intake turns it into a rejected decision: it never leaves the step',
  InstanceNotFoundError:
    'the instance is gone: before containment the case fails and Notify says so; after it, the evidence is sealed',
  ContainmentError:
    'a containment step stopped part-way for good: its branch keeps the message, the others go on',
  IsolationVerificationError: 'isolation did not hold when checked: a containment failure like any other',
  RevocationError: 'credentials not revoked for good: a containment failure like any other',
  SnapshotError: 'the disk branch records the failure and the case goes on, whatever the cause',
  SnapshotTimeoutError: 'snapshots past their budget: the disk branch records it like any snapshot failure',
  MemoryCaptureError: 'Memory Failed records it and the case goes on without memory, whatever the cause',
  MemoryCaptureTimeoutError: 'capture past its budget: Memory Failed records it like any capture failure',
  EvidenceConflictError: 'evidence would be overwritten: the step fails for good, and the case says why',
  EvidenceIntegrityError: 'evidence does not match itself: the step fails for good, and the case says why',
  SigningError: 'the manifest could not be signed: Archive fails, Notify says the evidence is unsealed',
  CaseNotFoundError: 'no such case to release: Release Failed ends the execution with this name',
  ReleaseRefusedError: 'the case is not one to release: Release Failed ends the execution with this name',
  NotificationError:
    'the approval request could not be sent: nobody can answer, so the timeout action applies (Approval Not Requested)',
  ApprovalAlreadyDecidedError:
    'a retried request found the approval decided: Approval Not Requested, and the notification says why',
  ApprovalNotWaitingError: 'thrown only when an answer is refused (cordon approve), never by the request',
  ApprovalWindowClosedError: 'thrown only when an answer is refused (cordon approve), never by the request',
  ApprovalTokenMismatchError: 'thrown only when an answer is refused (cordon approve), never by the request',
  ApprovalDeliveryError: 'thrown only when an answer is refused (cordon approve), never by the request',
};

/** Task states without a Catch: any error their Retry does not name fails the execution, on purpose. */
const uncaught: Record<string, string> = {
  'Notify Outcome': 'a case whose outcome cannot be told fails the execution, which alarms',
  'Credential Notify': 'a case whose outcome cannot be told fails the execution, which alarms',
};

const machines = resourcesOfType(template, 'AWS::StepFunctions::StateMachine').map(([id]) => id);
const tasks = machines.flatMap((id) => {
  const { asl, placeholders } = deployedDefinition(id);
  return allStates(asl)
    .filter(([, state]) => state.Type === 'Task')
    .map(([path, state]) => ({ path, state, fn: functionKeyOf(state, placeholders) }));
});
const thrownBy = (fn: string | undefined): readonly string[] =>
  fn && fn in stepErrors ? stepErrors[fn as keyof typeof stepErrors] : [];

describe('the deployed state machines', () => {
  it('include the forensic, the release and the credentials workflows', () => {
    expect(machines).toEqual(
      expect.arrayContaining(['ForensicsStateMachine', 'ReleaseStateMachine', 'CredentialsStateMachine']),
    );
  });

  it('leave to States.ALL only names some Task with a Catch can throw and no Retry or Catch names', () => {
    const named = new Set(tasks.flatMap(({ state }) => [...matched(state.Retry), ...matched(state.Catch)]));
    const thrownWhereCaught = new Set(
      tasks.filter(({ state }) => state.Catch !== undefined).flatMap(({ fn }) => thrownBy(fn)),
    );
    const stale = Object.keys(leftToStatesAll).filter(
      (name) => named.has(name) || !thrownWhereCaught.has(name),
    );

    expect(stale).toEqual([]);
  });

  it('have a Catch on every Task but those left uncaught on purpose', () => {
    const withoutCatch = tasks.filter(({ state }) => state.Catch === undefined).map(({ path }) => path);

    expect(withoutCatch.sort()).toEqual(Object.keys(uncaught).sort());
  });
});

describe.each(machines.map((id) => [id]))('%s', (machineId) => {
  const { asl, placeholders } = deployedDefinition(machineId);
  const states = allStates(asl);
  const functionKeys = Object.keys(loadServerlessConfig().functions);

  it('matches in Retry and Catch only States.*, Lambda.* or an error name the code exports', () => {
    const known = new Set<string>(errors.errorNames);
    const unknown = states.flatMap(([path, state]) =>
      [...(state.Retry ?? []), ...(state.Catch ?? [])]
        .flatMap((rule) => rule.ErrorEquals)
        .filter((name) => !name.startsWith('States.') && !name.startsWith('Lambda.') && !known.has(name))
        .map((name) => `${path}: ${name}`),
    );

    expect(unknown).toEqual([]);
  });

  it('names in Retry and Catch only errors the function behind that state can throw', () => {
    const foreign = states
      .filter(([, state]) => state.Type === 'Task')
      .flatMap(([path, state]) => {
        const throws = thrownBy(functionKeyOf(state, placeholders));
        return [...matched(state.Retry), ...matched(state.Catch)]
          .filter((name) => isCordonName(name) && !throws.includes(name))
          .map((name) => `${path}: ${name}`);
      });

    expect(foreign).toEqual([]);
  });

  it('routes by name every error a step can throw, or leaves it to States.ALL on purpose', () => {
    const unrouted = states
      .filter(([path, state]) => state.Type === 'Task' && !(path in uncaught))
      .flatMap(([path, state]) => {
        const routed = new Set([...matched(state.Retry), ...matched(state.Catch)]);
        return thrownBy(functionKeyOf(state, placeholders))
          .filter((name) => !routed.has(name) && !(name in leftToStatesAll))
          .map((name) => `${path}: ${name}`);
      });

    expect(unrouted).toEqual([]);
  });

  it('retries only throttling, AWS service failures and Lambda service errors', () => {
    const notRetryable = states.flatMap(([path, state]) =>
      matched(state.Retry)
        .filter((name) => !name.startsWith('Lambda.') && !retryable.has(name))
        .map((name) => `${path}: ${name}`),
    );

    expect(notRetryable).toEqual([]);
  });

  it('never retries input the step cannot use, a bug, a missing setting or a denied call', () => {
    const retried = states.flatMap(([path, state]) =>
      matched(state.Retry)
        .filter((name) => neverRetried.includes(name) || wildcards.includes(name))
        .map((name) => `${path}: ${name}`),
    );
    const caughtByName = states
      .filter(([, state]) => state.Catch !== undefined)
      .flatMap(([path, state]) =>
        neverRetried.filter((name) => !matched(state.Catch).includes(name)).map((name) => `${path}: ${name}`),
      );

    expect(retried).toEqual([]);
    expect(caughtByName).toEqual([]);
  });

  it('has every Task invoke a Lambda function that serverless.yml defines', () => {
    const tasks = states.filter(([, state]) => state.Type === 'Task');
    const targets = tasks.map(([path, state]) => {
      const placeholder = /^\$\{(\w+)\}$/.exec(functionRef(state) ?? '')?.[1];
      const ref = placeholder
        ? (placeholders[placeholder] as { 'Fn::GetAtt'?: [string, string] })
        : undefined;
      const logicalId = ref?.['Fn::GetAtt']?.[0];
      const fn = logicalId ? template.Resources[logicalId] : undefined;
      const name = String(fn?.Properties?.FunctionName ?? '');
      const key = name.startsWith(`cordon-${stage}-`) ? name.slice(`cordon-${stage}-`.length) : undefined;
      return { path, type: fn?.Type, defined: key !== undefined && functionKeys.includes(key) };
    });

    expect(tasks.length).toBeGreaterThan(0);
    expect(targets.filter((t) => t.type !== 'AWS::Lambda::Function' || !t.defined)).toEqual([]);
  });
});
