import { z } from 'zod';
import { ConfigurationError } from './errors.js';
import { defaultPolicyText, parseResponsePolicy, type ResponsePolicy } from './policy.js';

const flag = z.enum(['true', 'false']).transform((v) => v === 'true');
const seconds = z.coerce.number().int().min(0).max(86_400);
// S3's bucket naming rules: the name goes into policy ARNs, where `*` or `${...}` would widen them.
const bucketName = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/);

/** Every setting a function may read, each with its rule, declared once. */
const settings = {
  CORDON_STAGE: z.string().regex(/^[a-z0-9-]{1,16}$/),
  CORDON_ACCOUNT_ID: z.string().regex(/^\d{12}$/),
  AWS_REGION: z.string().min(1),
  EVIDENCE_BUCKET: bucketName,
  CASES_TABLE: z.string().min(1),
  ALERT_TOPIC_ARN: z.string().startsWith('arn:'),
  SIGNING_KEY_ID: z.string().min(1),
  MEMBER_ROLE_NAME: z.string().regex(/^[\w+=,.@/-]{1,64}$/),
  OBJECT_LOCK_MODE: z.enum(['COMPLIANCE', 'GOVERNANCE']),
  OBJECT_LOCK_DAYS: z.coerce.number().int().min(1).max(36_500),
  MIN_SEVERITY: z.coerce.number().min(0).max(10),
  ACCEPT_SAMPLE_FINDINGS: flag,
  ACCEPT_SECURITYHUB_IMPORTED: flag,
  SECURITYHUB_ACTION_ID: z.string().regex(/^[A-Za-z0-9]{1,20}$/),
  /**
   * The response policy (functions/core/policy.ts), a JSON document; unset or empty, every case is
   * contained, as before the policy existed. Set only on Intake, the one function that decides it.
   */
  RESPONSE_POLICY: z
    .string()
    .max(16_384)
    .default(defaultPolicyText)
    .transform((text, ctx): ResponsePolicy => {
      try {
        return parseResponsePolicy(text.trim() === '' ? defaultPolicyText : text, 'the policy');
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    }),
  FORENSIC_CIDR: z.union([z.literal(''), z.cidrv4(), z.cidrv6()]),
  ASG_MODE: z.enum(['standby', 'detach']),
  CONNTRACK_WAIT_SECONDS: seconds,
  REVOKE_SCOPE: z.enum(['instance', 'role']),
  REQUIRE_IMDSV2: flag,
  BLOCK_REMOTE_IPS: flag,
  QUARANTINE_PROFILE_NAME: z.string().regex(/^[\w+=,.@-]{1,128}$/),
  SNAPSHOT_LOCK_DAYS: z.coerce.number().int().min(0).max(36_500),
  SNAPSHOT_COPY_ACCOUNT_ID: z.union([z.literal(''), z.string().regex(/^\d{12}$/)]),
  SNAPSHOT_COPY_KMS_KEY_ARN: z.union([z.literal(''), z.string().startsWith('arn:')]),
  SNAPSHOT_BUDGET_SECONDS: seconds,
  MEMORY_BUDGET_SECONDS: seconds,
  MEMORY_DOCUMENT_LINUX: z.string().regex(/^[\w.-]{3,128}$/),
  MEMORY_DOCUMENT_WINDOWS: z.string().regex(/^[\w.-]{3,128}$/),
  TOOLS_BUCKET: bucketName,
  TOOLS_PREFIX: z.string().regex(/^[\w./-]{0,200}$/),
  // The pinned SHA-256 of each memory tool; empty means no tool is pinned for that platform, and its
  // instances are skipped with that reason rather than given an unchecked binary.
  AVML_SHA256: z.union([z.literal(''), z.string().regex(/^[0-9a-f]{64}$/)]),
  WINPMEM_SHA256: z.union([z.literal(''), z.string().regex(/^[0-9a-f]{64}$/)]),
  // AVML's snappy compression: smaller uploads, but the image needs `avml-convert` before analysis.
  MEMORY_COMPRESS: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  // The incident playbooks (docs/playbooks.md). Each has a default, so a stage that does not deploy a
  // playbook needs none of them.
  /** Rules per network ACL, per direction and family (AWS's quota: 20 unless raised, at most 40). */
  NACL_RULE_QUOTA: z.coerce.number().int().min(2).max(40).default(20),
  /** Deny the remote IP of brute-force and port-probe findings in the instance's VPC. */
  AUTO_BLOCK_FINDINGS: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  AUTO_BLOCK_TTL: z
    .string()
    .regex(/^[1-9]\d{0,5}[mhd]$/)
    .default('24h'),
  /** Principals whose compute-exposure changes raise no alert: comma-separated ARN patterns (`*`);
   * by default AWS's service-linked roles (Auto Scaling launching instances, for example). */
  POLICY_ALLOWLIST: z.string().max(4096).default('arn:*:iam::*:role/aws-service-role/*'),
  POLICY_REVERT_OPEN_INGRESS: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  POLICY_SENSITIVE_PORTS: z
    .string()
    .regex(/^(?:\d{1,5}(?:,\d{1,5})*)?$/)
    .default('22,23,135,139,445,1433,1521,2375,2376,3306,3389,5432,5900,5984,6379,9200,11211,27017'),
  /** Suricata severities run from 1 (highest) down; 0 turns the action off. */
  IDS_START_MAX_SEVERITY: z.coerce.number().int().min(0).max(255).default(1),
  IDS_STOP_MAX_SEVERITY: z.coerce.number().int().min(0).max(255).default(0),
  /** Set only on the functions that start the forensic workflow. */
  FORENSICS_STATE_MACHINE_ARN: z.union([z.literal(''), z.string().startsWith('arn:')]).default(''),
  CREDENTIAL_ACTIVITY_DAYS: z.coerce.number().int().min(1).max(90).default(7),
  /** Where a trigger that could not open a case waits for `cordon redrive` (the trigger queue). */
  REDRIVE_QUEUE_URL: z.url({ protocol: /^https?$/ }),
  CREDENTIAL_ACTIVITY_MAX_EVENTS: z.coerce.number().int().min(50).max(50_000).default(5000),
  /**
   * Whether a completed case resolves its Security Hub findings (functions/core/securityhub.ts). The
   * template sets exactly 'true' or 'false' (a CloudFormation condition on the stage parameter), so
   * that Notify, which must always report, cannot be stopped by a malformed value.
   */
  SECURITYHUB_RESOLVE_ON_COMPLETE: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
} as const;

const everySetting = z.object(settings);
export type Config = z.infer<typeof everySetting>;
export type SettingName = keyof Config;

/** The settings of one function, or of the functions of one playbook: what they read, and only that. */
export interface ConfigSlice<K extends SettingName = SettingName> {
  /** Whose settings these are, for the error a bad one raises. */
  readonly name: string;
  readonly keys: readonly K[];
}

/** What every function reads: `stepContext` builds its clients and stores from these. */
const common = [
  'CORDON_STAGE',
  'CORDON_ACCOUNT_ID',
  'AWS_REGION',
  'EVIDENCE_BUCKET',
  'CASES_TABLE',
  'ALERT_TOPIC_ARN',
  'SIGNING_KEY_ID',
  'MEMBER_ROLE_NAME',
  'OBJECT_LOCK_MODE',
  'OBJECT_LOCK_DAYS',
] as const satisfies readonly SettingName[];
export type CommonSetting = (typeof common)[number];

/** Any settings by name, for a caller outside Lambda that checks the values it was given. */
export function configSlice<const K extends SettingName>(name: string, keys: readonly K[]): ConfigSlice<K> {
  return { name, keys };
}

const withCommon = <const K extends SettingName>(name: string, own: readonly K[]) =>
  configSlice<K | CommonSetting>(name, [...common, ...own]);

/**
 * Each function checks at start only the slice its handler names, so that one malformed setting stops
 * the functions that read it and no other: a bad AUTO_BLOCK_TTL stops the blocking playbook, not
 * Intake. A step of a state machine takes its own slice: a broken memory setting costs the memory
 * steps, while the instance is still contained and its disks snapshotted (the workflow's Catch takes
 * the ConfigurationError to Notify, whose slice is the common one and a switch the template can only
 * set to 'true' or 'false', so that it can always report). A
 * playbook's functions share one slice: they are configured together, and the one that runs most
 * often (expire-blocks, every five minutes) reports a bad setting before a finding needs it. Unblock
 * IP is the exception: it reads only where a block is, so that a person can always take one out.
 *
 * serverless.yml still gives every function the whole environment. That is harmless now: a function
 * parses only its slice and never looks at the rest, and none of these values is a secret (names,
 * ARNs, numbers, switches); what a function may do is its IAM role's business, not its environment's.
 */
export const configSlices = {
  /** Archive, triage, the credential containment steps, unblock-ip. */
  common: withCommon('common', []),
  /** notify-outcome and credential-notify: what they tell Security Hub at the end of a case. */
  notify: withCommon('the notify steps', ['SECURITYHUB_RESOLVE_ON_COMPLETE']),
  intake: withCommon('intake-finding', [
    'MIN_SEVERITY',
    'ACCEPT_SAMPLE_FINDINGS',
    'ACCEPT_SECURITYHUB_IMPORTED',
    'SECURITYHUB_ACTION_ID',
    'RESPONSE_POLICY',
  ]),
  protect: withCommon('protect-instance', ['ASG_MODE']),
  isolate: withCommon('isolate-instance', [
    'FORENSIC_CIDR',
    'CONNTRACK_WAIT_SECONDS',
    'BLOCK_REMOTE_IPS',
    'NACL_RULE_QUOTA',
  ]),
  revoke: withCommon('revoke-credentials', ['REVOKE_SCOPE', 'REQUIRE_IMDSV2', 'QUARANTINE_PROFILE_NAME']),
  /** snapshot-volumes and check-snapshots: a snapshot that could not be copied is not taken. */
  snapshots: withCommon('snapshots', [
    'SNAPSHOT_LOCK_DAYS',
    'SNAPSHOT_BUDGET_SECONDS',
    'SNAPSHOT_COPY_ACCOUNT_ID',
    'SNAPSHOT_COPY_KMS_KEY_ARN',
  ]),
  /** capture-memory, check-memory and verify-memory. */
  memory: withCommon('memory', [
    'TOOLS_BUCKET',
    'TOOLS_PREFIX',
    'AVML_SHA256',
    'WINPMEM_SHA256',
    'MEMORY_DOCUMENT_LINUX',
    'MEMORY_DOCUMENT_WINDOWS',
    'MEMORY_BUDGET_SECONDS',
    'MEMORY_COMPRESS',
  ]),
  release: withCommon('release-instance', ['QUARANTINE_PROFILE_NAME']),
  credentialIntake: withCommon('credential-intake', ['MIN_SEVERITY', 'ACCEPT_SAMPLE_FINDINGS']),
  credentialActivity: withCommon('collect-activity', [
    'CREDENTIAL_ACTIVITY_DAYS',
    'CREDENTIAL_ACTIVITY_MAX_EVENTS',
  ]),
  startForensics: withCommon('start-instance-response', ['FORENSICS_STATE_MACHINE_ARN']),
  hold: withCommon('hold-trigger', ['REDRIVE_QUEUE_URL']),
  /** block-ip and expire-blocks. */
  blocks: withCommon('the IP blocking playbook', [
    'NACL_RULE_QUOTA',
    'FORENSIC_CIDR',
    'AUTO_BLOCK_FINDINGS',
    'AUTO_BLOCK_TTL',
    'ACCEPT_SAMPLE_FINDINGS',
  ]),
  /** ids-alert and ids-alert-stop. */
  ids: withCommon('the IDS playbook', [
    'IDS_START_MAX_SEVERITY',
    'IDS_STOP_MAX_SEVERITY',
    'FORENSICS_STATE_MACHINE_ARN',
  ]),
  policy: withCommon('policy-violation', [
    'POLICY_ALLOWLIST',
    'POLICY_REVERT_OPEN_INGRESS',
    'POLICY_SENSITIVE_PORTS',
  ]),
} as const;

/** Reads and checks one slice of the configuration; a missing or malformed variable names itself. */
export function loadConfig<K extends SettingName>(
  slice: ConfigSlice<K>,
  env: Record<string, string | undefined> = process.env,
): Pick<Config, K> {
  const mask = Object.fromEntries(slice.keys.map((k) => [k, true])) as Partial<Record<SettingName, true>>;
  const parsed = everySetting.pick(mask).safeParse(env);
  if (parsed.success) return parsed.data as Pick<Config, K>;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
  throw new ConfigurationError(`Cordon is misconfigured (the settings of ${slice.name}): ${problems}`);
}

const cached = new Map<ConfigSlice, unknown>();
/** The slice of this process's configuration, read once. */
export function config<K extends SettingName>(slice: ConfigSlice<K>): Pick<Config, K> {
  let found = cached.get(slice) as Pick<Config, K> | undefined;
  if (!found) {
    found = loadConfig(slice);
    cached.set(slice, found);
  }
  return found;
}
/** For tests and the local runner, which change the environment between cases. */
export function resetConfig(): void {
  cached.clear();
}
