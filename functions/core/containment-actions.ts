/**
 * Every containment action, in the order Release restores them. The containment steps each apply one
 * (`step`) and save its changes under its key; Release reads each action's changes from the case and
 * restores them; a case counts as having recorded containment when it holds any action's changes.
 * Adding an action means one module in `actions/`, its entry here, its step's IAM and its tests.
 */

import type { ContainmentAction } from './actions/action.js';
import { isolateAction } from './actions/isolate.js';
import { protectAction } from './actions/protect.js';
import { revokeAction } from './actions/revoke.js';
import type { CaseRecord, CaseStore } from './cases.js';

/**
 * Release's order. Credentials first, so that by the time the interfaces reach anything again the
 * instance holds its own profile and containment's deny is narrowed to the sessions issued before the
 * release: what runs on it comes back with working credentials of its own role. Protection last: it
 * puts the instance back in its Auto Scaling group and its load balancers, which must find it
 * answering; an instance still in the isolation group fails their health checks, and the group would
 * replace and terminate it.
 */
export const containmentActions: readonly ContainmentAction[] = [revokeAction, isolateAction, protectAction];

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
  const contained = (r: CaseRecord) => containmentActions.some((a) => r.changes?.[a.key] !== undefined);
  const earlier = recent.find(
    (r) =>
      r.caseId !== own?.caseId && (own?.openedAt === undefined || r.openedAt < own.openedAt) && contained(r),
  );
  return earlier && earlier.status !== 'released' ? earlier : undefined;
}
