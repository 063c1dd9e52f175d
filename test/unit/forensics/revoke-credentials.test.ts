import {
  EC2Client,
  ModifyInstanceMetadataOptionsCommand,
  ReplaceIamInstanceProfileAssociationCommand,
} from '@aws-sdk/client-ec2';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import {
  DeleteRolePolicyCommand,
  GetInstanceProfileCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListRolePoliciesCommand,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { changeKeys, type RevokeChanges } from '../../../functions/core/containment.js';
import { agentChannelActions, denyPolicies } from '../../../functions/core/denies.js';
import { AwsThrottlingError, RevocationError } from '../../../functions/core/errors.js';
import {
  type RevokeDeps,
  revokeCredentials,
} from '../../../functions/forensics/revoke-credentials/revoke-credentials.js';
import {
  appProfileArn,
  awsError,
  containCase,
  ec2Id,
  FakeEc2,
  instanceArn,
  MemoryCases,
  picture,
  quarantineProfile,
  quarantineProfileArn,
} from '../../support/containment-fixtures.js';

const ec2Mock = mockClient(EC2Client);
const iamMock = mockClient(IAMClient);
const eventsMock = mockClient(EventBridgeClient);
beforeEach(() => {
  eventsMock.reset();
  eventsMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
});
const c = containCase();
const revokedAt = '2026-11-27T20:16:00.000Z';
const policyName = `cordon-revoke-${c.caseId}`;
const issuedBeforeName = `cordon-revoke-${c.caseId}-issued-before`;
const withProfile = picture({
  instanceProfile: { arn: appProfileArn, associationId: ec2Id('iip-assoc', 1), roleNames: ['app-role'] },
});

/** Another case on the same role, contained more than 12 hours ago and never released. */
const earlierCase = {
  containment: 'cordon-revoke-20261127T000000Z-i-0fedcba9876543210-ab12',
  issuedBefore: 'cordon-revoke-20261127T000000Z-i-0fedcba9876543210-ab12-issued-before',
};
const earlierArn = 'arn:aws:ec2:us-east-1:123456789012:instance/i-0fedcba9876543210';
const earlierContainment = denyPolicies('instance', earlierArn, '2026-11-27T00:00:00Z').containment;
const earlierIssuedBefore = denyPolicies('instance', earlierArn, '2026-11-27T00:00:00Z').issuedBefore;

let fake: FakeEc2;
let cases: MemoryCases;

function deps(config: Partial<RevokeDeps['config']> = {}): RevokeDeps {
  return {
    ec2: new EC2Client({ region: 'us-east-1' }),
    iam: new IAMClient({ region: 'us-east-1' }),
    recorder: cases.recorder(c.caseId, 'revoke-credentials'),
    cases,
    config: {
      REVOKE_SCOPE: 'instance',
      REQUIRE_IMDSV2: true,
      QUARANTINE_PROFILE_NAME: quarantineProfile,
      ...config,
    },
    events: new EventBridgeClient({ region: 'us-east-1' }),
    now: () => new Date(revokedAt),
  };
}

/** The n-th deny sent: the containment deny first, then the deny on sessions issued before it. */
const sentPolicy = (n = 0) =>
  JSON.parse(String(iamMock.commandCalls(PutRolePolicyCommand)[n]?.args[0].input.PolicyDocument)) as {
    Statement: { Effect: string; Condition: Record<string, Record<string, string>> }[];
  };

beforeEach(() => {
  ec2Mock.reset();
  iamMock.reset();
  fake = FakeEc2.standard().install(ec2Mock);
  cases = new MemoryCases();
  cases.add(c);
  iamMock.on(PutRolePolicyCommand).resolves({});
  iamMock.on(GetInstanceProfileCommand).resolves({
    InstanceProfile: {
      Path: '/',
      InstanceProfileName: 'app-profile',
      InstanceProfileId: 'AIPAEXAMPLE',
      Arn: appProfileArn,
      CreateDate: new Date('2026-01-01T00:00:00Z'),
      Roles: [
        {
          Path: '/',
          RoleName: 'app-role',
          RoleId: 'AROAEXAMPLE',
          Arn: 'arn:aws:iam::123456789012:role/app-role',
          CreateDate: new Date('2026-01-01T00:00:00Z'),
        },
      ],
    },
  });
});

// IAM policy variables, resolved by AWS from the credentials: not template placeholders.
// biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable
const credentialVpc = '${aws:ec2InstanceSourceVPC}';
// biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable
const credentialAddress = '${aws:ec2InstanceSourcePrivateIPv4}';

describe('denyPolicies', () => {
  const agentOffTheHost = (prefix: string, condition: object) => [
    {
      Sid: `${prefix}OutsideItsVpc`,
      Effect: 'Deny',
      Action: [...agentChannelActions],
      Resource: '*',
      Condition: { ...condition, StringNotEquals: { 'aws:SourceVpc': credentialVpc } },
    },
    {
      Sid: `${prefix}FromAnotherAddress`,
      Effect: 'Deny',
      Action: [...agentChannelActions],
      Resource: '*',
      Condition: {
        ...condition,
        StringNotEquals: { 'aws:VpcSourceIp': credentialAddress },
      },
    },
  ];
  const deny = (sid: string, condition: object) => ({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: `Cordon${sid}`,
        Effect: 'Deny',
        NotAction: [...agentChannelActions],
        Resource: '*',
        Condition: condition,
      },
      ...agentOffTheHost(`CordonAgentChannel${sid}`, condition),
    ],
  });
  const thisInstance = { ArnEquals: { 'ec2:SourceInstanceArn': instanceArn } };
  const issuedBefore = { DateLessThan: { 'aws:TokenIssueTime': revokedAt } };

  it("contains with a deny of every session delivered to this instance, whenever issued: all but the agent's channel, and that off the host", () => {
    for (const scope of ['instance', 'role'] as const) {
      expect(JSON.parse(denyPolicies(scope, instanceArn, revokedAt).containment)).toEqual(
        deny('DenySessionsOfThisInstance', thisInstance),
      );
    }
  });

  it("keeps, in instance scope, this instance's sessions issued before the revocation denied, and none of the role's other sessions", () => {
    expect(JSON.parse(denyPolicies('instance', instanceArn, revokedAt).issuedBefore)).toEqual(
      deny('DenySessionsOfThisInstanceIssuedBeforeRevocation', { ...thisInstance, ...issuedBefore }),
    );
  });

  it('keeps, in role scope, every session of the role issued before the revocation denied', () => {
    expect(JSON.parse(denyPolicies('role', instanceArn, revokedAt).issuedBefore)).toEqual(
      deny('DenySessionsIssuedBeforeRevocation', issuedBefore),
    );
  });

  it('holds only Deny statements, whatever the instance and the time', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('instance', 'role') as fc.Arbitrary<'instance' | 'role'>,
        fc.stringMatching(/^[0-9a-f]{17}$/),
        fc.date({ min: new Date('2020-01-01'), max: new Date('2040-01-01'), noInvalidDate: true }),
        (scope, hex, when) => {
          const docs = denyPolicies(
            scope,
            `arn:aws:ec2:us-east-1:123456789012:instance/i-${hex}`,
            when.toISOString(),
          );
          for (const doc of [docs.containment, docs.issuedBefore]) {
            expect(JSON.parse(doc).Statement.every((s: { Effect: string }) => s.Effect === 'Deny')).toBe(
              true,
            );
          }
        },
      ),
    );
  });
});

