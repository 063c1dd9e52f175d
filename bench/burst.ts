import { setTimeout as sleep } from 'node:timers/promises';
import { runWorkflowLocally } from '../scripts/local/case.js';
import { mapEvent } from '../scripts/local/map-event.js';
import { type SeededAccount, seedAccount } from '../scripts/local/seed.js';
import { deployLocalStack, localAccountId, localRegion } from '../scripts/local/stack.js';
import { bundledEvent, containedBy } from './containment.js';
import { installMeter, median, percentile } from './meter.js';

export interface BurstResult {
  cases: number;
  contained: number;
  outcomes: Record<string, number>;
  /** Why each case that did not complete ended as it did (full runs only). */
  problems: string[];
  /** Whether every case ran to its end, or was stopped once contained. */
  full: boolean;
  p50Ms: number;
  p95Ms: number;
  wallMs: number;
  callsPerCase: number;
  retriesPerCase: number;
  throttleRate: number;
  latencyMs: number;
}

/**
 * A worm hits `cases` instances at once: every case starts together on the emulated account, with
 * `latencyMs` on every AWS call and `throttleRate` of the calls answered with ThrottlingException.
 * Unless `full`, each execution is stopped once the instance is contained: the evidence half of 100
 * cases (the instances' own capture scripts included) would run here on the benchmark's cores, where
 * on AWS it runs on the instances and in Lambda.
 */
export async function burst(
  endpoint: string,
  cases: number,
  latencyMs: number,
  throttleRate: number,
  full = false,
): Promise<BurstResult> {
  const stack = await deployLocalStack(endpoint);
  const seeded: SeededAccount[] = [];
  for (let i = 0; i < cases; i += 10) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(10, cases - i) }, () =>
        seedAccount(endpoint, { enis: 1, volumes: 1, vpcEndpoints: true }),
      ),
    );
    seeded.push(...batch);
  }
  const meter = installMeter({ latencyMs, throttleRate, seed: 7 });
  const started = performance.now();
  try {
    const runs = await Promise.all(
      seeded.map(async (s, i) => {
        // A burst still arrives over a few seconds, not in one microsecond: spread the starts over 2 s.
        await sleep((i * 2000) / cases);
        const t0 = performance.now();
        let contained = Number.NaN;
        const done = containedBy();
        const agentLog: string[] = [];
        const { event } = mapEvent(bundledEvent(), {
          instanceId: s.instanceId,
          accountId: localAccountId,
          region: localRegion,
        });
        const execution = await runWorkflowLocally(stack, 'forensics', event, {
          imageBytes: 256 * 1024,
          log: (line: string) => agentLog.push(line),
          ...(full ? {} : { stopAfter: done }),
          // The ASL's own backoff between retries, as on AWS: a burst is where it matters.
          realRetryIntervals: true,
          onStep: (step) => {
            if (Number.isNaN(contained) && done(step)) {
              contained = performance.now() - t0;
            }
          },
        });
        const notify = (
          execution.output as { notify?: { outcome?: string; steps?: { name: string; reason?: string }[] } }
        )?.notify;
        const outcome =
          execution.status === 'ABORTED' ? 'contained, stopped there' : (notify?.outcome ?? 'failed');
        const problem =
          outcome === 'completed' || execution.status === 'ABORTED'
            ? undefined
            : [
                ...(notify?.steps ?? []).filter((s) => s.reason).map((s) => `${s.name}: ${s.reason}`),
                ...execution.steps.filter((s) => s.status === 'failed').map((s) => `${s.name}: ${s.reason}`),
                ...(execution.error ? [`${execution.error.name}: ${execution.error.message}`] : []),
                ...agentLog.slice(-3),
              ].join(' / ');
        return { contained, outcome, executionArn: execution.executionArn, problem };
      }),
    );
    const wallMs = performance.now() - started;
    const times = runs.map((r) => r.contained).filter((t) => Number.isFinite(t));
    const outcomes: Record<string, number> = {};
    for (const r of runs) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
    const perCase = runs.map((r) => meter.calls.filter((c) => c.executionArn === r.executionArn));
    return {
      cases,
      contained: times.length,
      outcomes,
      problems: runs.flatMap((r) => (r.problem ? [r.problem] : [])),
      full,
      p50Ms: Math.round(percentile(times, 50)),
      p95Ms: Math.round(percentile(times, 95)),
      wallMs: Math.round(wallMs),
      callsPerCase: median(perCase.map((c) => c.length)),
      retriesPerCase: median(perCase.map((c) => c.filter((x) => x.throttled).length)),
      throttleRate,
      latencyMs,
    };
  } finally {
    meter.uninstall();
  }
}
