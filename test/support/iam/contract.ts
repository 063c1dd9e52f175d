/**
 * The IAM contract: every request a function made in the emulated runs, decided as AWS would decide
 * it under the packaged template's policies, and the table a reviewer reads (function, action,
 * resource, decision, deciding statement).
 */

import { memberCapabilityOf } from '../../../functions/core/member-roles.js';
import type { LocalStack } from '../../../scripts/local/stack.js';
import { loadCfnYaml, loadServerlessConfig } from '../template-model.js';
import { type Authorisation, authorisations, type Where } from './operations.js';
import type { RecordedRequest } from './record.js';
import { decide, type Principal, type Verdict } from './simulate.js';
import { type StackNames, TemplateModel } from './template.js';

export interface Row {
  fn: string;
  role: string;
  operation: string;
  action: string;
  resource: string;
  verdict: Verdict;
  /** How many recorded requests this row stands for. */
  count: number;
}

/** The emulated stack's names, so that the template's policies name the same resources the runs used. */
export function localStackNames(stack: LocalStack, account: string, region: string): StackNames {
  const p = 'aws';
  const key = (arn: string) => ({
    ref: arn.split('/').pop() ?? arn,
    attributes: { Arn: arn, KeyId: arn.split('/').pop() ?? arn },
  });
  const documents = Object.fromEntries(
    ['MemoryCaptureLinuxDocument', 'MemoryCaptureWindowsDocument'].map((id) => [
      id,
      {
        ref:
          stack.env[
            id === 'MemoryCaptureLinuxDocument' ? 'MEMORY_DOCUMENT_LINUX' : 'MEMORY_DOCUMENT_WINDOWS'
          ] ?? id,
        attributes: {},
      },
    ]),
  );
  return {
    partition: p,
    account,
    region,
    stackName: stack.stackName,
    known: {
      EvidenceBucket: { ref: stack.bucket, attributes: { Arn: `arn:${p}:s3:::${stack.bucket}` } },
      ToolsBucket: { ref: stack.toolsBucket, attributes: { Arn: `arn:${p}:s3:::${stack.toolsBucket}` } },
      CasesTable: {
        ref: stack.table,
        attributes: { Arn: `arn:${p}:dynamodb:${region}:${account}:table/${stack.table}` },
      },
      AlertTopic: {
        ref: stack.topicArn,
        attributes: { TopicArn: stack.topicArn, TopicName: stack.topicArn.split(':').pop() ?? '' },
      },
      SigningKey: key(stack.signingKeyId),
      ...(stack.addendumKeyArn ? { AddendumKey: key(stack.addendumKeyArn) } : {}),
      EvidenceKey: key(stack.evidenceKeyArn),
      TriggerDeadLetterQueue: (() => {
        const name = stack.triggerQueueUrl.split('/').pop() ?? '';
        return {
          ref: stack.triggerQueueUrl,
          attributes: { Arn: `arn:${p}:sqs:${region}:${account}:${name}`, QueueName: name },
        };
      })(),
      ForensicsStateMachine: {
        ref: stack.forensicsStateMachineArn,
        attributes: {
          Arn: stack.forensicsStateMachineArn,
          Name: stack.forensicsStateMachineArn.split(':').pop() ?? '',
        },
      },
      ReleaseStateMachine: {
        ref: stack.releaseStateMachineArn,
        attributes: {
          Arn: stack.releaseStateMachineArn,
          Name: stack.releaseStateMachineArn.split(':').pop() ?? '',
        },
      },
      ...documents,
    },
  };
}

/** The role each function runs as (its serverless.yml `role:`), as a principal of the template. */
export function functionPrincipal(model: TemplateModel, fn: string, names: StackNames): Principal {
  const roleId = loadServerlessConfig().functions[fn]?.role;
  if (!roleId) throw new Error(`serverless.yml gives ${fn} no role of its own`);
  const role = model.role(roleId);
  return {
    roleArn: role.arn,
    sessionArn: `arn:${names.partition}:sts::${names.account}:assumed-role/${role.name}/${names.stackName}-${fn}`,
    account: names.account,
    identityPolicies: role.identityPolicies,
  };
}

