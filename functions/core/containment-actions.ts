/**
 * Every containment action, in the order Release restores them. The containment steps each apply one
 * (`step`) and save its changes under its key; Release reads each action's changes from the case and
 * restores them. A case counts as having recorded containment when it holds changes under any of their
 * keys (`containmentKeys`, which the steps' `previousContainment` goes by without importing Release's
 * restores; `test/unit/core/containment-actions.test.ts` holds the two together).
 * Adding an action means one module in `actions/`, its entry here, its step's IAM and its tests.
 */

import type { ContainmentAction } from './actions/action.js';
import { isolateAction } from './actions/isolate.js';
import { protectAction } from './actions/protect.js';
import { revokeAction } from './actions/revoke.js';

/**
 * Release's order. Credentials first, so that by the time the interfaces reach anything again the
 * instance holds its own profile and containment's deny is narrowed to the sessions issued before the
 * release: what runs on it comes back with working credentials of its own role. Protection last: it
 * puts the instance back in its Auto Scaling group and its load balancers, which must find it
 * answering; an instance still in the isolation group fails their health checks, and the group would
 * replace and terminate it.
 */
export const containmentActions: readonly ContainmentAction[] = [revokeAction, isolateAction, protectAction];
