import type { Outcome } from './case.js';
import { oneLine } from './text.js';

/** A step as the case reports it: what ran, and for what did not, why. */
export interface StepSummary {
  name: string;
  status: 'succeeded' | 'failed' | 'skipped';
  reason?: string;
}

interface ErrorInfo {
  Error?: string;
  Cause?: string;
}

/** What a branch of a Parallel state leaves: its step's result, or the error its Catch kept. */
interface Branch {
  status?: string;
  error?: ErrorInfo;
  result?: { warnings?: string[] };
}

/**
 * Whether and why a case whose response was `approve` or `evidence-only` went on to containment
 * (`$.approval`, from Evidence Before Containment): a person's answer (functions/core/approval.ts), the
 * policy's, or the stage's `approvalTimeoutAction` when nobody answered or nobody could be asked.
 */
export interface ApprovalOutcome {
  decision?: string;
  goesOn?: string;
  by?: string;
  at?: string;
  reason?: string;
  rule?: string;
  seconds?: number;
  error?: ErrorInfo;
}

/** The parts of the workflow state that decide the outcome (see state.ts for where each lands). */
export interface OutcomeState {
  case?: { response?: { action?: string; rule?: string } };
  approval?: ApprovalOutcome;
  triage?: { plan?: { memory?: string; reason?: string } };
  containment?: { protect?: Branch; isolate?: Branch; revoke?: Branch };
  response?: { loadBalancers?: Branch; disk?: Branch };
  memory?: { status?: string; reason?: string; error?: ErrorInfo };
  error?: ErrorInfo;
}

/** How much of a failure's cause the case keeps: enough for a step's "Applied: … Not applied: …". */
export const reasonLength = 1500;

/**
 * Why a step failed, from the `{Error, Cause}` a Catch recorded. On AWS the Cause of a Lambda error is
 * the JSON the runtime reports (`errorType`, `errorMessage`, `trace`): only the message is the reason.
 */
export function why(error: ErrorInfo | undefined): string {
  if (!error) return 'no reason recorded';
  let cause = String(error.Cause ?? '');
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed?.errorMessage === 'string') cause = parsed.errorMessage;
  } catch {
    // Not JSON: the cause is the message itself (a Fail state's Cause, the local runner's errors).
  }
  return oneLine(`${error.Error ?? 'Error'}: ${cause}`, reasonLength);
}

/**
 * Why a case was not contained, when that was the decision (the policy's, a person's rejection, the
 * timeout's action): one sentence naming the rule and who decided. Undefined when containment was meant.
 */
export function notContainedBecause(state: OutcomeState): string | undefined {
  const a = state.approval;
  if (a?.goesOn !== 'evidence-only') return undefined;
  const rule = a.rule ?? state.case?.response?.rule ?? 'default';
  switch (a.decision) {
    case 'not-asked':
      return `the response policy (rule ${rule}) asks for evidence only`;
    case 'rejected':
      return `containment was rejected by ${a.by ?? 'an unrecorded caller'} at ${a.at ?? 'an unrecorded time'} (rule ${rule})${a.reason ? `: ${a.reason}` : ''}`;
    case 'timed-out':
      return `nobody answered the approval request within ${a.seconds ?? 'its'} seconds (rule ${rule}); the stage's approvalTimeoutAction is evidence-only`;
    default:
      return `the approval request could not be made (${why(a.error)}); the stage's approvalTimeoutAction is evidence-only`;
  }
}

/** The approval as a step of the case: who decided what, and when. */
function approvalStep(a: ApprovalOutcome): StepSummary {
  switch (a.decision) {
    case 'approved':
    case 'rejected':
      return {
        name: 'approval',
        status: 'succeeded',
        reason: oneLine(
          `${a.decision} by ${a.by ?? 'an unrecorded caller'} at ${a.at ?? 'an unrecorded time'}${a.reason ? `: ${a.reason}` : ''}`,
          reasonLength,
        ),
      };
    case 'timed-out':
      return {
        name: 'approval',
        status: 'skipped',
        reason: `timed out after ${a.seconds ?? '?'} s without an answer; went on as ${a.goesOn ?? 'evidence-only'}`,
      };
    case 'not-asked':
      return { name: 'approval', status: 'skipped', reason: 'not asked: the policy says evidence only' };
    default:
      return {
        name: 'approval',
        status: 'failed',
        reason: `could not be requested (${why(a.error)}); went on as ${a.goesOn ?? 'evidence-only'}`,
      };
  }
}

