import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import type { Outcome, ReleaseClients, ReleaseContext } from '../../core/actions/action.js';
import { revokeAction } from '../../core/actions/revoke.js';
import { caseIdSchema, tagKeys } from '../../core/case.js';
import type { CaseRecord, CaseStore, Recorder } from '../../core/cases.js';
import { changeKeys, changesOf, isTransient, releaseProgressSchema } from '../../core/containment.js';
import { containmentActions } from '../../core/containment-actions.js';
import {
  AwsServiceError,
  AwsThrottlingError,
  CaseNotFoundError,
  ContainmentError,
  describeError,
  normaliseError,
  ReleaseRefusedError,
} from '../../core/errors.js';
import { emitCaseEvent } from '../../core/events.js';
import { readInstance } from '../../core/instance.js';
import { oneLine } from '../../core/text.js';

export const releaseInputSchema = z.object({ caseId: caseIdSchema });
export type ReleaseInput = z.infer<typeof releaseInputSchema>;

export interface ReleaseDeps {
  cases: Pick<CaseStore, 'get' | 'saveChanges' | 'setStatus' | 'unlock'>;
  /** Clients for the case's account and region, known only once the case is read. */
  clientsFor: (target: { accountId: string; region: string; caseId: string }) => ReleaseClients;
  recorder: Recorder;
  sns: SNSClient;
  topicArn: string;
  quarantineProfileName: string;
  now: () => Date;
  /** Where the "released" event goes; one that cannot be sent is recorded and the release stands. */
  events: EventBridgeClient;
}

export interface ReleaseResult {
  caseId: string;
  instanceId: string;
  restored: string[];
  /** Already as they were before containment: nothing to do. */
  unchanged: string[];
  /** Left as they are, with the reason; none of them blocks the release. */
  notes: string[];
  messageId?: string;
}

/**
 * Undoes Cordon's containment of one instance after a false positive, from what the case recorded:
 * the instance profile, IMDS setting and role denies; the network ACL entries, interface groups,
 * connection-tracking timeouts and Elastic IPs; the protection attributes, Auto Scaling membership and
 * load balancer registrations. Evidence is never touched. Every restore compares with the live state
 * first, so a release that stopped half-way can run again; a case already released is refused.
 */
