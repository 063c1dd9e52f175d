/**
 * The Deny-only inline policies Cordon puts on a contained instance's role (Revoke) and leaves or
 * narrows on release (Release), and how to tell one that has nothing left to deny.
 */
import {
  DeleteRolePolicyCommand,
  GetRolePolicyCommand,
  type IAMClient,
  ListRolePoliciesCommand,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import type { Case } from './case.js';
import type { Recorder } from './cases.js';
import { codeOf, longestRoleSessionMs } from './containment.js';
import { RevocationError } from './errors.js';

/**
 * What the SSM agent needs to keep its channel: registration, and the message and session channels
 * Run Command is delivered through. Exactly what the quarantine role allows (resources/quarantine.yml;
 * test/template/iam.test.ts holds the two together).
 */
export const agentChannelActions = [
  'ssm:UpdateInstanceInformation',
  'ssmmessages:CreateControlChannel',
  'ssmmessages:CreateDataChannel',
  'ssmmessages:OpenControlChannel',
  'ssmmessages:OpenDataChannel',
  'ec2messages:AcknowledgeMessage',
  'ec2messages:DeleteMessage',
  'ec2messages:FailMessage',
  'ec2messages:GetEndpoint',
  'ec2messages:GetMessages',
  'ec2messages:SendReply',
] as const;

/**
 * Sessions that may keep the agent's channel are held to the host: a request must come through a VPC
 * endpoint in the VPC, and from the private address, that EC2 delivered the credentials to. Two
 * statements, because the conditions of one statement must all hold for it to deny. A request that
 * comes through no endpoint has neither key, and a negated operator on a missing key matches: denied.
 */
function agentChannelOffTheHost(sid: string, condition: object): object[] {
  // IAM policy variables, resolved by AWS from the credentials: not template placeholders.
  // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable
  const credentialVpc = '${aws:ec2InstanceSourceVPC}';
  // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable
  const credentialAddress = '${aws:ec2InstanceSourcePrivateIPv4}';
  return [
    {
      Sid: `${sid}OutsideItsVpc`,
      Effect: 'Deny',
      Action: [...agentChannelActions],
      Resource: '*',
      Condition: { ...condition, StringNotEquals: { 'aws:SourceVpc': credentialVpc } },
    },
    {
      Sid: `${sid}FromAnotherAddress`,
      Effect: 'Deny',
      Action: [...agentChannelActions],
      Resource: '*',
      Condition: {
        ...condition,
        StringNotEquals: { 'aws:VpcSourceIp': credentialAddress },
      },
    },
  ];
}

/**
 * The two inline denies put on the instance's role.
 *
 * `containment` denies every action but the SSM agent's channel to every session that EC2 delivered to
 * this instance (`ec2:SourceInstanceArn` is a property of the role session, so it holds wherever the
 * stolen credentials are used), whenever that session was issued: fresh credentials the instance
 * fetches if the profile swap fails or lags are denied too. The agent's channel stays open to those
 * sessions only on the host itself (its VPC endpoint and its address): an agent whose credentials are
 * denied hibernates and backs off for up to hours, and memory capture, delivered through that channel
 * after containment, would never arrive; the same credentials used anywhere else are denied the
 * channel too. Release narrows it to the sessions issued before the release.
 *
 * `issuedBefore` is the same deny for the sessions issued before `cutoff` only: this instance's in
 * instance scope, the role's on every instance in role scope (AWS's own revoke-sessions statement). It
 * outlives a release, so that credentials stolen before containment never work again; it has nothing
 * left to deny once every such session has expired, and Cordon removes it then when the role needs room.
 *
 * Only Deny statements, built from validated identifiers: nothing from the finding enters them.
 */
export function denyPolicies(
  scope: 'instance' | 'role',
  instanceArn: string,
  cutoff: string,
): { containment: string; issuedBefore: string } {
  const thisInstance = { ArnEquals: { 'ec2:SourceInstanceArn': instanceArn } };
  const issuedBefore = { DateLessThan: { 'aws:TokenIssueTime': cutoff } };
  const statements = (sid: string, condition: object): object[] => [
    {
      Sid: `Cordon${sid}`,
      Effect: 'Deny',
      NotAction: [...agentChannelActions],
      Resource: '*',
      Condition: condition,
    },
    ...agentChannelOffTheHost(`CordonAgentChannel${sid}`, condition),
  ];
  const document = (list: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: list });
  return {
    containment: document(statements('DenySessionsOfThisInstance', thisInstance)),
    issuedBefore: document(
      scope === 'role'
        ? statements('DenySessionsIssuedBeforeRevocation', issuedBefore)
        : statements('DenySessionsOfThisInstanceIssuedBeforeRevocation', {
            ...thisInstance,
            ...issuedBefore,
          }),
    ),
  };
}

/**
 * What containment's deny becomes on release: everything denied to this instance's sessions issued
 * before the release, and nothing else. One statement, smaller than the deny it replaces (so it fits
 * wherever that one did), with no exception for the SSM agent: an agent still holding such a session
 * fetches a new one, as every other caller of the instance does once its profile is back.
 */
