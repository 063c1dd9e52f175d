import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { z } from 'zod';
import { type Case, caseSchema, newCaseId } from '../../core/case.js';
import type { CaseStore, OpenResult, Recorder } from '../../core/cases.js';
import { isTransient } from '../../core/containment.js';
import { type CordonError, describeError, normaliseError } from '../../core/errors.js';
import { emitCaseEvent } from '../../core/events.js';
import { type EvidenceStore, evidenceJson } from '../../core/evidence.js';
import type { Assessment, FirstLook } from '../../core/plan.js';
import { decideResponse, type PolicyDecision, type PolicyInput, readsTags } from '../../core/policy.js';
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
  /**
   * The first look at the instance (functions/core/plan.ts `assessInstance`), in its own account, with
   * the tags it read: reads only, so it is taken before the case opens.
   */
  assess: (c: Case) => Promise<FirstLook>;
  /** Where the trigger's finding is marked NOTIFIED (functions/core/securityhub.ts); never fails Intake. */
  securityHub?: SecurityHubDeps;
}

/**
 * Turns the trigger into a case, or refuses it without a single mutating AWS call. The response policy
 * (functions/core/policy.ts) is decided before the case opens, from the trigger and, when a rule reads
 * tags, the instance's tags as the first look read them: an `exempt` instance gets no case. An
 * instance that already has an open case gets no second one: the trigger joins the open case and is
 * recorded on its timeline, and the case keeps the response it opened with.
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
  // A policy without tag rules decides from the trigger alone, and the case opens while the first look
  // is still under way; one with tag rules waits for the look (reads only) before anything is written.
  const policy = deps.config.RESPONSE_POLICY;
  const tagFree = !readsTags(policy);
  let decision = tagFree ? decideFor(candidate, { known: {} }, deps) : undefined;
  if (decision?.response === 'exempt') return exempt(candidate, decision);
  const look = firstLook(deps, candidate);
  if (!decision) decision = decideFor(candidate, tagsOf(await look), deps);
  if (decision.response === 'exempt') return exempt(candidate, decision);
  candidate.response = { action: decision.response, rule: decision.rule };

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
    await recorder.note('case opened', 'info', { target: candidate.instanceId, detail: summary(candidate) });
    await recorder.note('response policy', 'info', {
      target: candidate.instanceId,
      detail: oneLine(`${decision.response} by rule "${decision.rule}": ${decision.reason}`, 900),
    });
    const assessment = await finishOpening(deps, candidate, recorder, input.event, look);
    return {
      intake: {
        decision: 'accepted',
        reason: `ACCEPTED: case ${candidate.caseId} opened for ${candidate.instanceId} in ${candidate.accountId} ${candidate.region}`,
        caseId: candidate.caseId,
      },
      case: candidate,
      ...(assessment ? { assessment } : {}),
    };
  }

  const own = await ownEarlierCase(deps, opened.existingCaseId, input.executionArn);
  if (own) {
    // Step Functions retried this step after the case was opened (a later write failed): finish the
    // same case instead of reporting the execution's own case as a duplicate and stopping.
    const recorder = deps.recorder(own.caseId, intakeStep);
    await recorder.note('intake retried', 'info', {
      target: own.instanceId,
      detail: 'same execution; trigger.json checked',
    });
    const assessment = await finishOpening(deps, own, recorder, input.event, look);
    return {
      intake: {
        decision: 'accepted',
        reason: `ACCEPTED: case ${own.caseId} was opened by an earlier attempt of this execution`,
        caseId: own.caseId,
      },
      case: own,
      ...(assessment ? { assessment } : {}),
    };
  }

  const isNew = await deps.cases.join(opened.existingCaseId, candidate.trigger.findingId, inSecurityHub);
  const joined = deps.recorder(opened.existingCaseId, intakeStep);
  await joined.note('finding joined', 'info', {
    target: candidate.instanceId,
    detail: joinDetail(candidate),
  });
  // Only a finding new to the case: an update GuardDuty re-sends must not undo what the case's end set.
  if (isNew) await markFinding(deps, joined, opened.existingCaseId, 'joined', inSecurityHub);
  await joined.flush();
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

/**
 * What follows the opening, all at once (one round): the trigger stored as the first piece of evidence,
 * the case's "opened" event and what the first look found (functions/core/plan.ts: it lets containment
 * start in the next step), that look having started before the case opened; then, beside the timeline
 * write, the finding marked NOTIFIED in Security Hub. Then the timeline is written: the case is not opened until its
 * record is. A store or timeline failure abandons the case as `abandon` says; the event and the look
 * never fail the intake (a look that cannot be taken leaves the plan to Triage).
 */
