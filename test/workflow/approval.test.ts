import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { type ApprovalRecord, decideApproval, recordApprovalRequest } from '../../functions/core/approval.js';
import type { Case } from '../../functions/core/case.js';
import type { StepSummary } from '../../functions/core/outcome.js';
import {
  type Execution,
  memoryTaskTokens,
  runStateMachine,
  type TaskHandler,
  type TaskTokens,
  taskScope,
} from '../../scripts/local/runner.js';
import { sampleCase } from '../support/core-fakes.js';
import { accepted, forensicDoubles, handlersOf, looked } from './doubles.js';

/**
 * The real statemachines/forensics.asl.yml for the response policy's `approve` and `evidence-only`:
 * evidence first, containment only after a person's approval (or the approval timeout's action). The
 * approval is answered through the one code path the CLI uses (functions/core/approval.ts), over a
 * case item held in memory, and its token through the runner's task-token store.
 */
const asl = 'statemachines/forensics.asl.yml';
const table = 'cases';
const approver = 'arn:aws:sts::123456789012:assumed-role/Responder/alice';

function caseWith(action: 'contain' | 'approve' | 'evidence-only', rule = 'production-databases'): Case {
  return { ...sampleCase, response: { action, rule } };
}

/** The case item's `approval` as DynamoDB would hold it, with its condition expressions applied. */
function caseTable() {
  let approval: ApprovalRecord | undefined;
  const conditionFailed = () =>
    Object.assign(new Error('condition'), { name: 'ConditionalCheckFailedException' });
  const ddb = {
    async send(command: unknown) {
      if (command instanceof GetCommand) {
        return {
          Item: { pk: `CASE#${sampleCase.caseId}`, ...(approval ? { approval: { ...approval } } : {}) },
        };
      }
      if (command instanceof UpdateCommand) {
        const v = command.input.ExpressionAttributeValues ?? {};
        if (v[':a']) {
          if (approval && approval.status !== 'waiting') throw conditionFailed();
          approval = { ...(v[':a'] as ApprovalRecord) };
          return {};
        }
        if (v[':by']) {
          const a = approval;
          if (a?.status !== 'waiting' || a.token !== v[':t'] || a.deadline <= String(v[':at'])) {
            throw conditionFailed();
          }
          Object.assign(a, {
            status: v[':d'],
            by: v[':by'],
            at: v[':at'],
            ...(v[':r'] ? { reason: v[':r'] } : {}),
          });
          return {};
        }
      }
      throw new Error('unexpected command');
    },
  };
  return { ddb: ddb as never, approval: () => approval };
}

interface Final {
  approval?: { decision: string; goesOn: string; by?: string; reason?: string };
  containment?: unknown;
  triage?: unknown;
  memory?: { status: string };
  response?: { disk?: { status: string }; loadBalancers?: unknown };
  archive?: { outcome: string };
  notify: { outcome: string; steps: StepSummary[] };
}
const finalState = (run: Execution) => (run.output ?? run.failedState) as Final;
const names = (run: Execution) => run.steps.map((s) => s.name);
const containment = ['Protect Instance', 'Isolate Instance', 'Revoke Credentials', 'Leave Load Balancers'];
const evidence = [
  'Mark For Evidence',
  'Triage For Evidence',
  'Snapshot Evidence',
  'Check Evidence Snapshots',
  'Capture Evidence Memory',
  'Check Evidence Memory',
  'Verify Evidence Memory',
];

/**
 * A run whose Request Approval records the waiting approval as the real step does, and whose person
 * answers (through decideApproval) once `answer` says so. Every Task's input is kept.
 */
