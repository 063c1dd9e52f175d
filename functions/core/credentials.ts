/**
 * The compromised-credentials playbook: the case it opens and the state it passes through
 * statemachines/credentials.asl.yml. Each step's result lands at the path named here:
 *
 *   $.intake      Credential Intake          { decision, reason, caseId? } (with $.case when accepted)
 *   $.deactivate  Deactivate Access Key      StepOutcome, or { Error, Cause } when it failed
 *   $.quarantine  Quarantine Principal       StepOutcome, or { Error, Cause }
 *   $.revoke      Revoke Sessions            StepOutcome, or { Error, Cause }
 *   $.instance    Start Instance Response    StepOutcome (exfiltrated instance credentials only)
 *   $.activity    Collect Activity           ActivityOutcome, or { Error, Cause }
 *   $.archive     Credential Archive         { outcome, manifest, signature, artifacts }
 *   $.error       a Catch that ends the run  { Error, Cause }
 *   $.notify      Credential Notify          { outcome, messageId }
 *
 * A containment step that fails does not stop the others: each Catch keeps its error in the step's
 * own slot and the run goes on, so a principal is contained as far as possible and the outcome says
 * exactly which part failed.
 */
import { z } from 'zod';
import {
  accountIdSchema,
  credentialCaseIdPattern,
  instanceIdSchema,
  ipSchema,
  type Outcome,
  regionSchema,
  securityHubFindingSchema,
} from './case.js';
import { awsErrorCode } from './errors.js';
import type { StepSummary } from './outcome.js';
import { safeTextSchema } from './text.js';

export const credentialCaseIdSchema = z
  .string()
  .regex(credentialCaseIdPattern, 'not a Cordon credential case id');
/** IAM user and role names: letters, digits and `+=,.@_-`, 1 to 64 characters. */
export const iamNameSchema = z.string().regex(/^[\w+=,.@-]{1,64}$/, 'not an IAM user or role name');
/** UpdateAccessKey's AccessKeyId: word characters, 16 to 128 of them. */
export const accessKeyIdSchema = z.string().regex(/^\w{16,128}$/, 'not an access key id');
export const principalIdSchema = z.string().regex(/^[\w+=,.@:-]{1,256}$/, 'not a principal id');

export const principalTypes = ['IAMUser', 'AssumedRole', 'Root', 'FederatedUser', 'Other'] as const;

export const principalSchema = z.object({
  type: z.enum(principalTypes),
  /** The IAM user (IAMUser) or the role (AssumedRole) that the credentials belong to. */
  name: iamNameSchema.optional(),
  principalId: principalIdSchema.optional(),
  accessKeyId: accessKeyIdSchema.optional(),
});
export type Principal = z.infer<typeof principalSchema>;

export const credentialCaseSchema = z.object({
  caseId: credentialCaseIdSchema,
  kind: z.literal('credential'),
  accountId: accountIdSchema,
  region: regionSchema,
  partition: z.enum(['aws', 'aws-cn', 'aws-us-gov']),
  openedAt: z.string(),
  executionArn: z.string().max(2048).optional(),
  principal: principalSchema,
  finding: z.object({
    id: z.string().regex(/^[A-Za-z0-9]{1,128}$/),
    type: safeTextSchema,
    severity: z.number().min(0).max(10),
    sample: z.boolean(),
    archived: z.boolean(),
    title: safeTextSchema.optional(),
    remoteIps: z.array(ipSchema).max(50),
    /** The instance whose credentials were exfiltrated, when the finding names one. */
    instanceId: instanceIdSchema.optional(),
    count: z.number().int().min(0).optional(),
  }),
  trigger: z.object({
    shape: z.enum(['eventbridge-guardduty', 'guardduty-detail', 'guardduty-api']),
    requestedBy: safeTextSchema,
    reason: safeTextSchema,
    receivedAt: z.string(),
  }),
  /** `UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.*`: the instance is compromised too. */
  exfiltration: z.boolean(),
  /** The finding in Security Hub (GuardDuty's integration), when it carries its ARN. */
  securityHub: securityHubFindingSchema.optional(),
});
export type CredentialCase = z.infer<typeof credentialCaseSchema>;

/** What every step after intake receives. */
export const credentialStateSchema = z.looseObject({ case: credentialCaseSchema });
export type CredentialState = z.infer<typeof credentialStateSchema>;

