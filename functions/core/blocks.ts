/**
 * The IP-range blocking playbook's shared half: what a block case records, how its deny entries are
 * put into every subnet ACL of a VPC and taken out again. Block IP applies; Unblock IP and Expire
 * Blocks remove, through `unblockCase`, so that a manual unblock and an expiry can never differ.
 *
 * Block IP's logic lives here too, so that `cordon block-ip` runs exactly what the function runs.
 *
 * A block case holds one range in one VPC. Its lock (`BLOCK#<account>#<region>#<vpc>#<range>`) keeps it
 * the only open block of that range there: asking again resumes the same case (adding whatever is
 * missing, for example in an ACL created since) instead of adding a second set of entries.
 */
import {
  CreateNetworkAclEntryCommand,
  DeleteNetworkAclEntryCommand,
  DescribeNetworkAclsCommand,
  DescribeVpcsCommand,
  type EC2Client,
  type NetworkAcl,
} from '@aws-sdk/client-ec2';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { accountIdSchema, blockCaseIdPattern, newPlaybookCaseId, partitionOf, regionSchema } from './case.js';
import type { CaseStore, Recorder } from './cases.js';
import type { Config } from './config.js';
import {
  awsErrorCode,
  CaseNotFoundError,
  describeError,
  InvalidStepInputError,
  NetworkBlockError,
  RejectedInputError,
} from './errors.js';
import {
  type AclView,
  aclView,
  type Cidr,
  cidrsOverlap,
  type DenyEntry,
  hostCidr,
  isPublicRange,
  parseCidr,
  planDenies,
  planRemoval,
} from './nacl.js';
import { type GuardDutyFinding, readGuardDutyFinding } from './readers/guardduty.js';
import { isRecord, oneLine, safeTextSchema, typedText } from './text.js';

export const blockStep = 'block-ip';
export const unblockStep = 'unblock-ip';
/** The due-queue (CaseStore.schedule) that holds each block's expiry. */
export const blockExpiryQueue = 'block-expiry';

export const blockCaseIdSchema = z.string().regex(blockCaseIdPattern, 'not a Cordon block case id');
export const vpcIdSchema = z.string().regex(/^vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})$/, 'not a VPC id');
const aclIdSchema = z.string().regex(/^acl-(?:[0-9a-f]{8}|[0-9a-f]{17})$/);
/** A range in the canonical form EC2 stores. */
export const canonicalCidrSchema = z
  .string()
  .max(64)
  .refine((c) => parseCidr(c)?.cidr === c, 'not a canonical CIDR');

export const denyEntrySchema = z.object({
  networkAclId: aclIdSchema,
  ruleNumber: z.number().int().min(1).max(32766),
  egress: z.boolean(),
  cidr: canonicalCidrSchema,
});

/** `changes['block-ip']` on the case: every entry the block added, saved before it was added. */
export const blockChangesSchema = z.object({
  entries: z.array(denyEntrySchema),
  expiresAt: z.string().optional(),
});
export type BlockChanges = z.infer<typeof blockChangesSchema>;

/** The case item of a block (CaseStore.openSubject) as Unblock reads it back. */
export const blockRecordSchema = z.looseObject({
  caseId: blockCaseIdSchema,
  kind: z.literal('block'),
  accountId: accountIdSchema,
  region: regionSchema,
  vpcId: vpcIdSchema,
  cidr: canonicalCidrSchema,
  requestedBy: safeTextSchema,
  reason: safeTextSchema,
  status: z.string(),
  changes: z.looseObject({ [blockStep]: blockChangesSchema.optional() }).optional(),
});
export type BlockRecord = z.infer<typeof blockRecordSchema>;

export function blockLock(target: {
  accountId: string;
  region: string;
  vpcId: string;
  cidr: string;
}): string {
  return `BLOCK#${target.accountId}#${target.region}#${target.vpcId}#${target.cidr}`;
}

const ttlUnits = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** The longest block a TTL may ask for: past a year a block is a policy, not an incident response. */
export const maxTtlMs = 365 * 86_400_000;

/** `30m`, `24h`, `7d` in milliseconds; undefined for anything else or longer than a year. */
export function parseTtl(ttl: string): number | undefined {
  const m = /^([1-9]\d{0,5})([mhd])$/.exec(ttl);
  if (!m) return undefined;
  const ms = Number(m[1]) * ttlUnits[m[2] as keyof typeof ttlUnits];
  return ms <= maxTtlMs ? ms : undefined;
}

