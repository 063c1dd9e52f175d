import { oneLine } from './text.js';

/**
 * Every error a Cordon step throws on purpose. Its `name` is the `errorType` Lambda reports, so it is
 * what the ASL's `Retry` and `Catch` match. Each class sets its name as a string literal: a name read
 * from the class (`new.target.name`) is whatever the minifier made of it. Keep these names and the ASL
 * in step: template and unit tests check both directions (test/template/workflow-contract.test.ts).
 */
export class CordonError extends Error {
  override readonly name: string = 'CordonError';
  /** True when trying the same call again later may succeed (throttling, eventual consistency). */
  readonly retryable: boolean = false;
}

/** The trigger is not something Cordon acts on. Not a failure: Intake turns it into a `rejected` case. */
export class RejectedInputError extends CordonError {
  override readonly name = 'RejectedInputError';
  constructor(
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(reason, options);
  }
}

/** A step's input does not have the shape the step needs: a wiring bug or a forged execution input. */
export class InvalidStepInputError extends CordonError {
  override readonly name = 'InvalidStepInputError';
}
/** A required environment variable is missing or malformed: the function cannot start. */
export class ConfigurationError extends CordonError {
  override readonly name = 'ConfigurationError';
}
/**
 * A bug, not an AWS fault: Cordon's own code failed (a TypeError, a value that broke a schema it should
 * have met). Trying again runs the same code on the same input, so nothing retries it.
 */
export class InternalError extends CordonError {
  override readonly name = 'InternalError';
}
export class InstanceNotFoundError extends CordonError {
  override readonly name = 'InstanceNotFoundError';
}
export class CaseNotFoundError extends CordonError {
  override readonly name = 'CaseNotFoundError';
}
/** Another case already holds this instance. */
export class CaseConflictError extends CordonError {
  override readonly name = 'CaseConflictError';
}
export class AssumeRoleError extends CordonError {
  override readonly name = 'AssumeRoleError';
}
export class SsmUnavailableError extends CordonError {
  override readonly name = 'SsmUnavailableError';
}
export class MemoryCaptureError extends CordonError {
  override readonly name = 'MemoryCaptureError';
}
export class MemoryCaptureTimeoutError extends CordonError {
  override readonly name = 'MemoryCaptureTimeoutError';
}
export class SnapshotError extends CordonError {
  override readonly name = 'SnapshotError';
}
export class SnapshotTimeoutError extends CordonError {
  override readonly name = 'SnapshotTimeoutError';
}
export class ContainmentError extends CordonError {
  override readonly name = 'ContainmentError';
}
export class IsolationVerificationError extends CordonError {
  override readonly name = 'IsolationVerificationError';
}
export class RevocationError extends CordonError {
  override readonly name = 'RevocationError';
}
export class ReleaseRefusedError extends CordonError {
  override readonly name = 'ReleaseRefusedError';
}
/** Evidence that is not what it claims to be: a hash, a size or a lock that does not match. */
export class EvidenceIntegrityError extends CordonError {
  override readonly name = 'EvidenceIntegrityError';
}
/** A write would have replaced evidence that already exists with different bytes. */
export class EvidenceConflictError extends CordonError {
  override readonly name = 'EvidenceConflictError';
}
export class SigningError extends CordonError {
  override readonly name = 'SigningError';
}
export class NotificationError extends CordonError {
  override readonly name = 'NotificationError';
}
/** A network-ACL block could not be put in place (or taken out) where it was asked for. */
export class NetworkBlockError extends CordonError {
  override readonly name = 'NetworkBlockError';
}

/** An approval answer Cordon refuses (functions/core/approval.ts): each says why. */
export class ApprovalNotWaitingError extends CordonError {
  override readonly name = 'ApprovalNotWaitingError';
}
export class ApprovalWindowClosedError extends CordonError {
  override readonly name = 'ApprovalWindowClosedError';
}
export class ApprovalAlreadyDecidedError extends CordonError {
  override readonly name = 'ApprovalAlreadyDecidedError';
}
export class ApprovalTokenMismatchError extends CordonError {
  override readonly name = 'ApprovalTokenMismatchError';
}
/** The decision was refused by the workflow's side (Step Functions) after it was recorded; it is undone. */
export class ApprovalDeliveryError extends CordonError {
  override readonly name = 'ApprovalDeliveryError';
}

/** AWS answered "slow down"; the SDK's own retries are spent. The ASL retries these with backoff. */
export class AwsThrottlingError extends CordonError {
  override readonly name = 'AwsThrottlingError';
  override readonly retryable = true;
}
/** AWS refused the call for lack of permission: retrying will not help, fixing the role will. */
export class AwsAccessDeniedError extends CordonError {
  override readonly name = 'AwsAccessDeniedError';
}
/** Any other AWS failure that reached a step unhandled: a 5xx, a timeout, an unexpected service error. */
export class AwsServiceError extends CordonError {
  override readonly name = 'AwsServiceError';
  override readonly retryable = true;
}

