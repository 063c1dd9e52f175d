import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ApprovalAnswer } from '../../functions/core/approval.js';
import type { CaseResponse } from '../../functions/core/case.js';
import { resetConfig } from '../../functions/core/config.js';
import type { Artifact } from '../../functions/core/evidence.js';
import { resetStepContext } from '../../functions/core/handler.js';
import { defaultPolicyText } from '../../functions/core/policy.js';
import { decide } from '../cli/approval.js';
import { runEmulatedSsmAgent } from './emulated-ssm-agent.js';
import { type Mapping, mapEvent } from './map-event.js';
import { type Moto, startMoto } from './moto.js';
import { realHandlers, runStateMachine, type StepRecord, type TaskTokens } from './runner.js';
import { type SeededAccount, seedAccount } from './seed.js';
import { deployLocalStack, type LocalStack, localAccountId, localRegion } from './stack.js';
import { localTaskTokens } from './task-tokens.js';

export interface CaseReport {
  caseId: string | null;
  /** `awaiting-approval`: the run stopped once its evidence was gathered and containment waited for a person. */
  outcome: 'completed' | 'partial' | 'failed' | 'rejected' | 'duplicate' | 'awaiting-approval';
  reason: string;
  /** What the response policy decided at Intake, and the rule that decided it (none for a refused trigger). */
  response: CaseResponse | null;
  /** The approval's decision when the case's response asked for one, or evidence-only said no. */
  approval: { decision: string; goesOn: string; by?: string; at?: string; reason?: string } | null;
  /** Whether the workflow ran containment (isolation and revocation). */
  contained: boolean;
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
  /** The answer `options.approval` gave, or its refusal. */
  approval?: LocalApproval;
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
  /** RESPONSE_POLICY for this run's Intake (default: the stack's, serverless.yml's `responsePolicy`). */
  responsePolicy?: string;
  /** Tags on the seeded instance besides its Name. */
  instanceTags?: Record<string, string>;
  /**
   * For a case that waits for approval: answer it once the wait begins, through the path `cordon
   * approve`/`cordon reject` take (scripts/cli/approval.ts), as the emulated account's caller. Without
   * it the run stops once the evidence is gathered, its outcome `awaiting-approval`.
   */
  approval?: { decision: 'approved' | 'rejected'; reason?: string };
}

/** The answer taken for a case waiting for approval, or why it was refused. */
export type LocalApproval = { answer: ApprovalAnswer } | { refused: { name: string; message: string } };

