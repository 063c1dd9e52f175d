import { BatchUpdateFindingsCommand, SecurityHubClient } from '@aws-sdk/client-securityhub';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { credentialOutcome, findingLock, principalLock } from '../../../functions/core/credentials.js';
import { NotificationError } from '../../../functions/core/errors.js';
import {
  composeCredentialMessage,
  credentialNotify,
} from '../../../functions/credentials/credential-notify/credential-notify.js';
import { exfiltrationCase, MemoryCases, userCredentialCase } from '../../support/playbooks-fixtures.js';

const snsMock = mockClient(SNSClient);
const c = userCredentialCase;
const ok = { status: 'succeeded', detail: 'ok' };
const archive = {
  outcome: 'completed',
  manifest: { key: `cases/${c.caseId}/manifest.json`, versionId: 'v1' },
};
const contained = { case: c, deactivate: ok, quarantine: ok, revoke: ok, activity: ok, archive };

async function setup() {
  const cases = new MemoryCases();
  await cases.openSubject([principalLock(c), findingLock(c)], { caseId: c.caseId, openedAt: c.openedAt });
  const deps = {
    sns: new SNSClient({}),
    topicArn: 'arn:aws:sns:us-east-1:123456789012:cordon-alerts',
    cases,
    recorder: cases.recorder(c.caseId, 'credential-notify'),
  };
  return { cases, deps };
}

beforeEach(() => {
  snsMock.reset();
  snsMock.on(PublishCommand).resolves({ MessageId: 'm-1' });
});

describe('credentialNotify', () => {
  it('publishes one message for contained credentials and frees the principal, keeping the finding handled', async () => {
    const { cases, deps } = await setup();
    const result = await credentialNotify(contained, deps);
    expect(result).toMatchObject({ outcome: 'completed', messageId: 'm-1' });
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(snsMock).toHaveReceivedCommandWith(PublishCommand, {
      Subject: '[Cordon] CREDENTIALS CONTAINED: dev-alice',
      MessageAttributes: {
        outcome: { DataType: 'String', StringValue: 'completed' },
        playbook: { DataType: 'String', StringValue: 'credentials' },
        caseId: { DataType: 'String', StringValue: c.caseId },
      },
    });
    expect(cases.items.get(c.caseId)).toMatchObject({ status: 'contained', outcome: 'completed' });
    expect(cases.locks.has(principalLock(c))).toBe(false);
    expect(cases.locks.has(findingLock(c))).toBe(true);
  });

  it('frees the finding too when containment failed, so that its next update tries again', async () => {
    const { cases, deps } = await setup();
    const result = await credentialNotify(
      { ...contained, revoke: { Error: 'AwsAccessDeniedError', Cause: 'no' } },
      deps,
    );
    expect(result.outcome).toBe('failed');
    expect(cases.locks.size).toBe(0);
    const body = snsMock.commandCalls(PublishCommand)[0]?.args[0].input.Message ?? '';
    expect(body).toContain('failed    revoke sessions: AwsAccessDeniedError: no');
    expect(body).toContain('deactivate its keys and deny its sessions by hand now');
  });

  it('reports a trigger intake could not take in, without a case', async () => {
    const { deps } = await setup();
    const result = await credentialNotify({ error: { Error: 'InvalidStepInputError', Cause: 'bad' } }, deps);
    expect(result.outcome).toBe('failed');
    expect(snsMock).toHaveReceivedCommandWith(PublishCommand, {
      Subject: '[Cordon] FAILED: a credential finding could not be taken in',
    });
  });

  it('fails with NotificationError, leaving the case as it was, when SNS refuses', async () => {
    snsMock
      .on(PublishCommand)
      .rejects(Object.assign(new Error('KMS key disabled'), { name: 'KMSDisabledException' }));
    const { cases, deps } = await setup();
    await expect(credentialNotify(contained, deps)).rejects.toBeInstanceOf(NotificationError);
    expect(cases.items.get(c.caseId)).toMatchObject({ status: 'open' });
    expect(cases.locks.size).toBe(2);
  });
});

