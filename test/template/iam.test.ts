import { describe, expect, inject, it } from 'vitest';
import { agentChannelActions } from '../../functions/core/denies.js';
import { memberCapabilities } from '../../functions/core/member-roles.js';
import {
  actionCovers,
  asArray,
  type CfnTemplate,
  functionRoleId,
  instantiate,
  loadServerlessConfig,
  loadTemplate,
  type PolicyStatement,
  refersTo,
  resource,
  resourcesOfType,
  roleStatements,
  statementAllows,
  sub,
} from '../support/template-model.js';

const template: CfnTemplate = loadTemplate(inject('cfnTemplates').dev);
const stage = 'dev';

/**
 * Actions a Lambda role may grant on `Resource: '*'`, because the service authorization reference lists
 * no resource type for them: there is nothing narrower to name. Each entry says what it is for.
 */
const actionsWithoutResourceLevelPermissions: Record<string, string> = {
  'xray:PutTraceSegments': 'active tracing: X-Ray has no resource-level permissions',
  'xray:PutTelemetryRecords': 'active tracing: X-Ray has no resource-level permissions',
  'ec2:DescribeInstances': 'EC2 Describe calls take no resource',
  'ec2:DescribeNetworkInterfaces': 'EC2 Describe calls take no resource',
  'ec2:DescribeSecurityGroups': 'EC2 Describe calls take no resource',
  'ec2:DescribeSecurityGroupRules': 'EC2 Describe calls take no resource',
  'ec2:DescribeVolumes': 'EC2 Describe calls take no resource',
  'ec2:DescribeSnapshots': 'EC2 Describe calls take no resource',
  'ec2:DescribeLockedSnapshots': 'EC2 Describe calls take no resource',
  'ec2:DescribeIamInstanceProfileAssociations': 'EC2 Describe calls take no resource',
  'ec2:DescribeAddresses': 'EC2 Describe calls take no resource',
  'ec2:DescribeVpcEndpoints': 'EC2 Describe calls take no resource',
  'ec2:DescribeInstanceTypes': 'EC2 Describe calls take no resource',
  'ec2:DescribeInstanceStatus': 'EC2 Describe calls take no resource',
  'ec2:DescribeNetworkAcls': 'EC2 Describe calls take no resource',
  'ec2:DescribeSubnets': 'EC2 Describe calls take no resource',
  'ec2:DescribeVpcs': 'EC2 Describe calls take no resource',
  'ec2:DescribeTags': 'EC2 Describe calls take no resource',
  'ec2:DescribePrefixLists': 'EC2 Describe calls take no resource',
  'ec2:DescribeManagedPrefixLists': 'EC2 Describe calls take no resource',
  'autoscaling:DescribeAutoScalingInstances': 'Auto Scaling Describe calls take no resource',
  'autoscaling:DescribeAutoScalingGroups': 'Auto Scaling Describe calls take no resource',
  'elasticloadbalancing:DescribeTargetGroups': 'ELB Describe calls take no resource',
  'elasticloadbalancing:DescribeTargetHealth': 'ELB Describe calls take no resource',
  'elasticloadbalancing:DescribeLoadBalancers': 'ELB Describe calls take no resource',
  'elasticloadbalancing:DescribeInstanceHealth': 'ELB Describe calls take no resource',
  'ssm:DescribeInstanceInformation': 'SSM lists managed nodes without a resource',
  'ssm:GetCommandInvocation': 'SSM command results are read without a resource',
  'ssm:ListCommandInvocations': 'SSM command results are read without a resource',
  'ssm:ListCommands': 'SSM command results are read without a resource',
  'ssm:CancelCommand': 'SSM cancels a command by its id, without a resource',
  'cloudtrail:LookupEvents': 'CloudTrail event history has no resource-level permissions',
};

/** Every action that destroys evidence, or the lock, key or policy that protects it. */
const evidenceDestroyingActions = [
  's3:DeleteObject',
  's3:DeleteObjectVersion',
  's3:BypassGovernanceRetention',
  's3:PutBucketObjectLockConfiguration',
  's3:PutLifecycleConfiguration',
  's3:PutBucketPolicy',
  's3:DeleteBucketPolicy',
  's3:DeleteBucket',
  'kms:ScheduleKeyDeletion',
  'kms:DisableKey',
  'kms:PutKeyPolicy',
];

