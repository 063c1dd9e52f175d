import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';

/** The parts of a packaged CloudFormation template the template tests read. */
export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Condition?: string;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
  Metadata?: Record<string, unknown>;
}

export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Conditions?: Record<string, unknown>;
  Outputs?: Record<string, unknown>;
}

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: unknown;
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

export const repoRoot = resolve(import.meta.dirname, '../..');

export function loadTemplate(path: string): CfnTemplate {
  return JSON.parse(readFileSync(path, 'utf8')) as CfnTemplate;
}

const intrinsicFunctions = [
  'Ref',
  'Condition',
  'Sub',
  'GetAtt',
  'If',
  'Not',
  'Equals',
  'And',
  'Or',
  'Split',
  'Join',
  'Select',
];
const intrinsicKey = (fn: string) => (fn === 'Ref' || fn === 'Condition' ? fn : `Fn::${fn}`);
/** CloudFormation's short forms (`!Sub`, `!If [...]`) read as their long forms, for hand-written templates. */
const cfnTags = intrinsicFunctions.flatMap((fn) => [
  { tag: `!${fn}`, resolve: (v: string) => ({ [intrinsicKey(fn)]: fn === 'GetAtt' ? v.split('.') : v }) },
  {
    tag: `!${fn}`,
    collection: 'seq' as const,
    resolve: (seq: { toJSON(): unknown }) => ({ [intrinsicKey(fn)]: seq.toJSON() }),
  },
]);

/** A CloudFormation template written in YAML (resources/member-account.yml). */
export function loadCfnYaml(path: string): CfnTemplate {
  return parse(readFileSync(resolve(repoRoot, path), 'utf8'), { customTags: cfnTags }) as CfnTemplate;
}

interface ServerlessConfig {
  functions: Record<string, { role?: string }>;
  params: Record<string, Record<string, unknown>>;
}
let parsedConfig: { text: string; config: ServerlessConfig } | undefined;

/**
 * serverless.yml as data; CloudFormation short-form tags (`!Ref`) are left as plain strings. Parsed
 * again only when the file changed (the IAM contract asks once per request it decides); each caller
 * gets its own copy.
 */
export function loadServerlessConfig(): ServerlessConfig {
  const text = readFileSync(resolve(repoRoot, 'serverless.yml'), 'utf8');
  if (parsedConfig?.text !== text) parsedConfig = { text, config: parse(text, { logLevel: 'error' }) };
  return structuredClone(parsedConfig.config);
}

/** A serverless `params` value as the given stage sees it (stage entry, then `default`). */
export function paramFor(stage: string, name: string): unknown {
  const { params } = loadServerlessConfig();
  return params[stage]?.[name] ?? params.default?.[name];
}

export function asArray<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

export function resource(template: CfnTemplate, logicalId: string): CfnResource {
  const found = template.Resources[logicalId];
  if (!found) throw new Error(`The template has no resource ${logicalId}`);
  return found;
}

export function resourcesOfType(template: CfnTemplate, type: string): [string, CfnResource][] {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}

/** The statements of a policy document (a single statement object is allowed by IAM). */
export function statementsOf(document: unknown): PolicyStatement[] {
  const statement = (document as { Statement?: PolicyStatement | PolicyStatement[] } | undefined)?.Statement;
  return asArray(statement);
}

/**
 * Every identity-policy statement that applies to a role: its inline policies, and the statements of
 * AWS::IAM::Policy / AWS::IAM::ManagedPolicy resources that name it in `Roles`.
 */
export function roleStatements(template: CfnTemplate, roleId: string): PolicyStatement[] {
  const role = resource(template, roleId);
  const inline = asArray(role.Properties?.Policies as { PolicyDocument: unknown }[] | undefined).flatMap(
    (p) => statementsOf(p.PolicyDocument),
  );
  const attached = Object.values(template.Resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy')
    .filter((r) => asArray(r.Properties?.Roles as unknown[] | undefined).some((ref) => refersTo(ref, roleId)))
    .flatMap((r) => statementsOf(r.Properties?.PolicyDocument));
  return [...inline, ...attached];
}

/**
 * `{ 'Fn::Sub': ... }` as it appears in a packaged template, written with `{AWS::Region}` for
 * `${AWS::Region}` so that test sources hold no template-literal look-alikes.
 */
export function sub(text: string): { 'Fn::Sub': string } {
  return { 'Fn::Sub': text.replace(/\{([\w:.]+)\}/g, '$${$1}') };
}

/** Whether a template value is `Ref`, `Fn::GetAtt` or `Fn::Sub` of the logical id (anywhere inside it). */
export function refersTo(value: unknown, logicalId: string): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some((v) => refersTo(v, logicalId));
  const v = value as Record<string, unknown>;
  if (v.Ref === logicalId) return true;
  const getAtt = v['Fn::GetAtt'];
  if (Array.isArray(getAtt) && getAtt[0] === logicalId) return true;
  if (typeof getAtt === 'string' && getAtt.split('.')[0] === logicalId) return true;
  const sub = v['Fn::Sub'];
  const subText = typeof sub === 'string' ? sub : Array.isArray(sub) ? sub[0] : undefined;
  if (typeof subText === 'string' && new RegExp(`\\$\\{${logicalId}(\\.[A-Za-z]+)?\\}`).test(subText))
    return true;
  return Object.values(v).some((inner) => refersTo(inner, logicalId));
}

