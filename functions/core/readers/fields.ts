/**
 * What the finding readers share: how a field is found in either spelling, how a value of the wrong
 * type is refused rather than guessed at, where an account and a region come from, which remote
 * addresses count. A refusal is a `RejectedInputError` whose reason starts with a stable code.
 */
import { BlockList } from 'node:net';
import { accountIdPattern, ipSchema, regionPattern } from '../case.js';
import { RejectedInputError } from '../errors.js';
import { isRecord } from '../text.js';

/**
 * Stops reading with a refusal: `CODE: sentence`. Sentences are written in the code, never copied from
 * the input, so a reason is always safe to log, to notify and to show; the only values quoted are ones
 * already checked against a strict pattern. Callers type `code` with their own list of codes.
 */
export function refuseWith(code: string, sentence: string): never {
  throw new RejectedInputError(`${code}: ${sentence}`);
}

/** The codes the readers themselves refuse with. */
type ReadRefusalCode = 'MALFORMED' | 'RESOURCE_NOT_INSTANCE' | 'MULTIPLE_INSTANCES' | 'ACCOUNT_MISMATCH';
export const refuse: (code: ReadRefusalCode, sentence: string) => never = refuseWith;

/**
 * A field by its camelCase name (EventBridge `detail`) or its PascalCase twin (`get-findings` output
 * through the CLI or boto3). Own properties only: a key such as `constructor` never reads the prototype.
 */
export function field(record: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(record, name)) return record[name];
  const pascal = `${name.charAt(0).toUpperCase()}${name.slice(1)}`;
  return Object.hasOwn(record, pascal) ? record[pascal] : undefined;
}

/** `field` down a path of records; undefined as soon as a step is not a record. */
export function fieldAt(value: unknown, ...names: string[]): unknown {
  return names.reduce<unknown>((at, name) => (isRecord(at) ? field(at, name) : undefined), value);
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

/** A resource type worth quoting in a reason: a short identifier, nothing that could carry a payload. */
export function quotableType(value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9:._-]{1,64}$/.test(value) ? value : undefined;
}

/** Refuses a finding about another resource, naming its type when that is safe to quote. */
export function refuseNotInstance(resourceType: unknown): never {
  const quoted = quotableType(resourceType);
  return refuse(
    'RESOURCE_NOT_INSTANCE',
    quoted
      ? `the finding is about a resource of type ${quoted}, not an EC2 instance`
      : 'the finding is not about an EC2 instance',
  );
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

/** Cordon's own account and region: where a resource is when a trigger names no other. */
export interface Home {
  accountId: string;
  region: string;
}
