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
export async function previousContainment(
  cases: Pick<CaseStore, 'get'>,
  own: (Pick<CaseRecord, 'changes'> & Partial<Pick<CaseRecord, 'caseId' | 'openedAt'>>) | undefined,
  recent: readonly CaseRecord[] = [],
): Promise<CaseRecord | undefined> {
  const previousCaseId = protectAction.read(own)?.previousCaseId;
  if (previousCaseId) {
    const previous = await cases.get(previousCaseId);
    return previous && previous.status !== 'released' ? previous : undefined;
  }
  const contained = (r: CaseRecord) => containmentKeys.some((k) => r.changes?.[k] !== undefined);
  const earlier = recent.find(
    (r) =>
      r.caseId !== own?.caseId && (own?.openedAt === undefined || r.openedAt < own.openedAt) && contained(r),
  );
  return earlier && earlier.status !== 'released' ? earlier : undefined;
}
