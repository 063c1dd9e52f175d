/**
 * Every error a Cordon step throws on purpose. The class name is the `errorType` that Step Functions
 * sees, so it is what the ASL's `Retry` and `Catch` match: keep these names and the ASL in step (a
 * template test checks that every name the ASL mentions is exported here).
 */
export class CordonError extends Error {
  /** True when trying the same call again later may succeed (throttling, eventual consistency). */
  readonly retryable: boolean = false;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The trigger is not something Cordon acts on. Not a failure: Intake turns it into a `rejected` case. */
export class RejectedInputError extends CordonError {
  constructor(
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(reason, options);
  }
}

/** A step's input does not have the shape the step needs: a wiring bug or a forged execution input. */
export class InvalidStepInputError extends CordonError {}
/** A required environment variable is missing or malformed: the function cannot start. */
export class ConfigurationError extends CordonError {}
export class InstanceNotFoundError extends CordonError {}
export class CaseNotFoundError extends CordonError {}
/** Another case already holds this instance. */
export class CaseConflictError extends CordonError {}
export class AssumeRoleError extends CordonError {}
export class SsmUnavailableError extends CordonError {}
export class MemoryCaptureError extends CordonError {}
export class MemoryCaptureTimeoutError extends CordonError {}
export class SnapshotError extends CordonError {}
export class SnapshotTimeoutError extends CordonError {}
export class ContainmentError extends CordonError {}
export class IsolationVerificationError extends CordonError {}
export class RevocationError extends CordonError {}
export class ReleaseRefusedError extends CordonError {}
/** Evidence that is not what it claims to be: a hash, a size or a lock that does not match. */
export class EvidenceIntegrityError extends CordonError {}
/** A write would have replaced evidence that already exists with different bytes. */
export class EvidenceConflictError extends CordonError {}
export class SigningError extends CordonError {}
export class NotificationError extends CordonError {}
/** A network-ACL block could not be put in place (or taken out) where it was asked for. */
export class NetworkBlockError extends CordonError {}

/** AWS answered "slow down"; the SDK's own retries are spent. The ASL retries these with backoff. */
export class AwsThrottlingError extends CordonError {
  override readonly retryable = true;
}
/** AWS refused the call for lack of permission: retrying will not help, fixing the role will. */
export class AwsAccessDeniedError extends CordonError {}
/** Any other AWS failure that reached a step unhandled: a 5xx, a timeout, an unexpected service error. */
export class AwsServiceError extends CordonError {
  override readonly retryable = true;
}

/** Names the ASL may match. Exported once so that tests can hold the ASL and the code together. */
export const errorNames = [
  'RejectedInputError',
  'InvalidStepInputError',
  'ConfigurationError',
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

export function isThrottling(error: unknown): boolean {
  const code = awsErrorCode(error);
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return (code !== undefined && throttlingCodes.has(code)) || status === 429;
}

/**
 * Turns anything a step threw into one of our named errors, keeping the original as `cause`, so that
 * the ASL can route on the name and the case can record what AWS said.
 */
export function normaliseError(error: unknown): CordonError {
  if (error instanceof CordonError) return error;
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

/**
 * What a reader of text from outside must never receive raw: control characters (C0 with the ANSI
 * escape, DEL, and C1 with its one-byte CSI), line and paragraph separators, and format characters,
 * which are invisible yet reorder (bidirectional overrides and isolates) or hide (zero-width) what a
 * person reads.
 */
const unsafeRuns = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+/gu;
/** A surrogate half without its other half is not a character: encoders replace or reject it. */
const loneSurrogates = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Cuts `text` to `max` characters, marking the cut, never between the two halves of a surrogate pair. */
export function capLength(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, Math.max(0, max - 1));
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/**
 * Makes a string from outside safe for a log line, a tag, a notification or a terminal: every run of
 * control, separator or format characters (ANSI escapes, newlines, bidirectional overrides, NUL)
 * becomes one space, a lone surrogate becomes U+FFFD, and the length is capped.
 */
export function oneLine(text: string, max = 200): string {
  const clean = text.replace(loneSurrogates, '\uFFFD').replace(unsafeRuns, ' ').trim();
  return capLength(clean, max);
}

/** One character as a visible escape: `\n`, `\u001b`, `\u{e0001}`. */
export function escapeCharacter(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  const code = c.codePointAt(0) ?? 0;
  return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Control, separator and format characters, and lone surrogates (with the `u` flag, `\p{Cs}` matches only those). */
const invisibleCharacter = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/gu;

/**
 * Shows what `oneLine` would hide: every control, separator or format character and lone surrogate is
 * written as a visible escape (`\u001b[2J`), so that a reader sees that it was there, and nothing acts on it.
 */
export function showInvisible(text: string): string {
  return text.replace(invisibleCharacter, escapeCharacter);
}
