import type { ApprovalRecord } from '../../../functions/core/approval.js';
import { accountIdSchema, instanceIdSchema, regionSchema } from '../../../functions/core/case.js';
import type { CaseRecord } from '../../../functions/core/cases.js';
import type { listCases } from '../cases.js';
import { type CommandSpec, parseCaseId, stringValue } from '../context.js';
import { UsageError } from '../errors.js';
import { fittedTable, jsonDocument, safe, table } from '../output.js';
import { stepLine } from './start.js';

/** Where stdout is not a terminal, tables are fitted to this many columns. */
const defaultWidth = 120;

const kindNames: Record<string, string> = {
  block: 'IP-range block',
  cred: 'compromised credentials',
  policy: 'policy violation',
};

/** The fields `status` prints for a case: an instance's, or a playbook case's (a block, credentials…). */
export function caseRows(c: CaseRecord): [string, unknown][] {
  const r = c as CaseRecord & Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const where = `${c.accountId ?? '?'} ${c.region ?? '?'}`;
  const common: [string, unknown][] = [
    ['Status', `${c.status}${c.outcome ? ` (outcome ${c.outcome})` : ''}`],
    ['Opened', c.openedAt],
    ['Updated', c.updatedAt],
  ];
  const kind = text(r.kind);
  if (!kind && c.instanceId) {
    const t = c.trigger;
    return [
      ['Case', c.caseId],
      ['Instance', `${c.instanceId} in ${where}`],
      ...common,
      [
        'Trigger',
        `${t?.source ?? '?'} ${t?.shape ?? ''}${t?.findingType ? `, ${t.findingType}` : ''}${t?.severity === undefined ? '' : `, severity ${t.severity}`}`,
      ],
      ['Requested by', t?.requestedBy],
      ['Reason', t?.reason],
      ['Findings', (c.findingIds ?? []).join(', ') || '-'],
      ['Execution', c.executionArn ?? '-'],
    ];
  }
  const changes = r.changes as Record<string, { expiresAt?: unknown } | undefined> | undefined;
  const principal = r.principal as { arn?: unknown; userName?: unknown; type?: unknown } | string | undefined;
  const who =
    typeof principal === 'string'
      ? principal
      : (text(principal?.arn) ?? text(principal?.userName) ?? text(principal?.type) ?? '?');
  const subject =
    kind === 'block'
      ? `${text(r.cidr) ?? '?'} in ${text(r.vpcId) ?? '?'} (${where})`
      : kind === 'policy'
        ? `${text(r.eventName) ?? '?'} by ${who} in ${where}`
        : `${who} in ${where}`;
  const expiry = kind === 'block' ? text(changes?.['block-ip']?.expiresAt) : undefined;
  return [
    ['Case', c.caseId],
    ['Kind', (kind && kindNames[kind]) ?? kind ?? 'unknown'],
    ['Subject', subject],
    ...common,
    ...(kind === 'block'
      ? ([['Expires', expiry ?? 'never (until cordon unblock)']] as [string, unknown][])
      : []),
    ['Requested by', text(r.requestedBy) ?? c.trigger?.requestedBy ?? '-'],
    ['Reason', text(r.reason) ?? c.trigger?.reason ?? '-'],
    ['Execution', c.executionArn ?? '-'],
  ];
}

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
    for (const [label, value] of caseRows(status.case))
      ctx.io.out(`${label.padEnd(13)} ${safe(value, 300)}\n`);
    const exec = status.execution;
    if (exec) {
      ctx.io.out(
        `\nExecution ${safe(exec.status)}${exec.startDate ? ` started ${exec.startDate}` : ''}${exec.stopDate ? `, ended ${exec.stopDate}` : ''}\n`,
      );
      if (exec.note) ctx.io.out(`  ${safe(exec.note, 300)}\n`);
      for (const step of exec.steps) ctx.io.out(stepLine(step, ctx.io.colour?.out));
    }
    ctx.io.out(`\nTimeline (${status.timeline.length} events; --json has every value whole)\n`);
    // One line per event fitted to the terminal (the target gives way first), and under it, when there
    // is one, AWS's request id and the detail: a request id is only useful whole.
    const events = status.timeline;
    ctx.io.out(
      fittedTable(
        ['AT', 'STEP', 'ACTION', 'STATUS', 'TARGET'],
        events.map((e) => [e.at, e.step, e.action, e.status, e.target]),
        {
          width: ctx.io.columns ?? defaultWidth,
          shrink: [4, 2, 1],
          below: (i) => {
            const e = events[i];
            const parts = [
              e?.requestId ? `request ${safe(e.requestId, 100)}` : '',
              e?.detail ? safe(e.detail, 400) : '',
            ].filter(Boolean);
            return parts.length ? parts.join('  ') : undefined;
          },
          max: 120,
        },
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
    waiting: { type: 'boolean' },
    instance: { type: 'string' },
    account: { type: 'string' },
    'instance-region': { type: 'string' },
  },
  help: `usage: cordon cases [--open] [--waiting] [--instance i-… [--account ID] [--instance-region REGION]]

Lists the cases in the Cases table, newest first.

  --open                    only cases that still hold their instance (contained, not released)
  --waiting                 only cases whose containment waits for approval (cordon approve / reject),
                            with the deadline
  --instance ID             only this instance's cases (the table's byInstance index)
  --account ID              the instance's account (default: the caller's account)
  --instance-region REGION  the instance's region (default: the stack's region)

Without --instance the whole table is scanned (dynamodb:Scan).`,
  async run(ctx, values) {
    const instance = stringValue(values, 'instance');
    if (!instance && (values.account !== undefined || values['instance-region'] !== undefined)) {
      throw new UsageError('--account and --instance-region go with --instance');
    }
    let filter: Parameters<typeof listCases>[2] = {
      open: values.open === true,
      ...(values.waiting === true ? { waiting: ctx.now() } : {}),
    };
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
      ctx.io.out(values.waiting === true ? 'No case waits for approval.\n' : 'No cases.\n');
      return 0;
    }
    if (values.waiting === true) {
      ctx.io.out(
        table(
          ['CASE', 'INSTANCE', 'ACCOUNT', 'REGION', 'RULE', 'DEADLINE', 'THEN'],
          rows.map((r) => {
            const a = (r as { approval?: ApprovalRecord }).approval;
            return [r.caseId, r.instanceId, r.accountId, r.region, a?.rule, a?.deadline, a?.timeoutAction];
          }),
          80,
        ),
      );
      ctx.io.out('Answer with: cordon approve CASE   or   cordon reject CASE --reason TEXT\n');
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