/** Whether an IAM action pattern (`s3:Delete*`, `*`) covers an action, the way IAM compares them. */
export function actionCovers(pattern: string, action: string): boolean {
  const regex = new RegExp(`^${pattern.split('*').map(escapeRegex).join('.*').replaceAll('?', '.')}$`, 'i');
  return regex.test(action);
}

function escapeRegex(text: string): string {
  return text.replace(/[.+^${}()|[\]\\]/g, '\\$&');
}

/** Whether an Allow statement grants an action, counting `NotAction` (allow all but the listed). */
export function statementAllows(statement: PolicyStatement, action: string): boolean {
  if (statement.Effect !== 'Allow') return false;
  if (statement.Action !== undefined) return asArray(statement.Action).some((p) => actionCovers(p, action));
  if (statement.NotAction !== undefined)
    return !asArray(statement.NotAction).some((p) => actionCovers(p, action));
  return false;
}

/** The logical id of the role a Lambda function runs as (serverless writes `Fn::GetAtt: [Role, Arn]`). */
export function functionRoleId(fn: CfnResource): string {
  const role = fn.Properties?.Role as { 'Fn::GetAtt'?: [string, string] } | undefined;
  const id = role?.['Fn::GetAtt']?.[0];
  if (!id)
    throw new Error(`A function's Role is not a GetAtt of a role in this template: ${JSON.stringify(role)}`);
  return id;
}

/** Evaluates a template condition built only from literals (serverless resolves params at package time). */
export function conditionHolds(template: CfnTemplate, name: string): boolean {
  const evaluate = (expr: unknown): unknown => {
    if (typeof expr === 'string' || typeof expr === 'number' || typeof expr === 'boolean') return expr;
    const e = expr as Record<string, unknown[]>;
    if ('Fn::Equals' in e) {
      const [a, b] = (e['Fn::Equals'] ?? []).map(evaluate);
      return String(a) === String(b);
    }
    if ('Fn::Not' in e) return !evaluate(e['Fn::Not']?.[0]);
    if ('Fn::And' in e) return (e['Fn::And'] ?? []).every((x) => evaluate(x) === true);
    if ('Fn::Or' in e) return (e['Fn::Or'] ?? []).some((x) => evaluate(x) === true);
    if ('Condition' in e) return conditionHolds(template, e.Condition as unknown as string);
    throw new Error(`Condition ${name} is not built from literals: ${JSON.stringify(expr)}`);
  };
  const expr = template.Conditions?.[name];
  if (expr === undefined) throw new Error(`The template has no condition ${name}`);
  return evaluate(expr) === true;
}

const noValue = Symbol('AWS::NoValue');

/**
 * A hand-written template as CloudFormation would see it for the given parameters: conditions
 * evaluated, each `Fn::If` replaced by its chosen branch and `AWS::NoValue` removed. Other intrinsics
 * (`Ref`, `Fn::Sub`, ...) stay as written.
 */
export function instantiate(template: CfnTemplate, parameters: Record<string, string> = {}): CfnTemplate {
  const declared = (template as { Parameters?: Record<string, { Default?: string }> }).Parameters ?? {};
  const values: Record<string, string | undefined> = Object.fromEntries(
    Object.entries(declared).map(([name, p]) => [name, parameters[name] ?? p.Default]),
  );
  const condition = (expr: unknown): unknown => {
    if (typeof expr !== 'object' || expr === null) return expr;
    const e = expr as Record<string, unknown>;
    if (typeof e.Ref === 'string') {
      if (!(e.Ref in values)) throw new Error(`No value for parameter ${e.Ref}`);
      return values[e.Ref];
    }
    const args = (key: string) => e[key] as unknown[];
    if ('Fn::Equals' in e)
      return String(condition(args('Fn::Equals')[0])) === String(condition(args('Fn::Equals')[1]));
    if ('Fn::Not' in e) return !condition(args('Fn::Not')[0]);
    if ('Fn::And' in e) return args('Fn::And').every((x) => condition(x) === true);
    if ('Fn::Or' in e) return args('Fn::Or').some((x) => condition(x) === true);
    if ('Condition' in e) return holds(String(e.Condition));
    throw new Error(`Unsupported condition ${JSON.stringify(expr)}`);
  };
  const holds = (name: string): boolean => {
    const expr = template.Conditions?.[name];
    if (expr === undefined) throw new Error(`The template has no condition ${name}`);
    return condition(expr) === true;
  };
  const walk = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(walk).filter((v) => v !== noValue);
    if (typeof value !== 'object' || value === null) return value;
    const v = value as Record<string, unknown>;
    if (v.Ref === 'AWS::NoValue') return noValue;
    const choice = v['Fn::If'];
    if (Array.isArray(choice)) return walk(holds(String(choice[0])) ? choice[1] : choice[2]);
    return Object.fromEntries(
      Object.entries(v)
        .map(([k, inner]) => [k, walk(inner)] as const)
        .filter(([, inner]) => inner !== noValue),
    );
  };
  return walk(template) as CfnTemplate;
}
