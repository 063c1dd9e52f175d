import { z } from 'zod';
import { instanceIdPattern, newPlaybookCaseId, partitionOf } from '../../core/case.js';
import type { CaseStore, Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import {
  type CredentialCase,
  credentialCaseSchema,
  credentialSteps,
  findingLock,
  type Principal,
  principalLock,
} from '../../core/credentials.js';
import { RejectedInputError } from '../../core/errors.js';
import { type EvidenceStore, evidenceJson } from '../../core/evidence.js';
import { type Envelope, refuseWith } from '../../core/readers/fields.js';
import {
  bareFindingShape,
  type FindingAccessKey,
  type GuardDutyFinding,
  isGuardDutyEvent,
  readGuardDutyFinding,
  readGuardDutyResourceType,
} from '../../core/readers/guardduty.js';
import { type SecurityHubDeps, securityHubFindingOf, tellSecurityHub } from '../../core/securityhub.js';
import { capLength, isRecord } from '../../core/text.js';

/** The "Credential Intake" state passes the execution input as it came, and the execution's ARN. */
export const credentialIntakeInputSchema = z.object({
  event: z.unknown(),
  executionArn: z.string().min(1).max(2048).optional(),
});
export type CredentialIntakeInput = z.infer<typeof credentialIntakeInputSchema>;

export type CredentialDecision = 'accepted' | 'rejected' | 'duplicate';

export interface CredentialIntakeResult {
  intake: { decision: CredentialDecision; reason: string; caseId?: string };
  case?: CredentialCase;
}

export interface CredentialIntakeDeps {
  cases: Pick<CaseStore, 'openSubject' | 'get'>;
  evidence: Pick<EvidenceStore, 'put'>;
  recorder: (caseId: string, step: string) => Recorder;
  config: Pick<Config, 'CORDON_ACCOUNT_ID' | 'AWS_REGION' | 'MIN_SEVERITY' | 'ACCEPT_SAMPLE_FINDINGS'>;
  now: () => Date;
  /** Where the finding is marked NOTIFIED (functions/core/securityhub.ts); never fails the intake. */
  securityHub?: SecurityHubDeps;
}

/** Step Functions refuses larger state; a trigger this big is not a finding. */
export const maxTriggerBytes = 256 * 1024;

export const exfiltrationTypePrefix = 'UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration';

type CredentialRefusalCode =
  | 'TOO_LARGE'
  | 'MALFORMED'
  | 'UNSUPPORTED_TRIGGER'
  | 'MULTIPLE_FINDINGS'
  | 'RESOURCE_NOT_ACCESS_KEY'
  | 'PRINCIPAL_UNKNOWN'
  | 'FINDING_ARCHIVED'
  | 'SAMPLE_FINDING'
  | 'SEVERITY_BELOW_MINIMUM';
/** Stops reading with a refusal whose text is written here, never copied from the finding. */
const refuse: (code: CredentialRefusalCode, sentence: string) => never = refuseWith;

interface Route {
  shape: CredentialCase['trigger']['shape'];
  automatic: boolean;
  requestedBy: string;
}

/**
 * Turns a GuardDuty finding on an access key (an IAM user's, a role session's, the root user's) into
 * a credential case, or refuses it with a stable `CODE: sentence` reason and no AWS call. One open case
 * per principal, and one case per finding: a finding that arrives again, or a second finding on a
 * principal whose case is still running, joins that case.
 */
export async function credentialIntake(
  input: CredentialIntakeInput,
  deps: CredentialIntakeDeps,
): Promise<CredentialIntakeResult> {
  const now = deps.now();
  let facts: Omit<CredentialCase, 'caseId'>;
  try {
    facts = readTrigger(input.event, deps.config, now);
  } catch (error) {
    if (error instanceof RejectedInputError)
      return { intake: { decision: 'rejected', reason: error.reason } };
    throw error;
  }
  const inSecurityHub = securityHubFindingOf(input.event, {
    findingId: facts.finding.id,
    accountId: facts.accountId,
    region: facts.region,
  });
  const candidate = credentialCaseSchema.parse({
    caseId: newPlaybookCaseId('cred', principalLock(facts), now),
    ...facts,
    ...(input.executionArn ? { executionArn: input.executionArn } : {}),
    ...(inSecurityHub ? { securityHub: inSecurityHub } : {}),
  });
  const opened = await deps.cases.openSubject([findingLock(candidate), principalLock(candidate)], {
    ...candidate,
    findingIds: [candidate.finding.id],
  });
  if (opened.opened) {
    const recorder = deps.recorder(candidate.caseId, credentialSteps.intake);
    // Alongside the case's own writes, never in their way: it does not throw.
    const told = markNotified(candidate, recorder, deps);
    await recorder.note('case opened', 'info', {
      target: describePrincipal(candidate.principal),
      detail: summary(candidate),
    });
    await deps.evidence.put(recorder, 'trigger.json', evidenceJson(input.event), {
      contentType: 'application/json',
    });
    await told;
    return {
      intake: {
        decision: 'accepted',
        reason: `ACCEPTED: case ${candidate.caseId} opened for ${describePrincipal(candidate.principal)} in ${candidate.accountId}`,
        caseId: candidate.caseId,
      },
      case: candidate,
    };
  }
  // Step Functions retried this step after the case was opened: finish the same case.
  const existing = input.executionArn ? await deps.cases.get(opened.existingCaseId) : undefined;
  if (existing && existing.executionArn === input.executionArn) {
    const own = credentialCaseSchema.safeParse(existing);
    if (own.success) {
      const recorder = deps.recorder(own.data.caseId, credentialSteps.intake);
      const told = markNotified(own.data, recorder, deps);
      await deps.evidence.put(recorder, 'trigger.json', evidenceJson(input.event), {
        contentType: 'application/json',
      });
      await told;
      return {
        intake: {
          decision: 'accepted',
          reason: `ACCEPTED: case ${own.data.caseId} was opened by an earlier attempt of this execution`,
          caseId: own.data.caseId,
        },
        case: own.data,
      };
    }
  }
  await deps.recorder(opened.existingCaseId, credentialSteps.intake).note('finding joined', 'info', {
    target: describePrincipal(candidate.principal),
    detail: `${candidate.trigger.shape} from ${candidate.trigger.requestedBy}; finding ${candidate.finding.id}; ${candidate.finding.type}`,
  });
  return {
    intake: {
      decision: 'duplicate',
      reason: `DUPLICATE: ${describePrincipal(candidate.principal)} (or this finding) already has the case ${opened.existingCaseId}; this trigger joined it`,
      caseId: opened.existingCaseId,
    },
  };
}

/** NOTIFIED, with the case's note, on the finding in Security Hub; what happened goes on the timeline. */
async function markNotified(c: CredentialCase, recorder: Recorder, deps: CredentialIntakeDeps) {
  if (deps.securityHub) {
    await tellSecurityHub(
      [c.securityHub],
      { caseId: c.caseId, news: { kind: 'opened' } },
      { ...deps.securityHub, recorder },
    );
  }
}

export function describePrincipal(p: Principal): string {
  if (p.type === 'Root') return 'the root user';
  if (p.type === 'IAMUser') return `IAM user ${p.name}`;
  if (p.type === 'AssumedRole') return `role ${p.name}`;
  return `${p.type} principal ${p.principalId ?? p.name ?? '(unnamed)'}`;
}

function summary(c: CredentialCase): string {
  return [
    `${c.trigger.shape} from ${c.trigger.requestedBy}`,
    `severity ${c.finding.severity}`,
    c.finding.sample ? 'sample finding' : undefined,
    c.finding.archived ? 'archived finding' : undefined,
    c.principal.accessKeyId ? `access key ${c.principal.accessKeyId}` : undefined,
    c.finding.instanceId ? `instance ${c.finding.instanceId}` : undefined,
    `${c.finding.remoteIps.length} remote IP(s)`,
    `type ${c.finding.type}`,
    `finding ${c.finding.id}`,
  ]
    .filter((p) => p !== undefined)
    .join('; ');
}

function readTrigger(
  event: unknown,
  config: CredentialIntakeDeps['config'],
  now: Date,
): Omit<CredentialCase, 'caseId'> {
  let text: string | undefined;
  try {
    text = JSON.stringify(event);
  } catch {
    refuse('MALFORMED', 'the trigger is not JSON');
  }
  if (text === undefined || !isRecord(event)) refuse('MALFORMED', 'the trigger is not a JSON object');
  if (Buffer.byteLength(text) > maxTriggerBytes)
    refuse('TOO_LARGE', 'the trigger is over 256 KB; no finding is that large');

  let finding: unknown;
  let route: Route;
  let envelope: Envelope = {};
  if (Object.hasOwn(event, 'source') || Object.hasOwn(event, 'detail-type')) {
    if (!isGuardDutyEvent(event)) {
      refuse('UNSUPPORTED_TRIGGER', 'the credential playbook acts on GuardDuty findings only');
    }
    finding = event.detail;
    route = { shape: 'eventbridge-guardduty', automatic: true, requestedBy: 'guardduty' };
    envelope = { account: event.account, region: event.region };
  } else if (Object.hasOwn(event, 'detail')) {
    finding = event.detail;
    route = { shape: 'eventbridge-guardduty', automatic: true, requestedBy: 'guardduty' };
    envelope = { account: event.account, region: event.region };
  } else if (Object.hasOwn(event, 'Findings')) {
    const list = event.Findings;
    if (!Array.isArray(list) || list.length !== 1)
      refuse('MULTIPLE_FINDINGS', 'hand over one finding at a time');
    finding = list[0];
    route = { shape: 'guardduty-api', automatic: false, requestedBy: 'operator' };
  } else {
    const shape = bareFindingShape(event);
    if (!shape) refuse('MALFORMED', 'the trigger is none of the shapes Cordon accepts');
    finding = event;
    route = {
      shape: shape === 'api' ? 'guardduty-api' : 'guardduty-detail',
      automatic: false,
      requestedBy: 'operator',
    };
  }
  if (!isRecord(finding)) refuse('MALFORMED', 'the trigger holds no finding object');

  // The resource is judged before anything else in the finding: an instance finding is not ours at all.
  if (readGuardDutyResourceType(finding) !== 'AccessKey') {
    refuse('RESOURCE_NOT_ACCESS_KEY', 'the credential playbook acts on findings about access keys only');
  }
  const read = readGuardDutyFinding(finding, envelope, {
    accountId: config.CORDON_ACCOUNT_ID,
    region: config.AWS_REGION,
  });
  if (!/^[A-Za-z0-9]{1,128}$/.test(read.id)) refuse('MALFORMED', 'the finding has no valid id');
  const principal = readPrincipal(read.accessKey ?? {});
  if (read.archived && route.automatic) {
    refuse('FINDING_ARCHIVED', 'the finding is archived; hand it over by hand to act on it anyway');
  }
  if (read.sample && !config.ACCEPT_SAMPLE_FINDINGS) {
    refuse('SAMPLE_FINDING', 'sample findings start no response unless ACCEPT_SAMPLE_FINDINGS is on');
  }
  if (route.automatic && read.severity < config.MIN_SEVERITY) {
    refuse(
      'SEVERITY_BELOW_MINIMUM',
      `severity ${read.severity} is below the minimum of ${config.MIN_SEVERITY} for automatic triggers`,
    );
  }
  // The reason below must stay within the case's 512 characters.
  const type = capLength(read.type, 200);
  const exfiltration = type.startsWith(exfiltrationTypePrefix);
  const instanceId = exfiltration ? instanceOf(read, principal) : undefined;
  return {
    kind: 'credential',
    accountId: read.accountId,
    region: read.region,
    partition: partitionOf(read.region),
    openedAt: now.toISOString(),
    principal,
    finding: {
      id: read.id,
      type,
      severity: read.severity,
      sample: read.sample,
      archived: read.archived,
      ...(read.title ? { title: capLength(read.title, 300) } : {}),
      remoteIps: read.remoteIps,
      // Only exfiltrated instance credentials implicate an instance; other findings (sample ones
      // especially) may carry instance details that have nothing to do with the key.
      ...(instanceId ? { instanceId } : {}),
      ...(read.count === undefined ? {} : { count: read.count }),
    },
    trigger: {
      shape: route.shape,
      requestedBy: route.requestedBy,
      reason: `${type}${read.archived ? ' (archived finding, handed over)' : ''}`,
      receivedAt: now.toISOString(),
    },
    exfiltration,
  };
}

/**
 * Who the credentials belong to. GuardDuty names an IAM user in `userName`; for a role session
 * `userName` is the role and `principalId` is `<role id>:<session name>`.
 */
function readPrincipal(details: FindingAccessKey): Principal {
  const { userType, userName: name } = details;
  const common = {
    ...(details.accessKeyId ? { accessKeyId: details.accessKeyId } : {}),
    ...(details.principalId ? { principalId: details.principalId } : {}),
  };
  if (userType === 'IAMUser' || userType === 'AssumedRole') {
    if (!name)
      refuse('PRINCIPAL_UNKNOWN', `the finding names no valid ${userType === 'IAMUser' ? 'user' : 'role'}`);
    return { type: userType, name, ...common };
  }
  if (userType === 'Root') return { type: 'Root', ...common };
  if (userType === 'FederatedUser') return { type: 'FederatedUser', ...(name ? { name } : {}), ...common };
  if (!common.principalId && !common.accessKeyId)
    refuse('PRINCIPAL_UNKNOWN', 'the finding names no principal Cordon can act on');
  return { type: 'Other', ...common };
}

/** The instance named by the finding, or the instance id that EC2 uses as a role session's name. */
function instanceOf(read: GuardDutyFinding, principal: Principal): string | undefined {
  if (read.instance) return read.instance.instanceId;
  const session = principal.principalId?.split(':')[1];
  return session && instanceIdPattern.test(session) ? session : undefined;
}