/**
 * Summarises what the workflow did, step by step, and decides the outcome: `failed` when the instance
 * is not known to be contained (isolation or revocation failed, or never ran), `partial` when it is
 * contained but something else is missing (protection, triage, the load balancers, a snapshot, the
 * memory), `completed` when everything planned was done. A case not to be contained (evidence only, by
 * policy, a person's rejection or the approval timeout's action) is judged on its evidence alone:
 * `completed` when triage, snapshots and memory are all there, `failed` when triage failed, `partial`
 * otherwise; its `contain` step is `skipped`, saying why.
 */
export function summarise(state: OutcomeState): { outcome: Outcome; steps: StepSummary[] } {
  const steps: StepSummary[] = [];
  if (state.approval) steps.push(approvalStep(state.approval));
  const notContained = notContainedBecause(state);
  const branch = (name: string, b: Branch | undefined): StepSummary | undefined => {
    if (!b) return undefined;
    if (b.status !== 'succeeded') return { name, status: 'failed', reason: why(b.error) };
    // Isolation that held but left something in place (an Elastic IP still associated, an ACL deny not
    // added) is still isolation; the notification says what was left, so nobody believes otherwise.
    const warnings = b.result?.warnings ?? [];
    return {
      name,
      status: 'succeeded',
      ...(warnings.length ? { reason: oneLine(`with warnings: ${warnings.join('; ')}`, reasonLength) } : {}),
    };
  };
  const { containment, response } = state;
  if (containment) {
    for (const [name, b] of [
      ['protect', containment.protect],
      ['isolate', containment.isolate],
      ['revoke', containment.revoke],
    ] as const) {
      const step = branch(name, b);
      if (step) steps.push(step);
    }
  }
  steps.push(
    state.triage
      ? { name: 'triage', status: 'succeeded' }
      : { name: 'triage', status: 'failed', reason: why(state.error) },
  );
  if (notContained) {
    steps.push({ name: 'contain', status: 'skipped', reason: `not contained: ${notContained}` });
  } else if (!containment) {
    steps.push({
      name: 'contain',
      status: 'failed',
      reason: state.triage && state.error ? why(state.error) : 'containment did not run',
    });
  }
  const loadBalancers = branch('load balancers', response?.loadBalancers);
  if (loadBalancers) steps.push(loadBalancers);
  const disk = branch('snapshots', response?.disk);
  if (disk) steps.push(disk);
  const memory = state.memory;
  if (memory) {
    if (memory.status === 'failed')
      steps.push({ name: 'memory', status: 'failed', reason: why(memory.error) });
    else if (memory.status === 'skipped') {
      steps.push({
        name: 'memory',
        status: 'skipped',
        reason: memory.reason ?? state.triage?.plan?.reason ?? '',
      });
    } else steps.push({ name: 'memory', status: 'succeeded' });
  }
  // The approval is a decision, not an action: it never makes a case partial.
  const actions = steps.filter((s) => s.name !== 'approval' && !(notContained && s.name === 'contain'));
  const complete =
    actions.every((s) => s.status === 'succeeded') && memory?.status !== undefined && disk !== undefined;
  if (notContained) {
    if (!state.triage) return { outcome: 'failed', steps };
    return { outcome: complete ? 'completed' : 'partial', steps };
  }
  const contained =
    containment?.isolate?.status === 'succeeded' && containment.revoke?.status === 'succeeded';
  if (!contained) return { outcome: 'failed', steps };
  return { outcome: complete ? 'completed' : 'partial', steps };
}
