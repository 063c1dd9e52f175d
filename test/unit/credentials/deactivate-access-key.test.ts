import { IAMClient, ListAccessKeysCommand, UpdateAccessKeyCommand } from '@aws-sdk/client-iam';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CredentialCase } from '../../../functions/core/credentials.js';
import { deactivateAccessKey } from '../../../functions/credentials/deactivate-access-key/deactivate-access-key.js';
import { exfiltrationCase, MemoryCases, userCredentialCase } from '../../support/playbooks-fixtures.js';

const iamMock = mockClient(IAMClient);

async function run(c: CredentialCase = userCredentialCase) {
  const cases = new MemoryCases();
  await cases.openSubject([], { caseId: c.caseId, openedAt: c.openedAt });
  const result = await deactivateAccessKey(
    { case: c },
    { iam: new IAMClient({}), recorder: cases.recorder(c.caseId, 'deactivate-access-key'), cases },
  );
  return { result, cases };
}

beforeEach(() => {
  iamMock.reset();
  iamMock.on(ListAccessKeysCommand).resolves({
    AccessKeyMetadata: [
      { UserName: 'dev-alice', AccessKeyId: 'AKIAEXAMPLEALICE0001', Status: 'Active' },
      { UserName: 'dev-alice', AccessKeyId: 'AKIAEXAMPLEALICE0002', Status: 'Active' },
    ],
  });
  iamMock.on(UpdateAccessKeyCommand).resolves({ $metadata: { requestId: 'req-update' } });
});

describe('deactivateAccessKey', () => {
  it("sets exactly the finding's key to Inactive, naming its user", async () => {
    const { result } = await run();
    expect(result).toMatchObject({
      status: 'succeeded',
      accessKeyId: 'AKIAEXAMPLEALICE0001',
      previousStatus: 'Active',
    });
    expect(iamMock).toHaveReceivedCommandTimes(UpdateAccessKeyCommand, 1);
    expect(iamMock).toHaveReceivedCommandWith(UpdateAccessKeyCommand, {
      UserName: 'dev-alice',
      AccessKeyId: 'AKIAEXAMPLEALICE0001',
      Status: 'Inactive',
    });
  });

  it('saves what the key was before changing it, and records the change with its request id', async () => {
    const { cases } = await run();
    expect(cases.changesOf(userCredentialCase.caseId, 'deactivate-access-key')).toEqual({
      userName: 'dev-alice',
      accessKeyId: 'AKIAEXAMPLEALICE0001',
      previousStatus: 'Active',
    });
    expect(cases.events.find((e) => e.action === 'iam:UpdateAccessKey (Inactive)')).toMatchObject({
      status: 'ok',
      requestId: 'req-update',
      target: 'dev-alice/AKIAEXAMPLEALICE0001',
    });
  });

  it('changes nothing for a key that is already inactive', async () => {
    iamMock.on(ListAccessKeysCommand).resolves({
      AccessKeyMetadata: [{ UserName: 'dev-alice', AccessKeyId: 'AKIAEXAMPLEALICE0001', Status: 'Inactive' }],
    });
    const { result } = await run();
    expect(result.status).toBe('succeeded');
    expect(iamMock).toHaveReceivedCommandTimes(UpdateAccessKeyCommand, 0);
  });

  it("touches nothing when the key is not the user's", async () => {
    iamMock
      .on(ListAccessKeysCommand)
      .resolves({ AccessKeyMetadata: [{ AccessKeyId: 'AKIAEXAMPLEOTHER0001', Status: 'Active' }] });
    const { result } = await run();
    expect(result).toEqual({
      status: 'skipped',
      reason: 'KEY_NOT_FOUND: dev-alice has no access key AKIAEXAMPLEALICE0001',
    });
    expect(iamMock).toHaveReceivedCommandTimes(UpdateAccessKeyCommand, 0);
  });

  it('says so when the user does not exist', async () => {
    iamMock
      .on(ListAccessKeysCommand)
      .rejects(Object.assign(new Error('no user'), { name: 'NoSuchEntityException' }));
    const { result } = await run();
    expect(result).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^USER_NOT_FOUND/) });
    expect(iamMock).toHaveReceivedCommandTimes(UpdateAccessKeyCommand, 0);
  });

  it('leaves session keys to Revoke Sessions', async () => {
    const { result } = await run({
      ...userCredentialCase,
      principal: { ...userCredentialCase.principal, accessKeyId: 'ASIAEXAMPLEALICE0001' },
    });
    expect(result).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^TEMPORARY_KEY/) });
    expect(iamMock).toHaveReceivedCommandTimes(ListAccessKeysCommand, 0);
    expect(iamMock).toHaveReceivedCommandTimes(UpdateAccessKeyCommand, 0);
  });

  it('leaves role credentials to Revoke Sessions', async () => {
    const { result } = await run(exfiltrationCase);
    expect(result).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^NOT_A_USER_KEY/) });
    expect(iamMock).toHaveReceivedCommandTimes(UpdateAccessKeyCommand, 0);
  });

  it("says that the root user's keys need the root user", async () => {
    const { result } = await run({
      ...userCredentialCase,
      principal: { type: 'Root', accessKeyId: 'AKIAEXAMPLEROOT00001' },
    });
    expect(result).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^ROOT/) });
    expect(iamMock).toHaveReceivedCommandTimes(UpdateAccessKeyCommand, 0);
  });
});
