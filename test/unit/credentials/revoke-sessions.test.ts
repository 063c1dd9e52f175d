import { GetRoleCommand, IAMClient, PutRolePolicyCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CredentialCase } from '../../../functions/core/credentials.js';
import { revokeSessions } from '../../../functions/credentials/revoke-sessions/revoke-sessions.js';
import { exfiltrationCase, MemoryCases, userCredentialCase } from '../../support/playbooks-fixtures.js';

const iamMock = mockClient(IAMClient);
const cutoff = new Date('2026-11-27T20:11:00.123Z');

async function run(c: CredentialCase = userCredentialCase, memberRoleName = 'CordonResponder') {
  const cases = new MemoryCases();
  await cases.openSubject([], { caseId: c.caseId, openedAt: c.openedAt });
  const result = await revokeSessions(
    { case: c },
    {
      iam: new IAMClient({}),
      recorder: cases.recorder(c.caseId, 'revoke-sessions'),
      cases,
      memberRoleName,
      now: () => cutoff,
    },
  );
  return { result, cases };
}

const expectedDocument = {
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'CordonRevokeOlderSessions',
      Effect: 'Deny',
      Action: '*',
      Resource: '*',
      Condition: { DateLessThan: { 'aws:TokenIssueTime': '2026-11-27T20:11:00Z' } },
    },
  ],
};

beforeEach(() => {
  iamMock.reset();
  iamMock.on(PutUserPolicyCommand).resolves({ $metadata: { requestId: 'req-user' } });
  iamMock.on(PutRolePolicyCommand).resolves({ $metadata: { requestId: 'req-role' } });
  iamMock.on(GetRoleCommand).resolves({
    Role: {
      RoleName: 'web-role',
      Path: '/',
      Arn: 'arn:aws:iam::123456789012:role/web-role',
      RoleId: 'AROAEXAMPLEWEBROLE01',
      CreateDate: new Date(),
    },
  });
});

describe('revokeSessions', () => {
  it("denies the user's sessions issued before now with an inline policy named after the case", async () => {
    const { result } = await run();
    expect(result).toMatchObject({ status: 'succeeded', cutoff: '2026-11-27T20:11:00.123Z' });
    expect(iamMock).toHaveReceivedCommandWith(PutUserPolicyCommand, {
      UserName: 'dev-alice',
      PolicyName: `cordon-revoke-${userCredentialCase.caseId}`,
    });
    const document = JSON.parse(
      iamMock.commandCalls(PutUserPolicyCommand)[0]?.args[0].input.PolicyDocument ?? '{}',
    );
    expect(document).toEqual(expectedDocument);
    expect(iamMock).toHaveReceivedCommandTimes(PutRolePolicyCommand, 0);
  });

  it("denies a role's sessions issued before now", async () => {
    const { result } = await run(exfiltrationCase);
    expect(result.status).toBe('succeeded');
    expect(iamMock).toHaveReceivedCommandWith(GetRoleCommand, { RoleName: 'web-role' });
    expect(iamMock).toHaveReceivedCommandWith(PutRolePolicyCommand, {
      RoleName: 'web-role',
      PolicyName: `cordon-revoke-${exfiltrationCase.caseId}`,
    });
    const document = JSON.parse(
      iamMock.commandCalls(PutRolePolicyCommand)[0]?.args[0].input.PolicyDocument ?? '{}',
    );
    expect(document).toEqual(expectedDocument);
  });

  it('saves the policy and the cutoff before writing them', async () => {
    const { cases } = await run(exfiltrationCase);
    expect(cases.changesOf(exfiltrationCase.caseId, 'revoke-sessions')).toEqual({
      roleName: 'web-role',
      inlinePolicy: `cordon-revoke-${exfiltrationCase.caseId}`,
      cutoff: '2026-11-27T20:11:00.123Z',
    });
  });

  it('never writes to a service-linked role, whose sessions IAM cannot revoke', async () => {
    iamMock.on(GetRoleCommand).resolves({
      Role: {
        RoleName: 'web-role',
        Path: '/aws-service-role/ec2.amazonaws.com/',
        Arn: 'arn',
        RoleId: 'r',
        CreateDate: new Date(),
      },
    });
    const { result } = await run(exfiltrationCase);
    expect(result).toMatchObject({
      status: 'skipped',
      reason: expect.stringMatching(/^SERVICE_LINKED_ROLE/),
    });
    expect(iamMock).toHaveReceivedCommandTimes(PutRolePolicyCommand, 0);
  });

  it('never writes to the role Cordon acts through', async () => {
    const { result } = await run(exfiltrationCase, 'web-role');
    expect(result).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^CORDON_ROLE/) });
    expect(iamMock).toHaveReceivedCommandTimes(GetRoleCommand, 0);
    expect(iamMock).toHaveReceivedCommandTimes(PutRolePolicyCommand, 0);
  });

  it('says so when the role does not exist', async () => {
    iamMock
      .on(GetRoleCommand)
      .rejects(Object.assign(new Error('no role'), { name: 'NoSuchEntityException' }));
    const { result } = await run(exfiltrationCase);
    expect(result).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^ROLE_NOT_FOUND/) });
    expect(iamMock).toHaveReceivedCommandTimes(PutRolePolicyCommand, 0);
  });

  it("cannot revoke the root user's sessions and says so", async () => {
    const { result } = await run({ ...userCredentialCase, principal: { type: 'Root' } });
    expect(result).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^ROOT/) });
    expect(iamMock).toHaveReceivedCommandTimes(PutUserPolicyCommand, 0);
  });
});
