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
import type { RevokeChanges } from '../../../functions/core/actions/revoke.js';
import { tagKeys } from '../../../functions/core/case.js';
import { changeKeys } from '../../../functions/core/containment.js';
import { agentChannelActions, denyPolicies } from '../../../functions/core/denies.js';
import { AwsThrottlingError, RevocationError } from '../../../functions/core/errors.js';
import {
  type RevokeDeps,
  revokeCredentials,
  revokeInputSchema,
} from '../../../functions/forensics/revoke-credentials/revoke-credentials.js';
import {
  appProfileArn,
  awsError,
  containCase,
  ec2Id,
  FakeEc2,
  instanceArn,
  instanceProfileAnswer,
  MemoryCases,
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
  iamMock.on(GetInstanceProfileCommand).resolves(instanceProfileAnswer());
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
  it('leaves the contained event to the step after Isolate and Revoke both: it sends none itself', async () => {
    await revokeCredentials({ case: c }, deps());

    expect(eventsMock.commandCalls(PutEventsCommand)).toEqual([]);
  });

  it('denies the role to this instance’s sessions, swaps in the quarantine profile and requires IMDSv2', async () => {
    const result = await revokeCredentials({ case: c }, deps());

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
    await revokeCredentials({ case: c }, deps());

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
    await revokeCredentials({ case: c }, deps());

    const statements = sentPolicy().Statement;
    expect(statements).toHaveLength(3);
    for (const statement of statements) {
      expect(statement.Condition).toMatchObject({ ArnEquals: { 'ec2:SourceInstanceArn': instanceArn } });
    }
    expect(JSON.stringify(statements)).not.toContain('aws:TokenIssueTime');
    expect(ec2Mock).toHaveReceivedCommandTimes(ReplaceIamInstanceProfileAssociationCommand, 1);
  });

  it('denies every older session of the role when REVOKE_SCOPE is role', async () => {
    const result = await revokeCredentials({ case: c }, deps({ REVOKE_SCOPE: 'role' }));

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

    const result = await revokeCredentials({ case: c }, deps());

    expect(iamMock).toHaveReceivedCommandTimes(PutRolePolicyCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(ReplaceIamInstanceProfileAssociationCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifyInstanceMetadataOptionsCommand, 1);
    expect(result.revokedRoles).toEqual([]);
    expect(result.profile.replaced).toBe(false);
  });

  it('reads the roles of the profile the instance holds itself, with no Triage result', async () => {
    const result = await revokeCredentials({ case: c }, deps());

    expect(iamMock).toHaveReceivedCommandWith(GetInstanceProfileCommand, {
      InstanceProfileName: 'app-profile',
    });
    expect(result.revokedRoles).toEqual(['app-role']);
  });

  it('takes a Triage result in its input and drops it unread', () => {
    const parsed = revokeInputSchema.parse({ case: c, triage: { instance: { anything: 'at all' } } });

    expect(parsed).toEqual({ case: c });
  });

  it('sends no metadata change when IMDSv2 is already required or not asked for', async () => {
    fake.instance.httpTokens = 'required';
    const already = await revokeCredentials({ case: c }, deps());
    const notAsked = await revokeCredentials({ case: c }, deps({ REQUIRE_IMDSV2: false }));

    expect(already.imdsv2).toBe('already required');
    expect(notAsked.imdsv2).toBe('not requested');
    expect(ec2Mock).toHaveReceivedCommandTimes(ModifyInstanceMetadataOptionsCommand, 0);
  });

  it('keeps its first cutoff and original profile when run again after the swap', async () => {
    await revokeCredentials({ case: c }, deps({ REVOKE_SCOPE: 'role' }));
    const later = { ...deps({ REVOKE_SCOPE: 'role' }), now: () => new Date('2026-11-27T21:00:00.000Z') };

    const again = await revokeCredentials({ case: c }, later);

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

    const result = await revokeCredentials({ case: c }, deps());

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

    const first = await revokeCredentials({ case: c }, deps()).catch((e: unknown) => e);
    const second = await revokeCredentials({ case: c }, deps());

    expect(first).toBeInstanceOf(AwsThrottlingError);
    expect(second).toMatchObject({ revokedRoles: ['app-role'], profile: { replaced: true } });
    expect(fake.instance.profile?.arn).toBe(quarantineProfileArn);
    expect((cases.changes(c.caseId, changeKeys.revoke) as RevokeChanges).profile?.originalArn).toBe(
      appProfileArn,
    );
  });

  it("swaps the profile and requires IMDSv2, then fails with a RevocationError naming both denies, when the role has no room and none of Cordon's denies on it is spent", async () => {
    iamMock.on(PutRolePolicyCommand).rejects(awsError('LimitExceededException', 409));
    iamMock.on(ListRolePoliciesCommand).resolves({ PolicyNames: ['app-policy', earlierCase.containment] });
    iamMock.on(GetRolePolicyCommand).resolves({ PolicyDocument: encodeURIComponent(earlierContainment) });

    const error = await revokeCredentials({ case: c }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RevocationError);
    const message = (error as Error).message;
    expect(message).toContain(
      "app-role has no room left for another inline policy, and none of Cordon's earlier denies on it is spent",
    );
    expect(message).toContain(
      'Applied: instance read; changes recorded on the case; instance profile replaced by the quarantine profile; IMDSv2 required.',
    );
    const issuedBefore = `app-role, sessions issued before ${revokedAt}`;
    expect(message).toContain(
      `Not applied: deny on the role (app-role); deny on the role (${issuedBefore}).`,
    );
    expect(message).toContain(
      `"deny on the role (app-role)", "deny on the role (${issuedBefore})": RevocationError:`,
    );
    expect(iamMock).toHaveReceivedCommandTimes(DeleteRolePolicyCommand, 0);
    // Only Cordon's own policies are ever read, let alone removed.
    expect(
      new Set(iamMock.commandCalls(GetRolePolicyCommand).map((call) => call.args[0].input.PolicyName)),
    ).toEqual(new Set([earlierCase.containment]));
    expect(fake.instance.profile?.arn).toBe(quarantineProfileArn);
    expect(fake.instance.httpTokens).toBe('required');
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

    const result = await revokeCredentials({ case: c }, deps());

    expect(result.revokedRoles).toEqual(['app-role']);
    expect(iamMock.commandCalls(DeleteRolePolicyCommand).map((call) => call.args[0].input)).toEqual([
      { RoleName: 'app-role', PolicyName: earlierCase.issuedBefore },
    ]);
    // The first put IAM refused is sent again once there is room; the other went through at once.
    expect(
      iamMock
        .commandCalls(PutRolePolicyCommand)
        .map((call) => call.args[0].input.PolicyName)
        .sort(),
    ).toEqual([policyName, policyName, issuedBeforeName]);
    expect(fake.instance.profile?.arn).toBe(quarantineProfileArn);
  });

  it('fails with a RevocationError that says the deny is in place when the quarantine profile cannot be attached', async () => {
    fake.failNext('ReplaceIamInstanceProfileAssociationCommand', awsError('InvalidParameterValue'), 99);

    const error = await revokeCredentials({ case: c }, deps()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RevocationError);
    expect((error as Error).message).toContain(
      'Applied: instance read; changes recorded on the case; deny on the role; IMDSv2 required.',
    );
    expect((error as Error).message).toContain(
      'Not applied: instance profile replaced by the quarantine profile.',
    );
    expect((cases.changes(c.caseId, changeKeys.revoke) as RevokeChanges).denies).toEqual([
      { roleName: 'app-role', policyName },
      { roleName: 'app-role', policyName: issuedBeforeName, until: expect.any(String) },
    ]);
  });

  it('reports every change that failed, and only once none is still in flight', async () => {
    fake.failNext('ReplaceIamInstanceProfileAssociationCommand', awsError('InvalidParameterValue'), 99);
    fake.failNext('ModifyInstanceMetadataOptionsCommand', awsError('UnauthorizedOperation', 403), 99);
    let putsFinished = 0;
    iamMock.on(PutRolePolicyCommand).callsFake(async () => {
      // The denies answer last: the step must still wait for them before it reports.
      await new Promise((resolve) => setTimeout(resolve, 20));
      putsFinished += 1;
      return {};
    });

    const error = await revokeCredentials({ case: c }, deps()).catch((e: unknown) => e);

    expect(putsFinished).toBe(2);
    expect(error).toBeInstanceOf(RevocationError);
    const message = (error as Error).message;
    expect(message).toContain('"instance profile replaced by the quarantine profile": AwsServiceError');
    expect(message).toContain('"IMDSv2 required": AwsAccessDeniedError');
    expect(message).toContain('Applied: instance read; changes recorded on the case; deny on the role.');
    expect(message).toContain(
      'Not applied: instance profile replaced by the quarantine profile; IMDSv2 required.',
    );
  });

  it('keeps a retryable name when one of the failed changes may pass on a retry, which then applies the rest', async () => {
    fake.failNext('ReplaceIamInstanceProfileAssociationCommand', awsError('InvalidParameterValue'), 1);
    fake.failNext('ModifyInstanceMetadataOptionsCommand', awsError('RequestLimitExceeded', 503), 1);

    const first = await revokeCredentials({ case: c }, deps()).catch((e: unknown) => e);
    const second = await revokeCredentials({ case: c }, deps());

    expect(first).toBeInstanceOf(AwsThrottlingError);
    expect((first as Error).message).toContain('"instance profile replaced by the quarantine profile"');
    expect(second).toMatchObject({ profile: { replaced: true }, imdsv2: 'required by Cordon' });
    expect(fake.instance.profile?.arn).toBe(quarantineProfileArn);
    expect((cases.changes(c.caseId, changeKeys.revoke) as RevokeChanges).metadata).toEqual({
      originalHttpTokens: 'optional',
    });
  });

  it('denies the role of the profile the instance holds now as well, when it is not the recorded original', async () => {
    cases.add(c, 'open', {
      [changeKeys.revoke]: {
        scope: 'instance',
        cutoff: revokedAt,
        denies: [],
        profile: { originalArn: appProfileArn, roleNames: ['app-role'] },
      } satisfies RevokeChanges,
    });
    const otherArn = 'arn:aws:iam::123456789012:instance-profile/other-profile';
    fake.instance.profile = { associationId: ec2Id('iip-assoc', 3), arn: otherArn };
    iamMock
      .on(GetInstanceProfileCommand, { InstanceProfileName: 'other-profile' })
      .resolves(instanceProfileAnswer('other-profile', 'other-role'));

    const result = await revokeCredentials({ case: c }, deps());

    expect(result.revokedRoles).toEqual(['app-role', 'other-role']);
    expect(result.profile.originalArn).toBe(appProfileArn);
    expect(fake.instance.profile?.arn).toBe(quarantineProfileArn);
  });
});

