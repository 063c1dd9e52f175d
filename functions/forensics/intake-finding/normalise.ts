import { z } from 'zod';
import {
  accountIdSchema,
  type Case,
  caseSchema,
  instanceIdSchema,
  partitionOf,
  regionSchema,
  type Trigger,
} from '../../core/case.js';
import type { Config } from '../../core/config.js';
import { RejectedInputError } from '../../core/errors.js';
import {
  type AsffFinding,
  customActionIds,
  isAsffFinding,
  readAsffFinding,
  securityHubEventKind,
  securityHubFindings,
} from '../../core/readers/asff.js';
import { type Envelope, type Home, refuseNotInstance } from '../../core/readers/fields.js';
import {
  bareFindingShape,
  isGuardDutyEvent,
  readGuardDutyFinding,
  readGuardDutyResourceType,
} from '../../core/readers/guardduty.js';
import { cleanText, isRecord, typedText } from '../../core/text.js';
import { refuse } from './values.js';

/** Step Functions refuses larger state; a trigger this big is not a finding. */
export const maxTriggerBytes = 256 * 1024;

/** The part of Cordon's configuration that decides what Intake accepts. */
export interface IntakeSettings {
  homeAccountId: string;
  homeRegion: string;
  /** On GuardDuty's 0–10 scale; applies to automatic triggers only. */
  minSeverity: number;
  acceptSampleFindings: boolean;
  acceptSecurityHubImported: boolean;
  /** The `Id` of Cordon's Security Hub custom action (`…:action/custom/<Id>`). */
  securityHubActionId: string;
}

export type IntakeConfig = Pick<
  Config,
  | 'CORDON_ACCOUNT_ID'
  | 'AWS_REGION'
  | 'MIN_SEVERITY'
  | 'ACCEPT_SAMPLE_FINDINGS'
  | 'ACCEPT_SECURITYHUB_IMPORTED'
  | 'SECURITYHUB_ACTION_ID'
  | 'RESPONSE_POLICY'
>;

export function intakeSettings(config: IntakeConfig): IntakeSettings {
  return {
    homeAccountId: config.CORDON_ACCOUNT_ID,
    homeRegion: config.AWS_REGION,
    minSeverity: config.MIN_SEVERITY,
    acceptSampleFindings: config.ACCEPT_SAMPLE_FINDINGS,
    acceptSecurityHubImported: config.ACCEPT_SECURITYHUB_IMPORTED,
    securityHubActionId: config.SECURITYHUB_ACTION_ID,
  };
}

/** A Case before it has an id or an execution: what the trigger alone decides. */
export type NormalisedCase = Omit<Case, 'caseId' | 'executionArn'>;

export type Normalised = { ok: NormalisedCase } | { rejected: string };

/**
 * How a trigger arrived. Automatic triggers (EventBridge rules) are held to the severity threshold; a
 * custom action, a manual start and a finding handed over through the CLI are a person's deliberate
 * request and are not.
 */
interface Route {
  shape: Trigger['shape'];
  source: Trigger['source'];
  automatic: boolean;
  requestedBy: string;
  /** Security Hub Imported events, which a setting turns off. */
  imported?: boolean;
}

const normalisedCaseSchema = caseSchema.omit({ caseId: true, executionArn: true });

/**
 * Turns whatever started the workflow into the facts of one case, or a refusal whose reason starts with
 * a stable `UPPER_SNAKE` code. Pure: no AWS call, no clock but `now`, no configuration but `settings`.
 *
 * Refusals are decided in two rounds: first what the trigger is (its shape, whether it is about an EC2
 * instance, whether the instance, account and region are well formed), then policy (imported findings
 * turned off, archived, sample, severity). So a sample access-key finding is refused as
 * `RESOURCE_NOT_INSTANCE`, the more fundamental reason.
 */
export function normaliseTrigger(event: unknown, settings: IntakeSettings, now: Date): Normalised {
  try {
    return { ok: normalise(event, settings, now) };
  } catch (error) {
    if (error instanceof RejectedInputError) return { rejected: error.reason };
    throw error;
  }
}

function normalise(event: unknown, settings: IntakeSettings, now: Date): NormalisedCase {
  checkSize(event);
  if (!isRecord(event)) refuse('MALFORMED', 'the trigger is not a JSON object');
  const home: Home = { accountId: settings.homeAccountId, region: settings.homeRegion };

  if (Object.hasOwn(event, 'source') || Object.hasOwn(event, 'detail-type')) {
    return fromEventBridge(event, settings, home, now);
  }
  if (Object.hasOwn(event, 'detail')) {
    // The partial envelope `{ region, detail }`: a GuardDuty event cut down by whoever forwarded it.
    const route: Route = {
      shape: 'eventbridge-guardduty',
      source: 'guardduty',
      automatic: true,
      requestedBy: 'guardduty',
    };
    return build(readInstanceFinding(event.detail, envelopeOf(event), home), route, settings, now);
  }
  if (Object.hasOwn(event, 'instanceId')) return fromManualStart(event, home, now);
  if (Object.hasOwn(event, 'Findings')) return fromFindingList(event.Findings, settings, home, now);
  return fromBareFinding(event, settings, home, now);
}

