import { describe, expect, inject, it } from 'vitest';
import {
  type CfnResource,
  type CfnTemplate,
  loadTemplate,
  type PolicyStatement,
  refersTo,
  resourcesOfType,
  statementAllows,
  statementsOf,
  sub,
} from '../support/template-model.js';

const stages = ['dev', 'prod'] as const;
const templates: Record<(typeof stages)[number], CfnTemplate> = {
  dev: loadTemplate(inject('cfnTemplates').dev),
  prod: loadTemplate(inject('cfnTemplates').prod),
};

/**
 * What a rolled-back first deploy or `osls remove` leaves behind on purpose, and why. Everything else
 * in the stack must be deletable by CloudFormation, or the rollback ends in ROLLBACK_FAILED and the
 * removal in DELETE_FAILED. `packager` marks what serverless generates rather than resources/*.yml.
 */
const retainedOnPurpose: { id: string | RegExp; reason: string; packager?: true }[] = [
  {
    id: 'EvidenceBucket',
    reason:
      'holds every case’s evidence under Object Lock: no one may delete it before its retention ends, and removing Cordon must not try',
  },
  {
    id: 'EvidenceBucketPolicy',
    reason:
      'keeps the evidence undeletable by anyone in GOVERNANCE mode, legal holds in place and lifecycle rules out; the bucket without it is unguarded',
  },
  {
    id: 'EvidenceKey',
    reason:
      'encrypts every evidence object: destroying it would destroy every case as surely as deleting the objects',
  },
  {
    id: 'SigningKey',
    reason:
      'signed every case’s manifest: without it in KMS a sealed case can no longer be verified against KMS, and no later case can be signed under the same key',
  },
  {
    id: 'AddendumKey',
    reason:
      'signed every addendum investigators recorded (a disk image’s SHA-256): without it in KMS an addendum can no longer be checked',
  },
  {
    id: 'EvidenceLogBucket',
    reason:
      'holds the evidence bucket’s S3 access logs: who read or tried to change which evidence, part of its chain of custody',
  },
  {
    id: 'EvidenceLogBucketPolicy',
    reason:
      'lets S3 deliver the evidence bucket’s access logs: without it the retained evidence would be read unrecorded',
  },
  {
    id: 'CasesTable',
    reason:
      'holds each case’s timeline: what Cordon did to which instance, when, with which request id, and what it could not record',
  },
  {
    id: 'ToolsBucket',
    reason:
      'holds the memory tools the operator uploaded (versioned); CloudFormation cannot delete a bucket with objects, so Delete would only turn each removal into DELETE_FAILED; nothing in it is evidence or secret',
  },
  {
    id: 'ToolsBucketPolicy',
    reason: 'keeps the retained tools bucket refusing requests without TLS 1.2',
  },
  {
    id: /^\w+LambdaVersion\w+$/,
    reason:
      'serverless retains every function version so that an update never deletes one in use; deleting the function deletes its versions, so nothing is left behind',
    packager: true,
  },
];

const retainedEntry = (logicalId: string) =>
  retainedOnPurpose.find((e) => (typeof e.id === 'string' ? e.id === logicalId : e.id.test(logicalId)));

const accountRoot = { AWS: sub('arn:{AWS::Partition}:iam::{AWS::AccountId}:root') };

function keyStatements(key: CfnResource): PolicyStatement[] {
  return statementsOf(key.Properties?.KeyPolicy);
}

/** Allowed to the account without a condition: IAM then decides, as it does for the deploying principal. */
function accountMay(key: CfnResource, action: string): boolean {
  return keyStatements(key).some(
    (s) =>
      JSON.stringify(s.Principal) === JSON.stringify(accountRoot) &&
      s.Condition === undefined &&
      statementAllows(s, action),
  );
}

/** The property that would give a resource a fixed physical name, by type. */
const nameProperty: Record<string, string> = {
  'AWS::S3::Bucket': 'BucketName',
  'AWS::DynamoDB::Table': 'TableName',
};

