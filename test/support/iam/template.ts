/**
 * The policies a packaged CloudFormation template would put in force, with every intrinsic function
 * resolved against the names a stack has (the emulated stack's, for the IAM contract suite): each
 * function's role (its identity policies and trust), and the resource policies of buckets, keys and
 * topics. Anything the resolver does not understand fails loudly rather than being guessed.
 */
import { readFileSync } from 'node:fs';

type Json = unknown;
interface Resource {
  Type: string;
  Properties?: Record<string, Json>;
  Condition?: string;
}
interface Template {
  Resources: Record<string, Resource>;
  Conditions?: Record<string, Json>;
  Parameters?: Record<string, { Default?: Json }>;
}

/** What a logical id stands for in the stack being modelled: its `Ref` and its `Fn::GetAtt` values. */
export interface Physical {
  ref: string;
  attributes: Record<string, string>;
}

export interface StackNames {
  partition: string;
  account: string;
  region: string;
  stackName: string;
  /** Resources whose names the modelled stack fixed (the emulated one), by logical id. */
  known: Record<string, Physical>;
  /** Template parameters' values, where the template declares any. */
  parameters?: Record<string, string>;
}

export interface RolePolicies {
  logicalId: string;
  arn: string;
  name: string;
  identityPolicies: { name: string; policy: Json }[];
  trustPolicy: Json;
}

const noValue = Symbol('AWS::NoValue');

export class TemplateModel {
  readonly template: Template;
  private readonly names: StackNames;

  constructor(template: object, names: StackNames) {
    this.template = template as Template;
    this.names = names;
  }

  /** A packaged template (`cloudformation-template-update-stack.json`). */
  static fromFile(file: string, names: StackNames): TemplateModel {
    return new TemplateModel(JSON.parse(readFileSync(file, 'utf8')) as object, names);
  }

  /** `Ref` and `Fn::GetAtt` of a logical id, from the known names or AWS's naming of the type. */
  physical(logicalId: string): Physical {
    const known = this.names.known[logicalId];
    if (known) return known;
    const r = this.template.Resources[logicalId];
    if (!r) throw new Error(`The template has no resource ${logicalId}`);
    const { partition: p, account: a, region: g } = this.names;
    const props = r.Properties ?? {};
    const explicit = [
      'RoleName',
      'InstanceProfileName',
      'FunctionName',
      'Name',
      'BucketName',
      'TableName',
      'TopicName',
      'QueueName',
    ]
      .map((k) => props[k])
      .find((v) => v !== undefined);
    // Without a name of its own, CloudFormation names a resource <stack>-<logical id>-<random suffix>.
    const name =
      explicit !== undefined
        ? String(this.resolve(explicit))
        : `${this.names.stackName}-${logicalId}-Q7X2K9LM4T1B`;
    switch (r.Type) {
      case 'AWS::IAM::Role':
        return { ref: name, attributes: { Arn: `arn:${p}:iam::${a}:role/${name}` } };
      case 'AWS::IAM::InstanceProfile':
        return { ref: name, attributes: { Arn: `arn:${p}:iam::${a}:instance-profile/${name}` } };
      case 'AWS::Lambda::Function':
        return { ref: name, attributes: { Arn: `arn:${p}:lambda:${g}:${a}:function:${name}` } };
      case 'AWS::S3::Bucket':
        return { ref: name, attributes: { Arn: `arn:${p}:s3:::${name}` } };
      case 'AWS::SNS::Topic': {
        const arn = `arn:${p}:sns:${g}:${a}:${name}`;
        return { ref: arn, attributes: { TopicArn: arn, TopicName: name } };
      }
      case 'AWS::SQS::Queue':
        return {
          ref: `https://sqs.${g}.amazonaws.com/${a}/${name}`,
          attributes: { Arn: `arn:${p}:sqs:${g}:${a}:${name}`, QueueName: name },
        };
      case 'AWS::KMS::Key': {
        const id = `00000000-0000-4000-8000-${logicalId.length.toString().padStart(12, '0')}`;
        return { ref: id, attributes: { Arn: `arn:${p}:kms:${g}:${a}:key/${id}`, KeyId: id } };
      }
      case 'AWS::DynamoDB::Table':
        return { ref: name, attributes: { Arn: `arn:${p}:dynamodb:${g}:${a}:table/${name}` } };
      case 'AWS::StepFunctions::StateMachine': {
        const arn = `arn:${p}:states:${g}:${a}:stateMachine:${name}`;
        return { ref: arn, attributes: { Arn: arn, Name: name } };
      }
      case 'AWS::Logs::LogGroup':
        return { ref: name, attributes: { Arn: `arn:${p}:logs:${g}:${a}:log-group:${name}:*` } };
      case 'AWS::SSM::Document':
        return { ref: name, attributes: {} };
      case 'AWS::Events::Rule':
        return { ref: name, attributes: { Arn: `arn:${p}:events:${g}:${a}:rule/${name}` } };
      case 'AWS::SecurityHub::ActionTarget':
        return {
          ref: name,
          attributes: { ActionTargetArn: `arn:${p}:securityhub:${g}:${a}:action/custom/${name}` },
        };
      case 'AWS::CloudWatch::Alarm':
        return { ref: name, attributes: { Arn: `arn:${p}:cloudwatch:${g}:${a}:alarm:${name}` } };
      default:
        return { ref: name, attributes: {} };
    }
  }

