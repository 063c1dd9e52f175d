import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { z } from 'zod';
import { type Case, caseSchema, newCaseId } from '../../core/case.js';
import type { CaseStore, OpenResult, Recorder } from '../../core/cases.js';
import { isTransient } from '../../core/containment.js';
import { type CordonError, normaliseError } from '../../core/errors.js';
import { emitCaseEvent } from '../../core/events.js';
import { type EvidenceStore, evidenceJson } from '../../core/evidence.js';
import { type SecurityHubDeps, securityHubFindingOf, tellSecurityHub } from '../../core/securityhub.js';
import type { IntakeResult } from '../../core/state.js';
import { oneLine } from '../../core/text.js';
import { type IntakeConfig, intakeSettings, normaliseTrigger } from './normalise.js';

export const intakeStep = 'intake-finding';

/**
 * What the "Intake Finding" state passes: the execution input as it came (`event`, any JSON at all:
 * judging it is this step's job) and the execution's ARN.
 */
export const intakeInputSchema = z.object({
  event: z.unknown(),
  executionArn: z.string().min(1).max(2048).optional(),
});
export type IntakeInput = z.infer<typeof intakeInputSchema>;

export interface IntakeDeps {
  cases: Pick<CaseStore, 'open' | 'join' | 'get' | 'setStatus' | 'unlock'>;
  evidence: Pick<EvidenceStore, 'put'>;
  recorder: (caseId: string, step: string) => Recorder;
  config: IntakeConfig;
  now: () => Date;
  /** Where the case's "opened" event goes; one that cannot be sent is recorded and the case goes on. */
  events: EventBridgeClient;
  /** Where the trigger's finding is marked NOTIFIED (functions/core/securityhub.ts); never fails Intake. */
  securityHub?: SecurityHubDeps;
}

/**
 * Turns the trigger into a case, or refuses it without a single AWS call. An instance that already has
 * an open case gets no second one: the trigger joins the open case and is recorded on its timeline.
 */
export async function intakeFinding(input: IntakeInput, deps: IntakeDeps): Promise<IntakeResult> {
  const now = deps.now();
  const normalised = normaliseTrigger(input.event, intakeSettings(deps.config), now);
  if ('rejected' in normalised) return { intake: { decision: 'rejected', reason: normalised.rejected } };

  const inSecurityHub = securityHubFindingOf(input.event, {
    findingId: normalised.ok.trigger.findingId,
    accountId: normalised.ok.accountId,
    region: normalised.ok.region,
  });
  const candidate: Case = {
    caseId: newCaseId(normalised.ok.instanceId, now),
    ...normalised.ok,
    ...(input.executionArn ? { executionArn: input.executionArn } : {}),
    ...(inSecurityHub ? { securityHub: inSecurityHub } : {}),
  };
  let opened: OpenResult;
  try {
    opened = await deps.cases.open(candidate);
  } catch (error) {
    throw renamed(
      error,
      `No case could be opened for ${candidate.instanceId} in ${candidate.accountId} ${candidate.region}${findingOf(candidate)}; nothing was done to the instance`,
    );
  }
  if (opened.opened) {
    const recorder = deps.recorder(candidate.caseId, intakeStep);
    try {
      await recorder.note('case opened', 'info', {
        target: candidate.instanceId,
        detail: summary(candidate),
      });
      await storeTrigger(deps, recorder, input.event);
    } catch (error) {
      throw await abandon(deps, candidate, error);
    }
    await Promise.all([
      emitCaseEvent(candidate, 'opened', { events: deps.events, recorder, now: deps.now }),
      markFinding(deps, recorder, candidate.caseId, 'opened', candidate.securityHub),
    ]);
    return {
      intake: {
        decision: 'accepted',
        reason: `ACCEPTED: case ${candidate.caseId} opened for ${candidate.instanceId} in ${candidate.accountId} ${candidate.region}`,
        caseId: candidate.caseId,
      },
      case: candidate,
    };
  }

  const own = await ownEarlierCase(deps, opened.existingCaseId, input.executionArn);
  if (own) {
    // Step Functions retried this step after the case was opened (a later write failed): finish the
    // same case instead of reporting the execution's own case as a duplicate and stopping.
    const recorder = deps.recorder(own.caseId, intakeStep);
    try {
      await recorder.note('intake retried', 'info', {
        target: own.instanceId,
        detail: 'same execution; trigger.json checked',
      });
      await storeTrigger(deps, recorder, input.event);
    } catch (error) {
      throw await abandon(deps, own, error);
    }
    // The earlier attempt failed before its event: this one says the case is open.
    await Promise.all([
      emitCaseEvent(own, 'opened', { events: deps.events, recorder, now: deps.now }),
      markFinding(deps, recorder, own.caseId, 'opened', own.securityHub),
    ]);
    return {
      intake: {
        decision: 'accepted',
        reason: `ACCEPTED: case ${own.caseId} was opened by an earlier attempt of this execution`,
        caseId: own.caseId,
      },
      case: own,
    };
  }

  const joined = await deps.cases.join(opened.existingCaseId, candidate.trigger.findingId, inSecurityHub);
  const recorder = deps.recorder(opened.existingCaseId, intakeStep);
  await Promise.all([
    recorder.note('finding joined', 'info', { target: candidate.instanceId, detail: joinDetail(candidate) }),
    // Only a finding new to the case: an update GuardDuty re-sends must not undo what the case's end set.
    joined ? markFinding(deps, recorder, opened.existingCaseId, 'joined', inSecurityHub) : undefined,
  ]);
  return {
    intake: {
      decision: 'duplicate',
      reason: `DUPLICATE: ${candidate.instanceId} already has the open case ${opened.existingCaseId}; this trigger joined it`,
      caseId: opened.existingCaseId,
    },
  };
}

