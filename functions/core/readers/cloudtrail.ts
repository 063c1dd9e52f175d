/**
 * The reader of CloudTrail management events as EventBridge delivers them ("AWS API Call via
 * CloudTrail"): who made the call, what it was, where, and for an `AuthorizeSecurityGroupIngress` the
 * rules it added. Every field is read where it may be missing or of another type. The caller and the
 * event id, which decide what is done and are matched against patterns, are made printable ASCII here;
 * the rest is text from outside, as the event holds it, to be cleaned where it is written.
 */
import { asciiLine, isRecord } from '../text.js';

/** Who made the call, as precisely as CloudTrail's `userIdentity` allows. */
export interface CloudTrailPrincipal {
  /** The identity an allowlist is matched against: the role behind a session, the user, the root. */
  arn: string;
  type: string;
  /** The ARN CloudTrail recorded for the caller (a session ARN for an assumed role). */
  callerArn?: string;
  accessKeyId?: string;
  mfa?: boolean;
}

/** A security-group ingress rule a call added, as CloudTrail recorded it (unchecked text). */
export interface IngressGrant {
  groupId: string;
  ruleId?: string;
  protocol: string;
  fromPort: number;
  toPort: number;
  /** An IPv4 or IPv6 range. */
  cidr: string;
}

/** One CloudTrail event, read. */
export interface CloudTrailCall {
  /** The EventBridge envelope's `detail-type`. */
  detailType?: string;
  eventSource?: string;
  eventName?: string;
  /** Printable ASCII, at most 64 characters; empty when the event has none. */
  eventId: string;
  principal: CloudTrailPrincipal;
  /** The account and region the call was made in, else the envelope's; empty when neither says. */
  accountId: string;
  region: string;
  /** Set when AWS refused the call. */
  errorCode?: string;
  sourceIp?: string;
  userAgent?: string;
  eventTime?: string;
  /** Resource ids the request and response name (groups, instances, interfaces…), at most 20. */
  resourceIds: string[];
  keyName?: string;
  /** For `AuthorizeSecurityGroupIngress`: the rules it added. */
  ingress: IngressGrant[];
}