const lambdaFunctions = resourcesOfType(template, 'AWS::Lambda::Function');
const lambdaRoleIds = lambdaFunctions.map(([, fn]) => functionRoleId(fn));
const allRoles = resourcesOfType(template, 'AWS::IAM::Role');

function allowStatements(roleId: string): PolicyStatement[] {
  return roleStatements(template, roleId).filter((s) => s.Effect === 'Allow');
}

function wildcardResource(statement: PolicyStatement): boolean {
  return asArray(statement.Resource).some((r) => r === '*');
}

describe('the Lambda functions', () => {
  it('are exactly the functions serverless.yml defines', () => {
    const names = lambdaFunctions.map(([, fn]) => fn.Properties?.FunctionName).sort();
    const expected = Object.keys(loadServerlessConfig().functions)
      .map((key) => `cordon-${stage}-${key}`)
      .sort();

    expect(names).toEqual(expected);
  });

  it('each run as a role of their own', () => {
    expect(new Set(lambdaRoleIds).size).toBe(lambdaFunctions.length);
  });

  it.each(lambdaFunctions)('%s runs as the role serverless.yml names for it', (_id, fn) => {
    const key = String(fn.Properties?.FunctionName).replace(`cordon-${stage}-`, '');

    expect(functionRoleId(fn)).toBe(loadServerlessConfig().functions[key]?.role);
  });
});

