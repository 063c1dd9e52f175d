import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bundledEvent } from '../../bench/containment.js';
import { errorNames } from '../../functions/core/errors.js';
import { resetMoto } from '../../scripts/local/moto.js';
import { deployLocalStack, type LocalStack } from '../../scripts/local/stack.js';
import { type CaseRun, type Pair, pairKey, pairsOf, runCases, table } from '../support/fault-matrix.js';
import { type Fault, type FaultInjector, faultAnswer, installFaults } from '../support/faults.js';

/**
 * THE FAULT MATRIX. For every AWS call that every step of the forensic workflow makes (found by a clean
 * run, not listed by hand), the real ASL runs with the real handlers on the emulated account twice:
 * with the call failing once (throttled or a 503 on its first attempt), which must end exactly as the
 * clean run; and with the call failing for good (access denied on every attempt), which must end with
 * a named error, a case timeline that says what was done and what was not, a notification that says
 * the outcome (unless the failing call is that notification's own Publish: the execution then fails),
 * and never a containment left partly applied without the notification owning up to it. The matrix
 * is printed as a table.
 */
const endpoint = inject('motoEndpoint');
/** Cases in flight at once: enough to keep two cores busy while others wait on the emulator. */
const concurrency = 6;
/** The "failing once" faults are spread over this many cases, so that each case's retries stay few. */
const onceRuns = 4;
/**
 * Cases run on one emulated account before it is wiped and the stack deployed again: the emulator
 * slows down as the account fills (a third slower after 60 cases), and a deploy costs 4 s.
 */
const casesPerAccount = 32;

let stack: LocalStack;
let injector: FaultInjector;
let clean: CaseRun;
let pairs: Pair[] = [];
const once = new Map<string, CaseRun>();
const forGood = new Map<string, CaseRun>();
let elapsedMs = 0;

const serviceOf = (p: Pair) => p.operation.split(':')[0] ?? '';
const isRead = (operation: string) => /:(Describe|Get|List|Head|Query)/.test(operation);
/** A call that changes the instance or its credentials (the case's own bookkeeping is not one). */
const changesInstance = (operation: string) =>
  !isRead(operation) && !/^(dynamodb|s3|kms|sns|sts|sqs|eventbridge):/.test(operation);
const containmentStates = new Set([
  'Protect Instance',
  'Isolate Instance',
  'Revoke Credentials',
  'Leave Load Balancers',
]);
const cordonNames = new Set<string>(errorNames);
const errorName = (reason: string | undefined) => reason?.split(':')[0] ?? '';
const isTimelineWrite = (p: Pair) => p.operation === 'dynamodb:BatchWriteItem';
const isNotification = (p: Pair) => p.stateName === 'Notify Outcome' && p.operation === 'sns:Publish';
const isStatusWrite = (p: Pair) => p.stateName === 'Notify Outcome' && p.operation === 'dynamodb:UpdateItem';

type State = { archive?: { manifest?: unknown } };
const stateOf = (run: CaseRun) => (run.execution.output ?? {}) as State;
const attemptsOf = (run: CaseRun, p: Pair) =>
  run.attempts.filter((a) => a.stateName === p.stateName && a.operation === p.operation);
const runOf = (map: Map<string, CaseRun>, p: Pair) => {
  const run = map.get(pairKey(p));
  if (!run) throw new Error(`no run for ${pairKey(p)}`);
  return run;
};

/** Whether the case timeline holds a failed or skipped event naming the injected error. */
function timelineRecords(run: CaseRun, p: Pair): boolean {
  const code = faultAnswer(serviceOf(p), 'for-good').code;
  return run.timeline.some((e) => e.status !== 'ok' && (e.detail ?? '').includes(code));
}

/** Calls that changed the instance in a containment step before the case ended. */
function containmentApplied(run: CaseRun) {
  return run.attempts.filter(
    (a) => containmentStates.has(a.stateName) && a.result === 'ok' && changesInstance(a.operation),
  );
}