function approvalRun(theCase: Case, answer?: { decision: 'approved' | 'rejected'; reason?: string }) {
  const store = caseTable();
  const tokens: TaskTokens = memoryTaskTokens();
  const inputs: { state: string; input: unknown }[] = [];
  let requested: ((token: string) => void) | undefined;
  const tokenSeen = new Promise<string>((resolve) => {
    requested = resolve;
  });
  const intake = async () => ({ ...accepted, case: theCase });
  const base = handlersOf(forensicDoubles({ order: 'contain-first' }), {
    'intake-finding': intake,
    'request-approval': async (payload) => {
      const p = payload as {
        taskToken: string;
        timeoutSeconds: number;
        timeoutAction: 'contain' | 'evidence-only';
      };
      const now = new Date();
      await recordApprovalRequest(store.ddb, table, theCase.caseId, {
        status: 'waiting',
        token: p.taskToken,
        rule: theCase.response?.rule ?? 'default',
        requestedAt: now.toISOString(),
        deadline: new Date(now.getTime() + p.timeoutSeconds * 1000).toISOString(),
        timeoutAction: p.timeoutAction,
      });
      requested?.(p.taskToken);
      return { caseId: theCase.caseId, deadline: now.toISOString() };
    },
  });
  const handlers: Record<string, TaskHandler> = Object.fromEntries(
    Object.entries(base).map(([fn, handler]) => [
      fn,
      async (input: unknown) => {
        inputs.push({ state: taskScope.getStore()?.stateName ?? fn, input });
        return handler(input);
      },
    ]),
  );
  const timeline: string[] = [];
  const decide = (
    decision: 'approved' | 'rejected',
    options: { reason?: string; now?: Date; token?: string } = {},
  ) =>
    decideApproval(
      {
        caseId: theCase.caseId,
        decision,
        by: approver,
        ...(options.reason ? { reason: options.reason } : {}),
        ...(options.token ? { token: options.token } : {}),
      },
      {
        ddb: store.ddb,
        table,
        cases: { record: async (_id, e) => void timeline.push(`${e.action}: ${e.detail}`) },
        answer: (token, output) => tokens.answer(token, { output }),
        ...(options.now ? { now: () => options.now as Date } : {}),
      },
    );
  if (answer)
    void tokenSeen.then(() => decide(answer.decision, answer.reason ? { reason: answer.reason } : {}));
  return { handlers, tokens, decide, tokenSeen, store, timeline, inputs };
}

