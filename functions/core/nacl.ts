/**
 * Network-ACL deny entries, worked out without a single AWS call: where a deny for an address range
 * goes in an ACL (a free rule number ahead of every allow, within the rule quota), whether one is
 * already there, and which entries removing a block may delete. Used by the IP-blocking playbook and
 * open to any step that denies addresses (for example a finding's remote IPs during isolation).
 *
 * Facts this relies on (Amazon VPC user guide and EC2 API reference):
 * - Rules are evaluated per direction in ascending rule number; the first match decides. A deny
 *   therefore only works when its number is lower than every allow that would match the same traffic.
 * - Rule numbers run from 1 to 32766 and are unique per direction, IPv4 and IPv6 alike; the default
 *   deny rules (`*`) are reported as 32767 (IPv4) and 32768 (IPv6).
 * - "Rules per network ACL" is a one-way quota enforced separately for IPv4 and IPv6 rules, default 20,
 *   adjustable up to 40, and it counts the default deny rule of that family.
 * - EC2 stores a CIDR in canonical form (`100.68.0.18/18` becomes `100.68.0.0/18`).
 */
import type { NetworkAcl } from '@aws-sdk/client-ec2';

export type Family = 'ipv4' | 'ipv6';

/** The lowest and highest rule numbers an entry may take; 32767 and 32768 are the `*` rules. */
export const minRuleNumber = 1;
export const maxRuleNumber = 32766;
export const defaultDenyRuleNumber: Record<Family, number> = { ipv4: 32767, ipv6: 32768 };
/** AWS's default "Rules per network ACL" quota, per direction and family, and its ceiling. */
export const defaultNaclRuleQuota = 20;
export const maxNaclRuleQuota = 40;

export interface Cidr {
  /** Canonical text: the network address (lower-case, RFC 5952 for IPv6) and the prefix length. */
  cidr: string;
  family: Family;
  prefix: number;
  /** The network address as a number, for containment tests. */
  network: bigint;
}

/** One entry of an ACL as the planner reads it. */
export interface AclEntry {
  ruleNumber: number;
  egress: boolean;
  action: 'allow' | 'deny';
  /** `-1` for all protocols, else the IANA number as text. */
  protocol: string;
  /** Canonical CIDR, or undefined for an entry whose range could not be read. */
  cidr?: string;
  family: Family;
}

export interface AclView {
  networkAclId: string;
  entries: AclEntry[];
}

/** A deny-all-protocols entry for one range in one direction of one ACL. */
export interface DenyEntry {
  networkAclId: string;
  ruleNumber: number;
  egress: boolean;
  cidr: string;
}

export type Placement =
  /** A deny for the range is already in force: one of `owned` (`self`) or someone else's (`other`). */
  | { kind: 'present'; entry: DenyEntry; owner: 'self' | 'other' }
  | { kind: 'add'; entry: DenyEntry }
  | { kind: 'skip'; networkAclId: string; egress: boolean; cidr: string; reason: SkipReason; detail: string };

export type SkipReason = 'quota' | 'no-free-number';

export interface PlanOptions {
  /** Rules per direction and family, default deny included (the account's quota: 20 unless raised). */
  quota: number;
  /** Entries the caller added earlier for the same purpose: found again, they count as present. */
  owned?: readonly DenyEntry[];
  /**
   * When true, an equivalent deny that someone else added counts as present and nothing is added.
   * When false (the default), the caller gets an entry of its own, so that removing the other one
   * later never silently lifts the caller's deny.
   */
  reuseOthers?: boolean;
}

// ---------------------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------------------

const ipv4Pattern = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseIpv4(text: string): bigint | undefined {
  const m = ipv4Pattern.exec(text);
  if (!m) return undefined;
  let value = 0n;
  for (const part of m.slice(1)) {
    if (part.length > 1 && part.startsWith('0')) return undefined; // no octal-looking octets
    const n = Number(part);
    if (n > 255) return undefined;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]{2,45}$/.test(text)) return undefined;
  let head = text;
  let tailV4: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    tailV4 = parseIpv4(text.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const left = halves[0] ? halves[0].split(':') : [];
  const right = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...right];
  let value = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    value = (value << 16n) | BigInt(Number.parseInt(g, 16));
  }
  if (tailV4 !== undefined) value = (value & ~0xffffffffn) | tailV4;
  return value;
}

function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

