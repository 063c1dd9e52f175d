import { IAMClient, ListInstanceProfilesCommand, SimulatePrincipalPolicyCommand } from '@aws-sdk/client-iam';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { checkTagKeys, policyTagKeysOf } from '../../scripts/cli/doctor/tag-keys.js';

const iam = mockClient(IAMClient);
const webRole = 'arn:aws:iam::111122223333:role/web';
const dbRole = 'arn:aws:iam::111122223333:role/db';
const policy = { stage: 'prod', keys: ['cordon:response'] };
const check = () => checkTagKeys(new IAMClient({}), 'eu-west-1', policy);

function profiles(...roles: string[]) {
  iam.on(ListInstanceProfilesCommand).resolves({
    InstanceProfiles: roles.map((arn, i) => ({
      Path: '/',
      InstanceProfileName: `p${i}`,
      InstanceProfileId: `id${i}`,
      Arn: `arn:aws:iam::111122223333:instance-profile/p${i}`,
      CreateDate: new Date(0),
      Roles: [{ Path: '/', RoleName: 'r', RoleId: 'r', Arn: arn, CreateDate: new Date(0) }],
    })),
  });
}

const decided = (decision: 'allowed' | 'implicitDeny' | 'explicitDeny', missing: string[] = []) => ({
  EvaluationResults: ['ec2:CreateTags', 'ec2:DeleteTags'].map((action) => ({
    EvalActionName: action,
    EvalDecision: decision,
    ResourceSpecificResults: [
      {
        EvalResourceName: 'arn:aws:ec2:eu-west-1:111122223333:instance/*',
        EvalResourceDecision: decision,
        MissingContextValues: missing,
      },
    ],
  })),
});

beforeEach(() => {
  iam.reset();
});

describe('the protected tag keys check', () => {
  it('asks, for each instance role once and each key, whether it may create or delete the tag on instances', async () => {
    profiles(webRole, dbRole, webRole);
    iam.on(SimulatePrincipalPolicyCommand).resolves(decided('implicitDeny'));

    const result = await check();

    expect(result).toEqual({
      check: 'Protected tag keys',
      scope: 'account, eu-west-1',
      status: 'pass',
      detail:
        "none of the 2 instance role(s) may create or delete the tag key(s) cordon:response on the account's instances",
      fix: '',
    });
    expect(iam).toHaveReceivedCommandTimes(SimulatePrincipalPolicyCommand, 2);
    expect(iam).toHaveReceivedCommandWith(SimulatePrincipalPolicyCommand, {
      PolicySourceArn: webRole,
      ActionNames: ['ec2:CreateTags', 'ec2:DeleteTags'],
      ResourceArns: ['arn:aws:ec2:eu-west-1:111122223333:instance/*'],
      ContextEntries: [
        {
          ContextKeyName: 'aws:TagKeys',
          ContextKeyValues: ['cordon:response'],
          ContextKeyType: 'stringList',
        },
      ],
    });
  });

  it('fails, naming the role, the action and the key, when an instance role may write the key', async () => {
    profiles(webRole, dbRole);
    iam.on(SimulatePrincipalPolicyCommand).resolves(decided('explicitDeny'));
    iam.on(SimulatePrincipalPolicyCommand, { PolicySourceArn: dbRole }).resolves(decided('allowed'));

    const result = await check();

    expect(result).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('db (ec2:CreateTags, ec2:DeleteTags cordon:response)'),
      fix: expect.stringMatching(/^Deny ec2:CreateTags and ec2:DeleteTags with aws:TagKeys cordon:response/),
      resources: [dbRole],
    });
  });

  it('is UNKNOWN when the simulation lacked a condition key a policy reads', async () => {
    profiles(webRole);
    iam.on(SimulatePrincipalPolicyCommand).resolves(decided('implicitDeny', ['ec2:ResourceTag/Owner']));

    const result = await check();

    expect(result).toMatchObject({
      status: 'unknown',
      detail: expect.stringContaining('ec2:ResourceTag/Owner'),
    });
  });

  it('is UNKNOWN, naming the actions to allow, when the simulation is denied', async () => {
    profiles(webRole);
    iam
      .on(SimulatePrincipalPolicyCommand)
      .rejects(Object.assign(new Error('not authorized'), { name: 'AccessDenied', $metadata: {} }));

    const result = await check();

    expect(result).toMatchObject({
      status: 'unknown',
      fix: 'Allow iam:ListInstanceProfiles and iam:SimulatePrincipalPolicy.',
    });
  });

  it('makes no IAM call when the stage policy reads no tag', async () => {
    const result = await checkTagKeys(new IAMClient({}), 'eu-west-1', policyTagKeysOf('prod', {}));

    expect(result).toMatchObject({
      status: 'pass',
      detail: "not needed: stage prod's response policy reads no tag",
    });
    expect(iam.calls()).toHaveLength(0);
  });

  it('fails on a stage policy Intake would refuse, saying why', async () => {
    const keys = policyTagKeysOf('prod', {
      responsePolicy:
        '{"default":"contain","rules":[{"name":"x","response":"exempt","tags":{"Tier":["db"]}}]}',
    });

    const result = await checkTagKeys(new IAMClient({}), 'eu-west-1', keys);

    expect(result).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/^stage prod's responsePolicy is refused: rules\.0\.tags: .*"Tier"/),
    });
    expect(iam.calls()).toHaveLength(0);
  });

  it('reads the tag keys from the stage params', () => {
    expect(
      policyTagKeysOf('prod', { responsePolicy: '{"default":"contain","tagKeys":["cordon:response"]}' }),
    ).toEqual({ stage: 'prod', keys: ['cordon:response'] });
  });
});
