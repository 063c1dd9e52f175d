import { DescribeVpcsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import {
  type ApplyResult,
  applyBlock,
  type BlockChanges,
  blockExpiryQueue,
  blockLock,
  blockStep,
  parseTtl,
  readBlock,
  vpcIdSchema,
} from '../../core/blocks.js';
import {
  accountIdPattern,
  accountIdSchema,
  newPlaybookCaseId,
  partitionOf,
  regionPattern,
  regionSchema,
} from '../../core/case.js';
import type { CaseStore, Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import { awsErrorCode, NetworkBlockError, oneLine } from '../../core/errors.js';
import {
  type Cidr,
  cidrsOverlap,
  type DenyEntry,
  hostCidr,
  isPublicRange,
  parseCidr,
} from '../../core/nacl.js';

/**
 * Text a person typed (a reason, a name): refused rather than cleaned when it holds control or
 * bidirectional-override characters, because the person is there to fix it.
 */
const typedText = z
  .string()
  .trim()
  .min(1, 'is empty')
  .max(512, 'is over 512 characters')
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  .refine((s) => !/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/.test(s), {
    message: 'contains control characters',
  });

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

/**
 * The function takes a block request or a GuardDuty finding event; each is checked in the logic, which
 * refuses a malformed one by name. Input that is neither (no range, no VPC, no finding) is a wiring
 * error or a forged invocation and fails the call.
 */
export const blockInputSchema = z
  .record(z.string(), z.unknown())
  .refine((o) => 'cidr' in o || 'vpcId' in o || 'detail' in o, {
    message: 'neither a block request (cidr, vpcId) nor a GuardDuty finding event (detail)',
  });

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

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const at = (v: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((o, k) => (isRecord(o) && Object.hasOwn(o, k) ? o[k] : undefined), v);

/** The remote addresses a finding names as the attacker, IPv4 and IPv6. */
function attackerAddresses(detail: Record<string, unknown>): string[] {
  const action = at(detail, 'service', 'action');
  const addresses: unknown[] = [];
  const connection = at(action, 'networkConnectionAction');
  if (at(connection, 'connectionDirection') === 'INBOUND') {
    addresses.push(
      at(connection, 'remoteIpDetails', 'ipAddressV4'),
      at(connection, 'remoteIpDetails', 'ipAddressV6'),
    );
  }
  const probes = at(action, 'portProbeAction', 'portProbeDetails');
  for (const probe of Array.isArray(probes) ? probes : []) {
    addresses.push(at(probe, 'remoteIpDetails', 'ipAddressV4'), at(probe, 'remoteIpDetails', 'ipAddressV6'));
  }
  return [...new Set(addresses.filter((a): a is string => typeof a === 'string' && a.length > 0))];
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
  const detail = isRecord(event.detail) ? event.detail : event;
  const type = at(detail, 'type');
  if (typeof type !== 'string' || !(attackerFindingTypes as readonly string[]).includes(type)) {
    return [refused('NOT_AN_ATTACKER: only brute-force and port-probe findings name an attacker to block')];
  }
  if (at(detail, 'service', 'resourceRole') !== 'TARGET') {
    return [
      refused(
        'NOT_AN_ATTACKER: the instance is the actor in this finding, so the remote address is its victim',
      ),
    ];
  }
  if (at(detail, 'service', 'archived') === true)
    return [refused('FINDING_ARCHIVED: the finding is archived')];
  if (at(detail, 'service', 'additionalInfo', 'sample') === true && !deps.config.ACCEPT_SAMPLE_FINDINGS) {
    return [refused('SAMPLE_FINDING: sample findings block nothing unless ACCEPT_SAMPLE_FINDINGS is on')];
  }
  const accountId =
    [at(event, 'account'), at(detail, 'accountId')].find((a) => a !== undefined) ??
    deps.config.CORDON_ACCOUNT_ID;
  const region =
    [at(event, 'region'), at(detail, 'region')].find((r) => r !== undefined) ?? deps.config.AWS_REGION;
  if (typeof accountId !== 'string' || !accountIdPattern.test(accountId))
    return [refused('MALFORMED: the account id is not 12 digits')];
  if (typeof region !== 'string' || !regionPattern.test(region))
    return [refused('MALFORMED: the region is not an AWS region')];
  const interfaces = at(detail, 'resource', 'instanceDetails', 'networkInterfaces');
  const vpcs = [
    ...new Set(
      (Array.isArray(interfaces) ? interfaces : [])
        .map((n) => at(n, 'vpcId'))
        .filter((v) => typeof v === 'string'),
    ),
  ] as string[];
  const vpcId = vpcs.length === 1 ? vpcIdSchema.safeParse(vpcs[0]) : undefined;
  if (!vpcId?.success) return [refused('MALFORMED: the finding does not name exactly one valid VPC')];
  const findingId = at(detail, 'id');
  const safeFindingId =
    typeof findingId === 'string' && /^[A-Za-z0-9]{1,64}$/.test(findingId) ? findingId : undefined;
  const ttlMs = parseTtl(deps.config.AUTO_BLOCK_TTL);
  const addresses = attackerAddresses(detail);
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