describe('revokeCredentials, beside Protect', () => {
  const earlierId = '20261126T080000Z-i-0123456789abcdef0-0001';
  const earlierChanges = {
    scope: 'instance',
    cutoff: '2026-11-26T08:01:00.000Z',
    denies: [{ roleName: 'app-role', policyName: `cordon-revoke-${earlierId}` }],
    profile: { originalArn: appProfileArn, roleNames: ['app-role'] },
    metadata: { originalHttpTokens: 'optional' },
  } satisfies RevokeChanges;
  const protectChanges = (previousCaseId?: string) => ({
    [changeKeys.protect]: {
      ...(previousCaseId ? { previousCaseId } : {}),
      tags: [],
      attributes: [],
      volumes: [],
      targetGroups: [],
      classicLoadBalancers: [],
    },
  });

  beforeEach(() => {
    // The earlier case left the instance quarantined, IMDSv2 required and tagged with its id.
    fake.instance.profile = { associationId: ec2Id('iip-assoc', 2), arn: quarantineProfileArn };
    fake.instance.httpTokens = 'required';
    fake.instance.tags[tagKeys.caseId] = earlierId;
  });

  it('takes over the earlier case named by the instance tag when Protect has not recorded it yet', async () => {
    cases.add(containCase({ caseId: earlierId }), 'contained', { [changeKeys.revoke]: earlierChanges });

    const result = await revokeCredentials({ case: c }, deps());

    expect(result.profile).toEqual({ originalArn: appProfileArn, quarantineProfile, replaced: true });
    const saved = cases.changes(c.caseId, changeKeys.revoke) as RevokeChanges;
    expect(saved.previousCaseId).toBe(earlierId);
    expect(saved.metadata).toEqual({ originalHttpTokens: 'optional' });
  });

  it('reads the case again when Protect re-tagged the instance after the first read, and takes over the case Protect named', async () => {
    cases.add(containCase({ caseId: earlierId }), 'contained', { [changeKeys.revoke]: earlierChanges });
    fake.instance.tags[tagKeys.caseId] = c.caseId;
    // Protect's record lands between Revoke's first read of the case and its read of the instance.
    let reads = 0;
    const racing: RevokeDeps['cases'] = {
      get: async (id) => {
        const record = await cases.get(id);
        if (id === c.caseId && ++reads === 1) cases.add(c, 'open', protectChanges(earlierId));
        return record;
      },
      saveChanges: (...args) => cases.saveChanges(...args),
    };

    const result = await revokeCredentials({ case: c }, { ...deps(), cases: racing });

    expect(reads).toBe(2);
    expect(result.profile.originalArn).toBe(appProfileArn);
    expect((cases.changes(c.caseId, changeKeys.revoke) as RevokeChanges).previousCaseId).toBe(earlierId);
  });

  it("trusts Protect's record over the tag: no earlier case when Protect found none", async () => {
    cases.add(containCase({ caseId: earlierId }), 'contained', { [changeKeys.revoke]: earlierChanges });
    cases.add(c, 'open', protectChanges());

    const result = await revokeCredentials({ case: c }, deps());

    expect(result.profile).toEqual({ quarantineProfile, replaced: true });
    expect((cases.changes(c.caseId, changeKeys.revoke) as RevokeChanges).previousCaseId).toBeUndefined();
  });

  it("never takes over a case about another instance, whatever the tag says, nor takes Cordon's quarantine profile for the original", async () => {
    cases.add(containCase({ caseId: earlierId, instanceId: 'i-0fedcba9876543210' }), 'contained', {
      [changeKeys.revoke]: earlierChanges,
    });

    const result = await revokeCredentials({ case: c }, deps());

    expect(result.profile).toEqual({ quarantineProfile, replaced: true });
    expect(result.revokedRoles).toEqual([]);
    const saved = cases.changes(c.caseId, changeKeys.revoke) as RevokeChanges;
    expect(saved.previousCaseId).toBeUndefined();
    expect(saved.profile).toBeUndefined();
    expect(iamMock).toHaveReceivedCommandTimes(GetInstanceProfileCommand, 0);
    expect(cases.events.map((e) => e.detail)).toContain(
      "the instance already holds Cordon's quarantine profile, and no case records a profile of its own: no role credentials of its own were delivered to it",
    );
  });
});