/** NOTIFIED, with the case's note, on the finding in Security Hub; what happened goes on the timeline. */
async function markFinding(
  deps: IntakeDeps,
  recorder: Recorder,
  caseId: string,
  kind: 'opened' | 'joined',
  finding: Case['securityHub'],
): Promise<void> {
  if (!deps.securityHub || !finding) return;
  await tellSecurityHub([finding], { caseId, news: { kind } }, { ...deps.securityHub, recorder });
}

/** The same error (same name, so the ASL retries it or not as before), saying what it stopped. */
function renamed(error: unknown, what: string): CordonError {
  const e = normaliseError(error);
  const Named = e.constructor as new (message: string, options?: ErrorOptions) => CordonError;
  return new Named(oneLine(`${what}: ${e.name}: ${e.message}`, 1800), { cause: error });
}

const findingOf = (c: Case) => (c.trigger.findingId ? ` (finding ${c.trigger.findingId})` : '');

/**
 * The case is open but Intake cannot finish it. A transient failure leaves it open: Step Functions
 * retries this step, which then finishes the same case. A failure for good would leave the case
 * holding the instance with nobody working on it, every later finding joining it as a duplicate: so
 * the case is closed as failed and the instance freed, and the error says which of the two happened.
 */
async function abandon(deps: IntakeDeps, c: Case, error: unknown): Promise<CordonError> {
  const opened = `Case ${c.caseId} was opened for ${c.instanceId} in ${c.accountId} ${c.region}${findingOf(c)}`;
  if (isTransient(error)) {
    return renamed(
      error,
      `${opened} but not finished; it stays open for Intake's retry, and nothing was done to the instance`,
    );
  }
  const closed = await deps.cases
    .setStatus(c.caseId, 'failed', 'failed')
    .then(() => deps.cases.unlock(c))
    .then(
      () => true,
      () => false,
    );
  return renamed(
    error,
    closed
      ? `${opened}, then closed as failed and the instance freed for the next finding; nothing was done to the instance`
      : `${opened} and could not be closed: it still holds the instance, so later findings on it join this case until its lock (${c.accountId} ${c.region} ${c.instanceId}) is removed; nothing was done to the instance`,
  );
}

/** The trigger as received, before any normalisation: the first artifact of the chain of custody. */
async function storeTrigger(deps: IntakeDeps, recorder: Recorder, event: unknown): Promise<void> {
  await deps.evidence.put(recorder, 'trigger.json', evidenceJson(event), { contentType: 'application/json' });
}

async function ownEarlierCase(
  deps: IntakeDeps,
  existingCaseId: string,
  executionArn: string | undefined,
): Promise<Case | undefined> {
  if (!executionArn) return undefined;
  const existing = await deps.cases.get(existingCaseId);
  if (existing?.executionArn !== executionArn) return undefined;
  const parsed = caseSchema.safeParse(existing);
  return parsed.success ? parsed.data : undefined;
}

/** Short fields first: the timeline caps a detail at 1,000 characters and finding text can be long. */
function summary(c: Case): string {
  const t = c.trigger;
  return [
    `${t.shape} from ${t.requestedBy}`,
    t.severity === undefined ? undefined : `severity ${t.severity}`,
    t.count === undefined ? undefined : `count ${t.count}`,
    t.sample ? 'sample finding' : undefined,
    `${t.remoteIps.length} remote IP(s)`,
    t.findingType ? `type ${t.findingType}` : undefined,
    t.findingId ? `finding ${t.findingId}` : undefined,
  ]
    .filter((part) => part !== undefined)
    .join('; ');
}

function joinDetail(c: Case): string {
  const t = c.trigger;
  return [
    `${t.shape} from ${t.requestedBy}`,
    t.count === undefined ? undefined : `count ${t.count}`,
    t.severity === undefined ? undefined : `severity ${t.severity}`,
    t.findingType ? `type ${t.findingType}` : undefined,
    `finding ${t.findingId ?? '(none)'}`,
  ]
    .filter((part) => part !== undefined)
    .join('; ');
}