const at = (v: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((o, k) => (isRecord(o) && Object.hasOwn(o, k) ? o[k] : undefined), v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/** Reads who made the call. Every text in the result is printable ASCII and bounded. */
export function principalOf(identity: unknown): CloudTrailPrincipal {
  const type = asciiLine(at(identity, 'type'), 40) || 'Unknown';
  const callerArn = str(at(identity, 'arn'));
  const issuer = str(at(identity, 'sessionContext', 'sessionIssuer', 'arn'));
  const accessKeyId = str(at(identity, 'accessKeyId'));
  const mfa = at(identity, 'sessionContext', 'attributes', 'mfaAuthenticated');
  const arn =
    type === 'AWSService'
      ? `service:${asciiLine(at(identity, 'invokedBy'), 100)}`
      : (issuer ?? callerArn ?? `principal:${asciiLine(at(identity, 'principalId'), 128) || 'unknown'}`);
  return {
    arn: asciiLine(arn, 512),
    type,
    ...(callerArn ? { callerArn: asciiLine(callerArn, 512) } : {}),
    ...(accessKeyId ? { accessKeyId: asciiLine(accessKeyId, 128) } : {}),
    ...(mfa === 'true' || mfa === 'false' ? { mfa: mfa === 'true' } : {}),
  };
}

const items = (v: unknown): unknown[] => {
  const list = at(v, 'items');
  return Array.isArray(list) ? list : Array.isArray(v) ? v : [];
};
const portOf = (v: unknown, fallback: number) =>
  typeof v === 'number' && Number.isInteger(v) ? v : fallback;

/**
 * The ingress rules an `AuthorizeSecurityGroupIngress` event added. Rule ids come from the response
 * (`securityGroupRuleSet`) when CloudTrail has it; otherwise the rules are those of the request's
 * `ipPermissions`, without ids.
 */
function ingressOf(detail: unknown): IngressGrant[] {
  if (at(detail, 'eventName') !== 'AuthorizeSecurityGroupIngress') return [];
  const groupId = str(at(detail, 'requestParameters', 'groupId'));
  const grants: IngressGrant[] = [];
  const created = items(at(detail, 'responseElements', 'securityGroupRuleSet'));
  if (created.length > 0) {
    for (const r of created) {
      const gid = str(at(r, 'groupId')) ?? groupId;
      if (!gid || at(r, 'isEgress') === true) continue;
      const ruleId = str(at(r, 'securityGroupRuleId'));
      const rule = {
        groupId: gid,
        ...(ruleId ? { ruleId } : {}),
        protocol: String(at(r, 'ipProtocol') ?? ''),
        fromPort: portOf(at(r, 'fromPort'), -1),
        toPort: portOf(at(r, 'toPort'), -1),
      };
      for (const cidr of [str(at(r, 'cidrIpv4')), str(at(r, 'cidrIpv6'))]) {
        if (cidr) grants.push({ ...rule, cidr });
      }
    }
    return grants;
  }
  if (!groupId) return [];
  for (const p of items(at(detail, 'requestParameters', 'ipPermissions'))) {
    const rule = {
      groupId,
      protocol: String(at(p, 'ipProtocol') ?? ''),
      fromPort: portOf(at(p, 'fromPort'), -1),
      toPort: portOf(at(p, 'toPort'), -1),
    };
    const cidrs = [
      ...items(at(p, 'ipRanges')).map((r) => str(at(r, 'cidrIp'))),
      ...items(at(p, 'ipv6Ranges')).map((r) => str(at(r, 'cidrIpv6'))),
    ];
    for (const cidr of cidrs) if (cidr) grants.push({ ...rule, cidr });
  }
  return grants;
}

const resourceId = /^(?:i|sg|sgr|eni|subnet|vpc|key|lt|ami|vol)-[0-9a-f]{8,17}$/;

/** The resource ids an event names (groups, instances, interfaces, key pairs), at most 20. */
function resourceIdsOf(detail: unknown): string[] {
  const found = new Set<string>();
  const visit = (v: unknown, depth: number) => {
    if (found.size >= 20 || depth > 6) return;
    if (typeof v === 'string') {
      if (resourceId.test(v)) found.add(v);
    } else if (Array.isArray(v)) for (const x of v.slice(0, 50)) visit(x, depth + 1);
    else if (isRecord(v)) for (const x of Object.values(v).slice(0, 50)) visit(x, depth + 1);
  };
  visit(at(detail, 'requestParameters'), 0);
  visit(at(detail, 'responseElements'), 0);
  return [...found];
}

/** Reads one CloudTrail event from its EventBridge envelope. */
export function readCloudTrailCall(event: {
  'detail-type'?: unknown;
  account?: unknown;
  region?: unknown;
  detail?: unknown;
}): CloudTrailCall {
  const detail = event.detail;
  const detailType = str(event['detail-type']);
  const eventSource = str(at(detail, 'eventSource'));
  const eventName = str(at(detail, 'eventName'));
  const errorCode = str(at(detail, 'errorCode'));
  const sourceIp = str(at(detail, 'sourceIPAddress'));
  const userAgent = str(at(detail, 'userAgent'));
  const eventTime = str(at(detail, 'eventTime'));
  const keyName = str(at(detail, 'requestParameters', 'keyName'));
  return {
    ...(detailType ? { detailType } : {}),
    ...(eventSource ? { eventSource } : {}),
    ...(eventName ? { eventName } : {}),
    eventId: asciiLine(at(detail, 'eventID'), 64),
    principal: principalOf(at(detail, 'userIdentity')),
    accountId: str(at(detail, 'recipientAccountId')) ?? str(event.account) ?? '',
    region: str(at(detail, 'awsRegion')) ?? str(event.region) ?? '',
    ...(errorCode ? { errorCode } : {}),
    ...(sourceIp ? { sourceIp } : {}),
    ...(userAgent ? { userAgent } : {}),
    ...(eventTime ? { eventTime } : {}),
    resourceIds: resourceIdsOf(detail),
    ...(keyName ? { keyName } : {}),
    ingress: ingressOf(detail),
  };
}