/** Requests the `cordon` CLI made for an investigator: decided as the investigator role. */
export const investigatorCli = 'cordon (investigator role)';

/** A session of the investigator role (resources/investigator.yml), as `aws sts assume-role` gets it. */
export function investigatorPrincipal(model: TemplateModel, names: StackNames): Principal {
  const role = model.role('InvestigatorRole');
  return {
    roleArn: role.arn,
    sessionArn: `arn:${names.partition}:sts::${names.account}:assumed-role/${role.name}/investigator`,
    account: names.account,
    identityPolicies: role.identityPolicies,
  };
}

const stable = (a: Authorisation) => {
  // Times change from call to call; what IAM decides on does not depend on them here.
  const { 's3:object-lock-retain-until-date': _t, ...context } = a.context;
  return JSON.stringify([a.action, a.resource, context]);
};

/**
 * Decides `auth` for the request's function once: a request made again (every timeline write, say)
 * only counts on the row of the first.
 */
async function decideOnce(
  rows: Map<string, Row>,
  req: RecordedRequest,
  role: string,
  auth: Authorisation,
  run: () => Promise<Verdict>,
): Promise<void> {
  const id = `${req.fn}|${stable(auth)}`;
  const seen = rows.get(id);
  if (seen) {
    seen.count += 1;
    return;
  }
  rows.set(id, {
    fn: req.fn,
    role,
    operation: req.operation,
    action: auth.action,
    resource: auth.resource,
    verdict: await run(),
    count: 1,
  });
}

/** What a request's resource policy is, if any: a bucket's, a key's, a topic's, a role's trust. */
function resourcePolicy(model: TemplateModel, auth: Authorisation) {
  if (auth.resource === '*') return undefined;
  if (auth.resource.startsWith('arn:aws:iam::') && auth.action !== 'sts:AssumeRole') return undefined;
  return model.resourcePolicyFor(auth.resource);
}

/**
 * The policy AWS gives a key created without one: the account's IAM policies decide who uses it. The
 * forensic key investigators name with `--kms-key` is the deployer's own, outside Cordon's templates;
 * docs/investigators.md asks for this policy (or one naming the investigator role) on it.
 */
function defaultKeyPolicy(keyArn: string, account: string, partition: string) {
  return {
    logicalId: 'the forensic key (default key policy)',
    policy: {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: `arn:${partition}:iam::${account}:root` },
          Action: 'kms:*',
          Resource: keyArn,
        },
      ],
    },
  };
}

/**
 * Decides every recorded request made with a function's own role (the security account's instances,
 * and Cordon's own resources), one row per distinct (function, action, resource, context).
 */
export async function decideRecorded(
  requests: RecordedRequest[],
  model: TemplateModel,
  names: StackNames,
): Promise<Row[]> {
  const rows = new Map<string, Row>();
  const where: Where = {
    partition: names.partition,
    account: names.account,
    region: names.region,
    bucketKeys: bucketKeys(model, names),
  };
  for (const req of requests) {
    if (req.origin.kind === 'member' && req.origin.assumed) continue;
    const principal =
      req.fn === investigatorCli
        ? investigatorPrincipal(model, names)
        : functionPrincipal(model, req.fn, names);
    const list = authorisations(req.operation, req.input, req.facts, { ...where, region: req.region });
    const role = principal.roleArn.split('/').pop() ?? '';
    for (const auth of list) {
      const policy =
        resourcePolicy(model, auth) ??
        (req.fn === investigatorCli && auth.resource.includes(':kms:')
          ? defaultKeyPolicy(auth.resource, names.account, names.partition)
          : undefined);
      await decideOnce(rows, req, role, auth, () => decide(principal, auth, req.region, policy));
    }
  }
  return [...rows.values()];
}

/** Each bucket the template encrypts under a KMS key of its own, with that key's ARN. */
export function bucketKeys(model: TemplateModel, names: StackNames): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, r] of model.ofType('AWS::S3::Bucket')) {
    const enc = model.resolve(r.Properties?.BucketEncryption) as
      | {
          ServerSideEncryptionConfiguration?: {
            ServerSideEncryptionByDefault?: { KMSMasterKeyID?: string };
          }[];
        }
      | undefined;
    const key = enc?.ServerSideEncryptionConfiguration?.[0]?.ServerSideEncryptionByDefault?.KMSMasterKeyID;
    if (key)
      out[model.physical(id).ref] = key.startsWith('arn:')
        ? key
        : `arn:${names.partition}:kms:${names.region}:${names.account}:key/${key}`;
  }
  return out;
}

