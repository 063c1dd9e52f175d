import { describe, expect, inject, it } from 'vitest';
import {
  asArray,
  type CfnTemplate,
  loadTemplate,
  type PolicyStatement,
  refersTo,
  resource,
  resourcesOfType,
  roleStatements,
  statementsOf,
  sub,
} from '../support/template-model.js';

const template: CfnTemplate = loadTemplate(inject('cfnTemplates').dev);
const stage = 'dev';

/** Operations that use a key's material, as opposed to administering the key. */
const cryptoActions = [
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:GenerateDataKeyPair',
  'kms:Sign',
  'kms:Verify',
  'kms:GenerateMac',
  'kms:CreateGrant',
];

function keyStatements(keyId: string): PolicyStatement[] {
  return statementsOf(resource(template, keyId).Properties?.KeyPolicy);
}

const accountRoot = { AWS: sub('arn:{AWS::Partition}:iam::{AWS::AccountId}:root') };
const stageRoles = sub(`arn:{AWS::Partition}:iam::{AWS::AccountId}:role/cordon-${stage}-*`);
const investigator = sub(`arn:{AWS::Partition}:iam::{AWS::AccountId}:role/cordon-investigator-${stage}`);

/** The actions that the identity policies of the stack's roles use on a key, by key reference. */
function actionsRolesUseOn(keyId: string): Set<string> {
  const used = new Set<string>();
  for (const [roleId] of resourcesOfType(template, 'AWS::IAM::Role')) {
    for (const s of roleStatements(template, roleId)) {
      if (s.Effect === 'Allow' && refersTo(s.Resource, keyId)) for (const a of asArray(s.Action)) used.add(a);
    }
  }
  return used;
}

describe.each(['EvidenceKey', 'AlertKey', 'SigningKey'])('the key policy of %s', (keyId) => {
  // Whether the account may also delete the key is teardown.test.ts's: only the alert key goes with the stack.
  it('lets the account administer the key, so it is never orphaned, without using it', () => {
    const admin = keyStatements(keyId).find((s) => s.Sid === 'AccountAdministersTheKey');
    const actions = asArray(admin?.Action);

    expect(admin?.Principal).toEqual(accountRoot);
    expect(admin?.Condition).toBeUndefined();
    expect(actions).toContain('kms:PutKeyPolicy');
    expect(actions.filter((a) => a.includes('*'))).toEqual([]);
    expect(actions.filter((a) => cryptoActions.includes(a))).toEqual([]);
  });

  it('never names `*` as a principal and never allows `kms:*`', () => {
    const statements = keyStatements(keyId);

    expect(
      statements.filter((s) => s.Principal === '*' || JSON.stringify(s.Principal).includes('"*"')),
    ).toEqual([]);
    expect(statements.flatMap((s) => asArray(s.Action)).filter((a) => a === 'kms:*' || a === '*')).toEqual(
      [],
    );
  });

  it('gives an account principal the use of the key only under a condition naming Cordon roles', () => {
    const uses = keyStatements(keyId).filter(
      (s) =>
        s.Sid !== 'AccountAdministersTheKey' && JSON.stringify(s.Principal) === JSON.stringify(accountRoot),
    );

    expect(uses.length).toBeGreaterThan(0);
    for (const s of uses) expect(s.Condition?.ArnLike ?? s.Condition?.ArnEquals).toBeDefined();
  });

  it('grants the account’s roles only operations that some role of the stack uses on this key', () => {
    const used = actionsRolesUseOn(keyId);
    const granted = keyStatements(keyId)
      .filter(
        (s) =>
          s.Sid !== 'AccountAdministersTheKey' && JSON.stringify(s.Principal) === JSON.stringify(accountRoot),
      )
      .flatMap((s) => asArray(s.Action));

    expect(granted.filter((a) => !used.has(a))).toEqual([]);
  });
});

describe('EvidenceKey', () => {
  it('is used by this stage’s Cordon roles through S3 only, to write and read evidence', () => {
    const statement = keyStatements('EvidenceKey').find((s) => s.Sid === 'CordonRolesUseTheKeyThroughS3');

    expect(statement).toMatchObject({
      Principal: accountRoot,
      Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
      Condition: {
        ArnLike: { 'aws:PrincipalArn': stageRoles },
        StringEquals: { 'kms:ViaService': sub('s3.{AWS::Region}.amazonaws.com') },
      },
    });
  });

  it('lets investigators decrypt through S3 and do nothing else', () => {
    const statement = keyStatements('EvidenceKey').find((s) => s.Sid === 'InvestigatorsDecryptThroughS3');

    expect(statement).toMatchObject({
      Action: 'kms:Decrypt',
      Condition: {
        ArnEquals: { 'aws:PrincipalArn': investigator },
        StringEquals: { 'kms:ViaService': sub('s3.{AWS::Region}.amazonaws.com') },
      },
    });
    expect(resource(template, 'InvestigatorRole').Properties?.RoleName).toBe(`cordon-investigator-${stage}`);
  });

  it('rotates its key material every year', () => {
    expect(resource(template, 'EvidenceKey').Properties?.EnableKeyRotation).toBe(true);
  });
});

/** The roles that seal a case: Archive Evidence, and the credentials playbook's archive step. */
const signingRoles = ['ArchiveEvidenceRole', 'CredentialArchiveRole'];