const direction = (egress: boolean) => (egress ? 'outbound' : 'inbound');

/** Every network ACL of the VPC that at least one subnet uses (an ACL with no subnet filters nothing). */
export async function subnetAcls(ec2: EC2Client, vpcId: string): Promise<NetworkAcl[]> {
  const acls: NetworkAcl[] = [];
  let NextToken: string | undefined;
  do {
    const page = await ec2.send(
      new DescribeNetworkAclsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }], NextToken }),
    );
    acls.push(...(page.NetworkAcls ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  return acls.filter((a) => (a.Associations ?? []).some((s) => s.SubnetId));
}

async function describeAcl(ec2: EC2Client, networkAclId: string): Promise<AclView | undefined> {
  try {
    const out = await ec2.send(new DescribeNetworkAclsCommand({ NetworkAclIds: [networkAclId] }));
    const acl = out.NetworkAcls?.[0];
    return acl ? aclView(acl) : undefined;
  } catch (error) {
    if (awsErrorCode(error) === 'InvalidNetworkAclID.NotFound') return undefined;
    throw error;
  }
}

const sameEntry = (a: DenyEntry, b: DenyEntry) =>
  a.networkAclId === b.networkAclId &&
  a.ruleNumber === b.ruleNumber &&
  a.egress === b.egress &&
  a.cidr === b.cidr;

/** Both lists' entries, once each. */
export function mergeEntries(ours: readonly DenyEntry[], theirs: readonly DenyEntry[]): DenyEntry[] {
  return [...ours, ...theirs.filter((t) => !ours.some((o) => sameEntry(o, t)))];
}

export interface ApplyDeps {
  ec2: EC2Client;
  recorder: Recorder;
  /** Saves the block's changes on the case; called before every entry is created and after it fails. */
  save: (changes: BlockChanges) => Promise<void>;
  /** Rules per network ACL, per direction and family (NACL_RULE_QUOTA). */
  quota: number;
  /**
   * The block's changes as the case holds them now: read when an entry's number turns out taken, in
   * case a concurrent request for the same block took it, so that its entry counts as the block's own.
   */
  reload?: () => Promise<BlockChanges>;
}

export interface SkippedDeny {
  networkAclId: string;
  egress: boolean;
  reason: string;
}

export interface ApplyResult {
  acls: string[];
  added: DenyEntry[];
  /** Entries this block added earlier and found still in force. */
  present: DenyEntry[];
  skipped: SkippedDeny[];
  failed: SkippedDeny[];
}

/**
 * Denies `cidr`, inbound and outbound, in every subnet ACL of the VPC, at free numbers ahead of the
 * allows and within the quota. Entries the block already holds are kept (idempotent); an entry taken
 * by someone else between our read and our write makes us read that ACL again and plan anew.
 */
export async function applyBlock(
  target: { vpcId: string; cidr: string },
  changes: BlockChanges,
  deps: ApplyDeps,
): Promise<ApplyResult> {
  const result: ApplyResult = { acls: [], added: [], present: [], skipped: [], failed: [] };
  for (const acl of await subnetAcls(deps.ec2, target.vpcId)) {
    const networkAclId = acl.NetworkAclId as string;
    result.acls.push(networkAclId);
    let view: AclView | undefined = aclView(acl);
    for (let attempt = 1; view; attempt++) {
      const current: AclView = view;
      view = undefined;
      // Recorded entries are never dropped on the strength of a read: EC2 reads are eventually
      // consistent, and an entry missing from one may still exist. Unblock checks each entry against
      // the ACL before it deletes anything, so a stale record can only ever be reported, not obeyed.
      const plan = planDenies(current, [target.cidr], { quota: deps.quota, owned: changes.entries });
      for (const p of plan) {
        if (p.kind === 'present') {
          result.present.push(p.entry);
          continue;
        }
        if (p.kind === 'skip') {
          result.skipped.push({ networkAclId, egress: p.egress, reason: p.detail });
          await deps.recorder.note('network ACL deny skipped', 'skipped', {
            target: networkAclId,
            detail: p.detail,
          });
          continue;
        }
        const entry = p.entry;
        // The same entry may already be recorded (a read that did not show it yet): keep one record.
        const known = changes.entries.some((e) => sameEntry(e, entry));
        if (!known) {
          changes.entries.push(entry);
          await deps.save(changes);
        }
        const range = parseCidr(entry.cidr);
        try {
          await deps.recorder.run(
            `ec2:CreateNetworkAclEntry (${direction(entry.egress)} deny)`,
            `${networkAclId}#${entry.ruleNumber}`,
            () =>
              deps.ec2.send(
                new CreateNetworkAclEntryCommand({
                  NetworkAclId: networkAclId,
                  RuleNumber: entry.ruleNumber,
                  Egress: entry.egress,
                  Protocol: '-1',
                  RuleAction: 'deny',
                  ...(range?.family === 'ipv6' ? { Ipv6CidrBlock: entry.cidr } : { CidrBlock: entry.cidr }),
                }),
              ),
          );
          result.added.push(entry);
        } catch (error) {
          if (!known) {
            changes.entries = changes.entries.filter((e) => e !== entry);
            await deps.save(changes);
          }
          const code = awsErrorCode(error);
          if (code === 'NetworkAclEntryAlreadyExists' && attempt < 3) {
            // Another writer took the number between our read and our write: read this ACL again, and
            // the case, since that writer may be a concurrent request for this same block.
            view = await describeAcl(deps.ec2, networkAclId);
            if (deps.reload) changes.entries = mergeEntries(changes.entries, (await deps.reload()).entries);
            break;
          }
          const why =
            code === 'NetworkAclEntryLimitExceeded'
              ? `the ACL's rule quota is lower than ${deps.quota} (NACL_RULE_QUOTA)`
              : `${describeError(error).name}: ${describeError(error).message}`;
          result.failed.push({ networkAclId, egress: entry.egress, reason: why });
        }
      }
    }
  }
  // A re-planned ACL reports again what an earlier attempt already counted: count each entry once.
  result.present = result.present.filter(
    (p, i, all) => !result.added.some((a) => sameEntry(a, p)) && all.findIndex((q) => sameEntry(q, p)) === i,
  );
  result.skipped = result.skipped.filter(
    (s, i, all) => all.findIndex((t) => t.networkAclId === s.networkAclId && t.egress === s.egress) === i,
  );
  return result;
}

export interface RemoveResult {
  removed: DenyEntry[];
  absent: DenyEntry[];
  /** Entries whose number now holds another rule: left exactly as they are. */
  leftAlone: DenyEntry[];
  /** Entries still in place because deleting them failed. */
  failed: (DenyEntry & { reason: string })[];
}

/** Deletes exactly the entries a block added, each only if it is still exactly as added. */
export async function removeEntries(
  entries: readonly DenyEntry[],
  deps: { ec2: EC2Client; recorder: Recorder },
): Promise<RemoveResult> {
  const result: RemoveResult = { removed: [], absent: [], leftAlone: [], failed: [] };
  for (const networkAclId of [...new Set(entries.map((e) => e.networkAclId))]) {
    const ours = entries.filter((e) => e.networkAclId === networkAclId);
    const view = await describeAcl(deps.ec2, networkAclId);
    if (!view) {
      result.absent.push(...ours);
      continue;
    }
    const plan = planRemoval(view, ours);
    result.absent.push(...plan.absent);
    for (const entry of plan.changed) {
      result.leftAlone.push(entry);
      await deps.recorder.note('network ACL entry left alone', 'skipped', {
        target: `${networkAclId}#${entry.ruleNumber}`,
        detail: `${direction(entry.egress)} rule ${entry.ruleNumber} no longer denies ${entry.cidr}; it is not Cordon's to delete`,
      });
    }
    for (const entry of plan.remove) {
      try {
        await deps.recorder.run(
          `ec2:DeleteNetworkAclEntry (${direction(entry.egress)} deny)`,
          `${networkAclId}#${entry.ruleNumber}`,
          () =>
            deps.ec2.send(
              new DeleteNetworkAclEntryCommand({
                NetworkAclId: networkAclId,
                RuleNumber: entry.ruleNumber,
                Egress: entry.egress,
              }),
            ),
        );
        result.removed.push(entry);
      } catch (error) {
        if (awsErrorCode(error) === 'InvalidNetworkAclEntry.NotFound') result.absent.push(entry);
        else result.failed.push({ ...entry, reason: describeError(error).message });
      }
    }
  }
  return result;
}

export interface UnblockDeps {
  ec2For: (target: { accountId: string; region: string; caseId: string }) => EC2Client;
  cases: Pick<CaseStore, 'get' | 'saveChanges' | 'setStatus' | 'releaseSubject' | 'unschedule'>;
  recorder: (caseId: string, step: string) => Recorder;
}

export interface UnblockResult {
  caseId: string;
  status: 'released' | 'already-released';
  vpcId: string;
  cidr: string;
  removed: DenyEntry[];
  absent: DenyEntry[];
  leftAlone: DenyEntry[];
  failed: (DenyEntry & { reason: string })[];
}

/** Reads a block case, or says precisely why it cannot be unblocked. */
export async function readBlock(cases: Pick<CaseStore, 'get'>, caseId: string): Promise<BlockRecord> {
  const raw = await cases.get(caseId);
  if (!raw) throw new CaseNotFoundError(`There is no case ${caseId}`);
  const parsed = blockRecordSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidStepInputError(`Case ${caseId} is not an IP-range block`);
  return parsed.data;
}

/**
 * Takes out exactly what the block added and closes the case. Entries that someone changed since are
 * left alone and reported; entries whose deletion failed keep the case open (and, for an expiry, due),
 * so that the next attempt finishes the job.
 */
export async function unblockCase(
  caseId: string,
  request: { requestedBy: string; reason: string; step: string },
  deps: UnblockDeps,
): Promise<UnblockResult> {
  const record = await readBlock(deps.cases, caseId);
  const changes: BlockChanges = record.changes?.[blockStep] ?? { entries: [] };
  const base = { caseId, vpcId: record.vpcId, cidr: record.cidr };
  if (record.status === 'released') {
    return { ...base, status: 'already-released', removed: [], absent: [], leftAlone: [], failed: [] };
  }
  const recorder = deps.recorder(caseId, request.step);
  await recorder.note('unblock requested', 'info', {
    target: `${record.vpcId} ${record.cidr}`,
    detail: `${request.requestedBy}: ${request.reason}`,
  });
  const ec2 = deps.ec2For({ accountId: record.accountId, region: record.region, caseId });
  const removal = await removeEntries(changes.entries, { ec2, recorder });
  const remaining = changes.entries.filter((e) =>
    removal.failed.some(
      (f) => f.networkAclId === e.networkAclId && f.ruleNumber === e.ruleNumber && f.egress === e.egress,
    ),
  );
  await deps.cases.saveChanges(caseId, blockStep, { ...changes, entries: remaining });
  const result = { ...base, ...removal };
  if (removal.failed.length > 0) {
    throw new NetworkBlockError(
      `${removal.failed.length} deny entr${removal.failed.length === 1 ? 'y' : 'ies'} of ${caseId} could not be removed: ${removal.failed[0]?.reason ?? ''}`,
    );
  }
  await deps.cases.setStatus(caseId, 'released');
  await deps.cases.releaseSubject(blockLock(record), caseId);
  if (changes.expiresAt) await deps.cases.unschedule(blockExpiryQueue, caseId, changes.expiresAt);
  await recorder.note('block released', 'info', {
    target: `${record.vpcId} ${record.cidr}`,
    detail: `${removal.removed.length} removed, ${removal.absent.length} already gone, ${removal.leftAlone.length} left alone`,
  });
  return { ...result, status: 'released' };
}

// ---------------------------------------------------------------------------------------------------
// Blocking a range: a person's request, or a finding's attacker
// ---------------------------------------------------------------------------------------------------

/**
 * A block asked for by a person (`cordon block-ip`, or the same JSON sent to the function): one range
 * in one VPC. Strict, so that a misspelt field is refused instead of quietly ignored.
 */
export const blockRequestSchema = z.strictObject({
  cidr: z.string().min(1).max(64),
  vpcId: vpcIdSchema,
  accountId: accountIdSchema.optional(),
  region: regionSchema.optional(),
  /** `30m`, `24h`, `7d` (at most a year); absent: the block stays until `cordon unblock`. */
  ttl: z.string().max(8).optional(),
  reason: typedText,
  requestedBy: typedText,
});
export type BlockRequest = z.infer<typeof blockRequestSchema>;

/** The narrowest range each family may block: anything broader is a policy change, not a response. */
export const minPrefix = { ipv4: 8, ipv6: 24 } as const;
/** A finding names at most this many remote addresses for one block request. */
export const maxFindingAddresses = 10;

/**
 * GuardDuty finding types whose remote address is the attacker when the instance is the TARGET:
 * brute force against it and probes of its open ports. Findings where the instance is the actor
 * (it attacks others) block nothing: the remote address there is the victim.
 */
export const attackerFindingTypes = [
  'UnauthorizedAccess:EC2/SSHBruteForce',
  'UnauthorizedAccess:EC2/RDPBruteForce',
  'Recon:EC2/PortProbeUnprotectedPort',
  'Recon:EC2/PortProbeEMRUnprotectedPort',
] as const;

export type BlockDecision = 'blocked' | 'unchanged' | 'partial' | 'failed' | 'refused';

export interface BlockResult {
  decision: BlockDecision;
  /** `CODE: sentence` for a refusal; what was and was not done otherwise. */
  reason: string;
  caseId?: string;
  accountId?: string;
  region?: string;
  vpcId?: string;
  cidr?: string;
  expiresAt?: string;
  acls?: string[];
  added?: DenyEntry[];
  present?: DenyEntry[];
  skipped?: ApplyResult['skipped'];
  failed?: ApplyResult['failed'];
}

export interface BlockDeps {
  ec2For: (target: { accountId: string; region: string; caseId?: string }) => EC2Client;
  cases: Pick<
    CaseStore,
    'openSubject' | 'get' | 'saveChanges' | 'setStatus' | 'releaseSubject' | 'schedule' | 'unschedule'
  >;
  recorder: (caseId: string, step: string) => Recorder;
  sns: SNSClient;
  config: Pick<
    Config,
    | 'CORDON_ACCOUNT_ID'
    | 'AWS_REGION'
    | 'NACL_RULE_QUOTA'
    | 'FORENSIC_CIDR'
    | 'AUTO_BLOCK_FINDINGS'
    | 'AUTO_BLOCK_TTL'
    | 'ACCEPT_SAMPLE_FINDINGS'
    | 'ALERT_TOPIC_ARN'
  >;
  now: () => Date;
}

/** One range to deny in one VPC, after every check that needs no AWS call. */
interface Target {
  accountId: string;
  region: string;
  vpcId: string;
  range: Cidr;
  ttlMs?: number;
  reason: string;
  requestedBy: string;
  source: 'manual' | 'guardduty';
  findingId?: string;
}

const refused = (reason: string, extra: Partial<BlockResult> = {}): BlockResult => ({
  decision: 'refused',
  reason,
  ...extra,
});

/**
 * Blocks an address range now: a deny entry, inbound and outbound, in every subnet ACL of the VPC, at
 * free numbers ahead of the allows and within the quota, recorded as a case with its expiry. Asking
 * again for a range the VPC already blocks resumes that case: missing entries are added, nothing is
 * doubled, and a later expiry (or none) extends the block.
 */
export async function blockIp(
  input: Record<string, unknown>,
  deps: BlockDeps,
): Promise<{ blocks: BlockResult[] }> {
  if (input.source !== undefined || input['detail-type'] !== undefined || input.detail !== undefined) {
    return { blocks: await blockFromFinding(input, deps) };
  }
  const parsed = blockRequestSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.code === 'unrecognized_keys' ? 'a field' : String(issue?.path[0] ?? 'the input');
    const what =
      issue?.code === 'unrecognized_keys' ? 'is not one a block takes' : (issue?.message ?? 'is invalid');
    return { blocks: [refused(`MALFORMED: ${where} ${what}`)] };
  }
  return { blocks: [await blockRange(parsed.data, deps)] };
}