/**
 * Holds every AWS call (EC2, IAM, EventBridge, the case record) until the test releases the calls in
 * flight together, one round at a time, and writes down each round. Timeline writes are not held.
 */
class Rounds {
  readonly rounds: string[][] = [];
  private held: { call: string; release: () => void }[] = [];
  /** What the case record held for Revoke when each change call arrived. */
  readonly recordAtCall: { call: string; record: RevokeChanges | undefined }[] = [];

  hold = (call: string): Promise<void> => {
    if (/PutRolePolicy|ReplaceIamInstanceProfileAssociation|ModifyInstanceMetadataOptions/.test(call)) {
      this.recordAtCall.push({
        call,
        record: structuredClone(cases.changes(c.caseId, changeKeys.revoke)) as RevokeChanges | undefined,
      });
    }
    return new Promise((release) => this.held.push({ call, release }));
  };

  /** Runs `work`, releasing one round each time the calls in flight stop growing, until it ends. */
  async drive<T>(work: Promise<T>): Promise<T> {
    let finished = false;
    const out = work.finally(() => {
      finished = true;
    });
    out.catch(() => undefined);
    while (!finished) {
      // Let every call the released round leads to reach the gate (the SDK's middleware is async).
      let seen = -1;
      for (let quiet = 0; quiet < 5 && !finished; ) {
        await new Promise((resolve) => setImmediate(resolve));
        quiet = this.held.length === seen ? quiet + 1 : 0;
        seen = this.held.length;
      }
      if (finished) break;
      if (this.held.length === 0) throw new Error('nothing in flight, and the step has not returned');
      const round = this.held.splice(0);
      this.rounds.push(round.map((h) => h.call).sort());
      for (const h of round) h.release();
    }
    return out;
  }
}

