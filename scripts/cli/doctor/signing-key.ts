import { DescribeKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { safe } from '../output.js';
import { allow, type Check, guarded } from './check.js';

/** The manifest signing key: ECC_NIST_P256, SIGN_VERIFY, enabled. */
export async function checkSigningKey(kms: KMSClient, keyArn: string): Promise<Check> {
  const base = { check: 'Signing key', scope: keyArn };
  return guarded(base, allow('kms:DescribeKey on the signing key'), async () => {
    const meta = (await kms.send(new DescribeKeyCommand({ KeyId: keyArn }))).KeyMetadata;
    const problems = [
      meta?.KeySpec === 'ECC_NIST_P256'
        ? ''
        : `key spec is ${safe(meta?.KeySpec ?? 'unknown')}, not ECC_NIST_P256`,
      meta?.KeyUsage === 'SIGN_VERIFY'
        ? ''
        : `key usage is ${safe(meta?.KeyUsage ?? 'unknown')}, not SIGN_VERIFY`,
      meta?.Enabled === true && meta.KeyState === 'Enabled'
        ? ''
        : `the key is ${safe(meta?.KeyState ?? 'not enabled')}`,
    ].filter(Boolean);
    return problems.length
      ? {
          ...base,
          status: 'fail',
          detail: `${problems.join('; ')}: manifests cannot be signed`,
          fix:
            meta?.KeyState === 'Disabled'
              ? `aws kms enable-key --key-id ${keyArn}`
              : 'Redeploy the stack to restore its signing key.',
        }
      : { ...base, status: 'pass', detail: 'ECC_NIST_P256, SIGN_VERIFY, enabled', fix: '' };
  });
}
