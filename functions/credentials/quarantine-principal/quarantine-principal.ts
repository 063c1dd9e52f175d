import { AttachUserPolicyCommand, type IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import type { CaseStore, Recorder } from '../../core/cases.js';
import {
  type CredentialState,
  credentialSteps,
  isNoSuchEntity,
  quarantinePolicy,
  quarantinePolicyName,
  type StepOutcome,
} from '../../core/credentials.js';
import { awsErrorCode } from '../../core/errors.js';

export interface QuarantineDeps {
  iam: IAMClient;
  recorder: Recorder;
  cases: Pick<CaseStore, 'saveChanges'>;
}

const isLimitExceeded = (error: unknown) =>
  ['LimitExceeded', 'LimitExceededException'].includes(awsErrorCode(error) ?? '');

/** AWS's managed deny-all policy: the quarantine when the user's inline policy space is full. */
export const denyAllManagedPolicy = (partition: string) => `arn:${partition}:iam::aws:policy/AWSDenyAll`;

/**
 * Quarantines an IAM user: an inline policy `cordon-quarantine-<caseId>` that denies every action, so
 * every credential of the user (its other keys and its console password included) stops working at
 * once, whatever its other policies allow. A user's inline policies share 2,048 characters; when they
 * are full, AWS's managed `AWSDenyAll` is attached instead. Roles are not quarantined: every workload
 * using the role would stop; Revoke Sessions cuts off the role's existing sessions instead.
 */
export async function quarantinePrincipal(
  state: CredentialState,
  deps: QuarantineDeps,
): Promise<StepOutcome> {
  const c = state.case;
  const { principal } = c;
  if (principal.type === 'AssumedRole') {
    return {
      status: 'skipped',
      reason:
        'ROLE: a role is not quarantined (every workload using it would stop); its older sessions are revoked',
    };
  }
  if (principal.type === 'Root') {
    return { status: 'skipped', reason: 'ROOT: no IAM policy can restrict the root user' };
  }
  if (principal.type !== 'IAMUser' || !principal.name) {
    return {
      status: 'skipped',
      reason: `UNSUPPORTED_PRINCIPAL: ${principal.type} principals are not quarantined automatically`,
    };
  }
  const userName = principal.name;
  const policyName = quarantinePolicyName(c.caseId);
  await deps.cases.saveChanges(c.caseId, credentialSteps.quarantine, { userName, inlinePolicy: policyName });
  try {
    await deps.recorder.run('iam:PutUserPolicy (deny all)', `${userName}/${policyName}`, () =>
      deps.iam.send(
        new PutUserPolicyCommand({
          UserName: userName,
          PolicyName: policyName,
          PolicyDocument: quarantinePolicy(),
        }),
      ),
    );
    return {
      status: 'succeeded',
      detail: `${userName} quarantined with the inline deny ${policyName}`,
      policyName,
    };
  } catch (error) {
    if (isNoSuchEntity(error)) {
      return { status: 'skipped', reason: `USER_NOT_FOUND: ${userName} does not exist in ${c.accountId}` };
    }
    if (!isLimitExceeded(error)) throw error;
  }
  const policyArn = denyAllManagedPolicy(c.partition);
  await deps.cases.saveChanges(c.caseId, credentialSteps.quarantine, { userName, managedPolicy: policyArn });
  await deps.recorder.run('iam:AttachUserPolicy (AWSDenyAll)', `${userName}`, () =>
    deps.iam.send(new AttachUserPolicyCommand({ UserName: userName, PolicyArn: policyArn })),
  );
  return {
    status: 'succeeded',
    detail: `${userName} quarantined with AWSDenyAll (its inline policy space is full)`,
    policyArn,
  };
}
