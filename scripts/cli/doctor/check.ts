import { explain } from '../errors.js';

export type CheckStatus = 'pass' | 'fail' | 'unknown';

/** One readiness check: what was looked at, the verdict, a one-line detail and how to fix a gap. */
export interface Check {
  check: string;
  /** A region, a VPC, a bucket: what the verdict is about. */
  scope: string;
  status: CheckStatus;
  detail: string;
  fix: string;
  /** The resources the detail is about (instances without SSM, say), in full for --json. */
  resources?: string[];
}

/** What a check is and what it is about, before any verdict. */
export type CheckBase = Pick<Check, 'check' | 'scope'>;

export const why = (error: unknown) => explain(error).message;

export const list = (ids: string[], max = 8) =>
  ids.length <= max ? ids.join(', ') : `${ids.slice(0, max).join(', ')} and ${ids.length - max} more`;

/** The fix for a check the caller's identity may not make: the IAM actions (and where) to allow. */
export const allow = (...actions: string[]) => `Allow ${actions.join(' and ')}.`;

/** A check that could not look: UNKNOWN, never a pass, with AWS's reason and what would let it look. */
export function couldNotCheck(base: CheckBase, error: unknown, fix: string, doing = 'check'): Check {
  return { ...base, status: 'unknown', detail: `could not ${doing}: ${why(error)}`, fix };
}

/**
 * Runs one check. Whatever stops it (a denied call, an API the emulator lacks, a network error) makes
 * the check UNKNOWN rather than failed: doctor says what it could not see instead of guessing, and
 * `fix` says what would let it look, usually `allow(...)` with the actions the check calls. A check
 * that recognises an error as a verdict (Security Hub not enabled) catches that one itself.
 */
export async function guarded<T extends Check | Check[]>(
  base: CheckBase,
  fix: string,
  run: () => Promise<T>,
): Promise<T | Check> {
  try {
    return await run();
  } catch (error) {
    return couldNotCheck(base, error, fix);
  }
}
