/**
 * What Cordon tells Security Hub about a case. For a case started or joined by a finding that is in
 * Security Hub (a custom action, an imported finding, or a GuardDuty finding through Security Hub's
 * integration), `BatchUpdateFindings` sets the finding's workflow status, a note with the case id and
 * the outcome, and `UserDefinedFields.cordonCaseId`:
 *
 * - NOTIFIED when the case opens on the finding or the finding joins an open case; at the end RESOLVED
 *   when the case completed and the stage says so (SECURITYHUB_RESOLVE_ON_COMPLETE), NOTIFIED
 *   otherwise: a partial or failed case is never resolved. No update leaves a finding NEW: Security
 *   Hub sends a "Findings - Imported" event for every update, and Cordon's imported-findings rule
 *   takes NEW findings only, so that nothing Cordon writes can start a case again.
 * - The note is built from the case id and the outcome alone. No finding text goes into it.
 * - In the finding's own region (the region of its ProductArn, where Security Hub holds it), with
 *   Cordon's own credentials: the security account is the one that administers Security Hub, and an
 *   administrator account updates its members' findings itself (no member role is involved).
 * - News, not response: a refusal (denied, Security Hub not enabled there, a finding it does not
 *   know) is returned for the case's timeline and never thrown; only throttling is retried, by the SDK.
 */
import {
  BatchUpdateFindingsCommand,
  type BatchUpdateFindingsCommandInput,
  type BatchUpdateFindingsCommandOutput,
  SecurityHubClient,
} from '@aws-sdk/client-securityhub';
import {
  caseIdPattern,
  credentialCaseIdPattern,
  type Outcome,
  type SecurityHubFinding,
  securityHubFindingSchema,
} from './case.js';
import type { Recorder } from './cases.js';
import type { MemberClient } from './clients.js';
import { awsErrorCode, describeError } from './errors.js';
import { cleanText, isRecord, oneLine } from './text.js';

export type { SecurityHubFinding };

/** BatchUpdateFindings takes at most 100 findings per request. */
export const maxFindingsPerRequest = 100;
/** The longest `Note.Text` Security Hub keeps. */
export const maxNoteText = 512;
/** The one key Cordon sets in a finding's `UserDefinedFields`. */
export const caseIdField = 'cordonCaseId';

