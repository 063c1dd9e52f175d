import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCfnYaml, repoRoot } from '../support/template-model.js';

/**
 * resources/member-account.yml as a service-managed StackSet deploys it (docs/deploy.md, "Across the
 * organisation"): into accounts nobody names in advance, from one template body and one set of
 * parameters.
 */
const path = 'resources/member-account.yml';
const text = readFileSync(resolve(repoRoot, path), 'utf8');
const template = loadCfnYaml(path) as unknown as {
  Transform?: unknown;
  Parameters: Record<string, { Default?: unknown; AllowedPattern?: string }>;
  Resources: Record<string, { Type: string }>;
  Outputs?: Record<string, { Export?: unknown }>;
};
const deployDoc = readFileSync(resolve(repoRoot, 'docs/deploy.md'), 'utf8');
const section = deployDoc.slice(deployDoc.indexOf('### Across the organisation'));
const commands = (/```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '').replace(/\\\n\s*/g, '');
const createStackSet = commands.split('\n').find((l) => l.startsWith('aws cloudformation create-stack-set'));
const createInstances = commands
  .split('\n')
  .find((l) => l.startsWith('aws cloudformation create-stack-instances'));

/** Every string value of the template, with where it is. */
function strings(value: unknown, at = ''): [string, string][] {
  if (typeof value === 'string') return [[at, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => strings(v, `${at}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => strings(v, `${at}.${k}`));
  }
  return [];
}

describe('the member-account template as a service-managed StackSet', () => {
  it('uses no transform or macro, which a StackSet would have to expand in every account', () => {
    expect(template.Transform).toBeUndefined();
    expect(text).not.toMatch(/Fn::Transform|AWS::Include/);
  });

  it("imports no other stack's outputs and exports none, so each account's stack stands alone", () => {
    expect(text).not.toMatch(/Fn::ImportValue|!ImportValue/);
    for (const output of Object.values(template.Outputs ?? {})) expect(output.Export).toBeUndefined();
  });

  it('names no account or region of its own: each is a parameter or a pseudo parameter', () => {
    const literal = strings(template.Resources).filter(
      ([, v]) => /(?<!\d)\d{12}(?!\d)/.test(v) || /\b[a-z]{2}(-gov)?-[a-z]+-\d\b/.test(v),
    );

    expect(literal).toEqual([]);
  });

  it('creates only IAM roles and an instance profile, which CAPABILITY_NAMED_IAM covers', () => {
    const types = new Set(Object.values(template.Resources).map((r) => r.Type));

    expect(types).toEqual(new Set(['AWS::IAM::Role', 'AWS::IAM::InstanceProfile']));
  });

  it('is small enough to pass as --template-body (51,200 bytes)', () => {
    expect(Buffer.byteLength(text)).toBeLessThan(51_200);
  });

  it('documents as required exactly the parameters without a default', () => {
    const required = Object.entries(template.Parameters)
      .filter(([, p]) => p.Default === undefined)
      .map(([name]) => name);
    const documented = [...deployDoc.matchAll(/^\| `(\w+)` \| \(required\) \|/gm)].map((m) => m[1]);

    expect(new Set(documented)).toEqual(new Set(required));
  });
});

describe('the StackSet commands in docs/deploy.md', () => {
  it('create a service-managed StackSet that deploys itself to accounts joining the units', () => {
    expect(createStackSet).toContain('--permission-model SERVICE_MANAGED');
    expect(createStackSet).toMatch(
      /--auto-deployment Enabled=true,RetainStacksOnAccountRemoval=(true|false)/,
    );
    expect(createStackSet).toContain('--capabilities CAPABILITY_NAMED_IAM');
    expect(createStackSet).toContain(`--template-body file://${path}`);
  });

  it('pass every required parameter, and only parameters the template declares', () => {
    const passed = [...(createStackSet ?? '').matchAll(/ParameterKey=(\w+),ParameterValue=\S+/g)].map(
      (m) => m[1] ?? '',
    );
    const required = Object.entries(template.Parameters)
      .filter(([, p]) => p.Default === undefined)
      .map(([name]) => name);

    for (const name of required) expect(passed).toContain(name);
    for (const name of passed) expect(Object.keys(template.Parameters)).toContain(name);
  });

  it('give values each parameter accepts', () => {
    for (const m of (createStackSet ?? '').matchAll(/ParameterKey=(\w+),ParameterValue=(\S+)/g)) {
      const pattern = template.Parameters[m[1] ?? '']?.AllowedPattern;
      if (pattern) expect(m[2]).toMatch(new RegExp(pattern));
    }
  });

  it('deploy stack instances to organisational units, in one region: the roles are global', () => {
    expect(createInstances).toMatch(/--deployment-targets OrganizationalUnitIds=ou-[\w-]+(,ou-[\w-]+)*/);
    expect(createInstances).toMatch(/--regions [a-z]{2}-[a-z]+-\d(\s|$)/);
    expect(createInstances).toContain('--stack-set-name cordon-member-prod');
  });
});