describe.each(lambdaRoleIds.map((id) => [id]))('the Lambda role %s', (roleId) => {
  it('can be assumed by Lambda only', () => {
    const trust = resource(template, roleId).Properties?.AssumeRolePolicyDocument as { Statement: unknown[] };

    expect(trust.Statement).toEqual([
      { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
    ]);
  });

  it('has no managed policy, so that everything it may do is in this template', () => {
    expect(resource(template, roleId).Properties?.ManagedPolicyArns).toBeUndefined();
  });

  it('never grants `*` or a whole service (`service:*`), nor allows with NotAction', () => {
    const statements = allowStatements(roleId);
    const broad = statements
      .flatMap((s) => asArray(s.Action))
      .filter((a) => a === '*' || /^[\w-]+:\*$/.test(a));

    expect(broad).toEqual([]);
    expect(statements.filter((s) => s.NotAction !== undefined)).toEqual([]);
  });

  it('uses `Resource: *` only for actions that have no resource-level permissions', () => {
    const unscoped = allowStatements(roleId)
      .filter(wildcardResource)
      .flatMap((s) => asArray(s.Action))
      .filter((a) => !(a in actionsWithoutResourceLevelPermissions));

    expect(unscoped).toEqual([]);
  });

  it('writes only to its own function log group', () => {
    const fn = lambdaFunctions.find(([, f]) => functionRoleId(f) === roleId)?.[1];
    const ownGroup = `log-group:/aws/lambda/${String(fn?.Properties?.FunctionName)}:*`;
    const logStatements = allowStatements(roleId).filter((s) =>
      asArray(s.Action).some((a) => a.startsWith('logs:')),
    );

    expect(logStatements.length).toBeGreaterThan(0);
    for (const s of logStatements) {
      expect(JSON.stringify(s.Resource)).toContain(ownGroup);
      expect(asArray(s.Resource)).toHaveLength(1);
    }
  });

  it('keeps a CloudFormation-generated name or one under cordon-<stage>-, which the key policies expect', () => {
    const name = resource(template, roleId).Properties?.RoleName;

    if (name !== undefined) expect(String(name)).toMatch(new RegExp(`^cordon-${stage}-`));
  });
});

describe('every role in the stack', () => {
  it.each(allRoles.map(([id]) => [id]))(
    '%s can destroy no evidence, lock, key or bucket policy',
    (roleId) => {
      const dangerous = roleStatements(template, roleId)
        .filter((s) => s.Effect === 'Allow')
        .filter(
          (s) =>
            wildcardResource(s) ||
            ['EvidenceBucket', 'EvidenceKey', 'SigningKey'].some((id) => refersTo(s.Resource, id)) ||
            asArray(s.Resource).some((r) => typeof r === 'string' && /^arn:[\w-]+:(s3|kms):/.test(r)),
        )
        .flatMap((s) => evidenceDestroyingActions.filter((a) => statementAllows(s, a)));

      expect(dangerous).toEqual([]);
    },
  );
});

describe('the three roles written here', () => {
  const grants = (roleId: string, action: string) =>
    allowStatements(roleId).filter((s) => asArray(s.Action).some((a) => actionCovers(a, action)));

  it('let Triage Instance read instances in member accounts through the read-only member role only', () => {
    const assume = grants('TriageInstanceRole', 'sts:AssumeRole');

    expect(assume.map((s) => s.Resource)).toEqual([
      sub('arn:{AWS::Partition}:iam::*:role/CordonResponder-Read'),
    ]);
  });

  it.each(Object.entries(memberCapabilities).flatMap(([c, fns]) => fns.map((fn) => [fn, c] as const)))(
    'let %s assume the %s member role and no other',
    (fn, capability) => {
      const roleId = loadServerlessConfig().functions[fn]?.role as string;
      const intoMemberAccounts = grants(roleId, 'sts:AssumeRole')
        .map((s) => s.Resource)
        .filter((r) => JSON.stringify(r).includes(':iam::*:'));
      expect(intoMemberAccounts).toEqual([
        sub(`arn:{AWS::Partition}:iam::*:role/CordonResponder-${capability}`),
      ]);
    },
  );

  it('let Triage Instance and Archive Evidence write evidence under cases/ only', () => {
    for (const roleId of ['TriageInstanceRole', 'ArchiveEvidenceRole']) {
      expect(grants(roleId, 's3:PutObject').map((s) => s.Resource)).toEqual([
        sub('{EvidenceBucket.Arn}/cases/*'),
      ]);
    }
  });

  it('let Archive Evidence list the bucket under cases/ only', () => {
    const list = grants('ArchiveEvidenceRole', 's3:ListBucket');

    expect(list).toEqual([
      expect.objectContaining({
        Resource: { 'Fn::GetAtt': ['EvidenceBucket', 'Arn'] },
        Condition: { StringLike: { 's3:prefix': 'cases/*' } },
      }),
    ]);
  });

  it('let the archive steps alone sign, with SigningKey', () => {
    const signers = lambdaRoleIds.filter((id) => grants(id, 'kms:Sign').length > 0);

    expect(signers.sort()).toEqual(['ArchiveEvidenceRole', 'CredentialArchiveRole']);
    expect(grants('ArchiveEvidenceRole', 'kms:Sign').map((s) => s.Resource)).toEqual([
      { 'Fn::GetAtt': ['SigningKey', 'Arn'] },
    ]);
  });

  it('let Notify Outcome publish to the alert topic only, and use its key only through SNS', () => {
    expect(grants('NotifyOutcomeRole', 'sns:Publish').map((s) => s.Resource)).toEqual([
      { Ref: 'AlertTopic' },
    ]);
    expect(grants('NotifyOutcomeRole', 'kms:GenerateDataKey')).toEqual([
      expect.objectContaining({
        Resource: { 'Fn::GetAtt': ['AlertKey', 'Arn'] },
        Condition: { StringEquals: { 'kms:ViaService': sub('sns.{AWS::Region}.amazonaws.com') } },
      }),
    ]);
  });
});

describe('the case events', () => {
  const grants = (roleId: string, action: string) =>
    allowStatements(roleId).filter((s) => asArray(s.Action).some((a) => actionCovers(a, action)));
  const senders: Record<string, string[]> = {
    // Intake closes as failed a case it opened and could not finish, and says so.
    IntakeFindingRole: ['Cordon Case Opened', 'Cordon Case Failed'],
    // The first step after containment: the Contain state's branches say whether it held.
    SnapshotVolumesRole: ['Cordon Case Contained'],
    ArchiveEvidenceRole: ['Cordon Evidence Sealed'],
    NotifyOutcomeRole: ['Cordon Case Completed', 'Cordon Case Partial', 'Cordon Case Failed'],
    ReleaseInstanceRole: ['Cordon Case Released'],
  };

  it('may be put by the five steps that make a transition true, and by no other role', () => {
    const putters = allRoles.map(([id]) => id).filter((id) => grants(id, 'events:PutEvents').length > 0);
    expect(putters.sort()).toEqual(Object.keys(senders).sort());
  });

  it.each(Object.entries(senders))(
    'lets %s put on the default bus only, from cordon only, its own detail types only',
    (roleId, detailTypes) => {
      expect(grants(roleId, 'events:PutEvents')).toEqual([
        expect.objectContaining({
          Action: 'events:PutEvents',
          Resource: sub('arn:{AWS::Partition}:events:{AWS::Region}:{AWS::AccountId}:event-bus/default'),
          Condition: {
            'ForAllValues:StringEquals': { 'events:source': 'cordon', 'events:detail-type': detailTypes },
            Null: { 'events:source': 'false', 'events:detail-type': 'false' },
          },
        }),
      ]);
    },
  );
});

describe('Security Hub updates', () => {
  const grantsIn = (t: CfnTemplate, roleId: string) =>
    roleStatements(t, roleId).filter(
      (s) =>
        s.Effect === 'Allow' &&
        asArray(s.Action).some((a) => actionCovers(a, 'securityhub:BatchUpdateFindings')),
    );
  /** The fields Cordon never sets, which no request of its may carry. */
  const untouched = [
    'Severity.Label',
    'Severity.Normalized',
    'Severity.Product',
    'Confidence',
    'Criticality',
    'Types',
    'VerificationState',
    'RelatedFindings.Id',
    'RelatedFindings.ProductArn',
  ];
  const asStage = (resolve: boolean): CfnTemplate =>
    instantiate({
      ...template,
      Conditions: {
        ...template.Conditions,
        SecurityHubResolveOnComplete: { 'Fn::Equals': [String(resolve), 'true'] },
      },
    });
  const statuses = (t: CfnTemplate, roleId: string) =>
    grantsIn(t, roleId).map((s) => s.Condition?.StringEquals?.['securityhub:ASFFSyntaxPath/Workflow.Status']);
  const updaters = ['IntakeFindingRole', 'NotifyOutcomeRole', 'CredentialIntakeRole', 'CredentialNotifyRole'];

  it('may be made by the two intake and the two notify steps, and by no other role', () => {
    const granted = allRoles.map(([id]) => id).filter((id) => grantsIn(template, id).length > 0);
    expect(granted.sort()).toEqual([...updaters].sort());
  });

  it.each(updaters)(
    'lets %s update findings on this account’s hub only, never their severity, types or related findings',
    (roleId) => {
      const [statement, ...more] = grantsIn(asStage(false), roleId);
      expect(more).toEqual([]);
      expect(statement).toMatchObject({
        Action: 'securityhub:BatchUpdateFindings',
        Resource: sub('arn:{AWS::Partition}:securityhub:*:{AWS::AccountId}:hub/default'),
      });
      expect(statement?.Condition?.Null).toEqual(
        Object.fromEntries(untouched.map((f) => [`securityhub:ASFFSyntaxPath/${f}`, 'true'])),
      );
    },
  );

  it('lets the intake steps set NOTIFIED only, whatever the stage', () => {
    for (const resolve of [false, true]) {
      expect(statuses(asStage(resolve), 'IntakeFindingRole')).toEqual(['NOTIFIED']);
      expect(statuses(asStage(resolve), 'CredentialIntakeRole')).toEqual(['NOTIFIED']);
    }
  });

  it('lets the notify steps set RESOLVED only on a stage that resolves completed cases, as their setting says', () => {
    expect(statuses(asStage(false), 'NotifyOutcomeRole')).toEqual([['NOTIFIED']]);
    expect(statuses(asStage(false), 'CredentialNotifyRole')).toEqual([['NOTIFIED']]);
    expect(statuses(asStage(true), 'NotifyOutcomeRole')).toEqual([['NOTIFIED', 'RESOLVED']]);
    expect(statuses(asStage(true), 'CredentialNotifyRole')).toEqual([['NOTIFIED', 'RESOLVED']]);
    const setting = (t: CfnTemplate) =>
      new Set(
        resourcesOfType(t, 'AWS::Lambda::Function').map(
          ([, fn]) =>
            (fn.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables
              ?.SECURITYHUB_RESOLVE_ON_COMPLETE,
        ),
      );
    expect(setting(asStage(false))).toEqual(new Set(['false']));
    expect(setting(asStage(true))).toEqual(new Set(['true']));
    // Off unless a stage asks for it.
    expect(setting(instantiate(template))).toEqual(new Set(['false']));
  });
});

describe('the investigator role', () => {
  const statements = roleStatements(template, 'InvestigatorRole');

  const allowed = statements.filter((s) => s.Effect === 'Allow');
  const writes = (s: PolicyStatement) =>
    asArray(s.Action).filter((a) => !/^[\w-]+:(Get|List|Query|Scan|Describe|Decrypt|Verify)/.test(a));

  it('reads, and writes only addenda, its timeline partition and investigation volumes, each scoped', () => {
    const writing = Object.fromEntries(
      allowed.filter((s) => writes(s).length > 0).map((s) => [s.Sid, writes(s).sort()]),
    );

    expect(writing).toEqual({
      RecordAddenda: ['s3:PutObject'],
      EncryptAddendaThroughS3: ['kms:GenerateDataKey'],
      SignAddenda: ['kms:Sign'],
      RecordOnTheTimeline: ['dynamodb:PutItem'],
      VolumesFromCaseSnapshots: ['ec2:CreateVolume'],
      CreateInvestigationVolumes: ['ec2:CreateVolume'],
      TagInvestigationVolumesAtCreation: ['ec2:CreateTags'],
      AttachDetachDeleteInvestigationVolumes: ['ec2:AttachVolume', 'ec2:DeleteVolume', 'ec2:DetachVolume'],
      AttachToWorkstationsOnly: ['ec2:AttachVolume', 'ec2:DetachVolume'],
      ForensicKeyThroughEc2: ['kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'],
      ForensicKeyGrantsForEc2: ['kms:CreateGrant'],
    });
    const bySid = (sid: string) => allowed.find((s) => s.Sid === sid);
    expect(bySid('RecordAddenda')).toMatchObject({
      Resource: sub('{EvidenceBucket.Arn}/cases/*/addenda/*'),
      Condition: { StringEquals: { 's3:if-none-match': '*' } },
    });
    expect(bySid('RecordOnTheTimeline')?.Condition).toEqual({
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': 'INVESTIGATION#*' },
      Null: { 'dynamodb:LeadingKeys': 'false' },
    });
    expect(bySid('AttachToWorkstationsOnly')?.Condition).toEqual({
      Null: { 'aws:ResourceTag/cordon:case-id': 'true' },
    });
    expect(bySid('AttachDetachDeleteInvestigationVolumes')?.Condition).toEqual({
      StringEquals: { 'aws:ResourceTag/cordon:purpose': 'investigation' },
      Null: { 'aws:ResourceTag/cordon:case-id': 'false' },
    });
  });

  it('never deletes or changes a snapshot, an instance, or evidence', () => {
    for (const action of [
      'ec2:DeleteSnapshot',
      'ec2:ModifySnapshotAttribute',
      'ec2:UnlockSnapshot',
      'ec2:TerminateInstances',
      'ec2:ModifyInstanceAttribute',
      's3:DeleteObject',
      's3:PutObjectRetention',
      'dynamodb:UpdateItem',
      'dynamodb:DeleteItem',
    ]) {
      expect(
        allowed.filter((s) => statementAllows(s, action)).map((s) => s.Sid),
        action,
      ).toEqual([]);
    }
  });

  it('by default can be assumed from this account only, and only with MFA', () => {
    const trust = resource(template, 'InvestigatorRole').Properties?.AssumeRolePolicyDocument as {
      Statement: PolicyStatement[];
    };

    expect(trust.Statement).toHaveLength(1);
    expect(JSON.stringify(trust.Statement[0]?.Principal)).toContain(':root');
    expect(trust.Statement[0]?.Condition).toEqual({
      'Fn::If': [
        'InvestigatorPrincipalsGiven',
        { Ref: 'AWS::NoValue' },
        { Bool: { 'aws:MultiFactorAuthPresent': 'true' } },
      ],
    });
  });
});

describe('the quarantine instance profile', () => {
  const statements = roleStatements(template, 'QuarantineRole');
  // The SSM agent's channel: what revocation leaves the instance's old sessions, on the host.
  const agentActions = [...agentChannelActions];

  it('is named per stage, as member accounts name theirs', () => {
    const profile = resource(template, 'QuarantineInstanceProfile');

    expect(profile.Properties?.InstanceProfileName).toBe(`cordon-quarantine-${stage}`);
    expect(profile.Properties?.Roles).toEqual([{ Ref: 'QuarantineRole' }]);
  });

  it('allows the SSM agent its registration and channels, and nothing else', () => {
    const allowed = statements.filter((s) => s.Effect === 'Allow').flatMap((s) => asArray(s.Action));

    expect(allowed.sort()).toEqual([...agentActions].sort());
  });

  it('denies everything else, whatever is attached to the role later', () => {
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', NotAction: agentActions, Resource: '*' }),
    );
  });
});

describe('the trigger role', () => {
  it('may only start the forensic state machine', () => {
    const statements = roleStatements(template, 'TriggerRole');

    expect(statements).toEqual([
      { Effect: 'Allow', Action: 'states:StartExecution', Resource: { Ref: 'ForensicsStateMachine' } },
    ]);
  });
});
