import { describe, expect, inject, it } from 'vitest';
import { memberCapabilities } from '../../functions/core/member-roles.js';
import {
  asArray,
  type CfnTemplate,
  instantiate,
  loadCfnYaml,
  loadServerlessConfig,
  loadTemplate,
  type PolicyStatement,
  paramFor,
  resource,
  statementAllows,
  statementsOf,
  sub,
} from '../support/template-model.js';

const securityAccountId = '111111111111';
const written: CfnTemplate = loadCfnYaml('resources/member-account.yml');
/** The member template as a member account deploys it with every optional parameter left empty. */
const organizationId = 'o-exampleorg01';
const member: CfnTemplate = instantiate(written, {
  SecurityAccountId: securityAccountId,
  OrganizationId: organizationId,
});
const home: CfnTemplate = loadTemplate(inject('cfnTemplates').prod);

function inlineStatements(t: CfnTemplate, roleId: string): PolicyStatement[] {
  const policies = resource(t, roleId).Properties?.Policies as { PolicyDocument: unknown }[];
  return policies.flatMap((p) => statementsOf(p.PolicyDocument));
}

/** One role per capability (functions/core/member-roles.ts), by logical id. */
const capabilityRoles = Object.keys(memberCapabilities).map((c) => `${c}Role`);
/** What Cordon may do in a member account: every capability role's statements together. */
const everyRole = (t: CfnTemplate) => capabilityRoles.flatMap((id) => inlineStatements(t, id));
const responder = everyRole(member);
const allowsIn = (statements: PolicyStatement[], action: string) =>
  statements.filter((s) => statementAllows(s, action));
const responderAllows = (action: string) => allowsIn(responder, action);

/**
 * Actions with no resource-level permissions: the Describe family the steps share, SSM's command calls,
 * and CloudTrail's event history (Collect Activity).
 */
const unscopedActions = [
  'ec2:Describe*',
  'autoscaling:DescribeAutoScalingInstances',
  'autoscaling:DescribeAutoScalingGroups',
  'elasticloadbalancing:DescribeTargetGroups',
  'elasticloadbalancing:DescribeTargetHealth',
  'elasticloadbalancing:DescribeLoadBalancers',
  'ssm:DescribeInstanceInformation',
  'ssm:GetCommandInvocation',
  'ssm:ListCommandInvocations',
  'ssm:CancelCommand',
  'cloudtrail:LookupEvents',
];