/** The table a reviewer reads: one line per decision, deciding statements named. */
export function formatRows(rows: Row[]): string {
  const shorten = (arn: string) => arn.replace(/^arn:aws:/, '').replace(/:\d{12}:/, ':…:');
  const lines = rows
    .slice()
    .sort(
      (a, b) =>
        a.fn.localeCompare(b.fn) || a.action.localeCompare(b.action) || a.resource.localeCompare(b.resource),
    )
    .map((r) =>
      [
        r.fn.padEnd(24),
        r.action.padEnd(44),
        shorten(r.resource).slice(0, 70).padEnd(70),
        r.verdict.decision.padEnd(16),
        r.verdict.invalid ? `INVALID ${r.verdict.invalid.slice(0, 200)}` : r.verdict.deciding.join(', '),
      ].join(' '),
    );
  return [
    `${'function'.padEnd(24)} ${'action'.padEnd(44)} ${'resource'.padEnd(70)} ${'decision'.padEnd(16)} deciding statement`,
    ...lines,
  ].join('\n');
}

/** A member account the contract acts in: not the security account, so that AssumeRole is real. */
export const memberAccount = '210987654321';
/** The organisation both accounts are in (`aws:PrincipalOrgID` of every session of theirs). */
export const organizationId = 'o-exampleorg01';

/** The member role (resources/member-account.yml) a function assumes, by functions/core/member-roles.ts. */
export function memberRoleOf(model: TemplateModel, fn: string) {
  const capability = memberCapabilityOf(fn);
  if (!capability) throw new Error(`${fn} acts in a member account but has no member role`);
  return model.role(`${capability}Role`);
}

/**
 * resources/member-account.yml as deployed in `memberAccount` for the security account's stage, with
 * its parameters' defaults unless `parameters` says otherwise.
 */
export function memberModel(
  home: StackNames,
  stage: string,
  parameters: Record<string, string> = {},
): { model: TemplateModel; names: StackNames } {
  const names: StackNames = {
    partition: home.partition,
    account: memberAccount,
    region: home.region,
    stackName: 'cordon-member',
    known: {},
    parameters: {
      SecurityAccountId: home.account,
      OrganizationId: organizationId,
      RoleName: 'CordonResponder',
      Stage: stage,
      ...parameters,
    },
  };
  return { model: new TemplateModel(loadCfnYaml('resources/member-account.yml'), names), names };
}

/**
 * Decides, as the member role in `memberAccount`, every request a function made through the member
 * clients (`clientsFor`): the same calls, with the security account's ids moved to the member's, the
 * way they would be made for an instance there. Also decides each such function's AssumeRole of the
 * member role, against the function's policy and the member role's trust.
 */
