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

/** The parts of the workflow state that decide the outcome (see state.ts for where each lands). */
export interface OutcomeState {
  triage?: { plan?: { memory?: string; reason?: string } };
  protect?: unknown;
  response?: {
    contain?: { status?: string; error?: ErrorInfo; isolate?: { warnings?: string[] } };
    disk?: { status?: string; error?: ErrorInfo };
  };
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
 * is not known to be contained (a step before containment failed, or containment itself did),
 * `partial` when it is contained but some evidence is missing (a capture failed or was skipped),
 * `completed` when everything planned was done.
 */
export function summarise(state: OutcomeState): { outcome: Outcome; steps: StepSummary[] } {
  const steps: StepSummary[] = [];
  steps.push(
    state.triage
      ? { name: 'triage', status: 'succeeded' }
      : { name: 'triage', status: 'failed', reason: why(state.error) },
  );
  if (state.triage) {
    steps.push(
      state.protect
        ? { name: 'protect', status: 'succeeded' }
        : { name: 'protect', status: 'failed', reason: why(state.error) },
    );
  }
  const contain = state.response?.contain;
  const disk = state.response?.disk;
  if (contain) {
    // Isolation that held but left something in place (an Elastic IP still associated, an ACL deny not
    // added) is still isolation; the notification says what was left, so nobody believes otherwise.
    const warnings = contain.isolate?.warnings ?? [];
    steps.push(
      contain.status === 'succeeded'
        ? {
            name: 'contain',
            status: 'succeeded',
            ...(warnings.length
              ? { reason: oneLine(`with warnings: ${warnings.join('; ')}`, reasonLength) }
              : {}),
          }
        : { name: 'contain', status: 'failed', reason: why(contain.error) },
    );
  } else if (state.protect) {
    steps.push({
      name: 'contain',
      status: 'failed',
      reason: state.error ? why(state.error) : 'containment did not run',
    });
  }
  if (disk) {
    steps.push(
      disk.status === 'succeeded'
        ? { name: 'snapshots', status: 'succeeded' }
        : { name: 'snapshots', status: 'failed', reason: why(disk.error) },
    );
  }
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
  const contained = contain?.status === 'succeeded';
  if (!contained || (state.error && !state.response)) return { outcome: 'failed', steps };
  const complete =
    disk?.status === 'succeeded' &&
    memory?.status !== undefined &&
    memory.status !== 'failed' &&
    memory.status !== 'skipped';
  return { outcome: complete ? 'completed' : 'partial', steps };
}