  private pseudo(name: string): string {
    const { partition, account, region, stackName } = this.names;
    const values: Record<string, string> = {
      'AWS::Partition': partition,
      'AWS::AccountId': account,
      'AWS::Region': region,
      'AWS::StackName': stackName,
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::StackId': `arn:${partition}:cloudformation:${region}:${account}:stack/${stackName}/local`,
    };
    const v = values[name] ?? this.names.parameters?.[name];
    if (v !== undefined) return v;
    const declared = this.template.Parameters?.[name]?.Default;
    if (declared !== undefined) return String(declared);
    return this.physical(name).ref;
  }

  private condition(name: string): boolean {
    const c = this.template.Conditions?.[name];
    if (c === undefined) throw new Error(`The template has no condition ${name}`);
    return Boolean(this.resolve(c));
  }

  /** Resolves every intrinsic function in `value`. */
  resolve(value: Json): Json {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v)).filter((v) => v !== noValue);
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, Json>);
    const [only] = entries;
    if (entries.length === 1 && only) {
      const [fn, arg] = only;
      switch (fn) {
        case 'Ref':
          return arg === 'AWS::NoValue' ? noValue : this.pseudo(String(arg));
        case 'Fn::GetAtt': {
          const [id, attr] = (typeof arg === 'string' ? arg.split('.') : arg) as [string, string];
          const v = this.physical(id).attributes[attr];
          if (v === undefined) throw new Error(`No value for Fn::GetAtt ${id}.${attr}`);
          return v;
        }
        case 'Fn::Sub': {
          const [text, vars] = (typeof arg === 'string' ? [arg, {}] : arg) as [string, Record<string, Json>];
          return text.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
            if (name.startsWith('!')) return `\${${name.slice(1)}}`;
            if (name in vars) return String(this.resolve(vars[name]));
            if (name.includes('.')) {
              const [id, attr] = name.split('.') as [string, string];
              const v = this.physical(id).attributes[attr];
              if (v === undefined) throw new Error(`No value for \${${name}}`);
              return v;
            }
            return this.pseudo(name);
          });
        }
        case 'Fn::Join': {
          const [sep, parts] = arg as [string, Json[]];
          return (this.resolve(parts) as Json[]).map(String).join(sep);
        }
        case 'Fn::Select': {
          const [index, list] = arg as [Json, Json];
          return (this.resolve(list) as Json[])[Number(this.resolve(index))];
        }
        case 'Fn::Split': {
          const [sep, text] = arg as [string, Json];
          return String(this.resolve(text)).split(sep);
        }
        case 'Fn::If': {
          const [cond, yes, no] = arg as [string, Json, Json];
          return this.resolve(this.condition(cond) ? yes : no);
        }
        case 'Fn::Equals': {
          const [a, b] = arg as [Json, Json];
          return String(this.resolve(a)) === String(this.resolve(b));
        }
        case 'Fn::Not':
          return !this.resolve((arg as Json[])[0]);
        case 'Fn::And':
          return (arg as Json[]).every((c) => this.resolve(c));
        case 'Fn::Or':
          return (arg as Json[]).some((c) => this.resolve(c));
        case 'Condition':
          return this.condition(String(arg));
        default:
          if (fn.startsWith('Fn::')) throw new Error(`The resolver does not know ${fn}`);
      }
    }
    const out: Record<string, Json> = {};
    for (const [k, v] of entries) {
      const r = this.resolve(v);
      if (r !== noValue) out[k] = r;
    }
    return out;
  }

  /** Whether a resource exists in this stage (its Condition holds). */
  exists(logicalId: string): boolean {
    const r = this.template.Resources[logicalId];
    return Boolean(r) && (r?.Condition === undefined || this.condition(r.Condition));
  }

  ofType(type: string): [string, Resource][] {
    return Object.entries(this.template.Resources).filter(([id, r]) => r.Type === type && this.exists(id));
  }

  role(logicalId: string): RolePolicies {
    const r = this.template.Resources[logicalId];
    if (r?.Type !== 'AWS::IAM::Role') throw new Error(`${logicalId} is not a role of the template`);
    const props = this.resolve(r.Properties ?? {}) as {
      Policies?: { PolicyName: string; PolicyDocument: Json }[];
      AssumeRolePolicyDocument: Json;
      ManagedPolicyArns?: string[];
    };
    if (props.ManagedPolicyArns?.length)
      throw new Error(`${logicalId} has managed policies, which the contract cannot read offline`);
    const physical = this.physical(logicalId);
    return {
      logicalId,
      name: physical.ref,
      arn: physical.attributes.Arn as string,
      identityPolicies: (props.Policies ?? []).map((p) => ({ name: p.PolicyName, policy: p.PolicyDocument })),
      trustPolicy: props.AssumeRolePolicyDocument,
    };
  }

  /** Every role of the template (in this stage), by logical id. */
  roles(): RolePolicies[] {
    return this.ofType('AWS::IAM::Role').map(([id]) => this.role(id));
  }

  /** The resource policy that governs `arn` (a bucket or object, a key, a topic), if the template sets one. */
  resourcePolicyFor(arn: string): { logicalId: string; policy: Json } | undefined {
    for (const [id, r] of this.ofType('AWS::S3::BucketPolicy')) {
      const bucket = String(this.resolve(r.Properties?.Bucket));
      if (
        arn === `arn:${this.names.partition}:s3:::${bucket}` ||
        arn.startsWith(`arn:${this.names.partition}:s3:::${bucket}/`)
      )
        return { logicalId: id, policy: this.resolve(r.Properties?.PolicyDocument) };
    }
    for (const [id, r] of this.ofType('AWS::KMS::Key')) {
      if (this.physical(id).attributes.Arn === arn)
        return { logicalId: id, policy: this.resolve(r.Properties?.KeyPolicy) };
    }
    for (const [id, r] of this.ofType('AWS::SNS::TopicPolicy')) {
      const topics = this.resolve(r.Properties?.Topics) as string[];
      if (topics.includes(arn)) return { logicalId: id, policy: this.resolve(r.Properties?.PolicyDocument) };
    }
    for (const [id, r] of this.ofType('AWS::IAM::Role')) {
      if (this.physical(id).attributes.Arn === arn)
        return { logicalId: id, policy: this.resolve(r.Properties?.AssumeRolePolicyDocument) };
    }
    return undefined;
  }
}