/** Blocks one range for a person's request (the CLI calls this directly). */
export async function blockRange(request: BlockRequest, deps: BlockDeps): Promise<BlockResult> {
  const range = parseCidr(request.cidr);
  if (!range) return refused('CIDR_INVALID: not an IPv4 or IPv6 address range');
  let ttlMs: number | undefined;
  if (request.ttl !== undefined) {
    ttlMs = parseTtl(request.ttl);
    if (ttlMs === undefined) return refused('TTL_INVALID: the TTL is a number and m, h or d, at most 365d');
  }
  return block(
    {
      accountId: request.accountId ?? deps.config.CORDON_ACCOUNT_ID,
      region: request.region ?? deps.config.AWS_REGION,
      vpcId: request.vpcId,
      range,
      ...(ttlMs === undefined ? {} : { ttlMs }),
      reason: request.reason,
      requestedBy: request.requestedBy,
      source: 'manual',
    },
    deps,
  );
}

async function block(target: Target, deps: BlockDeps): Promise<BlockResult> {
  const { range, vpcId } = target;
  const where = { accountId: target.accountId, region: target.region, vpcId, cidr: range.cidr };
  if (range.prefix < minPrefix[range.family]) {
    return refused(
      `CIDR_TOO_BROAD: ${range.family} ranges broader than /${minPrefix[range.family]} are refused; block narrower ranges`,
      where,
    );
  }
  const forensic = deps.config.FORENSIC_CIDR ? parseCidr(deps.config.FORENSIC_CIDR) : undefined;
  if (forensic && cidrsOverlap(forensic, range)) {
    return refused('CIDR_FORENSIC: the range holds the forensic workstation range (FORENSIC_CIDR)', where);
  }
  const ec2 = deps.ec2For({ accountId: target.accountId, region: target.region });
  const own = await vpcRanges(ec2, vpcId);
  if (!own)
    return refused(`VPC_NOT_FOUND: ${vpcId} does not exist in ${target.accountId} ${target.region}`, where);
  if (own.some((r) => cidrsOverlap(r, range))) {
    return refused(
      `CIDR_IN_VPC: the range overlaps ${vpcId}'s own addresses; blocking it would cut the VPC off from itself`,
      where,
    );
  }

  const now = deps.now();
  const lock = blockLock({ ...where });
  const candidate = newPlaybookCaseId('block', lock, now);
  const requestedExpiry =
    target.ttlMs === undefined ? undefined : new Date(now.getTime() + target.ttlMs).toISOString();
  const opened = await deps.cases.openSubject([lock], {
    caseId: candidate,
    kind: 'block',
    ...where,
    partition: partitionOf(target.region),
    openedAt: now.toISOString(),
    family: range.family,
    requestedBy: target.requestedBy,
    reason: target.reason,
    source: target.source,
    ...(target.findingId ? { findingId: target.findingId } : {}),
  });
  const caseId = opened.opened ? candidate : opened.existingCaseId;
  const recorder = deps.recorder(caseId, blockStep);
  let changes: BlockChanges = { entries: [] };
  let expiresAt = requestedExpiry;
  if (opened.opened) {
    await recorder.note('block requested', 'info', {
      target: `${vpcId} ${range.cidr}`,
      detail: `${target.source} by ${target.requestedBy}${requestedExpiry ? ` until ${requestedExpiry}` : ', no expiry'}: ${target.reason}`,
    });
  } else {
    const existing = await readBlock(deps.cases, caseId);
    changes = existing.changes?.[blockStep] ?? changes;
    // The later expiry wins, and no expiry is the latest of all (ISO times sort as text).
    expiresAt =
      changes.expiresAt === undefined || requestedExpiry === undefined
        ? undefined
        : [changes.expiresAt, requestedExpiry].sort()[1];
    await recorder.note('block requested again', 'info', {
      target: `${vpcId} ${range.cidr}`,
      detail: `${target.source} by ${target.requestedBy}: ${target.reason}`,
    });
  }
  const previousExpiry = changes.expiresAt;
  const save = (c: BlockChanges) =>
    deps.cases.saveChanges(caseId, blockStep, { entries: c.entries, ...(expiresAt ? { expiresAt } : {}) });
  const applied = await applyBlock({ vpcId, cidr: range.cidr }, changes, {
    ec2: deps.ec2For({ accountId: target.accountId, region: target.region, caseId }),
    recorder,
    save,
    quota: deps.config.NACL_RULE_QUOTA,
    reload: async () => (await readBlock(deps.cases, caseId)).changes?.[blockStep] ?? { entries: [] },
  });
  const inForce = applied.added.length + applied.present.length;
  const decision: BlockDecision =
    inForce === 0
      ? 'failed'
      : applied.skipped.length + applied.failed.length > 0
        ? 'partial'
        : applied.added.length > 0
          ? 'blocked'
          : 'unchanged';

  if (decision === 'failed' && changes.entries.length === 0) {
    // Nothing denies the range and nothing was ever recorded: the case ends, and the next request for
    // the range starts afresh. A case that recorded entries stays open, so that unblock (or its
    // expiry) can still take out whatever of them exists.
    await deps.cases.saveChanges(caseId, blockStep, { entries: [] });
    if (previousExpiry) await deps.cases.unschedule(blockExpiryQueue, caseId, previousExpiry);
    await deps.cases.setStatus(caseId, 'failed', 'failed');
    await deps.cases.releaseSubject(lock, caseId);
    expiresAt = undefined;
  } else {
    await save(changes);
    if (previousExpiry !== expiresAt) {
      if (previousExpiry) await deps.cases.unschedule(blockExpiryQueue, caseId, previousExpiry);
      if (expiresAt) await deps.cases.schedule(blockExpiryQueue, caseId, expiresAt);
    }
    await deps.cases.setStatus(
      caseId,
      'open',
      decision === 'partial' ? 'partial' : decision === 'failed' ? 'failed' : 'completed',
    );
  }

  const result: BlockResult = {
    decision,
    reason: summary(decision, applied),
    caseId,
    ...where,
    ...(expiresAt ? { expiresAt } : {}),
    acls: applied.acls,
    added: applied.added,
    present: applied.present,
    skipped: applied.skipped,
    failed: applied.failed,
  };
  await recorder.note(`block ${decision}`, decision === 'failed' ? 'failed' : 'info', {
    target: `${vpcId} ${range.cidr}`,
    detail: result.reason,
  });
  await notify(deps, result, target);
  if (decision === 'failed')
    throw new NetworkBlockError(`${range.cidr} could not be blocked in ${vpcId}: ${result.reason}`);
  return result;
}

