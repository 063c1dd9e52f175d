import { describe, expect, inject, it } from 'vitest';
import {
  asArray,
  type CfnTemplate,
  loadTemplate,
  type PolicyStatement,
  paramFor,
  refersTo,
  resource,
  statementsOf,
  sub,
} from '../support/template-model.js';

const stages = ['dev', 'prod'] as const;
const template = (stage: (typeof stages)[number]): CfnTemplate => loadTemplate(inject('cfnTemplates')[stage]);

function bucketPolicyStatements(t: CfnTemplate, bucketId: string): PolicyStatement[] {
  const policies = Object.values(t.Resources).filter(
    (r) => r.Type === 'AWS::S3::BucketPolicy' && refersTo(r.Properties?.Bucket, bucketId),
  );
  return policies.flatMap((p) => statementsOf(p.Properties?.PolicyDocument));
}

/** A Deny that applies to everyone, whatever the request, on the bucket and its objects. */
function unconditionalDenyOf(statements: PolicyStatement[], action: string): PolicyStatement | undefined {
  return statements.find(
    (s) =>
      s.Effect === 'Deny' &&
      s.Principal === '*' &&
      s.Condition === undefined &&
      asArray(s.Action).includes(action) &&
      asArray(s.Resource).some((r) => refersTo(r, 'EvidenceBucket')),
  );
}

describe('the evidence bucket', () => {
  it.each([
    ['dev', 'GOVERNANCE'],
    ['prod', 'COMPLIANCE'],
  ] as const)('locks every new %s object by default in %s mode for the configured days', (stage, mode) => {
    const bucket = resource(template(stage), 'EvidenceBucket');

    expect(bucket.Properties?.ObjectLockEnabled).toBe(true);
    expect(bucket.Properties?.ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: mode, Days: paramFor(stage, 'objectLockDays') } },
    });
    expect(paramFor(stage, 'objectLockMode')).toBe(mode);
  });

  it('keeps every version', () => {
    const bucket = resource(template('prod'), 'EvidenceBucket');

    expect(bucket.Properties?.VersioningConfiguration).toEqual({ Status: 'Enabled' });
  });

  it('encrypts with SSE-KMS under its own key, EvidenceKey', () => {
    const bucket = resource(template('prod'), 'EvidenceBucket');
    const encryption = bucket.Properties?.BucketEncryption as {
      ServerSideEncryptionConfiguration: { ServerSideEncryptionByDefault: Record<string, unknown> }[];
    };
    const rules = encryption.ServerSideEncryptionConfiguration;

    expect(rules).toHaveLength(1);
    expect(rules[0]?.ServerSideEncryptionByDefault).toEqual({
      SSEAlgorithm: 'aws:kms',
      KMSMasterKeyID: { 'Fn::GetAtt': ['EvidenceKey', 'Arn'] },
    });
    expect(resource(template('prod'), 'EvidenceKey').Type).toBe('AWS::KMS::Key');
  });

  it('blocks every form of public access and disables ACLs', () => {
    const bucket = resource(template('prod'), 'EvidenceBucket');

    expect(bucket.Properties?.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.Properties?.OwnershipControls).toEqual({
      Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }],
    });
  });

  it('logs every request to a separate log bucket that S3 may deliver to', () => {
    const t = template('prod');
    const bucket = resource(t, 'EvidenceBucket');
    const logBucket = resource(t, 'EvidenceLogBucket');
    const delivery = bucketPolicyStatements(t, 'EvidenceLogBucket').find(
      (s) => s.Effect === 'Allow' && JSON.stringify(s.Principal) === '{"Service":"logging.s3.amazonaws.com"}',
    );

    expect(bucket.Properties?.LoggingConfiguration).toMatchObject({
      DestinationBucketName: { Ref: 'EvidenceLogBucket' },
    });
    expect(logBucket.Type).toBe('AWS::S3::Bucket');
    // S3 refuses to deliver access logs into a bucket whose default encryption is SSE-KMS.
    expect(JSON.stringify(logBucket.Properties?.BucketEncryption)).toContain('"AES256"');
    expect(delivery?.Action).toBe('s3:PutObject');
    expect(refersTo(delivery?.Condition?.ArnEquals?.['aws:SourceArn'], 'EvidenceBucket')).toBe(true);
  });

  it.each(['EvidenceBucket', 'EvidenceLogBucket', 'EvidenceKey', 'SigningKey', 'CasesTable'])(
    'outlives the stack: %s is retained on delete and on replacement',
    (logicalId) => {
      const r = resource(template('prod'), logicalId);

      expect(r.DeletionPolicy).toBe('Retain');
      expect(r.UpdateReplacePolicy).toBe('Retain');
    },
  );
});

