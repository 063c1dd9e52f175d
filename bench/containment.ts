import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { runLocalCase } from '../scripts/local/case.js';
import type { StepRecord } from '../scripts/local/runner.js';
import { repoRoot } from '../scripts/local/runner.js';
import type { LocalStack } from '../scripts/local/stack.js';
import { type CallRecord, installMeter, median } from './meter.js';

/** The states on the path to containment: Intake, then the Contain state's three branches at once. */
export const containmentStates = [
  'Intake Finding',
  'Protect Instance',
  'Isolate Instance',
  'Revoke Credentials',
];
/** A capture-first case first decides its plan in Triage and captures memory. */
export const captureFirstStates = ['Triage Instance', 'Capture Memory', 'Check Memory', 'Verify Memory'];
/** The calls that contain: the last interface into the isolation group, and the credentials' revocation. */
const isolating = (c: CallRecord) =>
  c.stateName === 'Isolate Instance' && c.operation === 'ModifyNetworkInterfaceAttribute';
const revoking = (c: CallRecord) =>
  c.stateName === 'Revoke Credentials' &&
  ['PutRolePolicy', 'ReplaceIamInstanceProfileAssociation', 'ModifyInstanceMetadataOptions'].includes(
    c.operation,
  );

/**
 * The fewest sequential rounds any implementation needs for a contain-first case, and how they are
 * counted: the bench's shapes are each a fresh VPC, so Cordon's groups do not exist yet.
 */
export const minimumRounds = {
  rounds: 6,
  countedAs:
    'open the case and describe the instance with its interfaces (1); find the isolation groups of the VPC (1), ' +
    'create them and set their rules the first time in a VPC (2); every interface into the conversion group (1), ' +
    'then into the isolation group after the connection-tracking wait (1); the deny on the role and the profile swap ' +
    'in parallel with those (0)',
};

export function bundledEvent(): unknown {
  return JSON.parse(readFileSync(resolve(repoRoot, 'scripts/events/guardduty-backdoor-cc-dns.json'), 'utf8'));
}

/**
 * Sequential AWS calls: the depth of the call chain, counting calls that overlap in time (a step's
 * parallel reads) as one round.
 */
export function sequentialRounds(calls: readonly CallRecord[]): number {
  const sorted = [...calls].sort((a, b) => a.startedAt - b.startedAt);
  let rounds = 0;
  let roundEnd = Number.NEGATIVE_INFINITY;
  for (const c of sorted) {
    if (c.startedAt >= roundEnd) {
      rounds += 1;
      roundEnd = c.endedAt;
    } else roundEnd = Math.max(roundEnd, c.endedAt);
  }
  return rounds;
}

/** Timeline writes go behind the calls (functions/core/cases.ts `Recorder`): no step waits on them. */
const isTimelineWrite = (c: CallRecord) => c.operation === 'BatchWriteItem';
/**
 * Calls the emulator does not implement, which it answers with an error page that the SDK retries:
 * their attempts are left out of the count (on AWS the call answers once, beside the others).
 */
export const emulatorLacks = new Set(['DescribeInstanceInformation']);

/**
 * The sequential rounds to containment: Intake's (its calls, and the timeline write it waits for
 * before it returns), then the longest of the Contain state's branches up to `containedAt` (each one
 * Lambda's own calls). Rounds are counted within one Lambda at a time: calls of parallel branches, and
 * the timeline writes that overlap a step's next calls, would otherwise chain into one long "round".
 */
export function pathRounds(calls: readonly CallRecord[], containedAt: number): number {
  const counted = (c: CallRecord) => !isTimelineWrite(c) && !emulatorLacks.has(c.operation);
  const intake = calls.filter((c) => c.stateName === 'Intake Finding');
  const intakeCalls = intake.filter(counted);
  const lastCall = Math.max(...intakeCalls.map((c) => c.endedAt));
  const trailingWrite = intake.some((c) => isTimelineWrite(c) && c.endedAt > lastCall);
  const branches = ['Protect Instance', 'Isolate Instance', 'Revoke Credentials'].map((state) =>
    sequentialRounds(calls.filter((c) => c.stateName === state && counted(c) && c.startedAt < containedAt)),
  );
  return sequentialRounds(intakeCalls) + (trailingWrite ? 1 : 0) + Math.max(...branches);
}

