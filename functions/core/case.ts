import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { isSafeText, safeTextSchema } from './text.js';

/** `i-` and 8 or 17 hex digits: the only instance ids EC2 issues. */
export const instanceIdPattern = /^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
export const accountIdPattern = /^\d{12}$/;
export const regionPattern = /^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d$/;
/** `20261127T201003Z-i-0123456789abcdef0-3fa9`: sortable, unique, and safe in keys, tags and ARNs. */
export const caseIdPattern = /^\d{8}T\d{6}Z-i-(?:[0-9a-f]{8}|[0-9a-f]{17})-[0-9a-f]{4}$/;

export const instanceIdSchema = z.string().regex(instanceIdPattern, 'not an EC2 instance id');
export const accountIdSchema = z.string().regex(accountIdPattern, 'not a 12-digit account id');
export const regionSchema = z.string().regex(regionPattern, 'not an AWS region');
export const caseIdSchema = z.string().regex(caseIdPattern, 'not a Cordon case id');

// The case's text fields are held to the one rule; named here too, where the case schema is read.
export { safeTextSchema };

export const ipSchema = z.union([z.ipv4(), z.ipv6()]);

export const triggerSchema = z.object({
  source: z.enum(['guardduty', 'securityhub', 'manual', 'ids']),
  shape: z.enum([
    'eventbridge-guardduty',
    'guardduty-detail',
    'guardduty-api',
    'asff',
    'securityhub-custom-action',
    'securityhub-imported',
    'manual',
  ]),
  findingId: safeTextSchema.optional(),
  findingType: safeTextSchema.optional(),
  severity: z.number().min(0).max(100).optional(),
  count: z.number().int().min(0).optional(),
  sample: z.boolean(),
  remoteIps: z.array(ipSchema).max(50),
  requestedBy: safeTextSchema,
  reason: safeTextSchema,
  receivedAt: z.string(),
});
export type Trigger = z.infer<typeof triggerSchema>;

/**
 * A Security Hub product ARN as Security Hub issues it: `arn:<partition>:securityhub:<region>:` then
 * the account (empty for AWS's own products) and `:product/<company>/<product>`. The region is where
 * Security Hub holds the finding.
 */
export const productArnPattern =
  /^arn:(aws|aws-cn|aws-us-gov):securityhub:([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):(\d{12})?:product\/[\w.-]{1,128}\/[\w.-]{1,128}$/;

/**
 * A finding as Security Hub identifies it, exactly as Security Hub holds it (functions/core/securityhub.ts):
 * its `Id` (at most 512 characters, no surrounding space, nothing the text rule refuses) and its
 * `ProductArn`.
 */
export const securityHubFindingSchema = z.strictObject({
  id: z
    .string()
    .min(1)
    .max(512)
    .refine((id) => id.trim() === id && isSafeText(id), 'not a finding id Cordon sends'),
  productArn: z.string().max(2048).regex(productArnPattern, 'not a Security Hub product ARN'),
});
export type SecurityHubFinding = z.infer<typeof securityHubFindingSchema>;

/**
 * What the response policy (functions/core/policy.ts) decided for the case at Intake, with the rule that
 * chose it: `contain` at once, `approve` (evidence and triage at once, containment after a person
 * approves) or `evidence-only` (the network, credentials and profile left as they are). An `exempt`
 * instance gets no case: Intake refuses the trigger, naming the rule.
 */
export const responseActions = ['contain', 'approve', 'evidence-only'] as const;
export const responseSchema = z.object({
  action: z.enum(responseActions),
  /** The rule's name, or `default` when no rule matched. */
  rule: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/, 'not a policy rule name'),
});
export type CaseResponse = z.infer<typeof responseSchema>;

export const caseSchema = z.object({
  caseId: caseIdSchema,
  instanceId: instanceIdSchema,
  accountId: accountIdSchema,
  region: regionSchema,
  partition: z.enum(['aws', 'aws-cn', 'aws-us-gov']),
  openedAt: z.string(),
  executionArn: z.string().max(2048).optional(),
  trigger: triggerSchema,
  /** The trigger's finding in Security Hub, when it is one Cordon can update there. */
  securityHub: securityHubFindingSchema.optional(),
  /** The response policy's decision; a case without one (opened before the policy existed) is contained. */
  response: responseSchema.optional(),
});
export type Case = z.infer<typeof caseSchema>;

/** What every step after Intake receives: the workflow state, of which each step reads its part. */
export const caseStateSchema = z.object({ case: caseSchema }).passthrough();

export type Outcome = 'completed' | 'partial' | 'failed' | 'rejected' | 'duplicate';

export function newCaseId(instanceId: string, now: Date = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${instanceId}-${randomBytes(2).toString('hex')}`;
}

/**
 * Playbook cases that are not about one instance (docs/playbooks.md):
 * `20261127T201003Z-block-3fa9c2d1-07be` for an IP-range block, `-cred-` for a compromised principal,
 * `-policy-` for a policy violation Cordon reverted. The middle part is a hash of the subject (the VPC
 * and range, the principal, the event), never the subject's own text, so ids stay safe in keys and tags.
 */
export const blockCaseIdPattern = /^\d{8}T\d{6}Z-block-[0-9a-f]{8}-[0-9a-f]{4}$/;
export const credentialCaseIdPattern = /^\d{8}T\d{6}Z-cred-[0-9a-f]{8}-[0-9a-f]{4}$/;
export const violationCaseIdPattern = /^\d{8}T\d{6}Z-policy-[0-9a-f]{8}-[0-9a-f]{4}$/;
export type PlaybookCaseKind = 'block' | 'cred' | 'policy';

export function newPlaybookCaseId(kind: PlaybookCaseKind, subject: string, now: Date = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  const digest = createHash('sha256').update(subject).digest('hex').slice(0, 8);
  return `${stamp}-${kind}-${digest}-${randomBytes(2).toString('hex')}`;
}

export function partitionOf(region: string): Case['partition'] {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** The tag keys Cordon writes on what it touches; one place so that release and doctor agree. */
export const tagKeys = {
  caseId: 'cordon:case-id',
  status: 'cordon:status',
  managed: 'cordon:managed',
  purpose: 'cordon:purpose',
} as const;
