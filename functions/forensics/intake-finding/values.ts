import { BlockList } from 'node:net';
import { accountIdPattern, ipSchema, regionPattern } from '../../core/case.js';
import { RejectedInputError } from '../../core/errors.js';

/**
 * The stable codes that start every refusal reason (`CODE: sentence`). Operators filter on them, so
 * renaming one is a breaking change.
 */
export const refusalCodes = [
  'TOO_LARGE',
  'MALFORMED',
  'UNSUPPORTED_TRIGGER',
  'RESOURCE_NOT_INSTANCE',
  'FOREIGN_CUSTOM_ACTION',
  'MULTIPLE_FINDINGS',
  'MULTIPLE_INSTANCES',
  'SECURITYHUB_IMPORTED_DISABLED',
  'FINDING_ARCHIVED',
  'SAMPLE_FINDING',
  'SEVERITY_BELOW_MINIMUM',
] as const;
export type RefusalCode = (typeof refusalCodes)[number];

/**
 * Stops normalisation with a refusal. Sentences are written here, never copied from the trigger, so a
 * reason is always safe to log, to notify and to show; the only values quoted are ones already checked
 * against a strict pattern.
 */
export function refuse(code: RefusalCode, sentence: string): never {
  throw new RejectedInputError(`${code}: ${sentence}`);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A field by its camelCase name (EventBridge `detail`) or its PascalCase twin (`get-findings` output
 * through the CLI or boto3). Own properties only: a key such as `constructor` never reads the prototype.
 */
export function field(record: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(record, name)) return record[name];
  const pascal = `${name.charAt(0).toUpperCase()}${name.slice(1)}`;
  return Object.hasOwn(record, pascal) ? record[pascal] : undefined;
}

/** A nested record, or undefined when absent; anything else where a record belongs is malformed. */
export function optionalRecord(value: unknown, what: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value)) refuse('MALFORMED', `${what} is not an object`);
  return value;
}

/** A boolean flag that may be absent; a flag of another type is malformed rather than guessed at. */
export function optionalFlag(value: unknown, what: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') refuse('MALFORMED', `${what} is not true or false`);
  return value;
}

/** `service.count`: an integer, or its decimal text (ASFF ProductFields carry every value as text). */
export function optionalCount(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === 'string' && /^\d{1,9}$/.test(value)) return Number(value);
  return refuse('MALFORMED', 'the finding count is not a whole number');
}

/**
 * Identifies an account from the first source that names one. A source that names a malformed account
 * refuses the trigger rather than falling through: acting on a guessed account is worse than not acting.
 */
export function pickAccount(candidates: unknown[], homeAccountId: string): string {
  for (const candidate of candidates) {
    if (candidate === undefined || candidate === '') continue;
    if (typeof candidate !== 'string' || !accountIdPattern.test(candidate)) {
      refuse('MALFORMED', 'the account id is not 12 digits');
    }
    return candidate;
  }
  return homeAccountId;
}

/** The region, from the first source that names one, else Cordon's own; as strict as `pickAccount`. */
export function pickRegion(candidates: unknown[], homeRegion: string): string {
  for (const candidate of candidates) {
    if (candidate === undefined || candidate === '') continue;
    if (typeof candidate !== 'string' || !regionPattern.test(candidate)) {
      refuse('MALFORMED', 'the region is not an AWS region');
    }
    return candidate;
  }
  return homeRegion;
}

const maxText = 512;
const unsafeRuns = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+/gu;
const loneSurrogates = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Makes text from a finding fit `safeTextSchema`: control and bidirectional-override characters become
 * spaces, broken surrogates become U+FFFD, and the result is capped. Finding text is stripped rather than
 * refused because parts of it (a queried domain, a user agent) are chosen by the attacker, who must not
 * be able to stop the response by putting a newline in a DNS name.
 */
export function cleanText(value: unknown, max = maxText): string | undefined {
  if (typeof value !== 'string') return undefined;
  const clean = value
    .replace(loneSurrogates, '\uFFFD')
    .replace(unsafeRuns, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
  if (clean === '') return undefined;
  if (clean.length <= max) return clean;
  let cut = clean.slice(0, max - 1);
  // Never end on the first half of a surrogate pair.
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** A resource type worth quoting in a reason: a short identifier, nothing that could carry a payload. */
export function quotableType(value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9:._-]{1,64}$/.test(value) ? value : undefined;
}

const notRemote = new BlockList();
notRemote.addAddress('0.0.0.0', 'ipv4');
notRemote.addSubnet('127.0.0.0', 8, 'ipv4');
notRemote.addAddress('::', 'ipv6');
notRemote.addAddress('::1', 'ipv6');

export const maxRemoteIps = 50;

/**
 * Collects the remote party's addresses: valid IPv4 or IPv6 text only, without the unspecified and
 * loopback addresses that sample findings carry (`0.0.0.0`), IPv4-mapped forms included; deduplicated,
 * in order of appearance, at most 50.
 */
export class RemoteIps {
  private readonly seen = new Set<string>();

  add(value: unknown): void {
    if (this.seen.size >= maxRemoteIps || typeof value !== 'string' || value.length > 64) return;
    if (!ipSchema.safeParse(value).success) return;
    const ip = value.toLowerCase();
    const family = ip.includes(':') ? 'ipv6' : 'ipv4';
    let local: boolean;
    try {
      local = notRemote.check(ip, family);
    } catch {
      // An address zod accepts but node cannot place is not one we can block on: leave it out.
      return;
    }
    if (!local) this.seen.add(ip);
  }

  list(): string[] {
    return [...this.seen];
  }
}

/** Where a trigger came from, as far as the account and region fall-backs need to know. */
export interface Envelope {
  account?: unknown;
  region?: unknown;
}

/** Cordon's own account and region: where an instance is when a trigger names no other. */
export interface Home {
  accountId: string;
  region: string;
}

/** What one finding says, once read: the facts, before any policy (archived, sample, severity) applies. */
export interface FindingFacts {
  instanceId: string;
  accountId: string;
  region: string;
  findingId: string;
  findingType?: string;
  title?: string;
  /** GuardDuty's 0–10 scale. */
  severity: number;
  count?: number;
  sample: boolean;
  archived: boolean;
  remoteIps: string[];
}