function checkSize(event: unknown): void {
  let text: string | undefined;
  try {
    text = JSON.stringify(event);
  } catch {
    refuse('MALFORMED', 'the trigger is not JSON');
  }
  if (text === undefined) refuse('MALFORMED', 'there is no trigger');
  if (Buffer.byteLength(text) > maxTriggerBytes) {
    refuse('TOO_LARGE', `the trigger is over ${maxTriggerBytes / 1024} KB; no finding is that large`);
  }
}

function envelopeOf(event: Record<string, unknown>): Envelope {
  return { account: event.account, region: event.region };
}

function fromEventBridge(event: Record<string, unknown>, settings: IntakeSettings, home: Home, now: Date) {
  const envelope = envelopeOf(event);
  if (isGuardDutyEvent(event)) {
    const route: Route = {
      shape: 'eventbridge-guardduty',
      source: 'guardduty',
      automatic: true,
      requestedBy: 'guardduty',
    };
    return build(readInstanceFinding(event.detail, envelope, home), route, settings, now);
  }
  const securityHub = securityHubEventKind(event);
  if (securityHub === 'custom-action') {
    checkCustomAction(event.resources, settings.securityHubActionId);
    const route: Route = {
      shape: 'securityhub-custom-action',
      source: 'securityhub',
      automatic: false,
      requestedBy: `securityhub:${settings.securityHubActionId}`,
    };
    return build(oneOf(securityHubFindings(event.detail), envelope, home), route, settings, now);
  }
  if (securityHub === 'imported') {
    const route: Route = {
      shape: 'securityhub-imported',
      source: 'securityhub',
      automatic: true,
      requestedBy: 'securityhub',
      imported: true,
    };
    return build(oneOf(securityHubFindings(event.detail), envelope, home), route, settings, now);
  }
  return refuse(
    'UNSUPPORTED_TRIGGER',
    'Cordon acts on GuardDuty findings and Security Hub custom actions or imported findings, not on this event',
  );
}

/** A custom-action event is Cordon's only if the action ARN in `resources` ends in Cordon's action id. */
function checkCustomAction(resources: unknown, ownId: string): void {
  const ids = customActionIds(resources);
  if (ids.length === 0) refuse('MALFORMED', 'the custom-action event names no custom action ARN');
  if (ids.length > 1) refuse('MALFORMED', 'the custom-action event names more than one custom action');
  if (ids[0] !== ownId) {
    refuse(
      'FOREIGN_CUSTOM_ACTION',
      `the custom action ${ids[0]} belongs to another workflow, not to ${ownId}`,
    );
  }
}

/** What Intake needs of one finding, whichever reader read it. */
type FindingFacts = AsffFinding;

/**
 * A GuardDuty finding about an instance. Its resource type is judged before anything else in it, so
 * that a sample access-key finding is refused for what it is about.
 */
function readInstanceFinding(finding: unknown, envelope: Envelope, home: Home): FindingFacts {
  const resourceType = readGuardDutyResourceType(finding);
  if (resourceType !== 'Instance') refuseNotInstance(resourceType);
  const read = readGuardDutyFinding(finding, envelope, home);
  if (!read.instance) return refuse('MALFORMED', 'the finding names no instance');
  return { ...read, instanceId: read.instance.instanceId };
}

/**
 * One case per execution: a list is accepted when exactly one of its findings is about an EC2 instance
 * (the others are ignored, as they would be on their own). Several instance findings are refused rather
 * than picked from: a responder hands them over one at a time, and later findings on an instance that
 * already has a case simply join it.
 */
function oneOf(findings: unknown[], envelope: Envelope, home: Home, read = readAsffFinding): FindingFacts {
  const usable: FindingFacts[] = [];
  let firstRefusal: RejectedInputError | undefined;
  for (const finding of findings) {
    try {
      usable.push(read(finding, envelope, home));
    } catch (error) {
      if (!(error instanceof RejectedInputError)) throw error;
      firstRefusal ??= error;
    }
  }
  if (usable.length > 1) {
    refuse(
      'MULTIPLE_FINDINGS',
      `the input holds ${usable.length} instance findings; hand them to Cordon one at a time (one case per instance)`,
    );
  }
  const [only] = usable;
  if (only) return only;
  throw firstRefusal ?? new RejectedInputError('MALFORMED: the input holds no finding');
}

