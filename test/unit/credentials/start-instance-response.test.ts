import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../../functions/core/errors.js';
import { startInstanceResponse } from '../../../functions/credentials/start-instance-response/start-instance-response.js';
import { exfiltrationCase, MemoryCases, userCredentialCase } from '../../support/playbooks-fixtures.js';

const sfnMock = mockClient(SFNClient);
const forensics = 'arn:aws:states:us-east-1:123456789012:stateMachine:cordon-forensics-dev';

const deps = (cases = new MemoryCases(), stateMachineArn = forensics) => ({
  sfn: new SFNClient({}),
  stateMachineArn,
  recorder: cases.recorder(exfiltrationCase.caseId, 'start-instance-response'),
});

beforeEach(() => {
  sfnMock.reset();
  sfnMock.on(StartExecutionCommand).resolves({
    executionArn: `${forensics.replace(':stateMachine:', ':execution:')}:cred-${exfiltrationCase.caseId}`,
    $metadata: { requestId: 'req-start' },
  });
});

describe('startInstanceResponse', () => {
  it('starts the forensic workflow on the instance with the manual start Intake takes', async () => {
    const result = await startInstanceResponse({ case: exfiltrationCase }, deps());
    expect(result).toMatchObject({ status: 'succeeded', instanceId: 'i-0123456789abcdef0' });
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 1);
    const call = sfnMock.commandCalls(StartExecutionCommand)[0]?.args[0].input;
    expect(call).toMatchObject({ stateMachineArn: forensics, name: `cred-${exfiltrationCase.caseId}` });
    expect(JSON.parse(call?.input ?? '{}')).toEqual({
      instanceId: 'i-0123456789abcdef0',
      region: 'us-east-1',
      accountId: '123456789012',
      reason: `Instance credentials used outside the instance (UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS); credential case ${exfiltrationCase.caseId}`,
      requestedBy: 'cordon:credential-playbook',
    });
  });

  it('records the start on the credential case', async () => {
    const cases = new MemoryCases();
    await startInstanceResponse({ case: exfiltrationCase }, deps(cases));
    expect(cases.events).toEqual([
      expect.objectContaining({
        action: 'states:StartExecution (forensics)',
        status: 'ok',
        requestId: 'req-start',
      }),
    ]);
  });

  it('starts nothing for a finding that names no exfiltrating instance', async () => {
    const result = await startInstanceResponse({ case: userCredentialCase }, deps());
    expect(result.status).toBe('skipped');
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
  });

  it('fails by name when it does not know the forensic workflow', async () => {
    await expect(
      startInstanceResponse({ case: exfiltrationCase }, deps(new MemoryCases(), '')),
    ).rejects.toBeInstanceOf(ConfigurationError);
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
  });
});
