import { EC2Client } from '@aws-sdk/client-ec2';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { clientsFactory } from '../../../functions/core/clients.js';
import { AssumeRoleError } from '../../../functions/core/errors.js';
import {
  functionKeyIn,
  memberCapabilities,
  memberCapabilityOf,
} from '../../../functions/core/member-roles.js';

const sts = mockClient(STSClient);
afterEach(() => {
  sts.reset();
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
});

const settings = {
  homeAccountId: '111111111111',
  homeRegion: 'us-east-1',
  memberRoleName: 'CordonResponder',
};
const member = { accountId: '222222222222', region: 'eu-west-1', caseId: 'case-1' };

async function credentialsOf(client: EC2Client) {
  const provider = client.config.credentials as () => Promise<unknown>;
  return provider();
}

function assumeSucceeds() {
  sts.on(AssumeRoleCommand).resolves({
    Credentials: {
      AccessKeyId: 'ASIAEXAMPLE',
      SecretAccessKey: 'secret',
      SessionToken: 'token',
      Expiration: new Date(Date.now() + 3_600_000),
    },
  });
}

describe('member-account clients', () => {
  it('assume the role of the calling function’s capability, named after the case', async () => {
    assumeSucceeds();
    process.env.AWS_LAMBDA_FUNCTION_NAME = 'cordon-prod-isolate-instance';
    const clientsFor = clientsFactory(settings, new STSClient({ region: 'us-east-1' }));

    await credentialsOf(clientsFor(member)(EC2Client));

    expect(sts).toHaveReceivedCommandWith(AssumeRoleCommand, {
      RoleArn: 'arn:aws:iam::222222222222:role/CordonResponder-Contain',
      RoleSessionName: 'cordon-case-1',
    });
  });

  it('assume the role of the function a caller outside Lambda names', async () => {
    assumeSucceeds();
    const clientsFor = clientsFactory(
      { ...settings, functionKey: 'revoke-credentials' },
      new STSClient({ region: 'us-east-1' }),
    );

    await credentialsOf(clientsFor(member)(EC2Client));

    expect(sts).toHaveReceivedCommandWith(AssumeRoleCommand, {
      RoleArn: 'arn:aws:iam::222222222222:role/CordonResponder-Revoke',
    });
  });

  it('refuse, by name and without calling STS, a function that has no member role', () => {
    process.env.AWS_LAMBDA_FUNCTION_NAME = 'cordon-prod-notify-outcome';
    const clientsFor = clientsFactory(settings, new STSClient({ region: 'us-east-1' }));

    expect(() => clientsFor(member)).toThrow(AssumeRoleError);
    expect(sts).toHaveReceivedCommandTimes(AssumeRoleCommand, 0);
  });

  it('use the function’s own credentials in the security account', () => {
    const clientsFor = clientsFactory(settings, new STSClient({ region: 'us-east-1' }));

    clientsFor({ ...member, accountId: settings.homeAccountId })(EC2Client);

    expect(sts).toHaveReceivedCommandTimes(AssumeRoleCommand, 0);
  });
});

describe('the member-role map', () => {
  it('gives each function at most one capability', () => {
    const all = Object.values(memberCapabilities).flat();
    expect(new Set(all).size).toBe(all.length);
  });

  it.each([
    ['cordon-dev-unblock-ip', 'unblock-ip'],
    ['cordon-dev-block-ip', 'block-ip'],
    ['cordon-prod-ids-alert-stop', 'ids-alert-stop'],
    ['cordon-prod-ids-alert', 'ids-alert'],
    ['cordon-prod-notify-outcome', undefined],
    [undefined, undefined],
  ])('reads %s as the function %s', (name, key) => {
    expect(functionKeyIn(name)).toBe(key);
  });

  it('never lets a function that reads attacker-shaped text act with a role that writes IAM', () => {
    for (const fn of ['intake-finding', 'credential-intake', 'block-ip', 'policy-violation', 'ids-alert']) {
      expect(['Revoke', 'Release', 'Credentials']).not.toContain(memberCapabilityOf(fn));
    }
  });
});