beforeAll(async () => {
  const started = performance.now();
  await resetMoto(endpoint);
  stack = await deployLocalStack(endpoint);
  injector = installFaults();
  [clean] = (await runCases(stack, injector, bundledEvent(), [[]], 1)) as [CaseRun];
  // Rows grouped by step, steps in the order the clean run entered them, calls in the order first made.
  const discovered = pairsOf(clean.attempts);
  const steps = [...new Set(discovered.map((p) => p.stateName))];
  pairs = steps.flatMap((step) => discovered.filter((p) => p.stateName === step));
  const plans: Fault[][] = [
    ...Array.from({ length: onceRuns }, (_, r) =>
      pairs.filter((_, i) => i % onceRuns === r).map((p) => ({ ...p, mode: 'once' as const })),
    ),
    ...pairs.map((p) => [{ ...p, mode: 'for-good' as const }]),
  ];
  const runs: CaseRun[] = [];
  for (let from = 0; from < plans.length; from += casesPerAccount) {
    if (from > 0) {
      await resetMoto(endpoint);
      stack = await deployLocalStack(endpoint);
    }
    const chunk = plans.slice(from, from + casesPerAccount);
    runs.push(...(await runCases(stack, injector, bundledEvent(), chunk, concurrency)));
  }
  for (const run of runs.slice(0, onceRuns)) for (const f of run.faults) once.set(pairKey(f), run);
  for (const run of runs.slice(onceRuns)) forGood.set(pairKey(run.faults[0] as Fault), run);
  elapsedMs = performance.now() - started;
}, 900_000);

afterAll(() => {
  injector?.uninstall();
  if (pairs.length === 0) return;
  const rows = pairs.map((p) => [p.stateName, p.operation, onceCell(p), ...forGoodCells(p)]);
  console.log(
    `\nFault matrix: ${pairs.length} calls; ${1 + onceRuns + pairs.length} cases (1 clean, ${onceRuns} failing once, ${pairs.length} failing for good) in ${(elapsedMs / 1000).toFixed(0)} s\n${table(
      [
        'Step',
        'Call',
        'Once: answer → retry → case',
        'For good: case',
        'Named error',
        'Notified',
        'On the timeline',
      ],
      rows,
    )}\n`,
  );
});

function onceCell(p: Pair): string {
  const run = once.get(pairKey(p));
  if (!run) return '(not run)';
  const mine = attemptsOf(run, p);
  const at = mine.findIndex((a) => a.injected);
  const retry = mine[at + 1]?.result ?? 'no retry';
  // The emulator answers a few APIs with an error page (it lacks them): the retry gets that, as the clean run did.
  const asClean =
    retry !== 'ok' && retry === attemptsOf(clean, p)[0]?.result ? ' (as clean: emulator lacks it)' : '';
  return `${mine[at]?.injected ?? 'not failed'} → ${retry}${asClean} → ${run.outcome ?? `execution ${run.execution.status}`}`;
}

function forGoodCells(p: Pair): string[] {
  const run = forGood.get(pairKey(p));
  if (!run) return ['(not run)', '', '', ''];
  const failed = [
    ...new Set(run.execution.steps.filter((s) => s.status === 'failed').map((s) => errorName(s.reason))),
  ];
  const ended = run.execution.status === 'FAILED' ? `; execution fails: ${run.execution.error?.name}` : '';
  const intakeFailed = run.execution.steps.some((s) => s.name === 'Intake Finding' && s.status === 'failed');
  let outcome = `${run.outcome}${ended}`;
  if (!run.outcome) outcome = `not notified${ended}`;
  else if (intakeFailed && !run.caseRecord) outcome = `${run.outcome}: no case opened${ended}`;
  else if (intakeFailed) outcome = `${run.outcome}: case closed, instance freed${ended}`;
  else if (run.outcome === 'failed' && containmentApplied(run).length)
    outcome = `failed, partly contained (said)${ended}`;
  const note = run.notifications[0];
  const recorded = timelineRecords(run, p);
  return [
    outcome,
    failed.join(', ') || `none: tolerated${recorded ? ', recorded' : ''}`,
    note ? `yes: ${note.subject.replace(/^\[Cordon\] /, '').split(':')[0]}` : 'NO',
    isTimelineWrite(p)
      ? 'n/a: is the timeline write'
      : recorded
        ? 'yes'
        : run.caseRecord
          ? 'NO'
          : 'n/a: no case',
  ];
}

