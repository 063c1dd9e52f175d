import type { ErrorName } from './errors.js';

/**
 * What any step can throw, whatever its logic: `stepHandler` refuses input its schema rejects, the
 * configuration fails by name, and `normaliseError` turns everything else into a bug or an AWS error.
 */
export const everyStep = [
  'InvalidStepInputError',
  'ConfigurationError',
  'InternalError',
  'AwsThrottlingError',
  'AwsAccessDeniedError',
  'AwsServiceError',
] as const satisfies readonly ErrorName[];

/**
 * The error names each Lambda function (its `functions:` key in serverless.yml) can throw, read from
 * the source: the names its code constructs, in its own folder and in every shared module it imports,
 * plus those of the shared objects its handler takes from the step context (`ctx.clientsFor` brings
 * AssumeRoleError). Read per module, not per path through the code, so a name can appear for a module
 * imported for something else (intake-finding imports shared/containment.ts for `isTransient` only, and
 * so lists ContainmentError): more than a step throws, never less. test/unit/step-errors.test.ts keeps
 * this true; test/template/workflow-contract.test.ts holds the ASL to it.
 */
export const stepErrors = {
  'intake-finding': [
    ...everyStep,
    'AssumeRoleError',
    'RejectedInputError',
    'ContainmentError',
    'EvidenceConflictError',
    'EvidenceIntegrityError',
  ],
  'triage-instance': [
    ...everyStep,
    'AssumeRoleError',
    'ContainmentError',
    'InstanceNotFoundError',
    'EvidenceConflictError',
    'EvidenceIntegrityError',
  ],
  'protect-instance': [...everyStep, 'AssumeRoleError', 'ContainmentError', 'InstanceNotFoundError'],
  'isolate-instance': [...everyStep, 'AssumeRoleError', 'ContainmentError', 'IsolationVerificationError'],
  'revoke-credentials': [...everyStep, 'AssumeRoleError', 'ContainmentError', 'RevocationError'],
  'snapshot-volumes': [
    ...everyStep,
    'AssumeRoleError',
    'SnapshotError',
    'MemoryCaptureError',
    'EvidenceConflictError',
    'EvidenceIntegrityError',
  ],
  'check-snapshots': [
    ...everyStep,
    'AssumeRoleError',
    'SnapshotError',
    'SnapshotTimeoutError',
    'MemoryCaptureError',
    'EvidenceConflictError',
    'EvidenceIntegrityError',
  ],
  'capture-memory': [
    ...everyStep,
    'AssumeRoleError',
    'MemoryCaptureError',
    'EvidenceConflictError',
    'EvidenceIntegrityError',
  ],
  'check-memory': [
    ...everyStep,
    'AssumeRoleError',
    'MemoryCaptureError',
    'MemoryCaptureTimeoutError',
    'EvidenceConflictError',
    'EvidenceIntegrityError',
  ],
  'verify-memory': [...everyStep, 'MemoryCaptureError', 'EvidenceConflictError', 'EvidenceIntegrityError'],
  'archive-evidence': [...everyStep, 'SigningError', 'EvidenceConflictError', 'EvidenceIntegrityError'],
  'notify-outcome': [...everyStep, 'NotificationError'],
  'request-approval': [
    ...everyStep,
    'NotificationError',
    'CaseNotFoundError',
    'ApprovalNotWaitingError',
    'ApprovalWindowClosedError',
    'ApprovalAlreadyDecidedError',
    'ApprovalTokenMismatchError',
    'ApprovalDeliveryError',
  ],
  'hold-trigger': [...everyStep],
  'release-instance': [
    ...everyStep,
    'AssumeRoleError',
    'CaseNotFoundError',
    'ContainmentError',
    'ReleaseRefusedError',
    // A role with no room for the narrowed deny (core/denies.ts); the release reports it per restore.
    'RevocationError',
  ],
  // The finding reader (core/readers) refuses with RejectedInputError, which blockFromFinding turns
  // into a refused result; core/blocks.ts imports it for Unblock IP and Expire Blocks as well.
  'block-ip': [
    ...everyStep,
    'AssumeRoleError',
    'CaseNotFoundError',
    'NetworkBlockError',
    'RejectedInputError',
  ],
  'unblock-ip': [
    ...everyStep,
    'AssumeRoleError',
    'CaseNotFoundError',
    'NetworkBlockError',
    'RejectedInputError',
  ],
  'expire-blocks': [
    ...everyStep,
    'AssumeRoleError',
    'CaseNotFoundError',
    'NetworkBlockError',
    'RejectedInputError',
  ],
  'policy-violation': [...everyStep, 'AssumeRoleError'],
  'ids-alert': [...everyStep, 'AssumeRoleError'],
  'ids-alert-stop': [...everyStep, 'AssumeRoleError'],
  'credential-intake': [
    ...everyStep,
    'RejectedInputError',
    'EvidenceConflictError',
    'EvidenceIntegrityError',
  ],
  'deactivate-access-key': [...everyStep, 'AssumeRoleError'],
  'quarantine-principal': [...everyStep, 'AssumeRoleError'],
  'revoke-sessions': [...everyStep, 'AssumeRoleError'],
  'start-instance-response': [...everyStep],
  'collect-activity': [...everyStep, 'AssumeRoleError', 'EvidenceConflictError', 'EvidenceIntegrityError'],
  'credential-archive': [...everyStep, 'SigningError', 'EvidenceConflictError', 'EvidenceIntegrityError'],
  'credential-notify': [...everyStep, 'NotificationError'],
} as const satisfies Record<string, readonly ErrorName[]>;

export type FunctionKey = keyof typeof stepErrors;