describe('the evidence bucket policy', () => {
  it.each([
    's3:DeleteObject',
    's3:DeleteObjectVersion',
    's3:BypassGovernanceRetention',
    's3:PutBucketObjectLockConfiguration',
    's3:PutLifecycleConfiguration',
  ])('denies %s to every principal, unconditionally, on the bucket and its objects', (action) => {
    const deny = unconditionalDenyOf(bucketPolicyStatements(template('prod'), 'EvidenceBucket'), action);

    expect(deny).toBeDefined();
    expect(asArray(deny?.Resource)).toEqual([
      { 'Fn::GetAtt': ['EvidenceBucket', 'Arn'] },
      sub('{EvidenceBucket.Arn}/*'),
    ]);
  });

  it('denies every request that does not use TLS', () => {
    const statements = bucketPolicyStatements(template('prod'), 'EvidenceBucket');

    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:*',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    );
  });

  it('denies lifting a legal hold', () => {
    const statements = bucketPolicyStatements(template('prod'), 'EvidenceBucket');

    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:PutObjectLegalHold',
        Condition: { StringNotEquals: { 's3:object-lock-legal-hold': 'ON' } },
      }),
    );
  });

  it.each(stages)('denies %s writes that ask for a lock mode other than the stage default', (stage) => {
    const statements = bucketPolicyStatements(template(stage), 'EvidenceBucket');

    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Deny',
        Action: ['s3:PutObject', 's3:PutObjectRetention'],
        Condition: {
          StringNotEquals: { 's3:object-lock-mode': paramFor(stage, 'objectLockMode') },
          Null: { 's3:object-lock-mode': 'false' },
        },
      }),
    );
  });

  it('denies writes that ask for any encryption themselves: the bucket default (EvidenceKey) is the only one', () => {
    const statements = bucketPolicyStatements(template('prod'), 'EvidenceBucket');
    const denies = statements.filter((s) => s.Effect === 'Deny' && s.Action === 's3:PutObject');

    expect(denies.map((s) => s.Condition)).toEqual([
      { Null: { 's3:x-amz-server-side-encryption': 'false' } },
      { Null: { 's3:x-amz-server-side-encryption-customer-algorithm': 'false' } },
    ]);
  });

  it('allows nothing: every statement is a Deny', () => {
    const statements = bucketPolicyStatements(template('prod'), 'EvidenceBucket');

    expect(statements.filter((s) => s.Effect !== 'Deny')).toEqual([]);
  });
});

describe('the cases table', () => {
  it('has the keys and the byInstance index that the case store queries', () => {
    const table = resource(template('prod'), 'CasesTable');

    expect(table.Properties).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byInstance',
          KeySchema: [
            { AttributeName: 'instanceKey', KeyType: 'HASH' },
            { AttributeName: 'openedAt', KeyType: 'RANGE' },
          ],
        },
      ],
    });
  });

  it('is encrypted, recoverable to a point in time and protected from deletion', () => {
    const table = resource(template('prod'), 'CasesTable');

    expect(table.Properties).toMatchObject({
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      DeletionProtectionEnabled: true,
    });
  });
});