export async function releaseInstance(input: ReleaseInput, deps: ReleaseDeps): Promise<ReleaseResult> {
  const { caseId } = input;
  const record = await deps.cases.get(caseId);
  if (!record) throw new CaseNotFoundError(`no case ${caseId}`);
  if (record.status !== 'contained' && record.status !== 'partial') {
    throw new ReleaseRefusedError(
      `case ${caseId} is ${record.status}: only a contained or partially contained case is released`,
    );
  }
  const clients = deps.clientsFor({ accountId: record.accountId, region: record.region, caseId });
  const { recorder } = deps;
  const revoke = revokeAction.read(record);
  const live = await readInstance(clients.ec2, record.instanceId);
  const instance = live?.State?.Name === 'terminated' ? undefined : live;
  const holder = instance?.Tags?.find((t) => t.Key === tagKeys.caseId)?.Value;
  if (holder && holder !== caseId) {
    throw new ReleaseRefusedError(
      `${record.instanceId} is held by a later case, ${holder}: release that case instead`,
    );
  }

  const result: ReleaseResult = {
    caseId,
    instanceId: record.instanceId,
    restored: [],
    unchanged: [],
    notes: [],
  };
  const failures: { label: string; error: unknown }[] = [];
  // What an earlier, interrupted run of this release already put back still counts as restored.
  const progress = changesOf(record, changeKeys.release, releaseProgressSchema);
  const before = progress?.restored ?? [];
  const cutoff = progress?.cutoff ?? deps.now().toISOString();
  if (revoke?.denies.some((d) => !d.until) && !progress?.cutoff) {
    await deps.cases.saveChanges(caseId, changeKeys.release, { restored: before, notRestored: [], cutoff });
  }
  const attempt = async (label: string, work: () => Promise<Outcome>) => {
    try {
      const outcome = await work();
      if (outcome === 'restored' || (outcome === 'unchanged' && before.includes(label)))
        result.restored.push(label);
      else if (outcome === 'unchanged') result.unchanged.push(label);
      else result.notes.push(`${label}: ${outcome.note}`);
    } catch (error) {
      failures.push({ label, error });
    }
  };
  const gone = { note: `${record.instanceId} no longer exists` } as const;

  const context: ReleaseContext = {
    clients,
    recorder,
    now: deps.now,
    record,
    instance,
    cutoff,
    quarantineProfileName: deps.quarantineProfileName,
    attempt,
    gone,
  };
  for (const action of containmentActions) {
    const changes = action.read(record);
    if (changes) await action.restore(changes, context);
  }
  if (instance) {
    await attempt(`${record.instanceId} tagged ${tagKeys.status}=released`, async () => {
      await recorder.run('ec2:CreateTags', record.instanceId, () =>
        clients.ec2.send(
          new CreateTagsCommand({
            Resources: [record.instanceId],
            Tags: [{ Key: tagKeys.status, Value: 'released' }],
          }),
        ),
      );
      return 'restored';
    });
  }

  const notRestored = failures.map((f) => {
    const e = describeError(f.error);
    return `${f.label}: ${e.name}: ${e.message}`;
  });
  await deps.cases.saveChanges(caseId, changeKeys.release, {
    restored: result.restored,
    notRestored: [...notRestored, ...result.notes],
    cutoff,
  });
  if (failures.length > 0) {
    const message = oneLine(
      `Release of ${record.instanceId} (case ${caseId}) is incomplete. Restored: ${
        result.restored.join('; ') || 'nothing'
      }. Not restored: ${notRestored.join('; ')}.`,
      1800,
    );
    // Only when every failure is one that may pass on its own does the workflow retry the release.
    if (failures.every((f) => isTransient(f.error))) {
      throw failures.some((f) => normaliseError(f.error) instanceof AwsThrottlingError)
        ? new AwsThrottlingError(message, { cause: failures[0]?.error })
        : new AwsServiceError(message, { cause: failures[0]?.error });
    }
    await publish(deps, record, `Cordon: release of ${record.instanceId} incomplete`, message).catch(() => {
      // The error below still reaches the state machine; the alert is a courtesy.
    });
    throw new ContainmentError(message, { cause: failures[0]?.error });
  }

  const body = [
    `Cordon released ${record.instanceId} (case ${caseId}, account ${record.accountId}, ${record.region}).`,
    'Evidence (snapshots, memory image, manifest) was not touched.',
    '',
    'Restored:',
    ...(result.restored.length ? result.restored.map((r) => `- ${r}`) : ['- nothing needed restoring']),
    ...(result.notes.length ? ['', 'Left as they are:', ...result.notes.map((n) => `- ${n}`)] : []),
  ].join('\n');
  // Published before the case is marked released: if publishing fails, the retried release finds
  // everything already restored and publishes again, instead of being refused as already released.
  const messageId = await publish(deps, record, `Cordon: ${record.instanceId} released`, body);
  await deps.cases.setStatus(caseId, 'released');
  await deps.cases.unlock(record);
  await recorder.note('released', 'ok', {
    target: record.instanceId,
    detail: `restored ${result.restored.length}, already as before ${result.unchanged.length}, notes ${result.notes.length}`,
  });
  await emitCaseEvent(record, 'released', { events: deps.events, recorder, now: deps.now });
  return { ...result, ...(messageId ? { messageId } : {}) };
}

async function publish(
  deps: ReleaseDeps,
  record: CaseRecord,
  subject: string,
  message: string,
): Promise<string | undefined> {
  const out = await deps.recorder.run('sns:Publish', deps.topicArn, () =>
    deps.sns.send(
      new PublishCommand({
        TopicArn: deps.topicArn,
        Subject: subject.slice(0, 100),
        Message: message,
        MessageAttributes: {
          caseId: { DataType: 'String', StringValue: record.caseId },
          event: { DataType: 'String', StringValue: 'released' },
        },
      }),
    ),
  );
  return out.MessageId;
}