/** RFC 5952: lower case, no leading zeros, the longest run (two or more) of zero groups as `::`. */
function formatIpv6(value: bigint): string {
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => Number((value >> shift) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

const bits: Record<Family, number> = { ipv4: 32, ipv6: 128 };

function mask(family: Family, prefix: number): bigint {
  const width = BigInt(bits[family]);
  return ((1n << width) - 1n) ^ ((1n << (width - BigInt(prefix))) - 1n);
}

/** An address (`198.51.100.7`, `2001:db8::1`) as a single-address CIDR, or undefined. */
export function hostCidr(address: string): Cidr | undefined {
  if (address.includes(':')) return parseCidr(`${address}/128`);
  return parseCidr(`${address}/32`);
}

/**
 * Reads a CIDR (or a bare address) and returns it in the canonical form EC2 stores: host bits
 * cleared, IPv6 in RFC 5952 text. Undefined for anything that is not a well-formed range.
 */
export function parseCidr(text: string): Cidr | undefined {
  if (typeof text !== 'string' || text.length > 64) return undefined;
  const [address = '', prefixText, ...rest] = text.trim().split('/');
  if (rest.length > 0) return undefined;
  const family: Family = address.includes(':') ? 'ipv6' : 'ipv4';
  const value = family === 'ipv4' ? parseIpv4(address) : parseIpv6(address);
  if (value === undefined) return undefined;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? bits[family] : Number(prefixText);
  if (prefix > bits[family]) return undefined;
  const network = value & mask(family, prefix);
  const shown = family === 'ipv4' ? formatIpv4(network) : formatIpv6(network);
  return { cidr: `${shown}/${prefix}`, family, prefix, network };
}

/** Whether `outer` holds every address of `inner`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    outer.prefix <= inner.prefix &&
    (inner.network & mask(outer.family, outer.prefix)) === outer.network
  );
}

/** Whether two ranges share at least one address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

/**
 * Ranges that are never an attacker on the internet: private, shared (CGNAT), loopback, link-local,
 * multicast, reserved and unspecified space, and IPv4-mapped IPv6. Documentation ranges are not listed:
 * they reach nobody, and sample findings use them.
 */
const nonPublic = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '::/127',
  '::ffff:0:0/96',
  '64:ff9b:1::/48',
  'fc00::/7',
  'fe80::/10',
  'ff00::/8',
].map((c) => parseCidr(c) as Cidr);

/** True when the range lies wholly in public unicast space (and so may be an outside attacker). */
export function isPublicRange(range: Cidr): boolean {
  return !nonPublic.some((special) => cidrsOverlap(special, range));
}

// ---------------------------------------------------------------------------------------------------
// ACLs
// ---------------------------------------------------------------------------------------------------

/** The planner's view of an ACL as `DescribeNetworkAcls` returns it. */
export function aclView(acl: NetworkAcl): AclView {
  const entries: AclEntry[] = [];
  for (const e of acl.Entries ?? []) {
    if (e.RuleNumber === undefined || (e.RuleAction !== 'allow' && e.RuleAction !== 'deny')) continue;
    const raw = e.Ipv6CidrBlock ?? e.CidrBlock;
    const parsed = raw ? parseCidr(raw) : undefined;
    entries.push({
      ruleNumber: e.RuleNumber,
      egress: e.Egress === true,
      action: e.RuleAction,
      protocol: e.Protocol ?? '-1',
      ...(parsed ? { cidr: parsed.cidr } : {}),
      family: e.Ipv6CidrBlock !== undefined ? 'ipv6' : 'ipv4',
    });
  }
  return { networkAclId: acl.NetworkAclId ?? '', entries };
}

/** Whether `entry` is exactly the deny `deny` describes: same number, direction, range, all protocols. */
export function isDenyEntry(
  entry: AclEntry,
  deny: Pick<DenyEntry, 'ruleNumber' | 'egress' | 'cidr'>,
): boolean {
  return (
    entry.ruleNumber === deny.ruleNumber &&
    entry.egress === deny.egress &&
    entry.action === 'deny' &&
    entry.protocol === '-1' &&
    entry.cidr === deny.cidr
  );
}

/** The number below which a deny takes effect in one direction: the lowest allow, or the `*` rules. */
export function firstAllow(entries: readonly AclEntry[]): number {
  const allows = entries.filter((e) => e.action === 'allow' && e.ruleNumber <= maxRuleNumber);
  return Math.min(maxRuleNumber + 1, ...allows.map((e) => e.ruleNumber));
}

/**
 * Decides, for every range and both directions, what it takes to deny the range in this ACL: nothing
 * (a deny already in force), a new entry at a free number ahead of the first allow, or nothing
 * possible (the family's quota is full, or no number is free ahead of the first allow). New entries
 * are numbered downwards from just below the first allow, leaving low numbers to the ACL's owners.
 * Pure: the same ACL and ranges always give the same plan.
 */
export function planDenies(acl: AclView, ranges: readonly string[], options: PlanOptions): Placement[] {
  const placements: Placement[] = [];
  const wanted = [...new Set(ranges.map((r) => parseCidr(r)?.cidr ?? r))];
  for (const egress of [false, true]) {
    const entries = acl.entries.filter((e) => e.egress === egress);
    const limit = firstAllow(entries);
    const used = new Set(entries.map((e) => e.ruleNumber));
    const counts: Record<Family, number> = { ipv4: 0, ipv6: 0 };
    for (const family of ['ipv4', 'ipv6'] as const) {
      const ofFamily = entries.filter((e) => e.family === family);
      const hasDefault = ofFamily.some((e) => e.ruleNumber === defaultDenyRuleNumber[family]);
      // The `*` rule counts against the quota even where the emulator (or a VPC without IPv6) omits it.
      counts[family] = ofFamily.length + (hasDefault ? 0 : 1);
    }
    for (const cidr of wanted) {
      const range = parseCidr(cidr);
      if (!range) continue;
      const inForce = (e: AclEntry) =>
        e.action === 'deny' && e.protocol === '-1' && e.cidr === range.cidr && e.ruleNumber < limit;
      const mine = (options.owned ?? []).find(
        (o) =>
          o.networkAclId === acl.networkAclId &&
          o.egress === egress &&
          o.cidr === range.cidr &&
          entries.some((e) => inForce(e) && e.ruleNumber === o.ruleNumber),
      );
      if (mine) {
        placements.push({ kind: 'present', entry: mine, owner: 'self' });
        continue;
      }
      const theirs = options.reuseOthers ? entries.find(inForce) : undefined;
      if (theirs) {
        placements.push({
          kind: 'present',
          entry: { networkAclId: acl.networkAclId, ruleNumber: theirs.ruleNumber, egress, cidr: range.cidr },
          owner: 'other',
        });
        continue;
      }
      const direction = egress ? 'outbound' : 'inbound';
      if (counts[range.family] >= options.quota) {
        placements.push({
          kind: 'skip',
          networkAclId: acl.networkAclId,
          egress,
          cidr: range.cidr,
          reason: 'quota',
          detail: `the ${direction} ${range.family} rules of ${acl.networkAclId} are at the quota of ${options.quota}`,
        });
        continue;
      }
      let ruleNumber = Math.min(limit, maxRuleNumber + 1) - 1;
      while (ruleNumber >= minRuleNumber && used.has(ruleNumber)) ruleNumber--;
      if (ruleNumber < minRuleNumber) {
        placements.push({
          kind: 'skip',
          networkAclId: acl.networkAclId,
          egress,
          cidr: range.cidr,
          reason: 'no-free-number',
          detail: `no ${direction} rule number of ${acl.networkAclId} is free ahead of its first allow (rule ${limit})`,
        });
        continue;
      }
      used.add(ruleNumber);
      counts[range.family]++;
      placements.push({
        kind: 'add',
        entry: { networkAclId: acl.networkAclId, ruleNumber, egress, cidr: range.cidr },
      });
    }
  }
  return placements;
}

export interface RemovalPlan {
  /** Entries still exactly as added: safe to delete. */
  remove: DenyEntry[];
  /** Entries no longer in the ACL: nothing to do. */
  absent: DenyEntry[];
  /** Entries whose number now holds something else: left alone, never deleted. */
  changed: DenyEntry[];
}

/** Sorts the entries a block added in one ACL by what removing them may do. */
export function planRemoval(acl: AclView, added: readonly DenyEntry[]): RemovalPlan {
  const plan: RemovalPlan = { remove: [], absent: [], changed: [] };
  for (const entry of added.filter((a) => a.networkAclId === acl.networkAclId)) {
    const current = acl.entries.find((e) => e.ruleNumber === entry.ruleNumber && e.egress === entry.egress);
    if (!current) plan.absent.push(entry);
    else if (isDenyEntry(current, entry)) plan.remove.push(entry);
    else plan.changed.push(entry);
  }
  return plan;
}
