import { GetAccountSummaryCommand, type IAMClient } from '@aws-sdk/client-iam';
import { allow, type Check, guarded } from './check.js';

/** Root user hygiene (GetAccountSummary): no access keys, MFA on. */
export async function checkRoot(iam: IAMClient): Promise<Check[]> {
  const checked = await guarded(
    { check: 'Root user', scope: 'account' },
    allow('iam:GetAccountSummary'),
    async () => {
      const map = (await iam.send(new GetAccountSummaryCommand({}))).SummaryMap ?? {};
      const keys = map.AccountAccessKeysPresent;
      const mfa = map.AccountMFAEnabled;
      const keysBase = { check: 'Root access keys', scope: 'account' };
      const mfaBase = { check: 'Root MFA', scope: 'account' };
      const unsaid = { status: 'unknown', detail: 'the account summary does not say', fix: '' } as const;
      return [
        keys === undefined
          ? { ...keysBase, ...unsaid }
          : keys > 0
            ? {
                ...keysBase,
                status: 'fail',
                detail: 'the root user has access keys: whoever holds them can undo any containment',
                fix: 'Sign in as root and delete its access keys (Security credentials).',
              }
            : { ...keysBase, status: 'pass', detail: 'the root user has no access keys', fix: '' },
        mfa === undefined
          ? { ...mfaBase, ...unsaid }
          : mfa > 0
            ? { ...mfaBase, status: 'pass', detail: 'the root user has MFA', fix: '' }
            : {
                ...mfaBase,
                status: 'fail',
                detail: 'the root user has no MFA device',
                fix: 'Sign in as root and assign an MFA device (Security credentials).',
              },
      ];
    },
  );
  return [checked].flat();
}
