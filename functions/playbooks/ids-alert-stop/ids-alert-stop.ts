import {
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  type EC2Client,
  ModifyInstanceAttributeCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { DescribeExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { caseSchema } from '../../core/case.js';
import type { CaseStore, Recorder } from '../../core/cases.js';
import { ConfigurationError, InvalidStepInputError } from '../../core/errors.js';
import { oneLine } from '../../core/text.js';
import { stopPrefix } from '../ids-alert/ids-alert.js';

export const stopStep = 'ids-alert-stop';

/** EventBridge's "Step Functions Execution Status Change" event for the forensic workflow. */
export const stopInputSchema = z.looseObject({
  source: z.literal('aws.states'),
  'detail-type': z.literal('Step Functions Execution Status Change'),
  detail: z.looseObject({
    executionArn: z.string().startsWith('arn:').max(2048),
    stateMachineArn: z.string().startsWith('arn:').max(2048),
    name: z.string().max(80),
    status: z.string().max(32),
  }),
});
export type StopInput = z.infer<typeof stopInputSchema>;

export interface StopDeps {
  sfn: SFNClient;
  ec2For: (target: { accountId: string; region: string; caseId: string }) => EC2Client;
  sns: SNSClient;
  topicArn: string;
  /** The forensic workflow (FORENSICS_STATE_MACHINE_ARN): events of any other state machine are ignored. */
  stateMachineArn: string;
  cases: Pick<CaseStore, 'saveChanges'>;
  recorder: (caseId: string, step: string) => Recorder;
}

export interface StopResult {
  decision: 'ignored' | 'withheld' | 'stopped' | 'already-stopped';
  reason: string;
  caseId?: string;
  instanceId?: string;
}

/** The parts of the forensic workflow's final state that say whether the evidence is safe. */
const finalStateSchema = z.looseObject({
  case: caseSchema.optional(),
  archive: z.looseObject({ outcome: z.string() }).optional(),
});

/**
 * "Shut down affected systems", but only once nothing is lost by it: after an IDS-started execution
 * asked for it (its name starts with `ids-stop-`) has ended with every piece of evidence captured
 * (outcome `completed`: disks snapshotted, memory captured and verified, all sealed). Anything less
 * and the instance is left running, contained, with a message saying why. The instance's stop
 * protection (set by Protect Instance) is lifted first; termination protection stays.
 */
export async function stopAfterEvidence(event: StopInput, deps: StopDeps): Promise<StopResult> {
  const d = event.detail;
  if (!deps.stateMachineArn)
    throw new ConfigurationError('FORENSICS_STATE_MACHINE_ARN is not set on this function');
  if (
    !d.name.startsWith(stopPrefix) ||
    d.status !== 'SUCCEEDED' ||
    d.stateMachineArn !== deps.stateMachineArn
  ) {
    return { decision: 'ignored', reason: 'IGNORED: not a successful IDS execution that asked for a stop' };
  }
  const execution = await deps.sfn.send(new DescribeExecutionCommand({ executionArn: d.executionArn }));
  let output: unknown;
  try {
    output = JSON.parse(execution.output ?? 'null');
  } catch {
    throw new InvalidStepInputError('The execution output is not JSON');
  }
  const state = finalStateSchema.safeParse(output);
  const c = state.success ? state.data.case : undefined;
  if (!c) {
    return {
      decision: 'withheld',
      reason: 'NO_CASE: the execution opened no case (rejected, or joined an open case)',
    };
  }
  const recorder = deps.recorder(c.caseId, stopStep);
  const outcome = state.success ? state.data.archive?.outcome : undefined;
  if (outcome !== 'completed') {
    const reason = `EVIDENCE_INCOMPLETE: the case ended ${outcome ?? 'without an archive'}; the instance is left running, contained, so that nothing more is lost`;
    await recorder.note('stop withheld', 'skipped', { target: c.instanceId, detail: reason });
    await publish(
      deps,
      c.caseId,
      `[Cordon] NOT STOPPED: ${c.instanceId}`,
      `Case ${c.caseId}: ${c.instanceId} was not stopped.\n${reason}\n`,
    );
    return { decision: 'withheld', reason, caseId: c.caseId, instanceId: c.instanceId };
  }

  const ec2 = deps.ec2For({ accountId: c.accountId, region: c.region, caseId: c.caseId });
  const instance = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [c.instanceId] })))
    .Reservations?.[0]?.Instances?.[0];
  const stateName = instance?.State?.Name;
  if (
    stateName === 'stopped' ||
    stateName === 'stopping' ||
    stateName === 'terminated' ||
    stateName === 'shutting-down'
  ) {
    await recorder.note('stop not needed', 'info', {
      target: c.instanceId,
      detail: `the instance is ${stateName}`,
    });
    return {
      decision: 'already-stopped',
      reason: `ALREADY_STOPPED: the instance is ${stateName}`,
      caseId: c.caseId,
      instanceId: c.instanceId,
    };
  }
  const protectedFromStop = (
    await ec2.send(
      new DescribeInstanceAttributeCommand({ InstanceId: c.instanceId, Attribute: 'disableApiStop' }),
    )
  ).DisableApiStop?.Value;
  await deps.cases.saveChanges(c.caseId, stopStep, {
    stopProtectionLifted: protectedFromStop === true,
    requestedBy: d.name,
  });
  if (protectedFromStop) {
    await recorder.run('ec2:ModifyInstanceAttribute (DisableApiStop=false)', c.instanceId, () =>
      ec2.send(
        new ModifyInstanceAttributeCommand({ InstanceId: c.instanceId, DisableApiStop: { Value: false } }),
      ),
    );
  }
  await recorder.run('ec2:StopInstances', c.instanceId, () =>
    ec2.send(new StopInstancesCommand({ InstanceIds: [c.instanceId] })),
  );
  const reason = 'STOPPED: every piece of evidence was captured and sealed before the instance was stopped';
  await publish(
    deps,
    c.caseId,
    `[Cordon] STOPPED: ${c.instanceId}`,
    `Case ${c.caseId}: ${c.instanceId} in ${c.accountId} ${c.region} was stopped after its evidence was sealed, as the IDS alert asked.\nExecution: ${oneLine(d.executionArn, 300)}\n`,
  );
  return { decision: 'stopped', reason, caseId: c.caseId, instanceId: c.instanceId };
}

async function publish(deps: StopDeps, caseId: string, subject: string, body: string): Promise<void> {
  await deps.recorder(caseId, stopStep).run('sns:Publish', deps.topicArn, () =>
    deps.sns.send(
      new PublishCommand({
        TopicArn: deps.topicArn,
        Subject: subject.slice(0, 100),
        Message: body,
        MessageAttributes: {
          playbook: { DataType: 'String', StringValue: 'ids-alert' },
          caseId: { DataType: 'String', StringValue: caseId },
        },
      }),
    ),
  );
}