export interface ContainmentRun {
  plan: 'contain-first' | 'capture-first';
  enis: number;
  volumes: number;
  ms: number;
  /** AWS calls on the path to containment. */
  pathCalls: number;
  /** Every AWS call the case made. */
  calls: CallRecord[];
  sequential: number;
  /** Lambda invocations one after another up to and including the one that moves the first interface. */
  lambdaInvocations: number;
  outcome: string;
  transitions: number;
  stepMs: Record<string, number[]>;
  callsByState: Record<string, number>;
}

/** A stop condition that holds once Isolate and Revoke have both succeeded (containment held). */
export function containedBy(): (step: StepRecord) => boolean {
  const finished = new Set<string>();
  return (step) => {
    const containing = step.name === 'Isolate Instance' || step.name === 'Revoke Credentials';
    if (containing && step.status === 'succeeded') finished.add(step.name);
    return finished.size === 2;
  };
}

/**
 * One case on the emulated account with `latencyMs` added to every AWS call: the time from the start
 * of the execution to the moment the last interface holds the isolation group and the credentials are
 * revoked (the end of the last of those calls), the sequential rounds of AWS calls on that path, and how
 * many Lambda invocations ran one after another before the first interface moved. Unless `full`, the
 * execution is stopped once Isolate and Revoke are done; a full run also gives the case's transitions
 * and step times.
 */
export async function timeToContainment(
  stack: LocalStack,
  shape: { enis: number; volumes: number; plan: 'contain-first' | 'capture-first' },
  latencyMs: number,
  full: boolean,
): Promise<ContainmentRun> {
  const endpoint = stack.env.AWS_ENDPOINT_URL as string;
  const meter = installMeter({ latencyMs, throttleRate: 0 });
  let started = 0;
  const stepMs: Record<string, number[]> = {};
  const steps: { name: string; startedAt: number; endedAt: number }[] = [];
  try {
    const run = await runLocalCase(bundledEvent(), {
      endpoint,
      stack,
      ...(full ? {} : { stopAfter: containedBy() }),
      enis: shape.enis,
      volumes: shape.volumes,
      vpcEndpoints: shape.plan === 'contain-first',
      imageBytes: 2 * 1024 * 1024,
      onStep: (step: StepRecord) => {
        const now = performance.now();
        if (step.name === 'Intake Finding' && started === 0) started = now - step.ms;
        steps.push({ name: step.name, startedAt: now - step.ms, endedAt: now });
        stepMs[step.name] = [...(stepMs[step.name] ?? []), step.ms];
      },
    });
    const executionArn = meter.calls.find((c) => c.stateName === 'Intake Finding')?.executionArn ?? '';
    const mine = meter.calls.filter((c) => c.executionArn === executionArn);
    const lastEnd = (calls: CallRecord[]) => Math.max(...calls.map((c) => c.endedAt));
    const containedAt = Math.max(lastEnd(mine.filter(isolating)), lastEnd(mine.filter(revoking)));
    const firstMove = Math.min(...mine.filter(isolating).map((c) => c.startedAt));
    const path = new Set([
      ...containmentStates,
      ...(shape.plan === 'capture-first' ? captureFirstStates : []),
    ]);
    const onPath = mine.filter((c) => path.has(c.stateName) && c.startedAt < containedAt);
    const callsByState: Record<string, number> = {};
    for (const c of mine) callsByState[c.stateName] = (callsByState[c.stateName] ?? 0) + 1;
    const contained = Number.isFinite(containedAt);
    return {
      ...shape,
      ms: containedAt - started,
      pathCalls: onPath.length,
      calls: mine,
      sequential: shape.plan === 'contain-first' ? pathRounds(mine, containedAt) : sequentialRounds(onPath),
      // Every invocation that ended before the first interface moved, and the one that moved it.
      lambdaInvocations: steps.filter((s) => s.endedAt <= firstMove).length + 1,
      outcome: full ? run.report.outcome : contained ? 'contained' : run.report.outcome,
      transitions: run.transitions,
      stepMs,
      callsByState,
    };
  } finally {
    meter.uninstall();
  }
}

export function summariseRuns(runs: ContainmentRun[]) {
  return {
    medianMs: Math.round(median(runs.map((r) => r.ms))),
    calls: median(runs.map((r) => r.pathCalls)),
    sequential: median(runs.map((r) => r.sequential)),
    lambdaInvocations: median(runs.map((r) => r.lambdaInvocations)),
    outcomes: [...new Set(runs.map((r) => r.outcome))].join(','),
  };
}
