import { randomUUID } from 'node:crypto';
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { resetConfig } from '../../functions/core/config.js';
import type { Artifact } from '../../functions/core/evidence.js';
import { resetStepContext } from '../../functions/core/handler.js';
import { runEmulatedSsmAgent } from './emulated-ssm-agent.js';
import { type Mapping, mapEvent } from './map-event.js';
import { type Moto, startMoto } from './moto.js';
import { realHandlers, runStateMachine, type StepRecord } from './runner.js';
import { type SeededAccount, seedAccount } from './seed.js';
import { deployLocalStack, type LocalStack, localAccountId, localRegion } from './stack.js';
import { localTaskTokens } from './task-tokens.js';

export interface CaseReport {
  caseId: string | null;
  outcome: 'completed' | 'partial' | 'failed' | 'rejected' | 'duplicate';
  reason: string;
  instanceId: string | null;
  accountId: string | null;
  region: string | null;
  bucket: string;
  evidence: Pick<Artifact, 'key' | 'versionId' | 'bytes' | 'sha256'>[];
  steps: StepRecord[];
  revokedRoles: string[];
  endpoint: string;
}

export interface LocalCase {
  report: CaseReport;
  mapping: Mapping;
  seeded: SeededAccount;
  stack: LocalStack;
  notification?: { subject?: string; body: string };
  /** The case events this case put on the default bus, in the order they were read back. */
  events: CaseEventRead[];
  output: unknown;
  /** States entered by the execution, as Step Functions bills them. */
  transitions: number;
}

export interface LocalCaseOptions {
  /** An emulator already running; its state is left in place afterwards for inspection. */
  endpoint?: string;
  stage?: string;
  vpcEndpoints?: boolean;
  /** The seeded instance's size (default 2 ENIs, 2 volumes). */
  enis?: number;
  volumes?: number;
  /** Bytes of the synthetic memory image the emulated SSM agent captures. */
  imageBytes?: number;
  onStep?: (step: StepRecord) => void;
  /** Stops the execution after the Task for which this returns true. */
  stopAfter?: (step: StepRecord) => boolean;
  /** A stack already deployed on `endpoint` (deploying takes seconds; benchmarks reuse one). */
  stack?: LocalStack;
  /** Plays the instance's part of memory capture instead of the emulated SSM agent (scripts/local/quick-host.ts). */
  host?: (capture: unknown) => Promise<void>;
  log?: (line: string) => void;
  /** The folder `osls package` wrote: run the packaged bundles instead of the sources. */
  bundles?: string;
}

interface FinalState {
  intake?: { decision: string; reason: string; caseId?: string };
  case?: { caseId: string; instanceId: string; accountId: string; region: string };
  triage?: { plan?: { reason?: string } };
  containment?: { revoke?: { result?: { revokedRoles?: string[] } } };
  archive?: {
    outcome: CaseReport['outcome'];
    manifest: Artifact;
    signature: Artifact;
    artifacts: Artifact[];
  };
  notify?: { outcome: CaseReport['outcome']; steps?: { name: string; reason?: string }[] };
  error?: { Error?: string; Cause?: string };
}

export interface CaseEventRead {
  source: string;
  detailType: string;
  time: string;
  detail: Record<string, unknown>;
}

/**
 * The events of one case from the stack's events queue. Another case's events are left on the queue
 * (visible again at once); this case's are taken off it.
 */
export async function readCaseEvents(
  stack: LocalStack,
  endpoint: string,
  caseId: string,
): Promise<CaseEventRead[]> {
  const sqs = new SQSClient({
    endpoint,
    region: localRegion,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const found: CaseEventRead[] = [];
  const seen = new Set<string>();
  if (!stack.eventsQueueUrl) return found;
  for (let round = 0; round < 20; round++) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: stack.eventsQueueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 0,
      }),
    );
    const fresh = (out.Messages ?? []).filter((m) => m.MessageId && !seen.has(m.MessageId));
    if (fresh.length === 0) break;
    for (const m of fresh) {
      seen.add(m.MessageId as string);
      const event = JSON.parse(m.Body ?? '{}') as {
        source?: string;
        'detail-type'?: string;
        time?: string;
        detail?: Record<string, unknown>;
      };
      if (event.detail?.caseId !== caseId) continue;
      found.push({
        source: String(event.source),
        detailType: String(event['detail-type']),
        time: String(event.time),
        detail: event.detail,
      });
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: stack.eventsQueueUrl, ReceiptHandle: m.ReceiptHandle }),
      );
    }
  }
  return found;
}

