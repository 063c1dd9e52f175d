import { type IAMClient, ListAccessKeysCommand, UpdateAccessKeyCommand } from '@aws-sdk/client-iam';
import type { CaseStore, Recorder } from '../../core/cases.js';
import {
  type CredentialState,
  credentialSteps,
  isNoSuchEntity,
  type StepOutcome,
} from '../../core/credentials.js';

export interface DeactivateDeps {
  iam: IAMClient;
  recorder: Recorder;
  cases: Pick<CaseStore, 'saveChanges'>;
}

/**
 * Deactivates the access key the finding names, never deletes it: the key is evidence, and an
 * investigator may need to reactivate it to see what breaks. Only an IAM user's long-term key can be
 * deactivated; session keys (`ASIA…`) and role credentials are cut off by Revoke Sessions instead.
 */
export async function deactivateAccessKey(
  state: CredentialState,
  deps: DeactivateDeps,
): Promise<StepOutcome> {
  const { principal } = state.case;
  if (principal.type === 'Root') {
    return {
      status: 'skipped',
      reason: 'ROOT: only the root user can deactivate its own access keys; do it now and turn on root MFA',
    };
  }
  if (principal.type !== 'IAMUser' || !principal.name) {
    return {
      status: 'skipped',
      reason: `NOT_A_USER_KEY: ${principal.type} credentials are session credentials`,
    };
  }
  const key = principal.accessKeyId;
  if (!key) return { status: 'skipped', reason: 'NO_KEY: the finding names no access key' };
  if (key.startsWith('ASIA')) {
    return {
      status: 'skipped',
      reason: 'TEMPORARY_KEY: a session key cannot be deactivated; Revoke Sessions denies it',
    };
  }
  let listed: { AccessKeyId?: string; Status?: string }[];
  try {
    // At most two keys per user: one page. Listing proves the key is this user's before it is touched.
    listed =
      (await deps.iam.send(new ListAccessKeysCommand({ UserName: principal.name }))).AccessKeyMetadata ?? [];
  } catch (error) {
    if (isNoSuchEntity(error)) {
      return {
        status: 'skipped',
        reason: `USER_NOT_FOUND: ${principal.name} does not exist in ${state.case.accountId}`,
      };
    }
    throw error;
  }
  const current = listed.find((k) => k.AccessKeyId === key);
  if (!current) {
    return { status: 'skipped', reason: `KEY_NOT_FOUND: ${principal.name} has no access key ${key}` };
  }
  if (current.Status === 'Inactive') {
    await deps.recorder.note('access key already inactive', 'info', { target: key });
    return {
      status: 'succeeded',
      detail: `${key} was already inactive`,
      accessKeyId: key,
      previousStatus: 'Inactive',
    };
  }
  // Saved before the change: a release needs to know the key was active.
  await deps.cases.saveChanges(state.case.caseId, credentialSteps.deactivate, {
    userName: principal.name,
    accessKeyId: key,
    previousStatus: current.Status ?? 'Active',
  });
  await deps.recorder.run('iam:UpdateAccessKey (Inactive)', `${principal.name}/${key}`, () =>
    deps.iam.send(
      new UpdateAccessKeyCommand({ UserName: principal.name, AccessKeyId: key, Status: 'Inactive' }),
    ),
  );
  return {
    status: 'succeeded',
    detail: `${key} of ${principal.name} deactivated (kept, not deleted)`,
    accessKeyId: key,
    previousStatus: current.Status ?? 'Active',
  };
}
