import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { memoryWait, nextWaitSeconds, snapshotWait } from '../functions/core/memory.js';
import { repoRoot } from '../scripts/local/runner.js';
import type { CallRecord } from './meter.js';

/**
 * US-East-1 list prices as the project knew them on 2026-11-27, in US dollars. Check the AWS pricing
 * pages before relying on them; they move.
 */
export const prices = {
  date: '2026-11-27',
  region: 'us-east-1',
  stepFunctionsPerTransition: 0.025 / 1000,
  lambdaPerRequest: 0.2 / 1_000_000,
  lambdaArmPerGbSecond: 0.0000133334,
  dynamoPerWriteUnit: 0.625 / 1_000_000,
  dynamoPerReadUnit: 0.125 / 1_000_000,
  s3PerPut: 0.005 / 1000,
  s3PerGet: 0.0004 / 1000,
  kmsPerSymmetricRequest: 0.03 / 10_000,
  kmsPerAsymmetricRequest: 0.15 / 10_000,
  snsPerPublish: 0.5 / 1_000_000,
} as const;

/** How many checks a wait loop makes before a job of `seconds` is seen done. */
export function checksFor(seconds: number, loop: { firstSeconds: number; capSeconds: number }): number {
  let waited = loop.firstSeconds;
  let wait = loop.firstSeconds;
  let checks = 1;
  while (waited < seconds) {
    wait = nextWaitSeconds(wait, { cap: loop.capSeconds, remainingSeconds: Number.POSITIVE_INFINITY });
    waited += wait;
    checks += 1;
  }
  return checks;
}

/** Memory size per function from serverless.yml (the provider default where a function sets none). */
export function memorySizes(): Record<string, number> {
  const doc = parse(readFileSync(resolve(repoRoot, 'serverless.yml'), 'utf8'), { logLevel: 'error' }) as {
    provider: { memorySize: number };
    functions: Record<string, { memorySize?: number }>;
  };
  return Object.fromEntries(
    Object.entries(doc.functions).map(([k, v]) => [k, v.memorySize ?? doc.provider.memorySize]),
  );
}

const stateFunction: Record<string, string> = {
  'Intake Finding': 'intake-finding',
  'Triage Instance': 'triage-instance',
  'Protect Instance': 'protect-instance',
  'Isolate Instance': 'isolate-instance',
  'Revoke Credentials': 'revoke-credentials',
  'Snapshot Volumes': 'snapshot-volumes',
  'Check Snapshots': 'check-snapshots',
  'Capture Memory': 'capture-memory',
  'Check Memory': 'check-memory',
  'Verify Memory': 'verify-memory',
  'Archive Evidence': 'archive-evidence',
  'Notify Outcome': 'notify-outcome',
};

export interface CaseCost {
  volumes: number;
  transitions: number;
  invocations: number;
  gbSeconds: number;
  awsCalls: Record<string, number>;
  usd: {
    stepFunctions: number;
    lambda: number;
    dynamodb: number;
    s3: number;
    kms: number;
    sns: number;
    total: number;
  };
}

/**
 * The cost of one case, from a measured run on the emulated account, re-timed for real durations:
 * the snapshot loop and the memory loop make as many checks as AWS would need for snapshots that take
 * `snapshotSeconds` and a capture that takes `memorySeconds` (each extra check: a Wait, a Task and a
 * Choice transition, one Lambda invocation and its AWS calls). Lambda time per invocation is the
 * measured median of that step, billed at its configured memory.
 */
export function caseCost(input: {
  volumes: number;
  transitions: number;
  stepMs: Record<string, number[]>;
  calls: CallRecord[];
  snapshotSeconds: number;
  memorySeconds: number;
}): CaseCost {
  const memory = memorySizes();
  const extraSnapshotChecks =
    checksFor(input.snapshotSeconds, snapshotWait) - (input.stepMs['Check Snapshots']?.length ?? 0);
  const extraMemoryChecks =
    checksFor(input.memorySeconds, memoryWait) - (input.stepMs['Check Memory']?.length ?? 0);
  const extra: Record<string, number> = {
    'Check Snapshots': Math.max(0, extraSnapshotChecks),
    'Check Memory': Math.max(0, extraMemoryChecks),
  };
  let invocations = 0;
  let gbSeconds = 0;
  for (const [state, durations] of Object.entries(input.stepMs)) {
    const fn = stateFunction[state];
    if (!fn) continue;
    const count = durations.length + (extra[state] ?? 0);
    const sorted = [...durations].sort((a, b) => a - b);
    const typical = sorted[Math.floor(sorted.length / 2)] ?? 0;
    invocations += count;
    gbSeconds += count * (typical / 1000) * ((memory[fn] ?? 256) / 1024);
  }
  const transitions =
    input.transitions + 3 * (extra['Check Snapshots'] ?? 0) + 3 * (extra['Check Memory'] ?? 0);

  const awsCalls: Record<string, number> = {};
  for (const c of input.calls) awsCalls[c.operation] = (awsCalls[c.operation] ?? 0) + 1;
  // Each extra check repeats the calls one check made.
  const perCheck = (state: string) => {
    const n = input.stepMs[state]?.length ?? 1;
    const calls = input.calls.filter((c) => c.stateName === state);
    return { calls, factor: (extra[state] ?? 0) / Math.max(1, n) };
  };
  for (const state of ['Check Snapshots', 'Check Memory']) {
    const { calls, factor } = perCheck(state);
    for (const c of calls) awsCalls[c.operation] = (awsCalls[c.operation] ?? 0) + factor;
  }
  const count = (ops: string[]) => ops.reduce((sum, op) => sum + (awsCalls[op] ?? 0), 0);
  const writes = count(['PutItem', 'UpdateItem', 'DeleteItem']) + 2 * count(['TransactWriteItems']);
  const reads = count(['GetItem', 'Query', 'Scan']);
  const usd = {
    stepFunctions: transitions * prices.stepFunctionsPerTransition,
    lambda: invocations * prices.lambdaPerRequest + gbSeconds * prices.lambdaArmPerGbSecond,
    dynamodb: writes * prices.dynamoPerWriteUnit + reads * prices.dynamoPerReadUnit,
    s3:
      count([
        'PutObject',
        'CreateMultipartUpload',
        'UploadPart',
        'CompleteMultipartUpload',
        'PutObjectRetention',
        'PutObjectLegalHold',
        'ListObjectVersions',
        'ListObjectsV2',
      ]) *
        prices.s3PerPut +
      count(['GetObject', 'HeadObject']) * prices.s3PerGet,
    kms: count(['Sign', 'GetPublicKey']) * prices.kmsPerAsymmetricRequest,
    sns: count(['Publish']) * prices.snsPerPublish,
    total: 0,
  };
  usd.total = usd.stepFunctions + usd.lambda + usd.dynamodb + usd.s3 + usd.kms + usd.sns;
  return { volumes: input.volumes, transitions, invocations, gbSeconds, awsCalls, usd };
}