async function finishOpening(
  deps: IntakeDeps,
  c: Case,
  recorder: Recorder,
  event: unknown,
  look: Promise<FirstLook>,
): Promise<Assessment | undefined> {
  const kind = 'opened';
  const [stored, , assessment] = await Promise.allSettled([
    storeTrigger(deps, recorder, event),
    emitCaseEvent(c, 'opened', { events: deps.events, recorder, now: deps.now }),
    look.then((found) => recordLook(c, recorder, found)),
  ]);
  try {
    if (stored.status === 'rejected') throw stored.reason;
    // The finding is told of the case only once the trigger is kept: a case Intake abandons marks nothing.
    await Promise.all([recorder.flush(), markFinding(deps, recorder, c.caseId, kind, c.securityHub)]);
    await recorder.flush();
  } catch (error) {
    throw await abandon(deps, c, error, recorder);
  }
  return assessment.status === 'fulfilled' ? assessment.value : undefined;
}

/** The first look at the instance; never throws (a client that cannot be made included): a failed look says why. */
async function firstLook(deps: IntakeDeps, c: Case): Promise<FirstLook> {
  try {
    return await deps.assess(c);
  } catch (error) {
    const e = describeError(error);
    return { failed: `${e.name}: ${e.message}` };
  }
}

/** The tags the look read, or why there are none to judge by. */
function tagsOf(look: FirstLook): PolicyInput['tags'] {
  if (look.tags) return { known: look.tags };
  return { unread: 'failed' in look ? look.failed : 'the first look returned no tags' };
}

function decideFor(c: Case, tags: PolicyInput['tags'], deps: IntakeDeps): PolicyDecision {
  return decideResponse(
    { accountId: c.accountId, findingType: c.trigger.findingType, severity: c.trigger.severity, tags },
    deps.config.RESPONSE_POLICY,
  );
}

/** The refusal of an exempt instance: no case, no mutating call; the workflow notifies it. */
function exempt(c: Case, decision: PolicyDecision): IntakeResult {
  const by =
    decision.rule === 'default' ? "the response policy's default" : `response policy rule "${decision.rule}"`;
  return {
    intake: {
      decision: 'rejected',
      reason: oneLine(
        `EXEMPT: ${c.instanceId} in ${c.accountId} ${c.region} is exempt by ${by}${findingOf(c)}; no case was opened and nothing was done to the instance (${decision.reason})`,
        1800,
      ),
    },
  };
}

/** What the first look found, on the case's timeline; the Assessment for containment, without the tags. */
async function recordLook(c: Case, recorder: Recorder, look: FirstLook): Promise<Assessment | undefined> {
  if ('failed' in look) {
    await recorder.note('first look at the instance', 'skipped', {
      target: c.instanceId,
      detail: `the plan is left to Triage: ${look.failed}`,
    });
    return undefined;
  }
  const { tags: _, ...assessment } = look;
  for (const u of assessment.unavailable) {
    await recorder.note(u.api, 'skipped', { detail: `unavailable: ${u.reason}` });
  }
  await recorder.note('plan chosen', 'info', {
    target: c.instanceId,
    detail: `${assessment.plan.order}, memory ${assessment.plan.memory}: ${assessment.plan.reason}`,
  });
  return assessment;
}

const findingOf = (c: Case) => (c.trigger.findingId ? ` (finding ${c.trigger.findingId})` : '');

/**
 * The case is open but Intake cannot finish it. A transient failure leaves it open: Step Functions
 * retries this step, which then finishes the same case. A failure for good would leave the case
 * holding the instance with nobody working on it, every later finding joining it as a duplicate: so
 * the case is closed as failed and the instance freed, and the error says which of the two happened.
 */
async function abandon(deps: IntakeDeps, c: Case, error: unknown, recorder: Recorder): Promise<CordonError> {
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
  // Its "opened" event went out beside the trigger: say on the bus how the case ended.
  if (closed) await emitCaseEvent(c, 'failed', { events: deps.events, recorder, now: deps.now });
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