describe('the member-account roles', () => {
  it('defaults to the role name Cordon assumes', () => {
    const parameters = (member as unknown as { Parameters: Record<string, { Default?: unknown }> })
      .Parameters;

    expect(parameters.RoleName?.Default).toBe(paramFor('prod', 'memberRoleName'));
  });

  it.each(Object.entries(memberCapabilities))(
    'has a %s role trusted by exactly its functions’ roles, in the organisation, with a Cordon session name',
    (capability, functions) => {
      const role = resource(member, `${capability}Role`).Properties;
      expect(role?.RoleName).toEqual(sub(`{RoleName}-${capability}`));
      expect(statementsOf(role?.AssumeRolePolicyDocument)).toEqual([
        {
          Effect: 'Allow',
          Principal: { AWS: sub('arn:{AWS::Partition}:iam::{SecurityAccountId}:root') },
          Action: 'sts:AssumeRole',
          Condition: {
            ArnEquals: {
              'aws:PrincipalArn': functions.map((fn) =>
                sub(`arn:{AWS::Partition}:iam::{SecurityAccountId}:role/cordon-{Stage}-${fn}`),
              ),
            },
            StringEquals: { 'aws:PrincipalOrgID': { Ref: 'OrganizationId' } },
            StringLike: { 'sts:RoleSessionName': 'cordon-*' },
          },
        },
      ]);
    },
  );

  it('has no role but the capability roles and the quarantine role', () => {
    const roles = Object.entries(member.Resources)
      .filter(([, r]) => r.Type === 'AWS::IAM::Role')
      .map(([id]) => id);
    expect(roles.sort()).toEqual([...capabilityRoles, 'QuarantineRole'].sort());
  });

  it('gives the security account’s function roles the exact names the member roles trust', () => {
    for (const fn of Object.values(memberCapabilities).flat()) {
      const roleId = loadServerlessConfig().functions[fn]?.role as string;
      expect(resource(home, roleId).Properties?.RoleName).toBe(`cordon-prod-${fn}`);
    }
  });

  it('never grants `*` or a whole service', () => {
    const broad = responder
      .filter((s) => s.Effect === 'Allow')
      .flatMap((s) => asArray(s.Action))
      .filter((a) => a === '*' || /^[\w-]+:\*$/.test(a));

    expect(broad).toEqual([]);
  });

  it('uses `Resource: *` only for actions that take no resource', () => {
    const unscoped = responder
      .filter((s) => s.Effect === 'Allow' && asArray(s.Resource).includes('*'))
      .flatMap((s) => asArray(s.Action))
      .filter((a) => !unscopedActions.includes(a));

    expect(unscoped).toEqual([]);
  });

  it.each([
    'ec2:TerminateInstances',
    'ec2:DeleteVolume',
    'ec2:DeleteSnapshot',
    'ec2:DetachVolume',
    'ec2:UnlockSnapshot',
    'ec2:DeleteSecurityGroup',
  ])('is not allowed %s, which would destroy or release evidence', (action) => {
    expect(responderAllows(action)).toEqual([]);
  });

  it('may pass the quarantine role to EC2 and no other role', () => {
    const passes = responderAllows('iam:PassRole');
    expect(passes.length).toBeGreaterThan(0);
    for (const s of passes) {
      expect(s).toEqual(
        expect.objectContaining({
          Resource: { 'Fn::GetAtt': ['QuarantineRole', 'Arn'] },
          Condition: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
        }),
      );
    }
  });

  it('changes the rules of Cordon’s own security groups only', () => {
    const onGroups = responderAllows('ec2:RevokeSecurityGroupEgress');

    expect(onGroups).toEqual([
      expect.objectContaining({ Condition: { StringEquals: { 'aws:ResourceTag/cordon:managed': 'true' } } }),
    ]);
  });

  it.each(['ec2:ModifyInstanceAttribute', 'ec2:CreateSnapshots', 'ssm:SendCommand'])(
    'may %s only on an instance that carries a case',
    (action) => {
      const onInstances = responderAllows(action).filter((s) =>
        JSON.stringify(s.Resource).includes(':instance/*'),
      );

      expect(onInstances.length).toBeGreaterThan(0);
      for (const s of onInstances)
        expect(s.Condition?.Null).toEqual({ 'aws:ResourceTag/cordon:case-id': 'false' });
    },
  );

  it('requires IMDSv2 on any instance when revoking, never anything else, and changes metadata otherwise only on an instance that carries a case', () => {
    // Revoke runs beside Protect, which tags the instance, and a suspect may strip the tag: the gate is
    // on what may be set instead.
    const revoke = allowsIn(inlineStatements(member, 'RevokeRole'), 'ec2:ModifyInstanceMetadataOptions');
    expect(revoke).toHaveLength(1);
    expect(revoke[0]?.Condition).toEqual({ StringEquals: { 'ec2:Attribute/HttpTokens': 'required' } });
    const others = capabilityRoles
      .filter((id) => id !== 'RevokeRole')
      .flatMap((id) => allowsIn(inlineStatements(member, id), 'ec2:ModifyInstanceMetadataOptions'));
    expect(others.length).toBeGreaterThan(0);
    for (const s of others) expect(s.Condition?.Null).toEqual({ 'aws:ResourceTag/cordon:case-id': 'false' });
  });

  it("reads instance profiles, for Revoke the roles of the instance's profile, and writes none", () => {
    const reads = allowsIn(inlineStatements(member, 'RevokeRole'), 'iam:GetInstanceProfile');
    expect(reads).toHaveLength(1);
    expect(reads[0]?.Resource).toEqual(sub('arn:{AWS::Partition}:iam::{AWS::AccountId}:instance-profile/*'));
    for (const action of ['iam:AddRoleToInstanceProfile', 'iam:RemoveRoleFromInstanceProfile']) {
      expect(responderAllows(action)).toEqual([]);
    }
  });

  it("isolates and quarantines whatever tags the suspect left: gated on Cordon's groups and profile, not the case tag", () => {
    // Moving interfaces and taking addresses: on any interface, but into Cordon's groups only.
    // (Release, which puts an interface's own groups back, is another role.)
    const isolate = allowsIn(inlineStatements(member, 'ContainRole'), 'ec2:ModifyNetworkInterfaceAttribute');
    const onInterfaces = isolate.filter((s) => JSON.stringify(s.Resource).includes(':network-interface/*'));
    expect(onInterfaces.length).toBeGreaterThan(0);
    const groups = isolate.filter((s) => JSON.stringify(s.Resource).includes(':security-group/*'));
    expect(groups.length).toBeGreaterThan(0);
    for (const s of groups)
      expect(s.Condition).toEqual({ StringEquals: { 'aws:ResourceTag/cordon:managed': 'true' } });
    // The swap Revoke makes: the quarantine profile only, on any instance.
    const revoke = inlineStatements(member, 'RevokeRole').filter(
      (s) => s.Effect === 'Allow' && [s.Action].flat().includes('ec2:ReplaceIamInstanceProfileAssociation'),
    );
    expect(revoke).toHaveLength(1);
    expect(revoke[0]?.Condition).toEqual({
      ArnEquals: { 'ec2:NewInstanceProfile': { 'Fn::GetAtt': ['QuarantineInstanceProfile', 'Arn'] } },
    });
  });

  it('by default swaps an instance profile for the quarantine profile only', () => {
    const swap = responderAllows('ec2:ReplaceIamInstanceProfileAssociation');

    expect(swap.length).toBeGreaterThan(0);
    for (const s of swap) {
      expect(s.Condition?.ArnEquals).toEqual({
        'ec2:NewInstanceProfile': { 'Fn::GetAtt': ['QuarantineInstanceProfile', 'Arn'] },
      });
    }
  });

  it('lets Release pass other roles back to EC2 only when the account opts in', () => {
    const optedIn = inlineStatements(
      instantiate(written, {
        SecurityAccountId: securityAccountId,
        OrganizationId: organizationId,
        AllowReleaseToRestoreProfiles: 'true',
      }),
      'ReleaseRole',
    );

    expect(allowsIn(optedIn, 'iam:PassRole').map((s) => s.Resource)).toEqual([
      { 'Fn::GetAtt': ['QuarantineRole', 'Arn'] },
      sub('arn:{AWS::Partition}:iam::{AWS::AccountId}:role/*'),
    ]);
  });

  it('never passes a Cordon role to an instance, in each role that may pass one', () => {
    for (const id of ['RevokeRole', 'ReleaseRole']) {
      expect(inlineStatements(member, id)).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Action: 'iam:PassRole',
          Resource: sub('arn:{AWS::Partition}:iam::{AWS::AccountId}:role/{RoleName}-*'),
        }),
      );
    }
  });

  it('by default shares no snapshot with anyone', () => {
    expect(responderAllows('ec2:ModifySnapshotAttribute')).toEqual([]);
  });

  it('shares a case’s snapshots with the named forensic account only, never publicly', () => {
    const withCopy = inlineStatements(
      instantiate(written, {
        SecurityAccountId: securityAccountId,
        OrganizationId: organizationId,
        SnapshotCopyAccountId: '222222222222',
      }),
      'EvidenceRole',
    );

    expect(allowsIn(withCopy, 'ec2:ModifySnapshotAttribute')).toEqual([
      expect.objectContaining({
        Condition: {
          Null: { 'aws:ResourceTag/cordon:case-id': 'false', 'ec2:Add/group': 'true' },
          'ForAllValues:StringEquals': { 'ec2:Add/userId': [{ Ref: 'SnapshotCopyAccountId' }] },
        },
      }),
    ]);
  });

  it('runs and reads only documents the security account owns under the cordon- prefix', () => {
    const documents = [...responderAllows('ssm:SendCommand'), ...responderAllows('ssm:DescribeDocument')]
      .flatMap((s) => asArray(s.Resource))
      .filter((r) => JSON.stringify(r).includes(':document/'));

    expect(new Set(documents.map((d) => JSON.stringify(d)))).toEqual(
      new Set([JSON.stringify(sub('arn:{AWS::Partition}:ssm:*:{SecurityAccountId}:document/cordon-*'))]),
    );
  });

  it('may never rewrite its own policies nor those of Cordon’s roles', () => {
    const denies = responder.filter(
      (s) => s.Effect === 'Deny' && asArray(s.Action).includes('iam:PutRolePolicy'),
    );
    const resources = denies.flatMap((s) => asArray(s.Resource));

    expect(resources).toContainEqual(sub('arn:{AWS::Partition}:iam::{AWS::AccountId}:role/{RoleName}-*'));
    expect(resources).toContainEqual(sub('arn:{AWS::Partition}:iam::{AWS::AccountId}:role/cordon-*'));
  });
});

describe('the member-account quarantine profile', () => {
  it('has the name Cordon looks for: cordon-quarantine-<stage>', () => {
    expect(resource(member, 'QuarantineInstanceProfile').Properties?.InstanceProfileName).toEqual(
      sub('cordon-quarantine-{Stage}'),
    );
    expect(resource(home, 'QuarantineInstanceProfile').Properties?.InstanceProfileName).toBe(
      'cordon-quarantine-prod',
    );
  });

  it('grants exactly what the security account’s quarantine role grants', () => {
    expect(inlineStatements(member, 'QuarantineRole')).toEqual(inlineStatements(home, 'QuarantineRole'));
  });
});
