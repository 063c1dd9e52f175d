import {
  GetBucketVersioningCommand,
  GetObjectLockConfigurationCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { awsErrorCode } from '../../../functions/core/errors.js';
import { allow, type Check, guarded } from './check.js';

/** The evidence bucket: versioned, under Object Lock, with a default retention. */
export async function checkEvidenceBucket(s3: S3Client, bucket: string): Promise<Check> {
  const base = { check: 'Evidence bucket lock', scope: bucket };
  const fix =
    'Redeploy the stack: the evidence bucket is created with Object Lock, versioning and a default retention.';
  return guarded(base, allow('s3:GetBucketVersioning', 's3:GetBucketObjectLockConfiguration'), async () => {
    const versioning = await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }));
    const lock = await s3
      .send(new GetObjectLockConfigurationCommand({ Bucket: bucket }))
      .catch((error: unknown) => {
        if (awsErrorCode(error) === 'ObjectLockConfigurationNotFoundError') return undefined;
        throw error;
      });
    const config = lock?.ObjectLockConfiguration;
    const retention = config?.Rule?.DefaultRetention;
    const problems = [
      versioning.Status === 'Enabled' ? '' : 'versioning is not enabled',
      config?.ObjectLockEnabled === 'Enabled' ? '' : 'Object Lock is not enabled',
      retention?.Mode && (retention.Days || retention.Years) ? '' : 'there is no default retention',
    ].filter(Boolean);
    if (problems.length) return { ...base, status: 'fail', detail: problems.join('; '), fix };
    const period = retention?.Days ? `${retention.Days} days` : `${retention?.Years} years`;
    const note =
      retention?.Mode === 'GOVERNANCE'
        ? ' (GOVERNANCE: principals allowed s3:BypassGovernanceRetention can still delete; production stages use COMPLIANCE)'
        : '';
    return {
      ...base,
      status: 'pass',
      detail: `versioned, Object Lock ${retention?.Mode} for ${period} by default${note}`,
      fix: '',
    };
  });
}
