import {
  DescribeSecurityGroupRulesCommand,
  type EC2Client,
  RevokeSecurityGroupIngressCommand,
  type SecurityGroupRule,
} from '@aws-sdk/client-ec2';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { accountIdPattern, newPlaybookCaseId, partitionOf, regionPattern } from '../../core/case.js';
import type { CaseStore, Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import {
  type CloudTrailCall,
  type CloudTrailPrincipal,
  readCloudTrailCall,
} from '../../core/readers/cloudtrail.js';
import { asciiLine as clean } from '../../core/text.js';

export const violationStep = 'policy-violation';

/**
 * The CloudTrail management events that change how exposed compute is: launching instances, changing
 * security groups and their rules, changing network interfaces and instance attributes (groups,
 * metadata options, user data), and key pairs. The EventBridge rule (resources/playbooks.yml) sends
 * exactly these; anything else that reaches the function is ignored.
 */
export const watchedEvents = [
  'RunInstances',
  'AuthorizeSecurityGroupIngress',
  'AuthorizeSecurityGroupEgress',
  'RevokeSecurityGroupIngress',
  'RevokeSecurityGroupEgress',
  'ModifySecurityGroupRules',
  'CreateSecurityGroup',
  'DeleteSecurityGroup',
  'ModifyNetworkInterfaceAttribute',
  'ModifyInstanceAttribute',
  'ModifyInstanceMetadataOptions',
  'CreateKeyPair',
  'ImportKeyPair',
  'DeleteKeyPair',
] as const;
export type WatchedEvent = (typeof watchedEvents)[number];

/** The event as EventBridge delivers it; every field read later is checked where it is read. */
export const violationInputSchema = z.looseObject({
  'detail-type': z.string().optional(),
  source: z.string().optional(),
  detail: z.unknown(),
});

export interface ViolationDeps {
  ec2For: (target: { accountId: string; region: string; caseId?: string }) => EC2Client;
  sns: SNSClient;
  cases: Pick<CaseStore, 'openSubject' | 'setStatus' | 'saveChanges'>;
  recorder: (caseId: string, step: string) => Recorder;
  config: Pick<
    Config,
    | 'ALERT_TOPIC_ARN'
    | 'POLICY_ALLOWLIST'
    | 'POLICY_REVERT_OPEN_INGRESS'
    | 'POLICY_SENSITIVE_PORTS'
    | 'MEMBER_ROLE_NAME'
    | 'CORDON_ACCOUNT_ID'
    | 'CORDON_STAGE'
  >;
  now: () => Date;
}

/** A security-group rule an event opened to the whole internet on a sensitive port. */
export interface OpenRule {
  groupId: string;
  ruleId?: string;
  protocol: string;
  fromPort: number;
  toPort: number;
  cidr: '0.0.0.0/0' | '::/0';
  ports: number[];
}

export interface ViolationResult {
  decision: 'ignored' | 'allowed' | 'alerted';
  reason: string;
  eventId?: string;
  eventName?: string;
  principal?: CloudTrailPrincipal;
  openRules?: OpenRule[];
  revert?: {
    caseId: string;
    status: 'reverted' | 'already-handled' | 'nothing-to-revert' | 'failed';
    revoked: string[];
    detail: string;
  };
  messageId?: string;
}

/** `arn:aws:iam::*:role/admins-*` as a whole-string regular expression: `*` is any run, `?` one character. */
function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/**
 * The allowlist: POLICY_ALLOWLIST's patterns, and always Cordon's own roles (the member role it acts
 * through and this stage's Lambda roles), whose isolation and revocation steps make such changes.
 */
export function allowlist(config: ViolationDeps['config']): RegExp[] {
  const own = [
    `arn:*:iam::*:role/${config.MEMBER_ROLE_NAME}`,
    `arn:*:iam::${config.CORDON_ACCOUNT_ID}:role/cordon-${config.CORDON_STAGE}-*`,
  ];
  const configured = config.POLICY_ALLOWLIST.split(',')
    .map((p) => p.trim())
    .filter((p) => /^[\w+=,.@:/*?-]{1,512}$/.test(p));
  return [...configured, ...own].map(globToRegExp);
}

export function isAllowed(principal: CloudTrailPrincipal, patterns: readonly RegExp[]): boolean {
  return patterns.some(
    (p) => p.test(principal.arn) || (principal.callerArn !== undefined && p.test(principal.callerArn)),
  );
}

export function sensitivePorts(config: Pick<Config, 'POLICY_SENSITIVE_PORTS'>): number[] {
  return config.POLICY_SENSITIVE_PORTS.split(',')
    .map(Number)
    .filter((p) => Number.isInteger(p) && p >= 0 && p <= 65535);
}

const allProtocols = (protocol: string) => protocol === '-1' || protocol.toLowerCase() === 'all';
/** The sensitive ports a rule lets through: all of them for every protocol, else those in its range. */
function exposed(protocol: string, fromPort: number, toPort: number, ports: readonly number[]): number[] {
  if (allProtocols(protocol)) return [...ports];
  const p = protocol.toLowerCase();
  if (!['tcp', 'udp', '6', '17'].includes(p)) return [];
  if (fromPort === -1 && toPort === -1) return [...ports];
  return ports.filter((port) => port >= fromPort && port <= toPort);
}

const world = (cidr: unknown): '0.0.0.0/0' | '::/0' | undefined =>
  cidr === '0.0.0.0/0' ? '0.0.0.0/0' : cidr === '::/0' ? '::/0' : undefined;

/** The ingress rules a successful call opened to 0.0.0.0/0 or ::/0 on a sensitive port. */
export function openIngressRules(call: CloudTrailCall, ports: readonly number[]): OpenRule[] {
  if (call.errorCode !== undefined) return [];
  return call.ingress.flatMap((grant) => {
    const cidr = world(grant.cidr);
    const hit = exposed(grant.protocol, grant.fromPort, grant.toPort, ports);
    return cidr && hit.length ? [{ ...grant, cidr, ports: hit }] : [];
  });
}

/** What the event acted on, for the alert: its resource ids, and a key pair by name. */
function resourcesOf(call: CloudTrailCall): string[] {
  return [...call.resourceIds, ...(call.keyName ? [`key pair "${clean(call.keyName, 64)}"`] : [])];
}

function describeRule(r: OpenRule): string {
  const ports = r.fromPort === r.toPort ? `${r.fromPort}` : `${r.fromPort}-${r.toPort}`;
  return `${clean(r.groupId, 40)}${r.ruleId ? ` (${clean(r.ruleId, 40)})` : ''}: ${allProtocols(r.protocol) ? 'all traffic' : `${clean(r.protocol, 10)} ${ports}`} from ${r.cidr}`;
}

/**
 * Judges one CloudTrail management event that changes the exposure of compute: a principal outside the
 * allowlist gets an alert saying who did what, where, from which IP. When POLICY_REVERT_OPEN_INGRESS
 * is on, an ingress rule it opened to 0.0.0.0/0 or ::/0 on a sensitive port is revoked again, by rule
 * id and only after reading the rule back, so nothing else in the group is touched.
 */
export async function policyViolation(
  event: z.infer<typeof violationInputSchema>,
  deps: ViolationDeps,
): Promise<ViolationResult> {
  const call = readCloudTrailCall(event);
  const { eventName, eventId, principal } = call;
  if (
    call.detailType !== 'AWS API Call via CloudTrail' ||
    call.eventSource !== 'ec2.amazonaws.com' ||
    eventName === undefined ||
    !(watchedEvents as readonly string[]).includes(eventName)
  ) {
    return { decision: 'ignored', reason: 'IGNORED: not a watched EC2 management event' };
  }
  const name = eventName as WatchedEvent;
  if (isAllowed(principal, allowlist(deps.config))) {
    return {
      decision: 'allowed',
      reason: `ALLOWED: ${principal.arn} is on the allowlist`,
      eventId,
      eventName: name,
      principal,
    };
  }
  const { accountId, region } = call;
  const openRules = openIngressRules(call, sensitivePorts(deps.config));
  const result: ViolationResult = {
    decision: 'alerted',
    reason: `ALERTED: ${name} by ${principal.arn}`,
    eventId,
    eventName: name,
    principal,
    openRules,
  };
  if (openRules.length > 0 && deps.config.POLICY_REVERT_OPEN_INGRESS) {
    if (accountIdPattern.test(accountId) && regionPattern.test(region) && /^[\w-]{1,64}$/.test(eventId)) {
      result.revert = await revert({ accountId, region, eventId, name, principal, openRules }, deps);
    }
  }
  const message = compose(call, {
    name,
    eventId,
    principal,
    accountId,
    region,
    openRules,
    revert: result.revert,
  });
  const published = await deps.sns.send(
    new PublishCommand({
      TopicArn: deps.config.ALERT_TOPIC_ARN,
      Subject: message.subject,
      Message: message.body,
      MessageAttributes: {
        playbook: { DataType: 'String', StringValue: 'policy-violation' },
        eventName: { DataType: 'String', StringValue: name },
      },
    }),
  );
  return { ...result, ...(published.MessageId ? { messageId: published.MessageId } : {}) };
}

function compose(
  call: CloudTrailCall,
  facts: {
    name: WatchedEvent;
    eventId: string;
    principal: CloudTrailPrincipal;
    accountId: string;
    region: string;
    openRules: OpenRule[];
    revert: ViolationResult['revert'];
  },
): { subject: string; body: string } {
  const { errorCode } = call;
  const p = facts.principal;
  const headline = errorCode
    ? 'POLICY VIOLATION ATTEMPTED'
    : facts.openRules.length
      ? 'SENSITIVE PORT OPENED TO THE INTERNET'
      : 'POLICY VIOLATION';
  const lines = [
    `${headline}: ${facts.name}${errorCode ? ` (refused by AWS: ${clean(errorCode, 80)})` : ''}`,
    '',
    `Who:   ${p.arn} (${p.type}${p.mfa === undefined ? '' : p.mfa ? ', MFA' : ', no MFA'})`,
    ...(p.callerArn && p.callerArn !== p.arn ? [`       session ${p.callerArn}`] : []),
    ...(p.accessKeyId ? [`       access key ${p.accessKeyId}`] : []),
    `What:  ${facts.name} on ${resourcesOf(call).join(', ') || '(no resource id in the event)'}`,
    ...facts.openRules.map(
      (r) => `       opened ${describeRule(r)}; sensitive port(s) ${r.ports.join(', ')}`,
    ),
    `Where: account ${clean(facts.accountId, 12)}, ${clean(facts.region, 30)}`,
    `From:  ${clean(call.sourceIp, 100) || '(no source IP)'}, ${clean(call.userAgent, 200) || '(no user agent)'}`,
    `When:  ${clean(call.eventTime, 40)}`,
    `Event: ${facts.eventId}`,
  ];
  if (facts.revert) {
    lines.push('', `Reverted (case ${facts.revert.caseId}): ${facts.revert.status}; ${facts.revert.detail}`);
  } else if (facts.openRules.length) {
    lines.push(
      '',
      'Not reverted: POLICY_REVERT_OPEN_INGRESS is off. Revoke the rule by hand if it is not intended.',
    );
  }
  lines.push('', `The principal is not on the allowlist (POLICY_ALLOWLIST).`);
  return {
    subject: `[Cordon] ${headline}: ${facts.name} by ${p.arn.split('/').pop() ?? p.arn}`.slice(0, 100),
    body: `${lines.join('\n')}\n`,
  };
}

const matchesRule = (live: SecurityGroupRule, open: OpenRule, ports: readonly number[]) =>
  live.GroupId === open.groupId &&
  live.IsEgress === false &&
  (world(live.CidrIpv4) ?? world(live.CidrIpv6)) === open.cidr &&
  exposed(String(live.IpProtocol ?? ''), live.FromPort ?? -1, live.ToPort ?? -1, ports).length > 0 &&
  (open.ruleId
    ? live.SecurityGroupRuleId === open.ruleId
    : String(live.IpProtocol) === open.protocol &&
      (live.FromPort ?? -1) === open.fromPort &&
      (live.ToPort ?? -1) === open.toPort);

async function revert(
  facts: {
    accountId: string;
    region: string;
    eventId: string;
    name: string;
    principal: CloudTrailPrincipal;
    openRules: OpenRule[];
  },
  deps: ViolationDeps,
): Promise<NonNullable<ViolationResult['revert']>> {
  const now = deps.now();
  const lock = `VIOLATION#${facts.accountId}#${facts.eventId}`;
  const candidate = newPlaybookCaseId('policy', lock, now);
  const opened = await deps.cases.openSubject([lock], {
    caseId: candidate,
    kind: 'policy',
    accountId: facts.accountId,
    region: facts.region,
    partition: partitionOf(facts.region),
    openedAt: now.toISOString(),
    eventId: facts.eventId,
    eventName: facts.name,
    principal: facts.principal.arn,
  });
  if (!opened.opened) {
    // EventBridge delivered the event again: the first delivery owns the revert.
    return {
      caseId: opened.existingCaseId,
      status: 'already-handled',
      revoked: [],
      detail: 'this event was handled before',
    };
  }
  const caseId = candidate;
  const recorder = deps.recorder(caseId, violationStep);
  await recorder.note('policy violation', 'info', {
    target: facts.eventId,
    detail: `${facts.name} by ${facts.principal.arn}: ${facts.openRules.map(describeRule).join('; ')}`,
  });
  const ports = sensitivePorts(deps.config);
  const ec2 = deps.ec2For({ accountId: facts.accountId, region: facts.region, caseId });
  const revoked: string[] = [];
  try {
    for (const groupId of [...new Set(facts.openRules.map((r) => r.groupId))]) {
      const wanted = facts.openRules.filter((r) => r.groupId === groupId);
      // Read the group's rules back: only a rule that still opens a sensitive port to the world goes.
      const live =
        (
          await ec2.send(
            new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [groupId] }] }),
          )
        ).SecurityGroupRules ?? [];
      const ids = live
        .filter((l) => wanted.some((w) => matchesRule(l, w, ports)))
        .map((l) => l.SecurityGroupRuleId)
        .filter((id): id is string => typeof id === 'string');
      if (ids.length === 0) continue;
      await deps.cases.saveChanges(caseId, violationStep, { groupId, revokedRuleIds: [...revoked, ...ids] });
      await recorder.run('ec2:RevokeSecurityGroupIngress', `${groupId} ${ids.join(',')}`, () =>
        ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: groupId, SecurityGroupRuleIds: ids })),
      );
      revoked.push(...ids);
    }
  } catch (error) {
    await deps.cases.setStatus(caseId, 'failed', 'failed');
    const e = error as Error;
    return {
      caseId,
      status: 'failed',
      revoked,
      detail: `the revert failed: ${clean(`${e.name}: ${e.message}`, 300)}`,
    };
  }
  await deps.cases.setStatus(caseId, 'contained', 'completed');
  return revoked.length
    ? { caseId, status: 'reverted', revoked, detail: `revoked ${revoked.join(', ')}` }
    : { caseId, status: 'nothing-to-revert', revoked, detail: 'the rules were already gone' };
}
