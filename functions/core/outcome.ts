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

/** The parts of the workflow state that decide the outcome (see state.ts for where each lands). */
export interface OutcomeState {
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
 * Summarises what the workflow did, step by step, and decides the outcome: `failed` when the instance
 * is not known to be contained (isolation or revocation failed, or never ran), `partial` when it is
 * contained but something else is missing (protection, triage, the load balancers, a snapshot, the
 * memory), `completed` when everything planned was done.
 */
export function summarise(state: OutcomeState): { outcome: Outcome; steps: StepSummary[] } {
  const steps: StepSummary[] = [];
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
  if (!containment) {
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
  const contained =
    containment?.isolate?.status === 'succeeded' && containment.revoke?.status === 'succeeded';
  if (!contained) return { outcome: 'failed', steps };
  const complete =
    steps.every((s) => s.status === 'succeeded') && memory?.status !== undefined && disk !== undefined;
  return { outcome: complete ? 'completed' : 'partial', steps };
}
