import { describe, expect, inject, it } from 'vitest';
import { errorNames } from '../../functions/shared/errors.js';
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

const machines = resourcesOfType(template, 'AWS::StepFunctions::StateMachine').map(([id]) => id);

describe('the deployed state machines', () => {
  it('include the forensic and the release workflows', () => {
    expect(machines).toEqual(expect.arrayContaining(['ForensicsStateMachine', 'ReleaseStateMachine']));
  });
});

describe.each(machines.map((id) => [id]))('%s', (machineId) => {
  const { asl, placeholders } = deployedDefinition(machineId);
  const states = allStates(asl);
  const functionKeys = Object.keys(loadServerlessConfig().functions);

  it('matches in Retry and Catch only States.*, Lambda.* or an error name the code exports', () => {
    const known = new Set<string>(errorNames);
    const unknown = states.flatMap(([path, state]) =>
      [...(state.Retry ?? []), ...(state.Catch ?? [])]
        .flatMap((rule) => rule.ErrorEquals)
        .filter((name) => !name.startsWith('States.') && !name.startsWith('Lambda.') && !known.has(name))
        .map((name) => `${path}: ${name}`),
    );

    expect(unknown).toEqual([]);
  });

  it('has every Task invoke a Lambda function that serverless.yml defines', () => {
    const tasks = states.filter(([, state]) => state.Type === 'Task');
    const targets = tasks.map(([path, state]) => {
      const placeholder = /^\$\{(\w+)\}$/.exec(state.Resource ?? '')?.[1];
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