/** `{ Findings: [...] }` as `get-findings` or Security Hub's `get-findings` print it. */
function fromFindingList(list: unknown, settings: IntakeSettings, home: Home, now: Date) {
  if (!Array.isArray(list) || list.length === 0) refuse('MALFORMED', 'Findings is not a list of findings');
  const asff = list.some(isAsffFinding);
  if (asff && !list.every(isAsffFinding))
    refuse('MALFORMED', 'Findings mixes GuardDuty and Security Hub findings');
  const route = asff ? operator('asff', 'securityhub') : operator('guardduty-api', 'guardduty');
  return build(oneOf(list, {}, home, asff ? readAsffFinding : readInstanceFinding), route, settings, now);
}

/** A single finding handed over through the CLI: ASFF, `get-findings` PascalCase, or EventBridge camelCase. */
function fromBareFinding(event: Record<string, unknown>, settings: IntakeSettings, home: Home, now: Date) {
  if (isAsffFinding(event))
    return build(readAsffFinding(event, {}, home), operator('asff', 'securityhub'), settings, now);
  const shape = bareFindingShape(event);
  if (shape) {
    const route = operator(shape === 'api' ? 'guardduty-api' : 'guardduty-detail', 'guardduty');
    return build(readInstanceFinding(event, {}, home), route, settings, now);
  }
  return refuse('MALFORMED', 'the trigger is none of the shapes Cordon accepts');
}

function operator(shape: Trigger['shape'], source: Trigger['source']): Route {
  return { shape, source, automatic: false, requestedBy: 'operator' };
}

/** Strict: a misspelt `accountID` must not quietly become "the home account". */
const manualStartSchema = z.strictObject({
  instanceId: instanceIdSchema,
  region: regionSchema.optional(),
  accountId: accountIdSchema.optional(),
  reason: typedText,
  requestedBy: typedText,
});

function fromManualStart(event: Record<string, unknown>, home: Home, now: Date): NormalisedCase {
  const parsed = manualStartSchema.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (!issue || issue.code === 'unrecognized_keys') {
      // The unknown key is not quoted: it is text from outside.
      refuse(
        'MALFORMED',
        `manual start: unexpected field; it takes ${Object.keys(manualStartSchema.shape).join(', ')}`,
      );
    }
    // Paths here are the schema's own keys, and the messages are the schema's, never the input.
    refuse(
      'MALFORMED',
      `manual start: ${String(issue.path[0] ?? 'input')}: ${cleanText(issue.message, 80) ?? 'invalid'}`,
    );
  }
  const start = parsed.data;
  const region = start.region ?? home.region;
  return finish({
    instanceId: start.instanceId,
    accountId: start.accountId ?? home.accountId,
    region,
    partition: partitionOf(region),
    openedAt: now.toISOString(),
    trigger: {
      source: 'manual',
      shape: 'manual',
      sample: false,
      remoteIps: [],
      requestedBy: start.requestedBy,
      reason: start.reason,
      receivedAt: now.toISOString(),
    },
  });
}

function build(facts: FindingFacts, route: Route, settings: IntakeSettings, now: Date): NormalisedCase {
  if (route.imported && !settings.acceptSecurityHubImported) {
    refuse(
      'SECURITYHUB_IMPORTED_DISABLED',
      'imported Security Hub findings start no response unless ACCEPT_SECURITYHUB_IMPORTED is on',
    );
  }
  if (facts.archived) {
    refuse('FINDING_ARCHIVED', 'the finding is archived; start a manual case to act on the instance anyway');
  }
  if (facts.sample && !settings.acceptSampleFindings) {
    refuse('SAMPLE_FINDING', 'sample findings start no response unless ACCEPT_SAMPLE_FINDINGS is on');
  }
  if (route.automatic && facts.severity < settings.minSeverity) {
    refuse(
      'SEVERITY_BELOW_MINIMUM',
      `severity ${facts.severity} is below the minimum of ${settings.minSeverity} for automatic triggers`,
    );
  }
  return finish({
    instanceId: facts.instanceId,
    accountId: facts.accountId,
    region: facts.region,
    partition: partitionOf(facts.region),
    openedAt: now.toISOString(),
    trigger: {
      source: route.source,
      shape: route.shape,
      findingId: facts.id,
      ...(facts.type ? { findingType: facts.type } : {}),
      severity: facts.severity,
      ...(facts.count === undefined ? {} : { count: facts.count }),
      sample: facts.sample,
      remoteIps: facts.remoteIps,
      requestedBy: route.requestedBy,
      reason: facts.title ?? facts.type ?? `finding ${facts.id}`,
      receivedAt: now.toISOString(),
    },
  });
}

/** The last gate: whatever got this far must be a valid case, or the trigger is refused, never crashed on. */
function finish(candidate: NormalisedCase): NormalisedCase {
  const checked = normalisedCaseSchema.safeParse(candidate);
  if (!checked.success) {
    const path = checked.error.issues[0]?.path.join('.') || 'the case';
    refuse('MALFORMED', `the trigger does not make a valid case (${path})`);
  }
  return checked.data;
}