describe('revokeCredentials, in rounds', () => {
  let rounds: Rounds;
  let gatedDeps: RevokeDeps;

  beforeEach(() => {
    rounds = new Rounds();
    fake.gate = (command) => rounds.hold(`ec2:${command.replace(/Command$/, '')}`);
    iamMock.on(GetInstanceProfileCommand).callsFake(async (input: { InstanceProfileName: string }) => {
      await rounds.hold('iam:GetInstanceProfile');
      return instanceProfileAnswer(input.InstanceProfileName);
    });
    iamMock.on(PutRolePolicyCommand).callsFake(async () => {
      await rounds.hold('iam:PutRolePolicy');
      return {};
    });
    gatedDeps = {
      ...deps(),
      cases: {
        get: async (id) => {
          await rounds.hold('dynamodb:GetItem');
          return cases.get(id);
        },
        saveChanges: async (...args) => {
          await rounds.hold('dynamodb:UpdateItem');
          return cases.saveChanges(...args);
        },
      },
    };
  });

  it('revokes in 4 rounds: every read, the profile’s roles, one save, every change at once', async () => {
    const result = await rounds.drive(revokeCredentials({ case: c }, gatedDeps));

    expect(result).toMatchObject({ revokedRoles: ['app-role'], profile: { replaced: true } });
    expect(rounds.rounds).toEqual([
      ['dynamodb:GetItem', 'ec2:DescribeIamInstanceProfileAssociations', 'ec2:DescribeInstances'],
      ['iam:GetInstanceProfile'],
      ['dynamodb:UpdateItem'],
      [
        'ec2:ModifyInstanceMetadataOptions',
        'ec2:ReplaceIamInstanceProfileAssociation',
        'iam:PutRolePolicy',
        'iam:PutRolePolicy',
      ],
    ]);
    expect(rounds.rounds.length).toBeLessThanOrEqual(4);
  });

  it('issues no change before the one save of everything it changes', async () => {
    await rounds.drive(revokeCredentials({ case: c }, gatedDeps));

    const saveRound = rounds.rounds.findIndex((r) => r.includes('dynamodb:UpdateItem'));
    const changeRounds = rounds.rounds.flatMap((r, i) =>
      r.some((call) => /PutRolePolicy|Replace|ModifyInstanceMetadata/.test(call)) ? [i] : [],
    );
    expect(rounds.rounds.filter((r) => r.includes('dynamodb:UpdateItem'))).toHaveLength(1);
    expect(changeRounds.every((i) => i > saveRound)).toBe(true);
    expect(rounds.recordAtCall).toHaveLength(4);
    for (const { record } of rounds.recordAtCall) {
      expect(record).toMatchObject({
        cutoff: revokedAt,
        denies: [
          { roleName: 'app-role', policyName },
          { roleName: 'app-role', policyName: issuedBeforeName },
        ],
        profile: { originalArn: appProfileArn, roleNames: ['app-role'] },
        metadata: { originalHttpTokens: 'optional' },
      });
    }
  });

  it.each([
    ['instance', true],
    ['role', true],
    ['instance', false],
  ] as const)('takes at most 5 rounds in %s scope (IMDSv2 asked for: %s)', async (scope, imdsv2) => {
    const config = { REVOKE_SCOPE: scope, REQUIRE_IMDSV2: imdsv2 };

    await rounds.drive(
      revokeCredentials({ case: c }, { ...gatedDeps, config: { ...gatedDeps.config, ...config } }),
    );

    expect(rounds.rounds.length).toBeLessThanOrEqual(5);
  });

  it('takes over an earlier case in 4 rounds, its record read beside the roles', async () => {
    const earlierId = '20261126T080000Z-i-0123456789abcdef0-0001';
    cases.add(containCase({ caseId: earlierId }), 'contained', {
      [changeKeys.revoke]: {
        scope: 'instance',
        cutoff: '2026-11-26T08:01:00.000Z',
        denies: [],
        profile: { originalArn: appProfileArn, roleNames: ['app-role'] },
      } satisfies RevokeChanges,
    });
    fake.instance.tags[tagKeys.caseId] = earlierId;

    await rounds.drive(revokeCredentials({ case: c }, gatedDeps));

    expect(rounds.rounds[1]).toEqual(['dynamodb:GetItem', 'iam:GetInstanceProfile']);
    expect(rounds.rounds).toHaveLength(4);
  });

  it('writes nothing and reads no role when run again after it finished: 2 rounds', async () => {
    await rounds.drive(revokeCredentials({ case: c }, gatedDeps));
    rounds = new Rounds();

    await rounds.drive(revokeCredentials({ case: c }, gatedDeps));

    expect(rounds.rounds).toEqual([
      ['dynamodb:GetItem', 'ec2:DescribeIamInstanceProfileAssociations', 'ec2:DescribeInstances'],
      ['iam:PutRolePolicy', 'iam:PutRolePolicy'],
    ]);
  });
});