interface FinalState {
  intake?: { decision: string; reason: string; caseId?: string };
  case?: { caseId: string; instanceId: string; accountId: string; region: string; response?: CaseResponse };
  approval?: { decision: string; goesOn: string; by?: string; at?: string; reason?: string };
  triage?: { plan?: { reason?: string } };
  containment?: { isolate?: unknown; revoke?: { result?: { revokedRoles?: string[] } } };
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
  // Every message the run published, taken off the queue so that the next run reads only its own; the
  // last is the case's outcome (a case that waited for approval published its request first).
  let last: string | undefined;
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.alertQueueUrl, MaxNumberOfMessages: 10 }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) break;
    for (const m of messages) {
      last = m.Body ?? last;
      if (m.ReceiptHandle) {
        await sqs.send(
          new DeleteMessageCommand({ QueueUrl: stack.alertQueueUrl, ReceiptHandle: m.ReceiptHandle }),
        );
      }
    }
  }
  if (!last) return undefined;
  const envelope = JSON.parse(last) as { Subject?: string; Message?: string };
  return { ...(envelope.Subject ? { subject: envelope.Subject } : {}), body: envelope.Message ?? last };
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
     * Plays the instance's part once "Capture Memory" (or "Capture Evidence Memory") has started a capture (its output is given);
     * by default the emulated SSM agent, which runs the real capture script.
     */
    host?: (capture: unknown) => Promise<void>;
    stopAfter?: (step: StepRecord) => boolean;
    /** The folder `osls package` wrote: bind each Task to its packaged bundle instead of the sources. */
    bundles?: string;
    /** Stage parameters the ASL names (`approvalTimeoutSeconds`...), beside serverless.yml's defaults. */
    params?: Record<string, string>;
    /** Called when a `.waitForTaskToken` Task starts waiting for its token's answer. */
    onTaskTokenWait?: (token: string) => void;
    onStateEntered?: (stateName: string, input: unknown) => void;
    /** Stops the execution when aborted (the result is ABORTED). */
    signal?: AbortSignal;
  } = {},
): Promise<Awaited<ReturnType<typeof runStateMachine>>> {
  const endpoint = stack.env.AWS_ENDPOINT_URL as string;
  Object.assign(process.env, stack.env);
  resetConfig();
  resetStepContext();
  const handlers = await realHandlers(options.bundles);
  const store = localTaskTokens(endpoint, localRegion, String(stack.env.CASES_TABLE));
  const taskTokens: TaskTokens = {
    answer: (token, result) => store.answer(token, result),
    wait(token, signal) {
      options.onTaskTokenWait?.(token);
      return store.wait(token, signal);
    },
  };
  return runStateMachine(`statemachines/${machine}.asl.yml`, input, {
    handlers,
    taskTokens,
    ...(options.params ? { params: options.params } : {}),
    ...(options.onStateEntered ? { onStateEntered: options.onStateEntered } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    executionArn:
      options.executionArn ??
      `${(machine === 'forensics' ? stack.forensicsStateMachineArn : stack.releaseStateMachineArn).replace(':stateMachine:', ':execution:')}:${randomUUID()}`,
    ...(options.onStep ? { onStep: options.onStep } : {}),
    ...(options.realRetryIntervals ? { realRetryIntervals: true } : {}),
    ...(options.stopAfter ? { stopAfter: options.stopAfter } : {}),
    afterTask: async (state, output, taskInput) => {
      const captures = state === 'Capture Memory' || state === 'Capture Evidence Memory';
      if (!captures || (output as { status?: string }).status !== 'running') return;
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
      ...(options.instanceTags ? { tags: options.instanceTags } : {}),
    });
    log(
      `seeded instance ${seeded.instanceId} with ${seeded.networkInterfaceIds.length} ENIs and ${seeded.volumeIds.length} volumes`,
    );
    const { event: mapped, mapping } = mapEvent(event, {
      instanceId: seeded.instanceId,
      accountId: localAccountId,
      region: localRegion,
    });
    // Every run sets the policy, so that one run's never stays in the environment for the next.
    const responsePolicy = options.responsePolicy ?? stack.env.RESPONSE_POLICY ?? defaultPolicyText;
    const running = { ...stack, env: { ...stack.env, RESPONSE_POLICY: responsePolicy } };
    const waiting = waitForApproval(stack, endpoint, options.approval, log);
    const execution = await runWorkflowLocally(running, 'forensics', mapped, {
      log,
      onTaskTokenWait: waiting.onTaskTokenWait,
      onStateEntered: waiting.onStateEntered,
      signal: waiting.signal,
      ...(options.onStep ? { onStep: options.onStep } : {}),
      ...(options.stopAfter ? { stopAfter: options.stopAfter } : {}),
      ...(options.host ? { host: options.host } : {}),
      ...(options.imageBytes ? { imageBytes: options.imageBytes } : {}),
      ...(options.bundles ? { bundles: options.bundles } : {}),
    });
    // A failed case ends in a Fail state, which has no output: its input still holds the case.
    const state = (execution.output ?? execution.failedState ?? waiting.evidence() ?? {}) as FinalState;
    const approval = await waiting.answered();
    const notification = await readNotification(stack, endpoint);
    const awaiting = waiting.awaiting() && execution.status === 'ABORTED';
    const report = toReport(state, execution, stack, endpoint, awaiting);
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
      ...(approval ? { approval } : {}),
    };
  } finally {
    await moto?.stop();
  }
}