describe('the clean run', () => {
  it('contains the instance and seals its evidence', () => {
    expect(clean.execution.status, JSON.stringify(clean.execution.error)).toBe('SUCCEEDED');
    expect(clean.outcome).toBe('completed');
    expect(stateOf(clean).archive?.manifest).toBeDefined();
    expect(clean.notifications.map((n) => n.outcome)).toEqual(['completed']);
  });

  it('finds the calls that contain the instance, keep its evidence and tell the responders', () => {
    expect(pairs.map(pairKey)).toEqual(
      expect.arrayContaining([
        'Intake Finding | dynamodb:TransactWriteItems',
        'Protect Instance | ec2:ModifyInstanceAttribute',
        'Protect Instance | autoscaling:EnterStandby',
        'Isolate Instance | ec2:ModifyNetworkInterfaceAttribute',
        'Revoke Credentials | iam:PutRolePolicy',
        'Revoke Credentials | ec2:ReplaceIamInstanceProfileAssociation',
        'Snapshot Volumes | ec2:CreateSnapshots',
        'Capture Memory | ssm:SendCommand',
        'Check Memory | s3:CompleteMultipartUpload',
        'Archive Evidence | kms:Sign',
        'Notify Outcome | sns:Publish',
      ]),
    );
  });
});

describe('a call failing once', () => {
  it('is retried, and answered as in the clean run', () => {
    for (const p of pairs) {
      const mine = attemptsOf(runOf(once, p), p);
      const at = mine.findIndex((a) => a.injected);
      expect.soft(at, `${pairKey(p)} was never failed`).toBeGreaterThanOrEqual(0);
      const cleanAnswer = attemptsOf(clean, p)[0]?.result;
      expect.soft(mine[at + 1]?.result, `${pairKey(p)}: the retry`).toBe(cleanAnswer);
    }
  });

  it('leaves the case to end exactly as the clean run: same outcome, evidence sealed, one notification', () => {
    for (const run of new Set(once.values())) {
      const faults = run.faults.map(pairKey).join('; ');
      expect
        .soft(run.execution.status, `${JSON.stringify(run.execution.error)} with ${faults}`)
        .toBe('SUCCEEDED');
      const problems = run.execution.steps.filter((s) => s.reason).map((s) => `${s.name}: ${s.reason}`);
      expect.soft(run.outcome, `${problems.join('; ')} with ${faults}`).toBe(clean.outcome);
      expect.soft(stateOf(run).archive?.manifest, faults).toBeDefined();
      expect
        .soft(
          run.notifications.map((n) => n.outcome),
          faults,
        )
        .toEqual([clean.outcome]);
    }
  });
});

