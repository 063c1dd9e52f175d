import { z } from 'zod';
import { ConfigurationError } from './errors.js';

const flag = z.enum(['true', 'false']).transform((v) => v === 'true');
const seconds = z.coerce.number().int().min(0).max(86_400);
// S3's bucket naming rules: the name goes into policy ARNs, where `*` or `${...}` would widen them.
const bucketName = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/);

const schema = z.object({
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
  CREDENTIAL_ACTIVITY_MAX_EVENTS: z.coerce.number().int().min(50).max(50_000).default(5000),
});

export type Config = z.infer<typeof schema>;

/** Reads and checks the whole configuration; a missing or malformed variable names itself. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = schema.safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
  throw new ConfigurationError(`Cordon is misconfigured: ${problems}`);
}

let cached: Config | undefined;
/** The configuration of this process, read once. */
export function config(): Config {
  cached ??= loadConfig();
  return cached;
}
/** For tests and the local runner, which change the environment between cases. */
export function resetConfig(): void {
  cached = undefined;
}

export const configKeys = Object.keys(schema.shape) as (keyof Config)[];