/** A GuardDuty finding's ARN: what its integration makes the `Id` of the finding in Security Hub. */
const guardDutyFindingArn =
  /^arn:(aws|aws-cn|aws-us-gov):guardduty:([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):(\d{12}):detector\/[\w-]{1,128}\/finding\/([\w-]{1,128})$/;

/** The finding a case was opened (or joined) on, as the trigger's readers placed it. */
export interface TakenFinding {
  /** The finding id Intake recorded (`cleanText` of the finding's own id). */
  findingId?: string | undefined;
  accountId: string;
  region: string;
}

/** A GuardDuty field, camelCase as EventBridge carries it or PascalCase as `GetFindings` returns it. */
function field(record: Record<string, unknown>, name: string): unknown {
  const pascal = `${name.charAt(0).toUpperCase()}${name.slice(1)}`;
  return Object.hasOwn(record, name)
    ? record[name]
    : Object.hasOwn(record, pascal)
      ? record[pascal]
      : undefined;
}

/** The findings a trigger carries, in each shape Intake takes (see intake-finding/normalise.ts). */
function findingsIn(event: unknown): unknown[] {
  if (!isRecord(event)) return [];
  if (
    Object.hasOwn(event, 'source') ||
    Object.hasOwn(event, 'detail-type') ||
    Object.hasOwn(event, 'detail')
  ) {
    const detail = event.detail;
    if (isRecord(detail) && Array.isArray(detail.findings)) return detail.findings;
    return [detail];
  }
  if (Array.isArray(event.Findings)) return event.Findings;
  return [event];
}

/**
 * The finding in Security Hub that a trigger refers to, if any. An ASFF finding (a custom action, an
 * imported finding, one handed over) names itself: its `Id` and `ProductArn`. A GuardDuty finding is
 * the one GuardDuty's integration imports: `Id` is the finding's ARN and `ProductArn` GuardDuty's
 * product in the finding's region, read only when the finding carries its ARN and the ARN names the
 * finding's own account, region and id. Only the finding Intake took the case from (`findingId`), and
 * only identifiers of the form Security Hub issues: anything else is a finding Cordon leaves alone.
 */
export function securityHubFindingOf(event: unknown, taken: TakenFinding): SecurityHubFinding | undefined {
  if (!taken.findingId) return undefined;
  for (const finding of findingsIn(event).slice(0, 100)) {
    if (!isRecord(finding)) continue;
    if (Object.hasOwn(finding, 'ProductArn')) {
      if (cleanText(finding.Id) !== taken.findingId) continue;
      const parsed = securityHubFindingSchema.safeParse({ id: finding.Id, productArn: finding.ProductArn });
      return parsed.success ? parsed.data : undefined;
    }
    if (cleanText(field(finding, 'id')) !== taken.findingId) continue;
    const arn = field(finding, 'arn');
    const match = typeof arn === 'string' ? guardDutyFindingArn.exec(arn) : null;
    if (!match) return undefined;
    const [, partition, region, account, id] = match;
    if (region !== taken.region || account !== taken.accountId || id !== taken.findingId) return undefined;
    const parsed = securityHubFindingSchema.safeParse({
      id: arn,
      productArn: `arn:${partition}:securityhub:${region}::product/aws/guardduty`,
    });
    return parsed.success ? parsed.data : undefined;
  }
  return undefined;
}

/** The region whose Security Hub holds the finding: its ProductArn's. */
export function securityHubRegion(finding: SecurityHubFinding): string {
  return finding.productArn.split(':')[3] ?? '';
}

/** What happened to the case that Security Hub hears about. */
export type CaseNews =
  | { kind: 'opened' }
  | { kind: 'joined' }
  | {
      kind: 'outcome';
      outcome: Extract<Outcome, 'completed' | 'partial' | 'failed'>;
      resolve: boolean;
      /** The case was not to be contained (evidence only, by policy or a person's decision). */
      notContained?: boolean;
    };

export interface FindingUpdate {
  caseId: string;
  news: CaseNews;
}

export type WorkflowStatus = 'NOTIFIED' | 'RESOLVED';

/** RESOLVED only for a completed case on a stage that resolves; NOTIFIED for everything else. */
export function workflowFor(news: CaseNews): WorkflowStatus {
  // An instance left uncontained stays in someone's hands: its findings are never resolved by Cordon.
  return news.kind === 'outcome' && news.outcome === 'completed' && news.resolve && !news.notContained
    ? 'RESOLVED'
    : 'NOTIFIED';
}

const outcomeWords: Record<Extract<CaseNews, { kind: 'outcome' }>['outcome'], string> = {
  completed: 'completed: contained, evidence sealed',
  partial: 'partial: contained, some evidence missing',
  failed: 'failed: containment may be incomplete, check the instance or principal now',
};
const notContainedWords: typeof outcomeWords = {
  completed: 'completed: evidence sealed, the instance NOT contained (evidence only)',
  partial: 'partial: some evidence missing, the instance NOT contained (evidence only)',
  failed: 'failed: no evidence gathered, the instance NOT contained (evidence only)',
};

/** The note: the case id and what became of the case, in Cordon's own words only. */
export function noteFor(update: FindingUpdate): string {
  const { caseId, news } = update;
  if (!caseIdPattern.test(caseId) && !credentialCaseIdPattern.test(caseId)) {
    throw new TypeError('Security Hub notes carry a Cordon case id only');
  }
  const what =
    news.kind === 'opened'
      ? 'opened on this finding: containment and evidence collection under way'
      : news.kind === 'joined'
        ? 'already open on the same instance, took in this finding'
        : `${(news.notContained ? notContainedWords : outcomeWords)[news.outcome]}${workflowFor(news) === 'RESOLVED' ? '; resolved by Cordon' : ''}`;
  return `Cordon case ${caseId} ${what}. Details: cordon status ${caseId}`.slice(0, maxNoteText);
}

/** Who the note says wrote it: `cordon-<stage>`. */
export const updatedByPattern = /^cordon-[a-z0-9-]{1,16}$/;

/** The request for one batch of findings (at most 100, all in one region). */
export function updateRequest(
  findings: readonly SecurityHubFinding[],
  update: FindingUpdate,
  updatedBy: string,
): BatchUpdateFindingsCommandInput {
  if (findings.length === 0 || findings.length > maxFindingsPerRequest) {
    throw new RangeError(`BatchUpdateFindings takes 1 to ${maxFindingsPerRequest} findings`);
  }
  if (!updatedByPattern.test(updatedBy)) throw new TypeError('UpdatedBy is cordon-<stage>');
  return {
    FindingIdentifiers: findings.map((f) => ({ Id: f.id, ProductArn: f.productArn })),
    Workflow: { Status: workflowFor(update.news) },
    Note: { Text: noteFor(update), UpdatedBy: updatedBy },
    UserDefinedFields: { [caseIdField]: update.caseId },
  };
}

/** Each finding once, grouped by the region that holds it, in requests of at most 100. */
export function batches(
  findings: readonly SecurityHubFinding[],
): { region: string; findings: SecurityHubFinding[] }[] {
  const byRegion = new Map<string, Map<string, SecurityHubFinding>>();
  for (const f of findings) {
    const region = securityHubRegion(f);
    const own = byRegion.get(region) ?? new Map<string, SecurityHubFinding>();
    own.set(`${f.productArn} ${f.id}`, f);
    byRegion.set(region, own);
  }
  return [...byRegion].flatMap(([region, own]) => {
    const list = [...own.values()];
    const out = [];
    for (let at = 0; at < list.length; at += maxFindingsPerRequest) {
      out.push({ region, findings: list.slice(at, at + maxFindingsPerRequest) });
    }
    return out;
  });
}

/**
 * How one request ended. `updated`: every finding took the update. `denied`: IAM refused the call.
 * `disabled`: Security Hub is not enabled for Cordon's account in that region (InvalidAccessException).
 * `unprocessed`: Security Hub answered but did not update some findings (`FindingNotFound` for a
 * GuardDuty finding not imported yet, or a member's finding this account does not administer).
 * `failed`: anything else (throttled past the SDK's retries, a server error, no answer).
 */
export type SecurityHubStatus = 'updated' | 'denied' | 'disabled' | 'unprocessed' | 'failed';

export interface SecurityHubResult {
  status: SecurityHubStatus;
  region: string;
  workflow: WorkflowStatus;
  /** How many findings the request named, and how many Security Hub updated. */
  findings: number;
  updated: number;
  /** AWS's error code, or the first unprocessed finding's (`FindingNotFound`…). */
  errorCode?: string;
  /** One line, for the timeline. */
  reason?: string;
  requestId?: string;
  /** The one finding's id, when the request named one. */
  findingId?: string;
}

export interface SecurityHubDeps {
  /** A Security Hub client in `region`, signed with Cordon's own credentials. */
  client: (region: string) => SecurityHubClient;
  /** `cordon-<stage>`: the note's author. */
  updatedBy: string;
}

/** Security Hub as a step reaches it: Cordon's own account in the finding's region, notes signed by the stage. */
export function securityHubOf(ctx: {
  homeClientIn: (region: string) => MemberClient;
  config: { CORDON_STAGE: string };
}): SecurityHubDeps {
  return {
    client: (region) => ctx.homeClientIn(region)(SecurityHubClient),
    updatedBy: `cordon-${ctx.config.CORDON_STAGE}`,
  };
}

const code = (value: unknown): string | undefined =>
  typeof value === 'string' && /^[A-Za-z][\w.]{0,63}$/.test(value) ? value : undefined;

function unprocessed(out: BatchUpdateFindingsCommandOutput, sent: number) {
  const left = out.UnprocessedFindings ?? [];
  const codes = [...new Set(left.map((u) => code(u.ErrorCode) ?? 'Unknown'))];
  const first = left[0];
  return {
    errorCode: codes[0] ?? 'Unknown',
    reason: oneLine(
      `${left.length} of ${sent} finding(s) not updated: ${codes.join(', ')}${first?.ErrorMessage ? ` (${first.ErrorMessage})` : ''}`,
      300,
    ),
  };
}

function refused(error: unknown): Pick<SecurityHubResult, 'status' | 'errorCode' | 'reason' | 'requestId'> {
  const described = describeError(error);
  const errorCode = code(awsErrorCode(error)) ?? described.name;
  const status: SecurityHubStatus =
    described.name === 'AwsAccessDeniedError'
      ? 'denied'
      : errorCode === 'InvalidAccessException'
        ? 'disabled'
        : 'failed';
  const requestId = (error as { $metadata?: { requestId?: string } } | null)?.$metadata?.requestId;
  return {
    status,
    errorCode,
    reason: oneLine(described.message, 300),
    ...(requestId ? { requestId } : {}),
  };
}

/**
 * Sends the update for `findings`, one request per region and hundred findings, all at once. Never
 * throws: each request's end is returned as a `SecurityHubResult`, for the case's timeline.
 */
export async function updateFindings(
  findings: readonly SecurityHubFinding[],
  update: FindingUpdate,
  deps: SecurityHubDeps,
): Promise<SecurityHubResult[]> {
  const workflow = workflowFor(update.news);
  return Promise.all(
    batches(findings).map(async ({ region, findings: batch }): Promise<SecurityHubResult> => {
      const base = {
        region,
        workflow,
        findings: batch.length,
        ...(batch.length === 1 && batch[0] ? { findingId: batch[0].id } : {}),
      };
      try {
        const input = updateRequest(batch, update, deps.updatedBy);
        const out = await deps.client(region).send(new BatchUpdateFindingsCommand(input));
        const requestId = out.$metadata?.requestId;
        const left = out.UnprocessedFindings?.length ?? 0;
        return {
          ...base,
          status: left === 0 ? 'updated' : 'unprocessed',
          updated: batch.length - left,
          ...(left === 0 ? {} : unprocessed(out, batch.length)),
          ...(requestId ? { requestId } : {}),
        };
      } catch (error) {
        return { ...base, updated: 0, ...refused(error) };
      }
    }),
  );
}

/** Updated is done; Security Hub not enabled there is nothing to do; the rest did not happen. */
function timelineStatus(status: SecurityHubStatus): 'ok' | 'skipped' | 'failed' {
  return status === 'updated' ? 'ok' : status === 'disabled' ? 'skipped' : 'failed';
}

/** One timeline line: what was asked of which findings, and how it ended. */
export function describeResult(r: SecurityHubResult): string {
  const asked = `${r.workflow}, the case note and ${caseIdField} on ${r.findings} finding(s) in ${r.region}`;
  if (r.status === 'updated') return `updated: ${asked}`;
  return `${r.status}: ${asked}; ${r.updated} updated; ${r.errorCode ?? 'Error'}: ${r.reason ?? ''}; the case goes on`;
}

/**
 * Tells Security Hub (`updateFindings`) and writes each result on the case's timeline, best effort: a
 * timeline that cannot be written is no reason to hold up the case either. Nothing to send, nothing
 * said: a case no Security Hub finding started or joined makes no call.
 */
export async function tellSecurityHub(
  findings: readonly (SecurityHubFinding | undefined)[],
  update: FindingUpdate,
  deps: SecurityHubDeps & { recorder?: Recorder | undefined },
): Promise<SecurityHubResult[]> {
  const known = findings.filter((f): f is SecurityHubFinding => f !== undefined);
  if (known.length === 0) return [];
  const results = await updateFindings(known, update, deps);
  await Promise.all(
    results.map((r) =>
      deps.recorder
        ?.note('securityhub:BatchUpdateFindings', timelineStatus(r.status), {
          target: r.findingId ?? `${r.findings} findings in ${r.region}`,
          requestId: r.requestId,
          detail: describeResult(r),
        })
        .catch(() => undefined),
    ),
  );
  return results;
}