describe('a call failing for good', () => {
  it('is made, and fails on every attempt', () => {
    for (const p of pairs) {
      const mine = attemptsOf(runOf(forGood, p), p);
      expect.soft(mine.length, `${pairKey(p)} was not called`).toBeGreaterThan(0);
      expect
        .soft(
          mine.filter((a) => !a.injected),
          pairKey(p),
        )
        .toEqual([]);
    }
  });

  it('fails its step, and a failed execution, with one of Cordon named errors, never a raw AWS one', () => {
    for (const p of pairs) {
      const run = runOf(forGood, p);
      for (const s of run.execution.steps.filter((x) => x.status === 'failed'))
        expect.soft(cordonNames.has(errorName(s.reason)), `${pairKey(p)}: ${s.name}: ${s.reason}`).toBe(true);
      if (run.execution.status === 'FAILED')
        expect
          .soft(
            cordonNames.has(run.execution.error?.name ?? '') || run.execution.error?.name === 'CaseFailed',
            `${pairKey(p)}: ${JSON.stringify(run.execution.error)}`,
          )
          .toBe(true);
    }
  });

  it('is on the case timeline, unless it is the timeline write itself or no case was ever opened', () => {
    for (const p of pairs) {
      const run = runOf(forGood, p);
      if (isTimelineWrite(p)) continue;
      if (!run.caseRecord) {
        // No case to write on: then nothing at all may have been done to the instance.
        expect
          .soft(
            run.attempts.filter((a) => a.result === 'ok' && changesInstance(a.operation)),
            pairKey(p),
          )
          .toEqual([]);
        // And the trigger is not lost: it waits on the trigger queue for `cordon redrive`.
        expect
          .soft(
            run.attempts.some(
              (a) => a.stateName === 'Hold Trigger' && a.operation === 'sqs:SendMessage' && a.result === 'ok',
            ),
            `${pairKey(p)}: trigger held`,
          )
          .toBe(true);
        continue;
      }
      const recorded = run.timeline.filter((e) => e.status !== 'ok').map((e) => `${e.action}: ${e.detail}`);
      expect.soft(timelineRecords(run, p), `${pairKey(p)}: ${recorded.join(' | ')}`).toBe(true);
    }
  });

  it('is notified once with the outcome, unless it is the notification itself, which fails the execution', () => {
    for (const p of pairs) {
      const run = runOf(forGood, p);
      if (isNotification(p)) {
        expect.soft(run.notifications, pairKey(p)).toEqual([]);
        expect.soft(run.execution.status, pairKey(p)).toBe('FAILED');
        expect.soft(run.execution.error?.name, pairKey(p)).toBe('NotificationError');
        continue;
      }
      expect.soft(run.notifications.length, `${pairKey(p)}: notifications`).toBe(1);
      const note = run.notifications[0];
      if (run.outcome) expect.soft(note?.outcome, pairKey(p)).toBe(run.outcome);
      // The failure is named in the message: the step that failed, with the answer AWS gave.
      // A step that failed for good: its last attempt failed (an attempt that failed on an emulator
      // hiccup and then succeeded on its retry is not the failure this row injects).
      const lastOf = new Map(run.execution.steps.map((s) => [s.name, s]));
      const failedStep = [...lastOf.values()].find(
        (s) => s.status === 'failed' && s.name !== 'Notify Outcome',
      );
      if (failedStep)
        expect.soft(note?.body, pairKey(p)).toContain(faultAnswer(serviceOf(p), 'for-good').code);
    }
  });

  it('never leaves containment partly applied without the notification saying the instance is not contained', () => {
    for (const p of pairs) {
      const run = runOf(forGood, p);
      const note = run.notifications[0];
      if (!note) continue;
      if (note.outcome === 'completed' || note.outcome === 'partial') {
        // Said contained: every interface holds one group, not its own (Cordon's isolation group), the
        // profile is the quarantine profile, and an Elastic IP still associated is named in the message.
        expect.soft(run.instance.eniGroups.length, pairKey(p)).toBeGreaterThan(0);
        for (const groups of run.instance.eniGroups) {
          expect.soft(groups.length, pairKey(p)).toBe(1);
          expect.soft(groups, `${pairKey(p)}: the original group`).not.toContain(run.seeded.securityGroupId);
        }
        expect
          .soft(run.instance.profileArn ?? '', pairKey(p))
          .toMatch(/instance-profile\/cordon-quarantine-/);
        for (const ip of run.instance.elasticIps) expect.soft(note.body, pairKey(p)).toContain(ip);
        continue;
      }
      if (containmentApplied(run).length === 0) continue;
      expect.soft(note.body, pairKey(p)).toMatch(/may be only partly contained/);
      // The step that failed half-way says what it had applied and what it had not.
      const ownChanges = containmentApplied(run).filter((a) => a.stateName === p.stateName);
      if (ownChanges.length)
        expect.soft(note.body, `${pairKey(p)}: what was applied`).toMatch(/Applied: .*Not applied: /);
    }
  });

  it('leaves the case record with the outcome it notified, or fails the execution saying why not', () => {
    for (const p of pairs) {
      const run = runOf(forGood, p);
      const note = run.notifications[0];
      if (!run.caseRecord || !note?.outcome) continue;
      if (isStatusWrite(p)) {
        expect.soft(run.execution.status, pairKey(p)).toBe('FAILED');
        expect.soft(run.execution.error?.message, pairKey(p)).toMatch(/was notified .*could not be updated/);
        continue;
      }
      expect.soft(run.caseRecord.outcome, pairKey(p)).toBe(note.outcome);
      // A failed case frees the instance, so that the next finding on it starts a new response.
      if (note.outcome === 'failed') {
        expect.soft(run.caseRecord.status, pairKey(p)).toBe('failed');
        expect.soft(run.lockHolder, `${pairKey(p)}: the instance lock`).toBeUndefined();
      }
    }
  });
});
