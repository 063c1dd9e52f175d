/**
 * Taking over an earlier case's containment: which case, if any, held the instance before this one and
 * was never released. Apart from the containment actions' list (`containment-actions.ts`), so that
 * Isolate and Revoke, which need it, do not carry Release's restores of every action.
 */
import { protectAction } from './actions/protect.js';
import type { CaseRecord, CaseStore } from './cases.js';
import { containmentKeys } from './containment.js';

/**
 * The earlier case whose containment this case takes over, provided it was never released: the one
 * named on the instance before Protect re-tagged it (saved by Protect), or else the latest earlier case
 * of the same instance that recorded containment changes (`recent`: the instance's cases, newest first,
 * as `CaseStore.byInstance` lists them). The second is what Isolate and Revoke go by when they run
 * beside Protect and read the case before Protect has saved. Its recorded originals are the instance's
 * true originals; what the instance shows now is Cordon's own work.
 */
/**
 * Whether a case may still hold containment of its instance: not once released, and never a case that
 * gathered evidence without containing (its only change is the case tag Mark For Evidence put on).
 */
export function mayHoldContainment(r: Pick<CaseRecord, 'status'>): boolean {
  return r.status !== 'released' && r.status !== 'evidence-only';
}

export async function previousContainment(
  cases: Pick<CaseStore, 'get'>,
  own: (Pick<CaseRecord, 'changes'> & Partial<Pick<CaseRecord, 'caseId' | 'openedAt'>>) | undefined,
  recent: readonly CaseRecord[] = [],
): Promise<CaseRecord | undefined> {
  const previousCaseId = protectAction.read(own)?.previousCaseId;
  if (previousCaseId) {
    const previous = await cases.get(previousCaseId);
    return previous && mayHoldContainment(previous) ? previous : undefined;
  }
  // A case that only marked the instance for its evidence is passed over: an earlier one may still hold it.
  const contained = (r: CaseRecord) =>
    r.status !== 'evidence-only' && containmentKeys.some((k) => r.changes?.[k] !== undefined);
  const earlier = recent.find(
    (r) =>
      r.caseId !== own?.caseId && (own?.openedAt === undefined || r.openedAt < own.openedAt) && contained(r),
  );
  return earlier && mayHoldContainment(earlier) ? earlier : undefined;
}
