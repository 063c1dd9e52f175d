import {
  GetRoleCommand,
  type IAMClient,
  PutRolePolicyCommand,
  PutUserPolicyCommand,
} from '@aws-sdk/client-iam';
import type { CaseStore, Recorder } from '../../core/cases.js';
import {
  type CredentialState,
  credentialSteps,
  isNoSuchEntity,
  revokePolicyName,
  revokeSessionsPolicy,
  type StepOutcome,
} from '../../core/credentials.js';

export interface RevokeSessionsDeps {
  iam: IAMClient;
  recorder: Recorder;
  cases: Pick<CaseStore, 'saveChanges'>;
  /** The role Cordon itself assumes in member accounts (MEMBER_ROLE_NAME): never revoked by Cordon. */
  memberRoleName: string;
  now: () => Date;
}

/**
 * Revokes the principal's active sessions: an inline deny on every request made with temporary
 * credentials issued before now (`aws:TokenIssueTime`), the mechanism IAM documents for revoking a
 * role's sessions. Sessions started later, and long-term keys, are untouched by it, so it stays in
 * place after the quarantine is lifted and the stolen sessions stay dead until they expire.
 */
export async function revokeSessions(state: CredentialState, deps: RevokeSessionsDeps): Promise<StepOutcome> {
  const c = state.case;
  const { principal } = c;
  if (principal.type === 'Root') {
    return { status: 'skipped', reason: "ROOT: no IAM policy can revoke the root user's sessions" };
  }
  if ((principal.type !== 'IAMUser' && principal.type !== 'AssumedRole') || !principal.name) {
    return {
      status: 'skipped',
      reason: `UNSUPPORTED_PRINCIPAL: ${principal.type} sessions are not revoked automatically`,
    };
  }
  const name = principal.name;
  const cutoff = deps.now();
  const policyName = revokePolicyName(c.caseId);
  const document = revokeSessionsPolicy(cutoff);
  if (principal.type === 'IAMUser') {
    await deps.cases.saveChanges(c.caseId, credentialSteps.revoke, {
      userName: name,
      inlinePolicy: policyName,
      cutoff: cutoff.toISOString(),
    });
    try {
      await deps.recorder.run('iam:PutUserPolicy (revoke older sessions)', `${name}/${policyName}`, () =>
        deps.iam.send(
          new PutUserPolicyCommand({ UserName: name, PolicyName: policyName, PolicyDocument: document }),
        ),
      );
    } catch (error) {
      if (isNoSuchEntity(error))
        return { status: 'skipped', reason: `USER_NOT_FOUND: ${name} does not exist in ${c.accountId}` };
      throw error;
    }
    return {
      status: 'succeeded',
      detail: `sessions of ${name} issued before ${cutoff.toISOString()} denied`,
      policyName,
      cutoff: cutoff.toISOString(),
    };
  }

  if (name === deps.memberRoleName) {
    return {
      status: 'skipped',
      reason: `CORDON_ROLE: ${name} is the role Cordon acts through; revoke it by hand if it is compromised`,
    };
  }
  let rolePath: string | undefined;
  try {
    rolePath = (await deps.iam.send(new GetRoleCommand({ RoleName: name }))).Role?.Path;
  } catch (error) {
    if (isNoSuchEntity(error))
      return { status: 'skipped', reason: `ROLE_NOT_FOUND: ${name} does not exist in ${c.accountId}` };
    throw error;
  }
  if (rolePath?.startsWith('/aws-service-role/')) {
    return {
      status: 'skipped',
      reason: `SERVICE_LINKED_ROLE: IAM cannot revoke the sessions of the service-linked role ${name}`,
    };
  }
  await deps.cases.saveChanges(c.caseId, credentialSteps.revoke, {
    roleName: name,
    inlinePolicy: policyName,
    cutoff: cutoff.toISOString(),
  });
  await deps.recorder.run('iam:PutRolePolicy (revoke older sessions)', `${name}/${policyName}`, () =>
    deps.iam.send(
      new PutRolePolicyCommand({ RoleName: name, PolicyName: policyName, PolicyDocument: document }),
    ),
  );
  return {
    status: 'succeeded',
    detail: `sessions of role ${name} issued before ${cutoff.toISOString()} denied`,
    policyName,
    cutoff: cutoff.toISOString(),
  };
}