async function readNotification(stack: LocalStack, endpoint: string) {
  const sqs = new SQSClient({
    endpoint,
    region: localRegion,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const out = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: stack.alertQueueUrl, MaxNumberOfMessages: 1 }),
  );
  const raw = out.Messages?.[0]?.Body;
  if (!raw) return undefined;
  const envelope = JSON.parse(raw) as { Subject?: string; Message?: string };
  return { ...(envelope.Subject ? { subject: envelope.Subject } : {}), body: envelope.Message ?? raw };
}

/**
 * Runs one of the stack's state machines in this process against the emulated account, exactly as
 * deployed: the real ASL, every Task bound to the real handler with the stack's environment. After
 * "Capture Memory" starts a capture, the emulated SSM agent plays the instance's part, because moto's
 * SSM runs nothing.
 */
export async function runWorkflowLocally(
  stack: LocalStack,
  machine: 'forensics' | 'release',
  input: unknown,
  options: {
    log?: (line: string) => void;
    onStep?: (step: StepRecord) => void;
    imageBytes?: number;
    realRetryIntervals?: boolean;
    /** The execution's ARN (default: a fresh one under the stack's state machine). */
    executionArn?: string;
    /**
     * Plays the instance's part once "Capture Memory" has started a capture (its output is given);
     * by default the emulated SSM agent, which runs the real capture script.
     */
    host?: (capture: unknown) => Promise<void>;
    stopAfter?: (step: StepRecord) => boolean;
    /** The folder `osls package` wrote: bind each Task to its packaged bundle instead of the sources. */
    bundles?: string;
    /** Stage parameters the ASL names (`approvalTimeoutSeconds`...), beside serverless.yml's defaults. */
    params?: Record<string, string>;
  } = {},
): Promise<Awaited<ReturnType<typeof runStateMachine>>> {
  const endpoint = stack.env.AWS_ENDPOINT_URL as string;
  Object.assign(process.env, stack.env);
  resetConfig();
  resetStepContext();
  const handlers = await realHandlers(options.bundles);
  return runStateMachine(`statemachines/${machine}.asl.yml`, input, {
    handlers,
    taskTokens: localTaskTokens(endpoint, localRegion, String(stack.env.CASES_TABLE)),
    ...(options.params ? { params: options.params } : {}),
    executionArn:
      options.executionArn ??
      `${(machine === 'forensics' ? stack.forensicsStateMachineArn : stack.releaseStateMachineArn).replace(':stateMachine:', ':execution:')}:${randomUUID()}`,
    ...(options.onStep ? { onStep: options.onStep } : {}),
    ...(options.realRetryIntervals ? { realRetryIntervals: true } : {}),
    ...(options.stopAfter ? { stopAfter: options.stopAfter } : {}),
    afterTask: async (state, output, taskInput) => {
      if (state !== 'Capture Memory' || (output as { status?: string }).status !== 'running') return;
      if (options.host) return options.host(output);
      const instanceId = (taskInput as { case: { instanceId: string } }).case.instanceId;
      const commandId = (output as { commandId?: string }).commandId;
      await runEmulatedSsmAgent({
        endpoint,
        region: localRegion,
        instanceId,
        ...(commandId ? { commandId } : {}),
        ...(options.imageBytes ? { imageBytes: options.imageBytes } : {}),
        ...(options.log ? { log: options.log } : {}),
      });
    },
  });
}

