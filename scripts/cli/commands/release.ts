import { blockCaseIdPattern } from '../../../functions/core/case.js';
import { type CommandSpec, isInstanceCase, parseCaseId, requireLocalRunner } from '../context.js';
import { CliError, UnknownCaseError, UsageError } from '../errors.js';
import { jsonDocument, safe } from '../output.js';
import type { RunResult, StepLine } from '../workflow.js';
import { printRun, stepLine } from './start.js';

/** What Release can act on (functions/release/release-instance refuses the rest the same way). */
const releasable = new Set(['contained', 'partial']);

function releaseOutcome(
  status: string,
  output: unknown,
  error: { name?: string; message?: string } | undefined,
  steps: StepLine[],
) {
  const release = (output as { release?: { restored?: unknown[]; notes?: unknown[] } } | undefined)?.release;
  if (status === 'SUCCEEDED') {
    const notes = (release?.notes ?? []).map((n) => safe(n, 200));
    return {
      outcome: 'released',
      reason: `restored ${release?.restored?.length ?? 0} item(s)${notes.length ? `; notes: ${notes.join('; ')}` : ''}`,
    };
  }
  const failed = steps.find((s) => s.status === 'failed');
  return {
    outcome: 'failed',
    reason: failed?.reason ?? safe(`${error?.name ?? status}: ${error?.message ?? ''}`, 300),
  };
}

export const releaseCommand: CommandSpec = {
  path: ['release'],
  summary: "undo a case's containment after a false positive (evidence stays)",
  positionals: ['CASE'],
  options: { yes: { type: 'boolean' }, wait: { type: 'boolean' } },
  help: `usage: cordon release CASE [--yes] [--wait]

Starts the release workflow for a contained (or partially contained) case: the instance gets back its
security groups, instance profile, Elastic IPs, Auto Scaling and load balancer membership; the
credential deny is narrowed to the sessions issued before the release, which stay denied until they
expire. The evidence stays locked and untouched. Asks for confirmation first.

  --yes    do not ask (required when stdin is not a terminal)
  --wait   against AWS, follow the execution to its end

With --endpoint the workflow runs in this process (the emulator's Step Functions runs nothing) and
always to its end.`,
  async run(ctx, values, positionals) {
    const caseId = parseCaseId(positionals[0]);
    if (!isInstanceCase(caseId)) {
      throw new UsageError(
        blockCaseIdPattern.test(caseId)
          ? `${caseId} is an IP-range block, not an instance's case: cordon unblock ${caseId} takes it out`
          : `${caseId} is not an instance's case: release undoes the containment of an instance`,
      );
    }
    const stack = await ctx.stack();
    requireLocalRunner(ctx, stack);
    const { CaseStore } = await import('../../../functions/core/cases.js');
    const { followExecution, runLocally, startExecution } = await import('../workflow.js');
    const record = await new CaseStore(await ctx.aws.ddb(), stack.casesTable).get(caseId);
    if (!record) {
      throw new UnknownCaseError(
        `There is no case ${caseId} in the table ${stack.casesTable}.`,
        'List the cases with `cordon cases`.',
      );
    }
    if (record.status === 'released') {
      // Released already: a second release changes nothing, and says so (as the workflow would).
      const result: RunResult = {
        status: 'NOT_STARTED',
        caseId,
        outcome: 'already-released',
        reason: 'the instance was released before; nothing was changed',
        steps: [],
      };
      if (ctx.json) ctx.io.out(jsonDocument(result));
      else ctx.io.out(`Case ${caseId}: already released; nothing was changed.\n`);
      return 0;
    }
    if (!releasable.has(record.status)) {
      throw new CliError(
        `Case ${caseId} is ${safe(record.status)}: only a contained or partially contained case can be released.`,
        record.status === 'open'
          ? 'Its workflow is still running: wait for it to end (cordon status).'
          : undefined,
        1,
      );
    }
    if (values.yes !== true) {
      if (!ctx.io.inIsTty) throw new UsageError('refusing to release without confirmation: pass --yes');
      const answer = await ctx.io.ask(
        `Release ${safe(record.instanceId)} (${safe(record.accountId)} ${safe(record.region)}) from case ${caseId}? Its network and credentials are restored; the evidence stays. [y/N] `,
      );
      if (!/^y(es)?$/i.test(answer.trim())) {
        ctx.io.err('Not released.\n');
        return 1;
      }
    }
    const input = { caseId, requestedBy: (await ctx.aws.identity()).arn };
    const onStep = (step: StepLine) => {
      if (!ctx.json) ctx.io.out(stepLine(step, ctx.io.colour?.out));
    };
    let result: RunResult;
    if (stack.local) {
      const run = await runLocally(stack.local, 'release', input, onStep, { debug: ctx.debug });
      result = {
        status: run.status,
        caseId,
        ...releaseOutcome(run.status, run.output, run.error, run.steps),
        steps: run.steps,
      };
    } else {
      const sfn = await ctx.aws.sfn();
      const executionArn = await startExecution(sfn, stack.releaseStateMachineArn, input);
      if (!ctx.json) ctx.io.out(`Started ${executionArn}\n`);
      if (values.wait !== true) {
        result = {
          status: 'RUNNING',
          caseId,
          outcome: 'running',
          reason: `follow it with: cordon status ${caseId}`,
          steps: [],
          executionArn,
        };
      } else {
        const run = await followExecution(sfn, executionArn, { onStep, sleep: (ms) => ctx.sleep(ms) });
        result = {
          status: run.status,
          caseId,
          ...releaseOutcome(run.status, run.output, run.error, run.steps),
          steps: run.steps,
          executionArn,
        };
      }
    }
    printRun(ctx, result, 'Release of');
    return result.outcome === 'failed' ? 1 : 0;
  },
};
