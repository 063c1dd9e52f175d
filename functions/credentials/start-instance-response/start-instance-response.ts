import { type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { Recorder } from '../../core/cases.js';
import type { CredentialState, StepOutcome } from '../../core/credentials.js';
import { ConfigurationError } from '../../core/errors.js';

export interface StartInstanceResponseDeps {
  sfn: SFNClient;
  /** The forensic workflow (FORENSICS_STATE_MACHINE_ARN). */
  stateMachineArn: string;
  recorder: Recorder;
}

/** Who the forensic workflow records as having asked (Intake's `requestedBy`). */
export const credentialRequester = 'cordon:credential-playbook';

/**
 * Exfiltrated instance credentials mean the instance itself is compromised: hands it to the forensic
 * workflow with a manual start (`{instanceId, region, accountId, reason, requestedBy}`, the input
 * Intake takes). The execution is named after the credential case, so a retried step starts nothing
 * twice (StartExecution is idempotent for the same name and input).
 */
export async function startInstanceResponse(
  state: CredentialState,
  deps: StartInstanceResponseDeps,
): Promise<StepOutcome> {
  const c = state.case;
  const instanceId = c.finding.instanceId;
  if (!c.exfiltration || !instanceId) {
    return {
      status: 'skipped',
      reason: 'NO_INSTANCE: the finding names no instance whose credentials were taken',
    };
  }
  if (!deps.stateMachineArn) {
    throw new ConfigurationError('FORENSICS_STATE_MACHINE_ARN is not set on this function');
  }
  const input = {
    instanceId,
    region: c.region,
    accountId: c.accountId,
    reason:
      `Instance credentials used outside the instance (${c.finding.type}); credential case ${c.caseId}`.slice(
        0,
        512,
      ),
    requestedBy: credentialRequester,
  };
  const out = await deps.recorder.run('states:StartExecution (forensics)', instanceId, () =>
    deps.sfn.send(
      new StartExecutionCommand({
        stateMachineArn: deps.stateMachineArn,
        name: `cred-${c.caseId}`,
        input: JSON.stringify(input),
      }),
    ),
  );
  return {
    status: 'succeeded',
    detail: `the forensic workflow was started on ${instanceId}`,
    instanceId,
    executionArn: out.executionArn ?? '',
  };
}