describe('composeCredentialMessage', () => {
  it('says who, which key, from where and what each step did', () => {
    const { body } = composeCredentialMessage(contained);
    expect(body).toContain(
      'Principal: IAMUser dev-alice (access key AKIAEXAMPLEALICE0001) in account 123456789012',
    );
    expect(body).toContain('Used from: 198.51.100.23');
    expect(body).toContain('succeeded deactivate access key');
    expect(body).toContain(`Manifest: cases/${c.caseId}/manifest.json (version v1)`);
  });

  it('names the instance handed to the forensic workflow', () => {
    const { body } = composeCredentialMessage({
      ...contained,
      case: exfiltrationCase,
      deactivate: { status: 'skipped', reason: 'NOT_A_USER_KEY' },
      quarantine: { status: 'skipped', reason: 'ROLE' },
      instance: ok,
    });
    expect(body).toContain('Instance: i-0123456789abcdef0');
    expect(body).toContain('succeeded start instance response');
  });

  it('lowers a contained case to partial when sealing failed', () => {
    const { outcome } = composeCredentialMessage({
      ...contained,
      archive: undefined,
      error: { Error: 'SigningError', Cause: 'x' },
    });
    expect(outcome).toBe('partial');
  });
});

describe('credentialOutcome', () => {
  it('is failed when nothing could be changed, as for the root user', () => {
    const skipped = { status: 'skipped', reason: 'ROOT' };
    expect(
      credentialOutcome({ case: c, deactivate: skipped, quarantine: skipped, revoke: skipped, activity: ok })
        .outcome,
    ).toBe('failed');
  });

  it('is partial when the principal is contained but its activity could not be collected', () => {
    const result = credentialOutcome({
      ...contained,
      activity: { Error: 'AwsServiceError', Cause: 'LookupEvents' },
    });
    expect(result.outcome).toBe('partial');
  });

  it('is partial when the exfiltrating instance could not be handed over', () => {
    const result = credentialOutcome({
      ...contained,
      case: exfiltrationCase,
      instance: { Error: 'AwsAccessDeniedError' },
    });
    expect(result.outcome).toBe('partial');
  });
});

describe('the finding in Security Hub', () => {
  const securityHub = mockClient(SecurityHubClient);
  const inSecurityHub = {
    ...c,
    securityHub: {
      id: `arn:aws:guardduty:us-east-1:123456789012:detector/123456789012/finding/${c.finding.id}`,
      productArn: 'arn:aws:securityhub:us-east-1::product/aws/guardduty',
    },
  };
  beforeEach(() => {
    securityHub.reset();
    securityHub.on(BatchUpdateFindingsCommand).resolves({ UnprocessedFindings: [] });
  });
  const withSecurityHub = async (resolveOnComplete: boolean) => {
    const { cases, deps } = await setup();
    return {
      cases,
      deps: {
        ...deps,
        securityHub: {
          client: (region: string) => new SecurityHubClient({ region }),
          updatedBy: 'cordon-test',
          resolveOnComplete,
        },
      },
    };
  };

  it('is resolved when the credentials are contained and the stage resolves', async () => {
    const { deps } = await withSecurityHub(true);

    await credentialNotify({ ...contained, case: inSecurityHub }, deps);

    expect(securityHub).toHaveReceivedCommandWith(BatchUpdateFindingsCommand, {
      FindingIdentifiers: [
        { Id: inSecurityHub.securityHub.id, ProductArn: inSecurityHub.securityHub.productArn },
      ],
      Workflow: { Status: 'RESOLVED' },
      UserDefinedFields: { cordonCaseId: c.caseId },
    });
  });

  it('stays NOTIFIED, with the outcome in the note, when containment failed', async () => {
    const { deps } = await withSecurityHub(true);

    await credentialNotify(
      { ...contained, case: inSecurityHub, revoke: { Error: 'AwsAccessDeniedError', Cause: 'no' } },
      deps,
    );

    expect(securityHub).toHaveReceivedCommandWith(BatchUpdateFindingsCommand, {
      Workflow: { Status: 'NOTIFIED' },
      Note: { Text: expect.stringContaining(`Cordon case ${c.caseId} failed: `), UpdatedBy: 'cordon-test' },
    });
  });

  it('ends the case as it would have when Security Hub is not enabled, and records it', async () => {
    securityHub.on(BatchUpdateFindingsCommand).rejects(
      Object.assign(new Error('not subscribed'), {
        name: 'InvalidAccessException',
        $metadata: { httpStatusCode: 401 },
      }),
    );
    const { cases, deps } = await withSecurityHub(false);

    const result = await credentialNotify({ ...contained, case: inSecurityHub }, deps);

    expect(result.outcome).toBe('completed');
    expect(cases.items.get(c.caseId)).toMatchObject({ status: 'contained' });
    expect(cases.events).toContainEqual(
      expect.objectContaining({ action: 'securityhub:BatchUpdateFindings', status: 'skipped' }),
    );
  });

  it('makes no call for a case whose finding is not in Security Hub', async () => {
    const { deps } = await withSecurityHub(true);

    await credentialNotify(contained, deps);

    expect(securityHub.calls()).toHaveLength(0);
  });
});