describe('revokeCredentials', () => {
  it('says on the default bus that the instance is contained, once its credentials are revoked', async () => {
    await revokeCredentials({ case: c, triage: withProfile }, deps());

    const entries = eventsMock.commandCalls(PutEventsCommand).flatMap((x) => x.args[0].input.Entries ?? []);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ Source: 'cordon', DetailType: 'Cordon Case Contained' });
    expect(JSON.parse(entries[0]?.Detail ?? '{}')).toMatchObject({
      transition: 'contained',
      caseId: c.caseId,
    });
  });

  it('stands when the contained event is refused, and the timeline says it was not sent', async () => {
    eventsMock.on(PutEventsCommand).rejects(new Error('network down'));

    const result = await revokeCredentials({ case: c, triage: withProfile }, deps());

    expect(result.profile.replaced).toBe(true);
    expect(iamMock).toHaveReceivedCommandTimes(PutRolePolicyCommand, 2);
  });

  it('denies the role to this instance’s sessions, swaps in the quarantine profile and requires IMDSv2', async () => {
    const result = await revokeCredentials({ case: c, triage: withProfile }, deps());

    const documents = denyPolicies('instance', instanceArn, revokedAt);
    expect(iamMock).toHaveReceivedCommandWith(PutRolePolicyCommand, {
      RoleName: 'app-role',
      PolicyName: policyName,
      PolicyDocument: documents.containment,
    });
    expect(iamMock).toHaveReceivedCommandWith(PutRolePolicyCommand, {
      RoleName: 'app-role',
      PolicyName: issuedBeforeName,
      PolicyDocument: documents.issuedBefore,
    });
    expect(ec2Mock).toHaveReceivedCommandWith(ReplaceIamInstanceProfileAssociationCommand, {
      AssociationId: ec2Id('iip-assoc', 1),
      IamInstanceProfile: { Name: quarantineProfile },
    });
    expect(ec2Mock).toHaveReceivedCommandWith(ModifyInstanceMetadataOptionsCommand, {
      InstanceId: c.instanceId,
      HttpTokens: 'required',
    });
    expect(result).toMatchObject({
      revokedRoles: ['app-role'],
      scope: 'instance',
      profile: { originalArn: appProfileArn, quarantineProfile, replaced: true },
      imdsv2: 'required by Cordon',
    });
  });

  it('records the original profile, its roles and the metadata setting for release', async () => {
    await revokeCredentials({ case: c, triage: withProfile }, deps());

    expect(cases.changes(c.caseId, changeKeys.revoke)).toEqual({
      scope: 'instance',
      cutoff: revokedAt,
      denies: [
        { roleName: 'app-role', policyName },
        // Kept by Release until every session issued before containment has expired.
        {
          roleName: 'app-role',
          policyName: issuedBeforeName,
          until: new Date(Date.parse(revokedAt) + 12 * 3_600_000).toISOString(),
        },
      ],
      profile: { originalArn: appProfileArn, roleNames: ['app-role'] },
      metadata: { originalHttpTokens: 'optional' },
    } satisfies RevokeChanges);
  });

  it('leaves healthy instances sharing the profile working: the deny names this instance, and only this association is replaced', async () => {
    await revokeCredentials({ case: c, triage: withProfile }, deps());

    const statements = sentPolicy().Statement;
    expect(statements).toHaveLength(3);
    for (const statement of statements) {
      expect(statement.Condition).toMatchObject({ ArnEquals: { 'ec2:SourceInstanceArn': instanceArn } });
    }
    expect(JSON.stringify(statements)).not.toContain('aws:TokenIssueTime');
    expect(ec2Mock).toHaveReceivedCommandTimes(ReplaceIamInstanceProfileAssociationCommand, 1);
  });

  it('denies every older session of the role when REVOKE_SCOPE is role', async () => {
    const result = await revokeCredentials({ case: c, triage: withProfile }, deps({ REVOKE_SCOPE: 'role' }));

    expect(sentPolicy(0).Statement.every((s) => JSON.stringify(s.Condition).includes(instanceArn))).toBe(
      true,
    );
    const older = sentPolicy(1).Statement.map((s) => s.Condition);
    expect(older).toHaveLength(3);
    for (const condition of older) {
      expect(condition).toMatchObject({ DateLessThan: { 'aws:TokenIssueTime': revokedAt } });
      expect(JSON.stringify(condition)).not.toContain(instanceArn);
    }
    expect(result.scope).toBe('role');
  });

  it('touches no role and no profile for an instance without an instance profile, and still requires IMDSv2', async () => {
    fake.instance.profile = undefined;

    const result = await revokeCredentials({ case: c, triage: picture() }, deps());

    expect(iamMock).toHaveReceivedCommandTimes(PutRolePolicyCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(ReplaceIamInstanceProfileAssociationCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifyInstanceMetadataOptionsCommand, 1);
    expect(result.revokedRoles).toEqual([]);
    expect(result.profile.replaced).toBe(false);
  });

  it('reads the roles of a profile Triage did not see', async () => {
    const result = await revokeCredentials({ case: c, triage: picture() }, deps());

    expect(iamMock).toHaveReceivedCommandWith(GetInstanceProfileCommand, {
      InstanceProfileName: 'app-profile',
    });
    expect(result.revokedRoles).toEqual(['app-role']);
  });

  it('sends no metadata change when IMDSv2 is already required or not asked for', async () => {
    fake.instance.httpTokens = 'required';
    const already = await revokeCredentials({ case: c, triage: withProfile }, deps());
    const notAsked = await revokeCredentials(
      { case: c, triage: withProfile },
      deps({ REQUIRE_IMDSV2: false }),
    );

    expect(already.imdsv2).toBe('already required');
    expect(notAsked.imdsv2).toBe('not requested');
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifyInstanceMetadataOptionsCommand, 0);
  });

  it('keeps its first cutoff and original profile when run again after the swap', async () => {
    await revokeCredentials({ case: c, triage: withProfile }, deps({ REVOKE_SCOPE: 'role' }));
    const later = { ...deps({ REVOKE_SCOPE: 'role' }), now: () => new Date('2026-11-27T21:00:00.000Z') };

    const again = await revokeCredentials({ case: c, triage: withProfile }, later);

    expect(again.cutoff).toBe(revokedAt);
    expect(again.profile.originalArn).toBe(appProfileArn);
    expect(ec2Mock).toHaveReceivedCommandTimes(ReplaceIamInstanceProfileAssociationCommand, 1);
  });

  it("takes over an earlier, unreleased case's denies and original profile", async () => {
    const earlierId = '20261126T080000Z-i-0123456789abcdef0-0001';
    cases.add(containCase({ caseId: earlierId }), 'contained', {
      [changeKeys.revoke]: {
        scope: 'instance',
        cutoff: '2026-11-26T08:01:00.000Z',
        denies: [{ roleName: 'app-role', policyName: `cordon-revoke-${earlierId}` }],
        profile: { originalArn: appProfileArn, roleNames: ['app-role'] },
        metadata: { originalHttpTokens: 'optional' },
      } satisfies RevokeChanges,
    });
    cases.add(c, 'open', {
      [changeKeys.protect]: {
        previousCaseId: earlierId,
        tags: [],
        attributes: [],
        volumes: [],
        targetGroups: [],
        classicLoadBalancers: [],
      },
    });
    fake.instance.profile = { associationId: ec2Id('iip-assoc', 2), arn: quarantineProfileArn };
    fake.instance.httpTokens = 'required';

    const result = await revokeCredentials({ case: c, triage: picture() }, deps());

    expect(result.profile).toEqual({ originalArn: appProfileArn, quarantineProfile, replaced: true });
    expect(ec2Mock).toHaveReceivedCommandTimes(ReplaceIamInstanceProfileAssociationCommand, 0);
    const saved = cases.changes(c.caseId, changeKeys.revoke) as RevokeChanges;
    expect(saved.denies.map((d) => d.policyName)).toEqual([
      `cordon-revoke-${earlierId}`,
      policyName,
      issuedBeforeName,
    ]);
    expect(saved.metadata).toEqual({ originalHttpTokens: 'optional' });
  });

  it.each([
    ['iam', 'PutRolePolicyCommand'],
    ['ec2', 'DescribeIamInstanceProfileAssociationsCommand'],
    ['ec2', 'ReplaceIamInstanceProfileAssociationCommand'],
    ['ec2', 'ModifyInstanceMetadataOptionsCommand'],
  ])('completes on the retry when %s %s is throttled once', async (service, command) => {
    const throttled = awsError('Throttling');
    if (service === 'iam') iamMock.on(PutRolePolicyCommand).rejectsOnce(throttled).resolves({});
    else fake.failNext(command, awsError('RequestLimitExceeded'));

    const first = await revokeCredentials({ case: c, triage: withProfile }, deps()).catch((e: unknown) => e);
    const second = await revokeCredentials({ case: c, triage: withProfile }, deps());

    expect(first).toBeInstanceOf(AwsThrottlingError);
    expect(second).toMatchObject({ revokedRoles: ['app-role'], profile: { replaced: true } });
    expect(fake.instance.profile?.arn).toBe(quarantineProfileArn);
    expect((cases.changes(c.caseId, changeKeys.revoke) as RevokeChanges).profile?.originalArn).toBe(
      appProfileArn,
    );
  });

  it("fails with a RevocationError, before touching the profile, when the role has no room and none of Cordon's denies on it is spent", async () => {
    iamMock.on(PutRolePolicyCommand).rejects(awsError('LimitExceededException', 409));
    iamMock.on(ListRolePoliciesCommand).resolves({ PolicyNames: ['app-policy', earlierCase.containment] });
    iamMock.on(GetRolePolicyCommand).resolves({ PolicyDocument: encodeURIComponent(earlierContainment) });

    const error = await revokeCredentials({ case: c, triage: withProfile }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RevocationError);
    expect((error as Error).message).toContain(
      "app-role has no room left for another inline policy, and none of Cordon's earlier denies on it is spent",
    );
    expect((error as Error).message).toContain('Not applied: deny on the role; instance profile replaced');
    expect(iamMock).toHaveReceivedCommandTimes(DeleteRolePolicyCommand, 0);
    // Only Cordon's own policies are ever read, let alone removed.
    expect(iamMock.commandCalls(GetRolePolicyCommand).map((call) => call.args[0].input.PolicyName)).toEqual([
      earlierCase.containment,
    ]);
    expect(ec2Mock).toHaveReceivedCommandTimes(ReplaceIamInstanceProfileAssociationCommand, 0);
  });

  it("makes room on a full role by removing only earlier cases' spent denies, then puts its own", async () => {
    iamMock.on(PutRolePolicyCommand).rejectsOnce(awsError('LimitExceededException', 409)).resolves({});
    iamMock.on(ListRolePoliciesCommand).resolves({
      PolicyNames: ['app-policy', earlierCase.containment, earlierCase.issuedBefore, 'cordon-revoke-notes'],
    });
    iamMock
      .on(GetRolePolicyCommand, { PolicyName: earlierCase.containment })
      .resolves({ PolicyDocument: encodeURIComponent(earlierContainment) })
      .on(GetRolePolicyCommand, { PolicyName: earlierCase.issuedBefore })
      .resolves({ PolicyDocument: encodeURIComponent(earlierIssuedBefore) })
      .on(GetRolePolicyCommand, { PolicyName: 'cordon-revoke-notes' })
      .resolves({ PolicyDocument: encodeURIComponent('{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}') });
    iamMock.on(DeleteRolePolicyCommand).resolves({});

    const result = await revokeCredentials({ case: c, triage: withProfile }, deps());

    expect(result.revokedRoles).toEqual(['app-role']);
    expect(iamMock.commandCalls(DeleteRolePolicyCommand).map((call) => call.args[0].input)).toEqual([
      { RoleName: 'app-role', PolicyName: earlierCase.issuedBefore },
    ]);
    expect(iamMock.commandCalls(PutRolePolicyCommand).map((call) => call.args[0].input.PolicyName)).toEqual([
      policyName,
      policyName,
      issuedBeforeName,
    ]);
    expect(fake.instance.profile?.arn).toBe(quarantineProfileArn);
  });

  it('fails with a RevocationError that says the deny is in place when the quarantine profile cannot be attached', async () => {
    fake.failNext('ReplaceIamInstanceProfileAssociationCommand', awsError('InvalidParameterValue'), 99);

    const error = await revokeCredentials({ case: c, triage: withProfile }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RevocationError);
    expect((error as Error).message).toContain('Applied: instance profile read; deny on the role.');
    expect((error as Error).message).toContain(
      'Not applied: instance profile replaced by the quarantine profile; IMDSv2 required.',
    );
    expect((cases.changes(c.caseId, changeKeys.revoke) as RevokeChanges).denies).toEqual([
      { roleName: 'app-role', policyName },
      { roleName: 'app-role', policyName: issuedBeforeName, until: expect.any(String) },
    ]);
  });
});