describe('SigningKey', () => {
  it('is an asymmetric P-256 signing key under the stage alias serverless.yml expects', () => {
    const alias = resourcesOfType(template, 'AWS::KMS::Alias').find(([, a]) =>
      refersTo(a.Properties?.TargetKeyId, 'SigningKey'),
    );

    expect(resource(template, 'SigningKey').Properties).toMatchObject({
      KeySpec: 'ECC_NIST_P256',
      KeyUsage: 'SIGN_VERIFY',
    });
    expect(alias?.[1].Properties?.AliasName).toBe(`alias/cordon-${stage}-signing`);
  });

  it('lets the archive steps sign and nothing else sign', () => {
    const signers = keyStatements('SigningKey').filter((s) => asArray(s.Action).includes('kms:Sign'));

    expect(signers).toEqual([
      expect.objectContaining({
        Action: ['kms:Sign', 'kms:GetPublicKey'],
        Condition: {
          StringEqualsIfExists: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'RAW' },
          ArnEquals: {
            'aws:PrincipalArn': signingRoles.map((id) =>
              sub(
                `arn:{AWS::Partition}:iam::{AWS::AccountId}:role/${String(resource(template, id).Properties?.RoleName)}`,
              ),
            ),
          },
        },
      }),
    ]);
  });

  it.each(signingRoles)('trusts %s by the exact name the role is given', (roleId) => {
    expect(resource(template, roleId).Properties?.RoleName).toMatch(new RegExp(`^cordon-${stage}-[a-z-]+$`));
  });

  it('lets investigators verify signatures and read the public key', () => {
    const statement = keyStatements('SigningKey').find((s) => s.Sid === 'InvestigatorsVerify');

    expect(statement).toMatchObject({
      Action: ['kms:Verify', 'kms:GetPublicKey'],
      Condition: { ArnEquals: { 'aws:PrincipalArn': investigator } },
    });
  });
});

describe('AlertKey', () => {
  it('encrypts the alert topic', () => {
    expect(resource(template, 'AlertTopic').Properties?.KmsMasterKeyId).toEqual({ Ref: 'AlertKey' });
  });

  it('lets CloudWatch use it only because Cordon alarms publish to the topic it encrypts', () => {
    const cloudwatch = keyStatements('AlertKey').filter(
      (s) => JSON.stringify(s.Principal) === '{"Service":"cloudwatch.amazonaws.com"}',
    );
    const alarmsOnTopic = resourcesOfType(template, 'AWS::CloudWatch::Alarm').filter(([, a]) =>
      refersTo(a.Properties?.AlarmActions, 'AlertTopic'),
    );

    expect(cloudwatch).toHaveLength(1);
    expect(cloudwatch[0]?.Action).toEqual(['kms:GenerateDataKey*', 'kms:Decrypt']);
    expect(alarmsOnTopic.length).toBeGreaterThan(0);
  });

  it('lets Cordon roles use it through SNS only', () => {
    const statement = keyStatements('AlertKey').find((s) => s.Sid === 'CordonRolesPublishThroughSns');

    expect(statement?.Condition).toMatchObject({
      ArnLike: { 'aws:PrincipalArn': stageRoles },
      StringEquals: { 'kms:ViaService': sub('sns.{AWS::Region}.amazonaws.com') },
    });
  });
});

describe('the alert topic', () => {
  it('accepts publications from Cordon’s own alarms only among services, and only over TLS', () => {
    const statements = resourcesOfType(template, 'AWS::SNS::TopicPolicy')
      .filter(([, p]) => refersTo(p.Properties?.Topics, 'AlertTopic'))
      .flatMap(([, p]) => statementsOf(p.Properties?.PolicyDocument));

    expect(statements).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Condition: expect.objectContaining({
          ArnLike: {
            'aws:SourceArn': sub(
              `arn:{AWS::Partition}:cloudwatch:{AWS::Region}:{AWS::AccountId}:alarm:cordon-${stage}-*`,
            ),
          },
        }),
      }),
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    ]);
  });

  it('names every alarm that publishes to it so that the topic policy lets it through', () => {
    const alarms = resourcesOfType(template, 'AWS::CloudWatch::Alarm').filter(([, a]) =>
      refersTo(a.Properties?.AlarmActions, 'AlertTopic'),
    );

    for (const [, alarm] of alarms)
      expect(String(alarm.Properties?.AlarmName)).toMatch(new RegExp(`^cordon-${stage}-`));
  });

  it('subscribes the alert e-mail address only when one is configured', () => {
    const subscription = resource(template, 'AlertEmailSubscription');

    expect(subscription.Condition).toBe('HasAlertEmail');
    expect(template.Conditions?.HasAlertEmail).toEqual({ 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] });
  });
});

describe('failure alarms', () => {
  it.each([
    ['ForensicsStateMachine', 'ForensicsFailuresAlarm'],
    ['ReleaseStateMachine', 'ReleaseFailuresAlarm'],
  ])('%s alarms the alert topic when an execution fails, times out or is aborted', (machine, alarmId) => {
    const alarm = resource(template, alarmId);
    const metrics = alarm.Properties?.Metrics as {
      MetricStat?: { Metric: { MetricName: string; Dimensions: unknown } };
    }[];
    const watched = metrics.filter((m) => m.MetricStat && refersTo(m.MetricStat.Metric.Dimensions, machine));

    expect(watched.map((m) => m.MetricStat?.Metric.MetricName).sort()).toEqual([
      'ExecutionsAborted',
      'ExecutionsFailed',
      'ExecutionsTimedOut',
    ]);
    expect(alarm.Properties).toMatchObject({
      AlarmActions: [{ Ref: 'AlertTopic' }],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
  });
});
