import { AttachUserPolicyCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CredentialCase } from '../../../functions/core/credentials.js';
import { quarantinePrincipal } from '../../../functions/credentials/quarantine-principal/quarantine-principal.js';
import { exfiltrationCase, MemoryCases, userCredentialCase } from '../../support/playbooks-fixtures.js';

const iamMock = mockClient(IAMClient);

async function run(c: CredentialCase = userCredentialCase) {
  const cases = new MemoryCases();
  await cases.openSubject([], { caseId: c.caseId, openedAt: c.openedAt });
  const result = await quarantinePrincipal(
    { case: c },
    { iam: new IAMClient({}), recorder: cases.recorder(c.caseId, 'quarantine-principal'), cases },
  );
  return { result, cases };
}

beforeEach(() => {
  iamMock.reset();
  iamMock.on(PutUserPolicyCommand).resolves({ $metadata: { requestId: 'req-put' } });
  iamMock.on(AttachUserPolicyCommand).resolves({ $metadata: { requestId: 'req-attach' } });
});

describe('quarantinePrincipal', () => {
  it('puts an inline deny-all named after the case on the user', async () => {
    const { result } = await run();
    expect(result).toMatchObject({
      status: 'succeeded',
      policyName: `cordon-quarantine-${userCredentialCase.caseId}`,
    });
    expect(iamMock).toHaveReceivedCommandTimes(PutUserPolicyCommand, 1);
    expect(iamMock).toHaveReceivedCommandWith(PutUserPolicyCommand, {
      UserName: 'dev-alice',
      PolicyName: `cordon-quarantine-${userCredentialCase.caseId}`,
    });
    const document = JSON.parse(
      iamMock.commandCalls(PutUserPolicyCommand)[0]?.args[0].input.PolicyDocument ?? '{}',
    );
    expect(document).toEqual({
      Version: '2012-10-17',
      Statement: [{ Sid: 'CordonQuarantine', Effect: 'Deny', Action: '*', Resource: '*' }],
    });
  });

  it('saves the policy it adds before adding it', async () => {
    const { cases } = await run();
    expect(cases.changesOf(userCredentialCase.caseId, 'quarantine-principal')).toEqual({
      userName: 'dev-alice',
      inlinePolicy: `cordon-quarantine-${userCredentialCase.caseId}`,
    });
  });

  it("attaches AWSDenyAll when the user's inline policy space is full", async () => {
    iamMock
      .on(PutUserPolicyCommand)
      .rejects(Object.assign(new Error('too big'), { name: 'LimitExceededException' }));
    const { result } = await run();
    expect(result).toMatchObject({ status: 'succeeded', policyArn: 'arn:aws:iam::aws:policy/AWSDenyAll' });
    expect(iamMock).toHaveReceivedCommandWith(AttachUserPolicyCommand, {
      UserName: 'dev-alice',
      PolicyArn: 'arn:aws:iam::aws:policy/AWSDenyAll',
    });
  });

  it('says so when the user does not exist', async () => {
    iamMock
      .on(PutUserPolicyCommand)
      .rejects(Object.assign(new Error('no user'), { name: 'NoSuchEntityException' }));
    const { result } = await run();
    expect(result).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^USER_NOT_FOUND/) });
    expect(iamMock).toHaveReceivedCommandTimes(AttachUserPolicyCommand, 0);
  });

  it('fails by the error AWS gave when IAM refuses', async () => {
    iamMock.on(PutUserPolicyCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }));
    await expect(run()).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('does not quarantine a role, which every workload using it would feel', async () => {
    const { result } = await run(exfiltrationCase);
    expect(result).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^ROLE/) });
    expect(iamMock).toHaveReceivedCommandTimes(PutUserPolicyCommand, 0);
  });

  it('cannot restrict the root user and says so', async () => {
    const { result } = await run({ ...userCredentialCase, principal: { type: 'Root' } });
    expect(result).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^ROOT/) });
    expect(iamMock).toHaveReceivedCommandTimes(PutUserPolicyCommand, 0);
  });
});
