import { refuseWith } from '../../core/readers/fields.js';

/**
 * The stable codes that start every refusal reason (`CODE: sentence`). Operators filter on them, so
 * renaming one is a breaking change. The readers in core/readers refuse with some of these too.
 */
export const refusalCodes = [
  'TOO_LARGE',
  'MALFORMED',
  'UNSUPPORTED_TRIGGER',
  'RESOURCE_NOT_INSTANCE',
  'FOREIGN_CUSTOM_ACTION',
  'MULTIPLE_FINDINGS',
  'MULTIPLE_INSTANCES',
  'ACCOUNT_MISMATCH',
  'SECURITYHUB_IMPORTED_DISABLED',
  'FINDING_ARCHIVED',
  'SAMPLE_FINDING',
  'SEVERITY_BELOW_MINIMUM',
  // The response policy exempts the instance (functions/core/policy.ts): Intake refuses it, naming the rule.
  'EXEMPT',
] as const;
export type RefusalCode = (typeof refusalCodes)[number];

/** Stops normalisation with a refusal, by one of Intake's codes. */
export const refuse: (code: RefusalCode, sentence: string) => never = refuseWith;