export async function decideAsMember(
  requests: RecordedRequest[],
  home: { model: TemplateModel; names: StackNames },
  member: { model: TemplateModel; names: StackNames },
): Promise<Row[]> {
  const rows = new Map<string, Row>();
  const move = <T>(value: T): T =>
    JSON.parse(JSON.stringify(value).replaceAll(home.names.account, member.names.account)) as T;
  const where: Where = {
    partition: member.names.partition,
    account: member.names.account,
    region: member.names.region,
    bucketKeys: {},
    documentAccount: home.names.account,
  };
  const callers = new Set<string>();
  for (const req of requests) {
    if (req.origin.kind !== 'member') continue;
    callers.add(req.fn);
    const memberRole = memberRoleOf(member.model, req.fn);
    const caseId = req.origin.caseId ?? 'session';
    const principal: Principal = {
      roleArn: memberRole.arn,
      sessionArn:
        `arn:${where.partition}:sts::${where.account}:assumed-role/${memberRole.name}/cordon-${caseId}`.slice(
          0,
          200,
        ),
      account: where.account,
      identityPolicies: memberRole.identityPolicies,
    };
    for (const auth of authorisations(req.operation, move(req.input), move(req.facts), {
      ...where,
      region: req.region,
    })) {
      await decideOnce(rows, req, memberRole.name, auth, () =>
        decide(principal, auth, req.region, documentShare(auth, where)),
      );
    }
  }
  for (const fn of callers) {
    const memberRole = memberRoleOf(member.model, fn);
    const principal = functionPrincipal(home.model, fn, home.names);
    const auth: Authorisation = {
      action: 'sts:AssumeRole',
      resource: memberRole.arn,
      context: { 'sts:RoleSessionName': 'cordon-case' },
    };
    const verdict = await decide(principal, auth, home.names.region, {
      logicalId: `${memberRole.logicalId}(trust)`,
      policy: memberRole.trustPolicy,
    });
    rows.set(`${fn}|assume`, {
      fn,
      role: principal.roleArn.split('/').pop() ?? '',
      operation: 'sts:AssumeRole',
      action: auth.action,
      resource: auth.resource,
      verdict,
      count: 1,
    });
  }
  return [...rows.values()];
}

/**
 * A security-account SSM document used from a member account is authorised there by its share
 * (`ssm modify-document-permission --account-ids-to-add`, a deployment step in docs/deploy.md), which
 * acts as the document's resource policy: the member account may describe it and run it.
 */
function documentShare(auth: Authorisation, where: Where) {
  const document = /^arn:[\w-]+:ssm:[\w-]+:(\d{12}):document\//.exec(auth.resource);
  if (!document || document[1] === where.account) return undefined;
  return {
    logicalId: 'document share (docs/deploy.md)',
    policy: {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: `arn:${where.partition}:iam::${where.account}:root` },
          Action: ['ssm:SendCommand', 'ssm:DescribeDocument'],
          Resource: auth.resource,
        },
      ],
    },
  };
}

/** A request no Cordon principal may make, whatever it is asked to do. */
export interface Forbidden {
  what: string;
  auth: Authorisation;
}

/** The requests that would destroy or unseal evidence, or give away the keys that protect it. */
export function forbiddenRequests(
  names: StackNames,
  bucket: string,
  keys: { evidence: string; signing: string },
): Forbidden[] {
  const p = names.partition;
  const sealed = `arn:${p}:s3:::${bucket}/cases/20260101T000000Z-i-0123456789abcdef0-abcd/manifest.json`;
  const s3 = (what: string, action: string, resource: string, context: Authorisation['context'] = {}) => ({
    what,
    auth: { action, resource, context: { 's3:ResourceAccount': names.account, ...context } },
  });
  return [
    s3('delete a sealed evidence version', 's3:DeleteObjectVersion', sealed),
    s3('delete a sealed evidence object', 's3:DeleteObject', sealed),
    s3('overwrite sealed evidence with a new version', 's3:PutObject', sealed),
    // A new object of a case, written as a writer would (once), but under another encryption.
    s3('write evidence under SSE-S3 instead of the evidence key', 's3:PutObject', `${sealed}.new`, {
      's3:if-none-match': '*',
      's3:x-amz-server-side-encryption': 'AES256',
    }),
    s3('write evidence under the account’s aws/s3 key', 's3:PutObject', `${sealed}.new`, {
      's3:if-none-match': '*',
      's3:x-amz-server-side-encryption': 'aws:kms',
    }),
    s3('write evidence under a key of the caller’s own (SSE-C)', 's3:PutObject', `${sealed}.new`, {
      's3:if-none-match': '*',
      's3:x-amz-server-side-encryption-customer-algorithm': 'AES256',
    }),
    s3('shorten retention by moving to GOVERNANCE', 's3:PutObjectRetention', sealed, {
      's3:object-lock-mode': 'GOVERNANCE-NOT-THE-STAGE-MODE',
    }),
    s3('bypass governance retention', 's3:BypassGovernanceRetention', sealed),
    s3('lift a legal hold', 's3:PutObjectLegalHold', sealed, { 's3:object-lock-legal-hold': 'OFF' }),
    s3(
      "change the bucket's Object Lock configuration",
      's3:PutBucketObjectLockConfiguration',
      `arn:${p}:s3:::${bucket}`,
    ),
    s3("change the bucket's policy", 's3:PutBucketPolicy', `arn:${p}:s3:::${bucket}`),
    s3("delete the bucket's policy", 's3:DeleteBucketPolicy', `arn:${p}:s3:::${bucket}`),
    s3("change the bucket's lifecycle", 's3:PutLifecycleConfiguration', `arn:${p}:s3:::${bucket}`),
    ...(['evidence', 'signing'] as const).flatMap((k) => [
      {
        what: `schedule deletion of the ${k} key`,
        auth: { action: 'kms:ScheduleKeyDeletion', resource: keys[k], context: {} },
      },
      {
        what: `replace the ${k} key's policy`,
        auth: { action: 'kms:PutKeyPolicy', resource: keys[k], context: {} },
      },
      { what: `disable the ${k} key`, auth: { action: 'kms:DisableKey', resource: keys[k], context: {} } },
    ]),
  ];
}