describe.each(stages)('tearing down the %s stack', (stage) => {
  const template = templates[stage];
  const resources = Object.entries(template.Resources);
  const retained = resources.filter(
    ([, r]) => r.DeletionPolicy !== undefined && r.DeletionPolicy !== 'Delete',
  );
  const deletable = resources.filter(
    ([, r]) => r.DeletionPolicy === undefined || r.DeletionPolicy === 'Delete',
  );

  it.each(retained)('retains %s only because it is listed with a reason', (logicalId, r) => {
    const entry = retainedEntry(logicalId);

    expect(entry, `${logicalId} is retained but not listed`).toBeDefined();
    expect(entry?.reason.length).toBeGreaterThan(20);
    expect(r.DeletionPolicy).toBe('Retain');
    if (!entry?.packager) expect(r.UpdateReplacePolicy).toBe('Retain');
  });

  it('retains every listed resource, and lists nothing the template does not have', () => {
    for (const entry of retainedOnPurpose) {
      const matches = retained.filter(([id]) => retainedEntry(id) === entry);

      expect(matches.length, String(entry.id)).toBeGreaterThan(0);
    }
    for (const [id, r] of resources.filter(([id]) => retainedEntry(id))) {
      expect(r.DeletionPolicy, id).toBe('Retain');
    }
  });

  it('gives no retained bucket or table a fixed name, so the next deploy of the stage can create its own', () => {
    for (const [id, r] of retained) {
      const name = nameProperty[r.Type];
      if (name) expect(r.Properties?.[name], id).toBeUndefined();
    }
  });

  it('keeps the policy of every bucket it retains, with the bucket', () => {
    const retainedBuckets = retained.filter(([, r]) => r.Type === 'AWS::S3::Bucket').map(([id]) => id);
    const policies = resourcesOfType(template, 'AWS::S3::BucketPolicy');

    expect(retainedBuckets.length).toBeGreaterThan(0);
    for (const bucketId of retainedBuckets) {
      const own = policies.filter(([, p]) => refersTo(p.Properties?.Bucket, bucketId));

      expect(own.length, bucketId).toBeGreaterThan(0);
      for (const [policyId, policy] of own) expect(policy.DeletionPolicy, policyId).toBe('Retain');
    }
  });

  it('keeps every retained key out of reach: no one may disable it or schedule its deletion', () => {
    const keys = retained.filter(([, r]) => r.Type === 'AWS::KMS::Key');

    expect(keys.map(([id]) => id).sort()).toEqual(['AddendumKey', 'EvidenceKey', 'SigningKey']);
    for (const [id, key] of keys) {
      const destroying = keyStatements(key).filter(
        (s) => statementAllows(s, 'kms:ScheduleKeyDeletion') || statementAllows(s, 'kms:DisableKey'),
      );

      expect(destroying, id).toEqual([]);
    }
  });

  it.each(deletable.filter(([, r]) => r.Type === 'AWS::KMS::Key'))(
    'lets CloudFormation delete %s: Delete policy, a pending window, and ScheduleKeyDeletion for the account',
    (_id, key) => {
      const window = key.Properties?.PendingWindowInDays;

      expect(key.DeletionPolicy).toBe('Delete');
      expect(key.UpdateReplacePolicy).toBe('Delete');
      expect(window).toBeGreaterThanOrEqual(7);
      expect(window).toBeLessThanOrEqual(30);
      // What the key's delete handler calls: ScheduleKeyDeletion, then DescribeKey until it is pending.
      expect(accountMay(key, 'kms:ScheduleKeyDeletion')).toBe(true);
      expect(accountMay(key, 'kms:DescribeKey')).toBe(true);
    },
  );

  it('has one key that goes with the stack: the alert key', () => {
    expect(deletable.filter(([, r]) => r.Type === 'AWS::KMS::Key').map(([id]) => id)).toEqual(['AlertKey']);
  });

  it('puts Object Lock only on buckets it retains: a locked bucket can never be emptied early', () => {
    for (const [id, bucket] of resourcesOfType(template, 'AWS::S3::Bucket')) {
      const locked =
        bucket.Properties?.ObjectLockEnabled === true ||
        bucket.Properties?.ObjectLockConfiguration !== undefined;
      if (locked) expect(retainedEntry(id), `${id} has Object Lock`).toBeDefined();
    }
  });

  it('turns on deletion protection only where it retains', () => {
    for (const [id, r] of deletable) {
      expect(r.Properties?.DeletionProtectionEnabled, id).not.toBe(true);
    }
  });
});
