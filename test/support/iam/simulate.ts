/**
 * One IAM decision, made offline with AWS's own authorisation data (`@cloud-copilot/iam-simulate`):
 * a principal's identity policies (and session policy, if any), the resource's policy, and the request
 * context AWS would fill in for a role session calling over TLS.
 */
import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { Authorisation, Context } from './operations.js';

export interface Principal {
  /** The role's ARN (`aws:PrincipalArn`). */
  roleArn: string;
  /** The session's ARN, as the request is signed: `arn:aws:sts::…:assumed-role/<role>/<session>`. */
  sessionArn: string;
  account: string;
  identityPolicies: { name: string; policy: unknown }[];
  sessionPolicy?: unknown;
}

export type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

export interface Verdict {
  decision: Decision;
  /** The statement(s) that decided it: `policy/Sid` (identity) or `resource:<logical id>/Sid`. */
  deciding: string[];
  /** The simulator refused the request as malformed (an action, ARN or context key AWS does not have). */
  invalid?: string;
}

interface StatementRef {
  policyId?: string;
  statement?: { Sid?: string };
}
interface Analysis {
  result?: string;
  identityAnalysis?: { allowStatements?: StatementRef[]; denyStatements?: StatementRef[] };
  resourceAnalysis?: { allowStatements?: StatementRef[]; denyStatements?: StatementRef[] };
  sessionAnalysis?: { allowStatements?: StatementRef[]; denyStatements?: StatementRef[] };
}

const accountOf = (arn: string) => arn.split(':')[4] ?? '';

/** The context AWS itself adds to a request from a role session, over TLS, at this moment. */
export function globalContext(principal: Principal, auth: Authorisation, region: string): Context {
  const now = new Date();
  const viaS3 = auth.context['kms:ViaService'] !== undefined;
  return {
    'aws:PrincipalArn': principal.roleArn,
    'aws:PrincipalAccount': principal.account,
    'aws:PrincipalType': 'AssumedRole',
    // Every Cordon account is in one organisation (member-account.yml's OrganizationId).
    'aws:PrincipalOrgID': 'o-exampleorg01',
    'aws:userid': `AROAEXAMPLE:${principal.sessionArn.split('/').pop() ?? ''}`,
    'aws:SecureTransport': 'true',
    'aws:CurrentTime': now.toISOString(),
    'aws:EpochTime': String(Math.floor(now.getTime() / 1000)),
    'aws:RequestedRegion': region,
    'aws:ViaAWSService': viaS3 ? 'true' : 'false',
    ...(viaS3 ? { 'aws:CalledVia': ['s3.amazonaws.com'] } : {}),
    ...(auth.action.startsWith('s3:')
      ? { 's3:TlsVersion': '1.3', 's3:authType': 'REST-HEADER', 's3:signatureversion': 'AWS4-HMAC-SHA256' }
      : {}),
  };
}

/** `policy/Sid`, or, for a statement without a Sid, `policy/[its actions]`. */
const names = (refs: StatementRef[] | undefined, prefix: string) =>
  (refs ?? []).map((r) => {
    const s = r.statement as { Sid?: string; Action?: string | string[]; NotAction?: unknown } | undefined;
    const label = s?.Sid ?? `[${[s?.Action ?? 'NotAction'].flat().join(' ')}]`;
    return `${prefix}${r.policyId ?? 'policy'}/${label}`;
  });

/** Simulates one authorisation for `principal`, with the resource's policy when it has one. */
export async function decide(
  principal: Principal,
  auth: Authorisation,
  region: string,
  resourcePolicy?: { logicalId: string; policy: unknown },
): Promise<Verdict> {
  const resourceAccount =
    auth.resource === '*' ? principal.account : accountOf(auth.resource) || principal.account;
  const response = await runSimulation(
    {
      request: {
        principal: principal.sessionArn,
        action: auth.action,
        resource: { resource: auth.resource, accountId: resourceAccount },
        contextVariables: { ...globalContext(principal, auth, region), ...auth.context },
      },
      identityPolicies: principal.identityPolicies,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(principal.sessionPolicy ? { sessionPolicy: principal.sessionPolicy } : {}),
      ...(resourcePolicy ? { resourcePolicy: resourcePolicy.policy } : {}),
    },
    {},
  );
  if (response.resultType === 'error') {
    return { decision: 'ImplicitlyDenied', deciding: [], invalid: JSON.stringify(response.errors) };
  }
  if (response.resultType === 'wildcard') {
    // `*` where the action names a resource type: the map must give the resource the call acts on.
    return {
      decision: 'ImplicitlyDenied',
      deciding: [],
      invalid: `${auth.action} has resource-level permissions; the request must name its resource, not *`,
    };
  }
  const analysis = (response.resultType === 'single' ? response.result.analysis : undefined) as
    | Analysis
    | undefined;
  const decision = response.overallResult as Decision;
  const resourceName = resourcePolicy ? `resource:${resourcePolicy.logicalId}` : 'resource';
  const deciding =
    decision === 'ExplicitlyDenied'
      ? [
          ...names(analysis?.identityAnalysis?.denyStatements, ''),
          ...names(analysis?.resourceAnalysis?.denyStatements, `${resourceName}:`),
          ...names(analysis?.sessionAnalysis?.denyStatements, 'session:'),
        ]
      : [
          ...names(analysis?.identityAnalysis?.allowStatements, ''),
          ...names(analysis?.resourceAnalysis?.allowStatements, `${resourceName}:`),
        ];
  return { decision, deciding };
}
