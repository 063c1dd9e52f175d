import { accountIdSchema, instanceIdSchema, regionSchema } from '../../../functions/core/case.js';
import type { listCases } from '../cases.js';
import { type CommandSpec, parseCaseId, stringValue } from '../context.js';
import { UsageError } from '../errors.js';
import { jsonDocument, safe, table } from '../output.js';
import { stepLine } from './start.js';

export const statusCommand: CommandSpec = {
  path: ['status'],
  summary: "a case's state, what was done (its timeline) and its execution",
  positionals: ['CASE'],
  options: {},
  help: `usage: cordon status CASE

Shows the case from the Cases table (instance, trigger, status, outcome), every action on its timeline
with AWS's request id, and its Step Functions execution with one line per step. --json prints all of it
as one document.`,
  async run(ctx, _values, positionals) {
    const caseId = parseCaseId(positionals[0]);
    const stack = await ctx.stack();
    const { caseStatus } = await import('../cases.js');
    const status = await caseStatus(
      { ddb: await ctx.aws.ddb(), sfn: await ctx.aws.sfn(), table: stack.casesTable },
      caseId,
    );
    if (ctx.json) {
      ctx.io.out(jsonDocument(status));
      return 0;
    }
    const c = status.case;
    const t = c.trigger;
    const rows: [string, unknown][] = [
      ['Case', c.caseId],
      ['Instance', `${c.instanceId} in ${c.accountId} ${c.region}`],
      ['Status', `${c.status}${c.outcome ? ` (outcome ${c.outcome})` : ''}`],
      ['Opened', c.openedAt],
      ['Updated', c.updatedAt],
      [
        'Trigger',
        `${t?.source ?? '?'} ${t?.shape ?? ''}${t?.findingType ? `, ${t.findingType}` : ''}${t?.severity === undefined ? '' : `, severity ${t.severity}`}`,
      ],
      ['Requested by', t?.requestedBy],
      ['Reason', t?.reason],
      ['Findings', (c.findingIds ?? []).join(', ') || '-'],
      ['Execution', c.executionArn ?? '-'],
    ];
    for (const [label, value] of rows) ctx.io.out(`${label.padEnd(13)} ${safe(value, 300)}\n`);
    const exec = status.execution;
    if (exec) {
      ctx.io.out(
        `\nExecution ${safe(exec.status)}${exec.startDate ? ` started ${exec.startDate}` : ''}${exec.stopDate ? `, ended ${exec.stopDate}` : ''}\n`,
      );
      if (exec.note) ctx.io.out(`  ${safe(exec.note, 300)}\n`);
      for (const step of exec.steps) ctx.io.out(stepLine(step));
    }
    ctx.io.out(`\nTimeline (${status.timeline.length} events)\n`);
    ctx.io.out(
      table(
        ['AT', 'STEP', 'ACTION', 'STATUS', 'TARGET', 'REQUEST ID', 'DETAIL'],
        status.timeline.map((e) => [e.at, e.step, e.action, e.status, e.target, e.requestId, e.detail]),
        120,
      ),
    );
    return 0;
  },
};

export const casesCommand: CommandSpec = {
  path: ['cases'],
  summary: 'list cases, newest first',
  positionals: [],
  options: {
    open: { type: 'boolean' },
    instance: { type: 'string' },
    account: { type: 'string' },
    'instance-region': { type: 'string' },
  },
  help: `usage: cordon cases [--open] [--instance i-… [--account ID] [--instance-region REGION]]

Lists the cases in the Cases table, newest first.

  --open                    only cases that still hold their instance (contained, not released)
  --instance ID             only this instance's cases (the table's byInstance index)
  --account ID              the instance's account (default: the caller's account)
  --instance-region REGION  the instance's region (default: the stack's region)

Without --instance the whole table is scanned (dynamodb:Scan).`,
  async run(ctx, values) {
    const instance = stringValue(values, 'instance');
    if (!instance && (values.account !== undefined || values['instance-region'] !== undefined)) {
      throw new UsageError('--account and --instance-region go with --instance');
    }
    let filter: Parameters<typeof listCases>[2] = { open: values.open === true };
    if (instance) {
      const id = instanceIdSchema.safeParse(instance);
      if (!id.success) throw new UsageError('--instance is not an EC2 instance id');
      const account = stringValue(values, 'account');
      if (account !== undefined && !accountIdSchema.safeParse(account).success) {
        throw new UsageError('--account is not a 12-digit account id');
      }
      const region = stringValue(values, 'instance-region');
      if (region !== undefined && !regionSchema.safeParse(region).success) {
        throw new UsageError('--instance-region is not an AWS region');
      }
      const stack = await ctx.stack();
      filter = {
        ...filter,
        instance: {
          instanceId: id.data,
          accountId: account ?? stack.local?.env.CORDON_ACCOUNT_ID ?? (await ctx.aws.identity()).account,
          region: region ?? stack.region,
        },
      };
    }
    const stack = await ctx.stack();
    const { listCases } = await import('../cases.js');
    const rows = await listCases(await ctx.aws.ddb(), stack.casesTable, filter);
    if (ctx.json) {
      ctx.io.out(jsonDocument(rows));
      return 0;
    }
    if (!rows.length) {
      ctx.io.out('No cases.\n');
      return 0;
    }
    ctx.io.out(
      table(
        ['CASE', 'INSTANCE', 'ACCOUNT', 'REGION', 'STATUS', 'OUTCOME', 'HOLDS', 'OPENED', 'TRIGGER'],
        rows.map((r) => [
          r.caseId,
          r.instanceId,
          r.accountId,
          r.region,
          r.status,
          r.outcome ?? '-',
          r.holdsInstance ? 'yes' : 'no',
          r.openedAt,
          r.trigger?.findingType ?? r.trigger?.reason ?? r.trigger?.source,
        ]),
        80,
      ),
    );
    return 0;
  },
};