describe('forensic workflow: approval and evidence only', () => {
  it('contains an approved case after its evidence, the approval recorded with who and when', async () => {
    const r = approvalRun(caseWith('approve'), { decision: 'approved' });
    const run = await runStateMachine(asl, {}, { handlers: r.handlers, taskTokens: r.tokens });
    const final = finalState(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(final.approval).toMatchObject({ decision: 'approved', goesOn: 'contain', by: approver });
    expect(final.notify.outcome).toBe('completed');
    expect(names(run)).toEqual(expect.arrayContaining([...evidence, 'Await Approval', ...containment]));
    // Evidence never waited for the person, and containment came only after the approval.
    expect(names(run).indexOf('Isolate Instance')).toBeGreaterThan(names(run).indexOf('Await Approval'));
    expect(final.notify.steps).toContainEqual(
      expect.objectContaining({
        name: 'approval',
        status: 'succeeded',
        reason: expect.stringContaining(approver),
      }),
    );
    expect(r.timeline).toEqual([expect.stringMatching(/^approval approved: approved by .*alice/)]);
  });

  it('contains an approved case with Intake’s first look when Triage failed in the evidence branch', async () => {
    const theCase = caseWith('approve');
    const r = approvalRun(theCase, { decision: 'approved' });
    r.handlers['intake-finding'] = async () => ({ ...looked('contain-first'), case: theCase });
    r.handlers['triage-instance'] = async () => {
      throw Object.assign(new Error('the instance could not be read'), { name: 'AwsAccessDeniedError' });
    };
    const run = await runStateMachine(asl, {}, { handlers: r.handlers, taskTokens: r.tokens });
    expect(names(run)).toEqual(
      expect.arrayContaining(['Protect Instance', 'Isolate Instance', 'Revoke Credentials']),
    );
  });

  it('contains, failing closed, when the answer goes on as something it does not know', async () => {
    const theCase = caseWith('approve');
    const r = approvalRun(theCase);
    // A stage whose approvalTimeoutAction is misspelt: Request Approval refuses its input, and the
    // case goes on as that unknown action.
    r.handlers['request-approval'] = async () => {
      throw Object.assign(new Error('timeoutAction: invalid'), { name: 'InvalidStepInputError' });
    };
    const run = await runStateMachine(
      asl,
      {},
      { handlers: r.handlers, taskTokens: r.tokens, params: { approvalTimeoutAction: 'contained' } },
    );
    expect(names(run)).toEqual(expect.arrayContaining(['Isolate Instance', 'Revoke Credentials']));
  });

  it('runs the evidence while the approval waits: triage, snapshots and memory before any answer', async () => {
    const r = approvalRun(caseWith('approve'));
    const running = runStateMachine(asl, {}, { handlers: r.handlers, taskTokens: r.tokens });
    const token = await r.tokenSeen;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const before = r.inputs.map((i) => i.state);
    expect(before).toEqual(expect.arrayContaining(evidence));
    expect(before).not.toContain('Isolate Instance');
    await r.decide('approved');
    const run = await running;
    expect(finalState(run).notify.outcome).toBe('completed');
    expect(r.store.approval()).toMatchObject({ status: 'approved', token });
  });

  it('leaves a rejected case uncontained, with its evidence sealed and the rejection in the notification', async () => {
    const r = approvalRun(caseWith('approve'), {
      decision: 'rejected',
      reason: 'payment host, change window tonight',
    });
    const run = await runStateMachine(asl, {}, { handlers: r.handlers, taskTokens: r.tokens });
    const final = finalState(run);
    expect(run.status).toBe('SUCCEEDED');
    expect(final.approval).toMatchObject({ decision: 'rejected', goesOn: 'evidence-only', by: approver });
    expect(final.containment).toBeUndefined();
    for (const state of containment) expect(names(run)).not.toContain(state);
    expect(final.notify.outcome).toBe('completed');
    expect(final.notify.steps).toContainEqual({
      name: 'contain',
      status: 'skipped',
      reason: expect.stringContaining('payment host, change window tonight'),
    });
  });

  it.each([
    ['evidence-only', 'evidence-only', undefined],
    ['contain', 'contain', 'Isolate Instance'],
  ] as const)(
    'after the approval timeout, goes on as approvalTimeoutAction %s',
    async (action, goesOn, contained) => {
      const r = approvalRun(caseWith('approve'));
      const run = await runStateMachine(
        asl,
        {},
        {
          handlers: r.handlers,
          taskTokens: r.tokens,
          taskTimeoutMs: 20,
          params: { approvalTimeoutAction: action },
        },
      );
      const final = finalState(run);
      expect(final.approval).toMatchObject({ decision: 'timed-out', goesOn, seconds: 3600 });
      if (contained) expect(names(run)).toContain(contained);
      else for (const state of containment) expect(names(run)).not.toContain(state);
      expect(final.notify.outcome).toBe('completed');
    },
  );

  it('gives the approval request the stage window, and the deadline it records follows it', async () => {
    const r = approvalRun(caseWith('approve'), { decision: 'approved' });
    await runStateMachine(
      asl,
      {},
      {
        handlers: r.handlers,
        taskTokens: r.tokens,
        params: { approvalTimeoutSeconds: '900', approvalTimeoutAction: 'contain' },
      },
    );
    const payload = r.inputs.find((i) => i.state === 'Await Approval')?.input as Record<string, unknown>;
    expect(payload).toMatchObject({
      case: caseWith('approve'),
      timeoutSeconds: 900,
      timeoutAction: 'contain',
    });
    expect(payload.taskToken).toMatch(/^local-/);
  });

  it('refuses an approval after the window closed, naming when and what the case went on as', async () => {
    const r = approvalRun(caseWith('approve'));
    const run = await runStateMachine(
      asl,
      {},
      { handlers: r.handlers, taskTokens: r.tokens, taskTimeoutMs: 20 },
    );
    expect(finalState(run).approval?.decision).toBe('timed-out');
    const deadline = r.store.approval()?.deadline as string;
    const late = new Date(Date.parse(deadline) + 1000);
    await expect(r.decide('approved', { now: late })).rejects.toMatchObject({
      name: 'ApprovalWindowClosedError',
      message: expect.stringContaining(`closed at ${deadline}; the case went on as evidence-only`),
    });
    expect(r.store.approval()?.status).toBe('waiting');
  });

  it('refuses a second approval, naming who answered first and when', async () => {
    const r = approvalRun(caseWith('approve'), { decision: 'approved' });
    await runStateMachine(asl, {}, { handlers: r.handlers, taskTokens: r.tokens });
    await expect(r.decide('approved')).rejects.toMatchObject({
      name: 'ApprovalAlreadyDecidedError',
      message: expect.stringMatching(/already approved by .*alice at \d{4}-/),
    });
    await expect(r.decide('rejected', { reason: 'too late' })).rejects.toMatchObject({
      name: 'ApprovalAlreadyDecidedError',
    });
  });

  it("refuses an answer carrying another case's token, and the case waits on", async () => {
    const r = approvalRun(caseWith('approve'));
    const running = runStateMachine(asl, {}, { handlers: r.handlers, taskTokens: r.tokens });
    await r.tokenSeen;
    await expect(r.decide('approved', { token: 'local-another-case' })).rejects.toMatchObject({
      name: 'ApprovalTokenMismatchError',
    });
    expect(r.store.approval()?.status).toBe('waiting');
    await r.decide('approved');
    expect(finalState(await running).notify.outcome).toBe('completed');
  });

  it('never calls Protect, Isolate or Revoke for an evidence-only case, and says it was not contained', async () => {
    const r = approvalRun(caseWith('evidence-only', 'domain-controllers'));
    const run = await runStateMachine(asl, {}, { handlers: r.handlers, taskTokens: r.tokens });
    const final = finalState(run);
    const called = r.inputs.map((i) => i.state);
    for (const state of [...containment, 'Protect Before Capture', 'Await Approval']) {
      expect(called).not.toContain(state);
    }
    expect(called).toEqual(
      [
        'Intake Finding',
        ...evidence.slice(0, 3),
        ...evidence.slice(3),
        'Archive Evidence',
        'Notify Outcome',
      ].filter((s) => called.includes(s)),
    );
    expect(called).toEqual(expect.arrayContaining(evidence));
    expect(final.approval).toEqual({
      decision: 'not-asked',
      goesOn: 'evidence-only',
      rule: 'domain-controllers',
    });
    expect(final.notify.outcome).toBe('completed');
    expect(final.notify.steps).toContainEqual({
      name: 'contain',
      status: 'skipped',
      reason: 'not contained: the response policy (rule domain-controllers) asks for evidence only',
    });
    // Snapshots are taken without a containment to announce: no "contained" event, no time to containment.
    const snapshotInput = r.inputs.find((i) => i.state === 'Snapshot Evidence')?.input as Record<
      string,
      unknown
    >;
    expect(snapshotInput).not.toHaveProperty('containment');
    // Protect's function runs only to put the case's tag on the instance, under which IAM grants the evidence.
    const marked = r.inputs.find((i) => i.state === 'Mark For Evidence')?.input;
    expect(marked).toEqual({ case: caseWith('evidence-only', 'domain-controllers'), markOnly: true });
  });

  it('contains at once a case whose response is contain, or that has none, as before the policy', async () => {
    for (const theCase of [caseWith('contain'), sampleCase]) {
      const r = approvalRun(theCase);
      r.handlers['intake-finding'] = async () => ({ ...looked('contain-first'), case: theCase });
      const run = await runStateMachine(asl, {}, { handlers: r.handlers, taskTokens: r.tokens });
      expect(names(run).slice(0, 4).sort()).toEqual([
        'Intake Finding',
        'Isolate Instance',
        'Protect Instance',
        'Revoke Credentials',
      ]);
      expect(names(run)).not.toContain('Await Approval');
      expect(names(run)).not.toContain('Triage For Evidence');
      expect(finalState(run).approval).toBeUndefined();
      expect(finalState(run).notify.outcome).toBe('completed');
    }
  });

  it('goes on as the timeout action when the approval cannot be requested, saying why', async () => {
    const r = approvalRun(caseWith('approve'));
    r.handlers['request-approval'] = async () => {
      throw Object.assign(new Error('topic gone'), { name: 'NotificationError' });
    };
    const run = await runStateMachine(asl, {}, { handlers: r.handlers, taskTokens: r.tokens });
    const final = finalState(run);
    expect(final.approval).toMatchObject({ decision: 'not-requested', goesOn: 'evidence-only' });
    expect(final.containment).toBeUndefined();
    expect(final.notify.steps).toContainEqual(
      expect.objectContaining({
        name: 'approval',
        status: 'failed',
        reason: expect.stringContaining('topic gone'),
      }),
    );
  });
});