/**
 * What a run does about the approval its case may wait for. Once the Await Approval task waits: with
 * `decision`, answer as `cordon approve`/`cordon reject` do (scripts/cli/approval.ts); without, stop
 * the run as soon as the evidence branch has also ended, since nobody will answer in this process.
 */
function waitForApproval(
  stack: LocalStack,
  endpoint: string,
  decision: LocalCaseOptions['approval'],
  log: (line: string) => void,
) {
  const stop = new AbortController();
  let caseId: string | undefined;
  let token: string | undefined;
  let evidence: unknown;
  let answering: Promise<LocalApproval> | undefined;
  const maybeStop = () => {
    if (!decision && token && evidence !== undefined) stop.abort(new Error('awaiting approval'));
  };
  const answer = async (id: string): Promise<LocalApproval> => {
    const base = {
      endpoint,
      region: localRegion,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    };
    const identity = await new STSClient(base).send(new GetCallerIdentityCommand({}));
    const by = identity.Arn ?? 'unknown';
    log(`${decision?.decision === 'approved' ? 'approving' : 'rejecting'} case ${id} as ${by}`);
    try {
      const answer = await decide(
        {
          caseId: id,
          decision: decision?.decision ?? 'approved',
          by,
          ...(decision?.reason ? { reason: decision.reason } : {}),
        },
        {
          ddb: DynamoDBDocumentClient.from(new DynamoDBClient(base)),
          table: stack.table,
          transport: { local: localTaskTokens(endpoint, localRegion, stack.table) },
        },
      );
      return { answer };
    } catch (error) {
      // Refused: nobody else will answer, so the run stops where it waits.
      stop.abort(error);
      const e = error as Error;
      return { refused: { name: e.name, message: e.message } };
    }
  };
  return {
    signal: stop.signal,
    onStateEntered(name: string, input: unknown) {
      if (name === 'Approval Window') caseId = (input as FinalState).case?.caseId;
      if (name === 'Evidence Gathered' || name === 'Evidence Triage Failed') {
        evidence = input;
        maybeStop();
      }
    },
    onTaskTokenWait(waitingToken: string) {
      token = waitingToken;
      if (decision && caseId && !answering) answering = answer(caseId);
      maybeStop();
    },
    /** The evidence branch's state, for a run stopped while it waited. */
    evidence: () => (stop.signal.aborted ? evidence : undefined),
    answered: async () => answering,
    awaiting: () => !decision && stop.signal.aborted,
  };
}

function toReport(
  state: FinalState,
  execution: Awaited<ReturnType<typeof runStateMachine>>,
  stack: LocalStack,
  endpoint: string,
  awaiting = false,
): CaseReport {
  const c = state.case;
  const decision = state.intake?.decision;
  const contained = state.containment !== undefined;
  let outcome: CaseReport['outcome'];
  let reason: string;
  if (decision === 'rejected' || decision === 'duplicate') {
    outcome = decision;
    reason = state.intake?.reason ?? '';
  } else if (awaiting) {
    outcome = 'awaiting-approval';
    reason = `the evidence is gathered; containment waits for a person (rule ${c?.response?.rule ?? 'unknown'}), and nothing of the instance's network or credentials has changed`;
  } else if (state.notify) {
    outcome = state.notify.outcome;
    const problems = (state.notify.steps ?? []).filter((s) => s.reason).map((s) => `${s.name}: ${s.reason}`);
    const plan = state.triage?.plan?.reason ?? 'contained';
    reason = problems.length
      ? problems.join('; ')
      : contained
        ? plan
        : `evidence only (rule ${c?.response?.rule ?? 'unknown'}): the instance was NOT contained`;
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
    response: c?.response ?? null,
    approval: state.approval ?? null,
    contained,
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
