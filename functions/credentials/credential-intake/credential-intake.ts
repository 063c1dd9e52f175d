import { z } from 'zod';
import {
  accountIdPattern,
  instanceIdPattern,
  ipSchema,
  newPlaybookCaseId,
  partitionOf,
  regionPattern,
} from '../../core/case.js';
import type { CaseStore, Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import {
  accessKeyIdSchema,
  type CredentialCase,
  credentialCaseSchema,
  credentialSteps,
  findingLock,
  iamNameSchema,
  type Principal,
  principalIdSchema,
  principalLock,
} from '../../core/credentials.js';
import { oneLine } from '../../core/errors.js';
import { type EvidenceStore, evidenceJson } from '../../core/evidence.js';

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
}

/** Step Functions refuses larger state; a trigger this big is not a finding. */
export const maxTriggerBytes = 256 * 1024;

export const exfiltrationTypePrefix = 'UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration';

class Refusal extends Error {}
/** Stops reading with a refusal whose text is written here, never copied from the finding. */
function refuse(code: string, sentence: string): never {
  throw new Refusal(`${code}: ${sentence}`);
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A field by its camelCase name (EventBridge `detail`) or its PascalCase twin (`GetFindings`). */
function field(record: unknown, name: string): unknown {
  if (!isRecord(record)) return undefined;
  if (Object.hasOwn(record, name)) return record[name];
  const pascal = `${name.charAt(0).toUpperCase()}${name.slice(1)}`;
  return Object.hasOwn(record, pascal) ? record[pascal] : undefined;
}
const path = (record: unknown, ...names: string[]): unknown => names.reduce((v, n) => field(v, n), record);

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
    if (error instanceof Refusal) return { intake: { decision: 'rejected', reason: error.message } };
    throw error;
  }
  const candidate = credentialCaseSchema.parse({
    caseId: newPlaybookCaseId('cred', principalLock(facts), now),
    ...facts,
    ...(input.executionArn ? { executionArn: input.executionArn } : {}),
  });
  const opened = await deps.cases.openSubject([findingLock(candidate), principalLock(candidate)], {
    ...candidate,
    findingIds: [candidate.finding.id],
  });
  if (opened.opened) {
    const recorder = deps.recorder(candidate.caseId, credentialSteps.intake);
    await recorder.note('case opened', 'info', {
      target: describePrincipal(candidate.principal),
      detail: summary(candidate),
    });
    await deps.evidence.put(recorder, 'trigger.json', evidenceJson(input.event), {
      contentType: 'application/json',
    });
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
      await deps.evidence.put(recorder, 'trigger.json', evidenceJson(input.event), {
        contentType: 'application/json',
      });
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

/** Finding text as one safe line: control and bidirectional-override characters become spaces. */
function cleanText(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return undefined;
  const cleaned = oneLine(value.replace(/[\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, ' '), max);
  return cleaned.length > 0 ? cleaned : undefined;
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
  let envelope: { account?: unknown; region?: unknown } = {};
  if (Object.hasOwn(event, 'source') || Object.hasOwn(event, 'detail-type')) {
    if (event.source !== 'aws.guardduty' || event['detail-type'] !== 'GuardDuty Finding') {
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
  } else if (Object.hasOwn(event, 'Resource') || Object.hasOwn(event, 'Service')) {
    finding = event;
    route = { shape: 'guardduty-api', automatic: false, requestedBy: 'operator' };
  } else if (Object.hasOwn(event, 'resource') || Object.hasOwn(event, 'service')) {
    finding = event;
    route = { shape: 'guardduty-detail', automatic: false, requestedBy: 'operator' };
  } else {
    refuse('MALFORMED', 'the trigger is none of the shapes Cordon accepts');
  }
  if (!isRecord(finding)) refuse('MALFORMED', 'the trigger holds no finding object');

  if (path(finding, 'resource', 'resourceType') !== 'AccessKey') {
    refuse('RESOURCE_NOT_ACCESS_KEY', 'the credential playbook acts on findings about access keys only');
  }
  const id = field(finding, 'id');
  if (typeof id !== 'string' || !/^[A-Za-z0-9]{1,128}$/.test(id))
    refuse('MALFORMED', 'the finding has no valid id');
  const type = cleanText(field(finding, 'type'), 200);
  if (!type) refuse('MALFORMED', 'the finding has no type');
  const severity = field(finding, 'severity');
  if (typeof severity !== 'number' || !(severity >= 0 && severity <= 10)) {
    refuse('MALFORMED', 'the finding severity is not a number from 0 to 10');
  }
  const accountId =
    [envelope.account, field(finding, 'accountId')].find((a) => a !== undefined && a !== '') ??
    config.CORDON_ACCOUNT_ID;
  if (typeof accountId !== 'string' || !accountIdPattern.test(accountId))
    refuse('MALFORMED', 'the account id is not 12 digits');
  const region =
    [envelope.region, field(finding, 'region')].find((r) => r !== undefined && r !== '') ?? config.AWS_REGION;
  if (typeof region !== 'string' || !regionPattern.test(region))
    refuse('MALFORMED', 'the region is not an AWS region');

  const principal = readPrincipal(path(finding, 'resource', 'accessKeyDetails'));
  const archived = path(finding, 'service', 'archived') === true;
  const sample = path(finding, 'service', 'additionalInfo', 'sample') === true;
  if (archived && route.automatic) {
    refuse('FINDING_ARCHIVED', 'the finding is archived; hand it over by hand to act on it anyway');
  }
  if (sample && !config.ACCEPT_SAMPLE_FINDINGS) {
    refuse('SAMPLE_FINDING', 'sample findings start no response unless ACCEPT_SAMPLE_FINDINGS is on');
  }
  if (route.automatic && severity < config.MIN_SEVERITY) {
    refuse(
      'SEVERITY_BELOW_MINIMUM',
      `severity ${severity} is below the minimum of ${config.MIN_SEVERITY} for automatic triggers`,
    );
  }
  const exfiltration = type.startsWith(exfiltrationTypePrefix);
  const count = path(finding, 'service', 'count');
  return {
    kind: 'credential',
    accountId,
    region,
    partition: partitionOf(region),
    openedAt: now.toISOString(),
    principal,
    finding: {
      id,
      type,
      severity,
      sample,
      archived,
      ...(cleanText(field(finding, 'title'), 300) ? { title: cleanText(field(finding, 'title'), 300) } : {}),
      remoteIps: remoteIps(finding),
      // Only exfiltrated instance credentials implicate an instance; other findings (sample ones
      // especially) may carry instance details that have nothing to do with the key.
      ...(exfiltration && instanceOf(finding, principal)
        ? { instanceId: instanceOf(finding, principal) }
        : {}),
      ...(typeof count === 'number' && Number.isSafeInteger(count) && count >= 0 ? { count } : {}),
    },
    trigger: {
      shape: route.shape,
      requestedBy: route.requestedBy,
      reason: `${type}${archived ? ' (archived finding, handed over)' : ''}`,
      receivedAt: now.toISOString(),
    },
    exfiltration,
  };
}

/**
 * Who the credentials belong to. GuardDuty names an IAM user in `userName`; for a role session
 * `userName` is the role and `principalId` is `<role id>:<session name>`.
 */
function readPrincipal(details: unknown): Principal {
  if (!isRecord(details)) refuse('MALFORMED', 'the finding has no access key details');
  const userType = field(details, 'userType');
  const name = iamNameSchema.safeParse(field(details, 'userName'));
  const key = accessKeyIdSchema.safeParse(field(details, 'accessKeyId'));
  const principalId = principalIdSchema.safeParse(field(details, 'principalId'));
  const common = {
    ...(key.success ? { accessKeyId: key.data } : {}),
    ...(principalId.success ? { principalId: principalId.data } : {}),
  };
  if (userType === 'IAMUser' || userType === 'AssumedRole') {
    if (!name.success)
      refuse('PRINCIPAL_UNKNOWN', `the finding names no valid ${userType === 'IAMUser' ? 'user' : 'role'}`);
    return { type: userType, name: name.data, ...common };
  }
  if (userType === 'Root') return { type: 'Root', ...common };
  if (userType === 'FederatedUser')
    return { type: 'FederatedUser', ...(name.success ? { name: name.data } : {}), ...common };
  if (!common.principalId && !common.accessKeyId)
    refuse('PRINCIPAL_UNKNOWN', 'the finding names no principal Cordon can act on');
  return { type: 'Other', ...common };
}

function remoteIps(finding: unknown): string[] {
  const details = path(finding, 'service', 'action', 'awsApiCallAction', 'remoteIpDetails');
  const candidates = [field(details, 'ipAddressV4'), field(details, 'ipAddressV6')];
  return candidates.filter((ip): ip is string => ipSchema.safeParse(ip).success);
}

/** The instance named by the finding, or the instance id that EC2 uses as a role session's name. */
function instanceOf(finding: unknown, principal: Principal): string | undefined {
  const named = path(finding, 'resource', 'instanceDetails', 'instanceId');
  if (typeof named === 'string' && instanceIdPattern.test(named)) return named;
  const session = principal.principalId?.split(':')[1];
  return session && instanceIdPattern.test(session) ? session : undefined;
}
