import { awsErrorCode, CordonError, EvidenceIntegrityError } from '../../functions/core/errors.js';
import { safe } from './output.js';

/** Exit codes: 0 all good, 1 a check or the case failed, 2 the command line is wrong, 3 could not run. */
export const exitCodes = { ok: 0, failed: 1, usage: 2, unavailable: 3 } as const;

/** An error the person can act on: the message says what happened, the hint what to do about it. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode: number = exitCodes.unavailable,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class UsageError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, hint, exitCodes.usage);
  }
}

export class StackNotFoundError extends CliError {}
export class UnknownCaseError extends CliError {}

/** The AWS operation a failed call was, as the clients' middleware records it (see aws.ts). */
export interface FailedOperation {
  service: string;
  command: string;
  input: Record<string, unknown>;
}

export function failedOperation(error: unknown): FailedOperation | undefined {
  return (error as { $cordonOperation?: FailedOperation } | null)?.$cordonOperation;
}

const servicePrefixes: Record<string, string> = {
  S3Client: 's3',
  DynamoDBClient: 'dynamodb',
  KMSClient: 'kms',
  SFNClient: 'states',
  CloudFormationClient: 'cloudformation',
  EC2Client: 'ec2',
  EBSClient: 'ebs',
  SSMClient: 'ssm',
  CloudTrailClient: 'cloudtrail',
  GuardDutyClient: 'guardduty',
  IAMClient: 'iam',
  STSClient: 'sts',
};

// Operations whose IAM action is not named after them (Service Authorization Reference).
const s3Actions: Record<string, string> = {
  HeadObject: 's3:GetObject',
  GetObject: 's3:GetObject',
  ListObjectsV2: 's3:ListBucket',
  GetObjectLockConfiguration: 's3:GetBucketObjectLockConfiguration',
};

/** The IAM action an operation needs, e.g. `s3:GetObjectVersion` for a GetObject of a named version. */
export function iamActionFor(op: FailedOperation): string {
  const name = op.command.replace(/Command$/, '');
  const prefix = servicePrefixes[op.service] ?? op.service.replace(/Client$/, '').toLowerCase();
  if (prefix === 's3') {
    if ((name === 'GetObject' || name === 'HeadObject') && op.input.VersionId) return 's3:GetObjectVersion';
    return s3Actions[name] ?? `s3:${name}`;
  }
  return `${prefix}:${name}`;
}

function resourceOf(op: FailedOperation): string | undefined {
  const i = op.input;
  if (typeof i.Bucket === 'string')
    return typeof i.Key === 'string' ? `s3://${i.Bucket}/${i.Key}` : `s3://${i.Bucket}`;
  for (const k of ['TableName', 'KeyId', 'StackName', 'executionArn', 'stateMachineArn', 'Name']) {
    if (typeof i[k] === 'string') return i[k] as string;
  }
  return undefined;
}

const accessDenied = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'AuthorizationError',
  'Forbidden',
]);
const badCredentials = new Set([
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'SignatureDoesNotMatch',
  'InvalidAccessKeyId',
  'AuthFailure',
]);
const unreachable = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNRESET',
  'TimeoutError',
]);

export interface Explained {
  /** The error's name (`UnknownCaseError`) or AWS's code (`AccessDenied`): what `--json` reports as `type`. */
  type: string;
  message: string;
  hint?: string;
  exitCode: number;
  /** Nothing more specific was recognised: --debug may show more. */
  unrecognised?: boolean;
}

/**
 * Turns whatever stopped a command into one sentence a person can act on, and an exit code. AWS's own
 * words are passed through `safe`, since an error message can echo attacker-chosen names.
 */
export function explain(error: unknown, context: { endpoint?: string } = {}): Explained {
  const e = error as { name?: unknown } | null;
  const type =
    error instanceof CliError || error instanceof CordonError
      ? error.name
      : (awsErrorCode(error) ?? (typeof e?.name === 'string' ? e.name : 'Error'));
  return { type: safe(type, 80), ...describe(error, context) };
}

function describe(error: unknown, context: { endpoint?: string }): Omit<Explained, 'type'> {
  if (error instanceof CliError) {
    // Our own sentences, but they quote what they refuse: a key from a tampered manifest, a file name.
    return {
      message: safe(error.message, 1000),
      ...(error.hint ? { hint: safe(error.hint, 500) } : {}),
      exitCode: error.exitCode,
    };
  }
  if (error instanceof EvidenceIntegrityError) return { message: safe(error.message, 500), exitCode: 1 };
  if (error instanceof CordonError) return { message: safe(error.message, 500), exitCode: 3 };

  const e = error as {
    name?: string;
    message?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const message = String(e?.message ?? error);
  const code = awsErrorCode(error) ?? '';
  const op = failedOperation(error);

  if (e?.name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return {
      message: 'No AWS credentials were found.',
      hint: context.endpoint
        ? 'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any value works with the emulator).'
        : 'Sign in first (aws sso login, aws configure, or AWS_PROFILE / --profile), then run the command again.',
      exitCode: 3,
    };
  }
  if (/Region is missing/i.test(message)) {
    return {
      message: 'No AWS region is configured.',
      hint: 'Pass --region REGION (where the Cordon stack is deployed), set AWS_REGION or AWS_DEFAULT_REGION, or give the profile a region.',
      exitCode: 3,
    };
  }
  if (badCredentials.has(code)) {
    return {
      message: `AWS refused the credentials (${safe(code)}).`,
      hint: 'They are expired or invalid: sign in again and run the command again.',
      exitCode: 3,
    };
  }
  if (accessDenied.has(code) || (e?.$metadata?.httpStatusCode === 403 && op)) {
    const named = /perform: ([a-z0-9-]+:[A-Za-z0-9*]+)/.exec(message)?.[1];
    const action = named ?? (op ? iamActionFor(op) : undefined);
    const resource = op ? resourceOf(op) : undefined;
    return {
      message: `Access denied${action ? `: your identity may not call ${action}` : ''}${resource ? ` on ${safe(resource)}` : ''}.`,
      hint: 'Investigators use the cordon-investigator-<stage> role; responders need the permissions listed in docs/investigators.md.',
      exitCode: 3,
    };
  }
  const network = (error as { code?: string }).code ?? code;
  if (unreachable.has(network) || unreachable.has(e?.name ?? '')) {
    return {
      message: context.endpoint
        ? `Cannot reach the endpoint ${safe(context.endpoint)} (${safe(network || e?.name)}).`
        : `Cannot reach AWS (${safe(network || e?.name)}).`,
      hint: context.endpoint ? 'Is the emulator running at that address?' : 'Check the network connection.',
      exitCode: 3,
    };
  }
  if (/Deserialization error/i.test(message) && /<!doctype|<html/i.test(message)) {
    return {
      message: `The endpoint does not implement ${op ? iamActionFor(op) : 'this operation'}.`,
      exitCode: 3,
    };
  }
  const what = op ? ` (${iamActionFor(op)})` : '';
  return {
    message: `${safe(code || e?.name || 'Error')}${what}: ${safe(message, 400)}`,
    exitCode: 3,
    unrecognised: true,
  };
}