/** Names the ASL may match. Exported once so that tests can hold the ASL and the code together. */
export const errorNames = [
  'RejectedInputError',
  'InvalidStepInputError',
  'ConfigurationError',
  'InternalError',
  'InstanceNotFoundError',
  'CaseNotFoundError',
  'CaseConflictError',
  'AssumeRoleError',
  'SsmUnavailableError',
  'MemoryCaptureError',
  'MemoryCaptureTimeoutError',
  'SnapshotError',
  'SnapshotTimeoutError',
  'ContainmentError',
  'IsolationVerificationError',
  'RevocationError',
  'ReleaseRefusedError',
  'EvidenceIntegrityError',
  'EvidenceConflictError',
  'SigningError',
  'NotificationError',
  'NetworkBlockError',
  'ApprovalNotWaitingError',
  'ApprovalWindowClosedError',
  'ApprovalAlreadyDecidedError',
  'ApprovalTokenMismatchError',
  'ApprovalDeliveryError',
  'AwsThrottlingError',
  'AwsAccessDeniedError',
  'AwsServiceError',
] as const;
export type ErrorName = (typeof errorNames)[number];

const throttlingCodes = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'SlowDown',
  'TransactionInProgressException',
  'PriorRequestNotComplete',
  'EC2ThrottledException',
  'BandwidthLimitExceeded',
  'LimitExceededException',
]);
const accessDeniedCodes = new Set([
  'AccessDenied',
  'AccessDeniedException',
  // SNS's name for it.
  'AuthorizationError',
  'UnauthorizedOperation',
  'UnauthorizedAccess',
  'AuthFailure',
  'NotAuthorized',
  'InvalidClientTokenId',
  'ExpiredToken',
  'ExpiredTokenException',
]);

/** The error code an AWS SDK v3 error carries (`name`, or `Code` for some XML services). */
export function awsErrorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { name?: unknown; Code?: unknown; code?: unknown };
  for (const c of [e.Code, e.code, e.name]) if (typeof c === 'string' && c !== 'Error') return c;
  return undefined;
}

/**
 * Whether an error came out of an AWS SDK v3 call. A service exception carries `$fault` and
 * `$metadata`; the SDK's retry layer puts `$metadata` on anything else a call fails with once its
 * attempts are spent (a reset connection, a timeout, an HTML error page it could not parse). A
 * TypeError in our own code, a schema's ZodError or a thrown string carries neither.
 */
export function isAwsSdkError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { $metadata?: unknown; $fault?: unknown };
  return (
    (typeof e.$metadata === 'object' && e.$metadata !== null) ||
    e.$fault === 'client' ||
    e.$fault === 'server'
  );
}

export function isThrottling(error: unknown): boolean {
  const code = awsErrorCode(error);
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return (code !== undefined && throttlingCodes.has(code)) || status === 429;
}

/** What was thrown, in one line: `TypeError: x is undefined`, or the thrown value itself. */
function summary(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  const message = (error as { message?: unknown } | null | undefined)?.message;
  return oneLine(typeof message === 'string' ? message : String(error), 1000);
}

/**
 * Turns anything a step threw into one of our named errors, keeping the original as `cause`, so that
 * the ASL can route on the name and the case can record what AWS said. Only an AWS SDK error becomes
 * one of the Aws* errors; anything else is a bug in Cordon (`InternalError`, which nothing retries),
 * named after `step` when the caller knows it.
 */
export function normaliseError(error: unknown, step?: string): CordonError {
  if (error instanceof CordonError) return error;
  if (!isAwsSdkError(error)) {
    const where = step ? `${oneLine(step, 80)} failed on` : 'Cordon failed on';
    return new InternalError(
      oneLine(`${where} an internal error (a bug, not an AWS fault): ${summary(error)}`, 1000),
      {
        cause: error,
      },
    );
  }
  const code = awsErrorCode(error) ?? 'UnknownError';
  const message = error instanceof Error ? error.message : String(error);
  if (isThrottling(error))
    return new AwsThrottlingError(`AWS throttled the call (${code})`, { cause: error });
  if (accessDeniedCodes.has(code)) return new AwsAccessDeniedError(`${code}: ${message}`, { cause: error });
  return new AwsServiceError(`${code}: ${message}`, { cause: error });
}

/** A short, single-line description of an error, safe for logs, tags and notifications. */
export function describeError(error: unknown): { name: string; message: string } {
  const e = normaliseError(error);
  return { name: e.name, message: oneLine(e.message, 500) };
}
