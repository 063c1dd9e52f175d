import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { runLocalCase } from '../scripts/local/case.js';
import type { StepRecord } from '../scripts/local/runner.js';
import { repoRoot } from '../scripts/local/runner.js';
import type { LocalStack } from '../scripts/local/stack.js';
import { type CallRecord, installMeter, median } from './meter.js';

export const containmentStates = [
  'Intake Finding',
  'Triage Instance',
  'Protect Instance',
  'Isolate Instance',
  'Revoke Credentials',
];
export const captureFirstStates = ['Capture Memory', 'Check Memory', 'Verify Memory'];

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
  outcome: string;
  transitions: number;
  stepMs: Record<string, number[]>;
  callsByState: Record<string, number>;
}

/** The last step of containment has finished: every ENI isolated, the credentials revoked. */
export const containedBy = (step: StepRecord) =>
  step.name === 'Revoke Credentials' && step.status === 'succeeded';

/**
 * One case on the emulated account with `latencyMs` added to every AWS call: the time from the start
 * of the execution to the end of Revoke Credentials (the last ENI isolated, the credentials revoked),
 * and the AWS calls made on that path. Unless `full`, the execution is stopped there (the rest of the
 * case does not change the figure); a full run also gives the case's transitions and step times.
 */
export async function timeToContainment(
  stack: LocalStack,
  shape: { enis: number; volumes: number; plan: 'contain-first' | 'capture-first' },
  latencyMs: number,
  full: boolean,
): Promise<ContainmentRun> {
  const endpoint = stack.env.AWS_ENDPOINT_URL as string;
  const meter = installMeter({ latencyMs, throttleRate: 0 });
  let elapsed = 0;
  let started = 0;
  let containedAt = Number.NaN;
  const stepMs: Record<string, number[]> = {};
  try {
    const run = await runLocalCase(bundledEvent(), {
      endpoint,
      stack,
      ...(full ? {} : { stopAfter: containedBy }),
      enis: shape.enis,
      volumes: shape.volumes,
      vpcEndpoints: shape.plan === 'contain-first',
      imageBytes: 2 * 1024 * 1024,
      onStep: (step: StepRecord) => {
        const now = performance.now();
        if (step.name === 'Intake Finding' && started === 0) started = now - step.ms;
        if (containedBy(step)) containedAt = now;
        stepMs[step.name] = [...(stepMs[step.name] ?? []), step.ms];
      },
    });
    elapsed = containedAt - started;
    const executionArn = meter.calls.find((c) => c.stateName === 'Intake Finding')?.executionArn ?? '';
    const mine = meter.calls.filter((c) => c.executionArn === executionArn);
    const path = new Set([
      ...containmentStates,
      ...(shape.plan === 'capture-first' ? captureFirstStates : []),
    ]);
    const onPath = mine.filter((c) => path.has(c.stateName) && c.startedAt <= containedAt);
    const callsByState: Record<string, number> = {};
    for (const c of mine) callsByState[c.stateName] = (callsByState[c.stateName] ?? 0) + 1;
    return {
      ...shape,
      ms: elapsed,
      pathCalls: onPath.length,
      calls: mine,
      sequential: sequentialRounds(onPath),
      outcome: full ? run.report.outcome : Number.isFinite(containedAt) ? 'contained' : run.report.outcome,
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
    outcomes: [...new Set(runs.map((r) => r.outcome))].join(','),
  };
}