/**
 * One case, end to end, on the emulated account: start moto (unless given one), create the stack's
 * resources, seed a compromised instance, map the finding onto it, and run the real forensic ASL with
 * every Task bound to the real handler. The emulated SSM agent plays the instance's part of memory
 * capture, because moto's SSM runs nothing.
 */
export async function runLocalCase(event: unknown, options: LocalCaseOptions = {}): Promise<LocalCase> {
  const log = options.log ?? (() => undefined);
  const moto: Moto | undefined = options.endpoint ? undefined : await startMoto();
  const endpoint = options.endpoint ?? (moto as Moto).endpoint;
  try {
    log(`emulated AWS account at ${endpoint}${moto ? ' (started for this run)' : ''}`);
    const stack = options.stack ?? (await deployLocalStack(endpoint, options.stage ?? 'dev'));
    const seeded = await seedAccount(endpoint, {
      vpcEndpoints: options.vpcEndpoints ?? true,
      ...(options.enis ? { enis: options.enis } : {}),
      ...(options.volumes ? { volumes: options.volumes } : {}),
    });
    log(
      `seeded instance ${seeded.instanceId} with ${seeded.networkInterfaceIds.length} ENIs and ${seeded.volumeIds.length} volumes`,
    );
    const { event: mapped, mapping } = mapEvent(event, {
      instanceId: seeded.instanceId,
      accountId: localAccountId,
      region: localRegion,
    });
    const execution = await runWorkflowLocally(stack, 'forensics', mapped, {
      log,
      ...(options.onStep ? { onStep: options.onStep } : {}),
      ...(options.stopAfter ? { stopAfter: options.stopAfter } : {}),
      ...(options.host ? { host: options.host } : {}),
      ...(options.imageBytes ? { imageBytes: options.imageBytes } : {}),
      ...(options.bundles ? { bundles: options.bundles } : {}),
    });
    // A failed case ends in a Fail state, which has no output: its input still holds the case.
    const state = (execution.output ?? execution.failedState ?? {}) as FinalState;
    const notification = await readNotification(stack, endpoint);
    const report = toReport(state, execution, stack, endpoint);
    const events = report.caseId ? await readCaseEvents(stack, endpoint, report.caseId) : [];
    return {
      report,
      mapping,
      seeded,
      stack,
      ...(notification ? { notification } : {}),
      events,
      output: execution.output,
      transitions: execution.transitions,
    };
  } finally {
    await moto?.stop();
  }
}

function toReport(
  state: FinalState,
  execution: Awaited<ReturnType<typeof runStateMachine>>,
  stack: LocalStack,
  endpoint: string,
): CaseReport {
  const c = state.case;
  const decision = state.intake?.decision;
  let outcome: CaseReport['outcome'];
  let reason: string;
  if (decision === 'rejected' || decision === 'duplicate') {
    outcome = decision;
    reason = state.intake?.reason ?? '';
  } else if (state.notify) {
    outcome = state.notify.outcome;
    const problems = (state.notify.steps ?? []).filter((s) => s.reason).map((s) => `${s.name}: ${s.reason}`);
    reason = problems.length ? problems.join('; ') : (state.triage?.plan?.reason ?? 'contained');
  } else {
    outcome = 'failed';
    reason = execution.error
      ? `${execution.error.name}: ${execution.error.message}`
      : 'the workflow ended early';
  }
  const archive = state.archive;
  const evidence = archive ? [...archive.artifacts, archive.manifest, archive.signature] : [];
  return {
    caseId: c?.caseId ?? state.intake?.caseId ?? null,
    outcome,
    reason,
    instanceId: c?.instanceId ?? null,
    accountId: c?.accountId ?? null,
    region: c?.region ?? null,
    bucket: stack.bucket,
    evidence: evidence.map(({ key, versionId, bytes, sha256 }) => ({ key, versionId, bytes, sha256 })),
    steps: execution.steps,
    revokedRoles: state.containment?.revoke?.result?.revokedRoles ?? [],
    endpoint,
  };
}