function summary(decision: BlockDecision, a: ApplyResult): string {
  if (a.acls.length === 0) return 'the VPC has no subnet, so no network ACL filters its traffic';
  const parts = [
    `${a.added.length} entr${a.added.length === 1 ? 'y' : 'ies'} added`,
    `${a.present.length} already in force`,
    `in ${a.acls.length} subnet ACL(s)`,
  ];
  const problems = [...a.skipped, ...a.failed].map((s) => s.reason);
  if (problems.length) parts.push(`not denied: ${problems.slice(0, 3).join('; ')}`);
  return `${decision.toUpperCase()}: ${parts.join(', ')}`;
}

/** The VPC's own IPv4 and IPv6 ranges, or undefined when the VPC does not exist. */
async function vpcRanges(ec2: EC2Client, vpcId: string): Promise<Cidr[] | undefined> {
  try {
    const vpc = (await ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] }))).Vpcs?.[0];
    if (!vpc) return undefined;
    const texts = [
      vpc.CidrBlock,
      ...(vpc.CidrBlockAssociationSet ?? []).map((a) => a.CidrBlock),
      ...(vpc.Ipv6CidrBlockAssociationSet ?? []).map((a) => a.Ipv6CidrBlock),
    ];
    return texts.flatMap((t) => {
      const parsed = t ? parseCidr(t) : undefined;
      return parsed ? [parsed] : [];
    });
  } catch (error) {
    if (awsErrorCode(error) === 'InvalidVpcID.NotFound') return undefined;
    throw error;
  }
}

