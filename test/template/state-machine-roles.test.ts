import { describe, expect, inject, it } from 'vitest';
import { loadDefinition } from '../../scripts/local/runner.js';
import {
  asArray,
  type CfnTemplate,
  loadTemplate,
  resource,
  statementsOf,
} from '../support/template-model.js';

const template: CfnTemplate = loadTemplate(inject('cfnTemplates').prod);

const machines = [
  ['ForensicsStateMachine', 'forensics'],
  ['ReleaseStateMachine', 'release'],
  ['CredentialsStateMachine', 'credentials'],
] as const;

/** The logical id serverless gives a function's Lambda resource (`intake-finding` → `IntakeDashfindingLambdaFunction`). */
const lambdaId = (fn: string) =>
  `${fn
    .split('-')
    .map((part, i) => (i === 0 ? part.charAt(0).toUpperCase() + part.slice(1) : `Dash${part}`))
    .join('')}LambdaFunction`;

describe.each(machines)('%s', (machineId, name) => {
  const roleArn = resource(template, machineId).Properties?.RoleArn as { 'Fn::GetAtt': [string, string] };
  const roleId = roleArn['Fn::GetAtt'][0];
  const role = resource(template, roleId).Properties;

  it('runs as a role of its own that Step Functions may assume only for this state machine, in this account', () => {
    expect(statementsOf(role?.AssumeRolePolicyDocument)).toEqual([
      {
        Effect: 'Allow',
        Principal: { Service: 'states.amazonaws.com' },
        Action: 'sts:AssumeRole',
        Condition: {
          StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
          ArnLike: {
            'aws:SourceArn': {
              'Fn::Sub': `arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:stateMachine:cordon-${name}-prod`,
            },
          },
        },
      },
    ]);
  });

  it('may invoke exactly the functions its definition names', () => {
    const statements = ((role?.Policies ?? []) as { PolicyDocument: unknown }[]).flatMap((p) =>
      statementsOf(p.PolicyDocument),
    );
    const invokes = statements.filter((s) => asArray(s.Action).includes('lambda:InvokeFunction'));
    const named = new Set(
      invokes
        .flatMap((s) => asArray(s.Resource))
        .map((r) => JSON.stringify(r).match(/"(\w+LambdaFunction)/)?.[1])
        .filter((id): id is string => id !== undefined),
    );
    const called = new Set([...loadDefinition(`statemachines/${name}.asl.yml`).tasks.values()].map(lambdaId));
    expect([...named].sort()).toEqual([...called].sort());
  });
});
