/**
 * The IP-range blocking playbook's shared half: what a block case records, how its deny entries are
 * put into every subnet ACL of a VPC and taken out again. Block IP applies; Unblock IP and Expire
 * Blocks remove, through `unblockCase`, so that a manual unblock and an expiry can never differ.
 *
 * A block case holds one range in one VPC. Its lock (`BLOCK#<account>#<region>#<vpc>#<range>`) keeps it
 * the only open block of that range there: asking again resumes the same case (adding whatever is
 * missing, for example in an ACL created since) instead of adding a second set of entries.
 */
import {
  CreateNetworkAclEntryCommand,
  DeleteNetworkAclEntryCommand,
  DescribeNetworkAclsCommand,
  type EC2Client,
  type NetworkAcl,
} from '@aws-sdk/client-ec2';
import { z } from 'zod';
import { accountIdSchema, blockCaseIdPattern, regionSchema, safeTextSchema } from './case.js';
import type { CaseStore, Recorder } from './cases.js';
import {
  awsErrorCode,
  CaseNotFoundError,
  describeError,
  InvalidStepInputError,
  NetworkBlockError,
} from './errors.js';
import { type AclView, aclView, type DenyEntry, parseCidr, planDenies, planRemoval } from './nacl.js';

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
