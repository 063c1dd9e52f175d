import { setTimeout as sleep } from 'node:timers/promises';
import { type PluggableClient, useClientPlugin } from '../functions/core/clients.js';
import { taskScope } from '../scripts/local/runner.js';

export interface CallRecord {
  executionArn: string;
  stateName: string;
  operation: string;
  attempt: number;
  throttled: boolean;
  startedAt: number;
  endedAt: number;
}

export interface MeterSettings {
  /** Added to every AWS call, as if the emulator were AWS across a network. */
  latencyMs: number;
  /** Share of calls answered with ThrottlingException before reaching the emulator (0..1). */
  throttleRate: number;
  /** Deterministic randomness, so two runs throttle the same calls. */
  seed?: number;
}

/** A small, seeded generator (mulberry32): the fault injection must be repeatable. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * A benchmark double for the AWS network: a client plugin that delays every attempt of every call,
 * answers a share of them with throttling (the SDK's own retries then act, as against AWS), and
 * records each attempt against the Task state that made it. Production code never installs it.
 */
export function installMeter(settings: MeterSettings): { calls: CallRecord[]; uninstall: () => void } {
  const calls: CallRecord[] = [];
  const next = random(settings.seed ?? 42);
  const uninstall = useClientPlugin((client: PluggableClient) => {
    const stack = client.middlewareStack as unknown as {
      add: (mw: unknown, options: { step: string; name: string; priority: string }) => void;
    };
    stack.add(
      (handlerNext: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
        async (args: unknown) => {
          const scope = taskScope.getStore();
          const record: CallRecord = {
            executionArn: scope?.executionArn ?? '',
            stateName: scope?.stateName ?? '(outside a task)',
            operation: (context.commandName ?? 'Unknown').replace(/Command$/, ''),
            attempt: calls.filter((c) => c.executionArn === scope?.executionArn).length,
            throttled: false,
            startedAt: performance.now(),
            endedAt: 0,
          };
          calls.push(record);
          await sleep(settings.latencyMs);
          if (next() < settings.throttleRate) {
            record.throttled = true;
            record.endedAt = performance.now();
            throw Object.assign(new Error('Rate exceeded (injected)'), {
              name: 'ThrottlingException',
              $fault: 'client',
              $metadata: { httpStatusCode: 400 },
            });
          }
          try {
            return await handlerNext(args);
          } finally {
            record.endedAt = performance.now();
          }
        },
      // After the retry middleware, so that each attempt is delayed, counted and may be throttled.
      { step: 'finalizeRequest', name: 'cordonBenchMeter', priority: 'low' },
    );
  });
  return { calls, uninstall };
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const at = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[at] as number;
}