export function releasedDeny(instanceArn: string, cutoff: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'CordonDenySessionsOfThisInstanceIssuedBeforeRelease',
        Effect: 'Deny',
        Action: '*',
        Resource: '*',
        Condition: {
          ArnEquals: { 'ec2:SourceInstanceArn': instanceArn },
          DateLessThan: { 'aws:TokenIssueTime': cutoff },
        },
      },
    ],
  });
}

export const instanceArnOf = (c: Pick<Case, 'partition' | 'region' | 'accountId' | 'instanceId'>) =>
  `arn:${c.partition}:ec2:${c.region}:${c.accountId}:instance/${c.instanceId}`;

/** The names Revoke gives its denies (`cordon-revoke-<case id>` and `...-issued-before`). */
const cordonDenyName = /^cordon-revoke-[\w+=,.@-]{1,114}$/;

/**
 * Whether an inline policy on a role is one of Cordon's denies that has nothing left to deny at `now`:
 * named as Revoke names them, every statement a Deny limited to sessions issued before an instant
 * (`aws:TokenIssueTime`), and the latest such instant at least the longest a role session can last
 * before `now`. A containment deny (no issue-time condition), anything unreadable, and anything not
 * Cordon's are never spent. `document` is as IAM's GetRolePolicy returns it: URL-encoded JSON.
 */
export function isSpentDeny(policyName: string, document: string, now: Date): boolean {
  if (!cordonDenyName.test(policyName)) return false;
  let statements: unknown;
  try {
    statements = (JSON.parse(decodeURIComponent(document)) as { Statement?: unknown }).Statement;
  } catch {
    return false;
  }
  if (!Array.isArray(statements) || statements.length === 0) return false;
  let latest = Number.NEGATIVE_INFINITY;
  for (const statement of statements as Record<string, unknown>[]) {
    const condition = statement?.Condition as Record<string, Record<string, unknown>> | undefined;
    const cutoff = condition?.DateLessThan?.['aws:TokenIssueTime'];
    if (statement?.Effect !== 'Deny' || typeof cutoff !== 'string') return false;
    const at = Date.parse(cutoff);
    if (Number.isNaN(at)) return false;
    latest = Math.max(latest, at);
  }
  return latest + longestRoleSessionMs <= now.getTime();
}

export interface DenyDeps {
  iam: IAMClient;
  recorder: Recorder;
  now: () => Date;
}

/**
 * Puts one deny on a role. When IAM refuses it for the role's inline-policy quota (10,240 characters
 * for all of a role's inline policies together), first removes Cordon's own denies on that role that
 * have nothing left to deny (`isSpentDeny`: earlier cases' denies on sessions that have all expired)
 * and tries once more. IAM's other refusal that no retry can help (a role nobody may change) by name.
 */
export async function putDeny(
  deps: DenyDeps,
  roleName: string,
  policyName: string,
  document: string,
): Promise<void> {
  const put = () =>
    deps.recorder.run('iam:PutRolePolicy', `${roleName}/${policyName}`, () =>
      deps.iam.send(
        new PutRolePolicyCommand({ RoleName: roleName, PolicyName: policyName, PolicyDocument: document }),
      ),
    );
  try {
    await put();
  } catch (error) {
    const code = codeOf(error);
    if (code === 'UnmodifiableEntity' || code === 'UnmodifiableEntityException') {
      throw new RevocationError(`${roleName} is a role IAM does not let anyone change`, { cause: error });
    }
    if (code !== 'LimitExceeded' && code !== 'LimitExceededException') throw error;
    const removed = await removeSpentDenies(deps, roleName);
    if (removed === 0) {
      throw new RevocationError(
        `${roleName} has no room left for another inline policy, and none of Cordon's earlier denies on it is spent`,
        { cause: error },
      );
    }
    try {
      await put();
    } catch (retry) {
      const again = codeOf(retry);
      if (again === 'LimitExceeded' || again === 'LimitExceededException') {
        throw new RevocationError(
          `${roleName} has no room left for another inline policy, even without Cordon's ${removed} spent denies`,
          { cause: retry },
        );
      }
      throw retry;
    }
  }
}

/** Removes Cordon's spent denies from a role; returns how many it removed. Reads each Cordon-named policy first. */
export async function removeSpentDenies(deps: DenyDeps, roleName: string): Promise<number> {
  const names: string[] = [];
  let marker: string | undefined;
  do {
    const page = await deps.iam.send(new ListRolePoliciesCommand({ RoleName: roleName, Marker: marker }));
    names.push(...(page.PolicyNames ?? []));
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  let removed = 0;
  const gone = (error: unknown) => ['NoSuchEntity', 'NoSuchEntityException'].includes(codeOf(error));
  for (const name of names.filter((n) => cordonDenyName.test(n))) {
    // Another case making room on the same role may have removed it since the list.
    const policy = await deps.iam
      .send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: name }))
      .catch((error: unknown) => {
        if (gone(error)) return undefined;
        throw error;
      });
    if (!policy || !isSpentDeny(name, policy.PolicyDocument ?? '', deps.now())) continue;
    try {
      await deps.recorder.run('iam:DeleteRolePolicy', `${roleName}/${name}`, () =>
        deps.iam.send(new DeleteRolePolicyCommand({ RoleName: roleName, PolicyName: name })),
      );
      removed += 1;
    } catch (error) {
      // Another case removed it first: it is gone either way.
      if (!gone(error)) throw error;
      removed += 1;
    }
  }
  return removed;
}