/** A step's own account of itself: it changed something, or it had nothing to do and says why. */
export type StepOutcome =
  | ({ status: 'succeeded'; detail: string } & Record<string, unknown>)
  | { status: 'skipped'; reason: string };

export interface CaughtError {
  Error?: string;
  Cause?: string;
}

export const credentialSteps = {
  intake: 'credential-intake',
  deactivate: 'deactivate-access-key',
  quarantine: 'quarantine-principal',
  revoke: 'revoke-sessions',
  instance: 'start-instance-response',
  activity: 'collect-activity',
  archive: 'credential-archive',
  notify: 'credential-notify',
} as const;

/** One open credential case per principal: the lock its intake takes and its notification frees. */
export function principalLock(c: { accountId: string; principal: Principal }): string {
  return `PRINCIPAL#${c.accountId}#${c.principal.type}#${c.principal.name ?? c.principal.principalId ?? 'root'}`;
}

/** A finding is handled once: updates of the same finding (GuardDuty re-sends them) join its case. */
export function findingLock(c: { accountId: string; finding: { id: string } }): string {
  return `FINDING#${c.accountId}#${c.finding.id}`;
}

/** IAM's "no such user / role / key" (the SDK reports the code or the exception's name). */
export function isNoSuchEntity(error: unknown): boolean {
  return ['NoSuchEntity', 'NoSuchEntityException'].includes(awsErrorCode(error) ?? '');
}

/** The inline policies Cordon puts on a principal for a case (removing them undoes the case). */
export const quarantinePolicyName = (caseId: string) => `cordon-quarantine-${caseId}`;
export const revokePolicyName = (caseId: string) => `cordon-revoke-${caseId}`;

/** Deny everything, whatever the credentials: the quarantine. Built from constants only. */
export function quarantinePolicy(): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Sid: 'CordonQuarantine', Effect: 'Deny', Action: '*', Resource: '*' }],
  });
}

/**
 * Deny everything to temporary credentials issued before `cutoff`: the documented way to revoke a
 * role's (or a user's) active sessions. `aws:TokenIssueTime` is absent from requests signed with a
 * long-term access key, so the condition never matches them.
 */
export function revokeSessionsPolicy(cutoff: Date): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'CordonRevokeOlderSessions',
        Effect: 'Deny',
        Action: '*',
        Resource: '*',
        Condition: { DateLessThan: { 'aws:TokenIssueTime': cutoff.toISOString().replace(/\.\d{3}Z$/, 'Z') } },
      },
    ],
  });
}

export interface CredentialOutcomeState {
  case?: Pick<CredentialCase, 'exfiltration' | 'finding' | 'principal'>;
  deactivate?: unknown;
  quarantine?: unknown;
  revoke?: unknown;
  instance?: unknown;
  activity?: unknown;
  error?: CaughtError;
}

function asStep(name: string, slot: unknown): StepSummary {
  const s = (slot ?? {}) as { status?: string; reason?: string; Error?: string; Cause?: string };
  if (slot === undefined) return { name, status: 'failed', reason: 'did not run' };
  if (s.Error !== undefined)
    return { name, status: 'failed', reason: `${s.Error}: ${String(s.Cause ?? '').slice(0, 400)}` };
  if (s.status === 'skipped') return { name, status: 'skipped', reason: s.reason ?? '' };
  return { name, status: 'succeeded' };
}

/**
 * `failed` when any containment step failed or none changed anything (the principal is not known to
 * be contained); `partial` when it is contained but evidence is missing or the exfiltrating instance
 * could not be handed to the forensic workflow; `completed` otherwise.
 */
export function credentialOutcome(state: CredentialOutcomeState): { outcome: Outcome; steps: StepSummary[] } {
  const containment = [
    asStep('deactivate access key', state.deactivate),
    asStep('quarantine principal', state.quarantine),
    asStep('revoke sessions', state.revoke),
  ];
  const steps = [...containment];
  const handOver = state.case?.exfiltration && state.case.finding.instanceId !== undefined;
  if (handOver) steps.push(asStep('start instance response', state.instance));
  steps.push(asStep('collect activity', state.activity));
  const contained =
    containment.every((s) => s.status !== 'failed') && containment.some((s) => s.status === 'succeeded');
  if (!contained || (state.error && state.activity === undefined)) return { outcome: 'failed', steps };
  return { outcome: steps.every((s) => s.status !== 'failed') ? 'completed' : 'partial', steps };
}