async function notify(deps: BlockDeps, result: BlockResult, target: Target): Promise<void> {
  const headline = {
    blocked: 'BLOCKED',
    unchanged: 'ALREADY BLOCKED',
    partial: 'PARTLY BLOCKED',
    failed: 'BLOCK FAILED',
    refused: 'BLOCK REFUSED',
  }[result.decision];
  const lines = [
    `Case ${result.caseId}: ${headline} ${result.cidr} in ${result.vpcId} (${result.accountId} ${result.region})`,
    `Requested by: ${target.requestedBy} (${target.source}${target.findingId ? `, finding ${target.findingId}` : ''})`,
    `Reason: ${oneLine(target.reason, 300)}`,
    `Expires: ${result.expiresAt ?? 'never (until cordon unblock)'}`,
    `Result: ${result.reason}`,
    ...(result.added ?? []).map(
      (e) => `  added   ${e.networkAclId} rule ${e.ruleNumber} ${e.egress ? 'outbound' : 'inbound'}`,
    ),
    ...[...(result.skipped ?? []), ...(result.failed ?? [])].map(
      (s) => `  missing ${s.networkAclId} ${s.egress ? 'outbound' : 'inbound'}: ${s.reason}`,
    ),
  ];
  const recorder = deps.recorder(result.caseId as string, blockStep);
  await recorder.run('sns:Publish', deps.config.ALERT_TOPIC_ARN, () =>
    deps.sns.send(
      new PublishCommand({
        TopicArn: deps.config.ALERT_TOPIC_ARN,
        Subject: `[Cordon] ${headline}: ${result.cidr}`.slice(0, 100),
        Message: `${lines.join('\n')}\n`,
        MessageAttributes: {
          playbook: { DataType: 'String', StringValue: 'block-ip' },
          caseId: { DataType: 'String', StringValue: result.caseId as string },
        },
      }),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------
// Blocking from a finding
// ---------------------------------------------------------------------------------------------------

/** The remote addresses a finding names as the attacker: an inbound connection's, every prober's. */
function attackerAddresses(finding: GuardDutyFinding): string[] {
  const { networkConnection, portProbe } = finding.actions;
  return [
    ...new Set([
      ...(networkConnection?.direction === 'INBOUND' ? networkConnection.remoteIps : []),
      ...(portProbe?.remoteIps ?? []),
    ]),
  ];
}

/** The finding an event carries (its `detail`), or the event itself when it is the finding, read. */
function readFinding(event: Record<string, unknown>, deps: BlockDeps): GuardDutyFinding {
  const home = { accountId: deps.config.CORDON_ACCOUNT_ID, region: deps.config.AWS_REGION };
  return isRecord(event.detail)
    ? readGuardDutyFinding(event.detail, { account: event.account, region: event.region }, home)
    : readGuardDutyFinding(event, {}, home);
}

/**
 * Blocks the attacker named by a brute-force or port-probe finding in the VPC of the instance it
 * targets, for AUTO_BLOCK_TTL, when AUTO_BLOCK_FINDINGS is on. Each remote address is its own block
 * case; an address that is not public (a private peer, a load balancer inside the VPC) is refused.
 */
export async function blockFromFinding(
  event: Record<string, unknown>,
  deps: BlockDeps,
): Promise<BlockResult[]> {
  if (!deps.config.AUTO_BLOCK_FINDINGS) {
    return [refused('AUTO_BLOCK_DISABLED: findings block nothing unless AUTO_BLOCK_FINDINGS is on')];
  }
  let finding: GuardDutyFinding;
  try {
    finding = readFinding(event, deps);
  } catch (error) {
    if (error instanceof RejectedInputError) return [refused(error.reason)];
    throw error;
  }
  const { type } = finding;
  if (!(attackerFindingTypes as readonly string[]).includes(type)) {
    return [refused('NOT_AN_ATTACKER: only brute-force and port-probe findings name an attacker to block')];
  }
  if (finding.resourceRole !== 'TARGET') {
    return [
      refused(
        'NOT_AN_ATTACKER: the instance is the actor in this finding, so the remote address is its victim',
      ),
    ];
  }
  if (finding.archived) return [refused('FINDING_ARCHIVED: the finding is archived')];
  if (finding.sample && !deps.config.ACCEPT_SAMPLE_FINDINGS) {
    return [refused('SAMPLE_FINDING: sample findings block nothing unless ACCEPT_SAMPLE_FINDINGS is on')];
  }
  const { accountId, region } = finding;
  const vpcs = finding.instance?.vpcIds ?? [];
  const vpcId = vpcs.length === 1 ? vpcIdSchema.safeParse(vpcs[0]) : undefined;
  if (!vpcId?.success) return [refused('MALFORMED: the finding does not name exactly one valid VPC')];
  const safeFindingId = /^[A-Za-z0-9]{1,64}$/.test(finding.id) ? finding.id : undefined;
  const ttlMs = parseTtl(deps.config.AUTO_BLOCK_TTL);
  const addresses = attackerAddresses(finding);
  if (addresses.length === 0) return [refused('MALFORMED: the finding names no remote address')];
  const results: BlockResult[] = [];
  const failures: unknown[] = [];
  for (const address of addresses.slice(0, maxFindingAddresses)) {
    const range = hostCidr(address);
    if (!range) {
      results.push(refused('CIDR_INVALID: the finding names a remote address that is not an IP address'));
      continue;
    }
    if (!isPublicRange(range)) {
      results.push(
        refused(`ADDRESS_NOT_PUBLIC: ${range.cidr} is not a public address; it is not blocked automatically`),
      );
      continue;
    }
    try {
      results.push(
        await block(
          {
            accountId,
            region,
            vpcId: vpcId.data,
            range,
            ...(ttlMs === undefined ? {} : { ttlMs }),
            reason: `GuardDuty ${type}${safeFindingId ? ` (finding ${safeFindingId})` : ''}`,
            requestedBy: 'guardduty',
            source: 'guardduty',
            ...(safeFindingId ? { findingId: safeFindingId } : {}),
          },
          deps,
        ),
      );
    } catch (error) {
      failures.push(error);
    }
  }
  if (addresses.length > maxFindingAddresses) {
    results.push(
      refused(
        `TOO_MANY_ADDRESSES: only the first ${maxFindingAddresses} of ${addresses.length} addresses were considered`,
      ),
    );
  }
  if (failures.length > 0) throw failures[0];
  return results;
}