/**
 * Hiding a finding in Security Hub: suppressing it, resolving it (on a stage that does not resolve
 * completed cases), lowering its severity or calling it benign. Each as a BatchUpdateFindings request
 * would carry it, on the account's hub in `region`.
 */
export function findingTampering(account: string, region: string, partition = 'aws'): Forbidden[] {
  const hub = `arn:${partition}:securityhub:${region}:${account}:hub/default`;
  const update = (what: string, fields: Record<string, string>) => ({
    what,
    auth: {
      action: 'securityhub:BatchUpdateFindings',
      resource: hub,
      context: Object.fromEntries(
        Object.entries({ 'Note.Text': 'nothing to see', 'Note.UpdatedBy': 'cordon-dev', ...fields }).map(
          ([path, value]) => [`securityhub:ASFFSyntaxPath/${path}`, value],
        ),
      ),
    },
  });
  return [
    update('suppress a finding in Security Hub', { 'Workflow.Status': 'SUPPRESSED' }),
    update('resolve a finding where the stage does not resolve completed cases', {
      'Workflow.Status': 'RESOLVED',
    }),
    update("lower a finding's severity", {
      'Workflow.Status': 'NOTIFIED',
      'Severity.Label': 'INFORMATIONAL',
    }),
    update('call a finding benign', { 'Workflow.Status': 'NOTIFIED', VerificationState: 'BENIGN_POSITIVE' }),
  ];
}

/** Writing IAM policy: what no function that reads attacker-written text may do. */
export function iamWrites(account: string, partition = 'aws'): Forbidden[] {
  const role = `arn:${partition}:iam::${account}:role/any-role`;
  const user = `arn:${partition}:iam::${account}:user/any-user`;
  return [
    {
      what: 'put an inline policy on a role',
      auth: { action: 'iam:PutRolePolicy', resource: role, context: {} },
    },
    {
      what: 'put an inline policy on a user',
      auth: { action: 'iam:PutUserPolicy', resource: user, context: {} },
    },
    {
      what: 'attach a managed policy to a role',
      auth: { action: 'iam:AttachRolePolicy', resource: role, context: {} },
    },
    {
      what: 'delete an inline policy from a role',
      auth: { action: 'iam:DeleteRolePolicy', resource: role, context: {} },
    },
    {
      what: 'attach a managed policy to a user',
      auth: { action: 'iam:AttachUserPolicy', resource: user, context: {} },
    },
    {
      what: 'create a policy version',
      auth: {
        action: 'iam:CreatePolicyVersion',
        resource: `arn:${partition}:iam::${account}:policy/any`,
        context: {},
      },
    },
  ];
}

/** Decides `forbidden` for `principal`, with the resource policies of the template that governs them. */
export async function decideForbidden(
  principal: Principal,
  label: string,
  forbidden: Forbidden[],
  model: TemplateModel,
  region: string,
): Promise<(Forbidden & { principal: string; verdict: Verdict })[]> {
  const out = [];
  for (const f of forbidden) {
    const verdict = await decide(principal, f.auth, region, resourcePolicy(model, f.auth));
    out.push({ ...f, principal: label, verdict });
  }
  return out;
}
