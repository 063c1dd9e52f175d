import { readFile } from 'node:fs/promises';
import { paintVerdict } from '../colour.js';
import {
  type CommandContext,
  type CommandSpec,
  requireLocalRunner,
  stringValue,
  type Values,
} from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { jsonDocument, safe } from '../output.js';
import type { StackInfo } from '../stack.js';
import type { ManualStart, RunResult, StepLine } from '../workflow.js';

// The AWS clients' packages take seconds to load: commands load their logic when they run, so that
// --help and a mistyped option answer at once.
const workflow = () => import('../workflow.js');

export function stepLine(step: StepLine, colour?: boolean): string {
  const seconds = step.seconds === undefined ? '' : `${step.seconds.toFixed(1).padStart(7)} s`;
  return `  ${paintVerdict(colour, step.status.padEnd(9))} ${safe(step.name, 40).padEnd(24)} ${seconds}${step.reason ? `  ${safe(step.reason, 300)}` : ''}\n`;
}

export function printRun(ctx: CommandContext, result: RunResult, label: string): void {
  if (ctx.json) {
    ctx.io.out(jsonDocument(result));
    return;
  }
  ctx.io.out(
    `${label} ${result.caseId ? `${result.caseId}: ` : ''}${paintVerdict(ctx.io.colour?.out, result.outcome.toUpperCase())}${result.reason ? ` - ${safe(result.reason, 500)}` : ''}\n`,
  );
}

async function readFinding(file: string): Promise<unknown> {
  const { maxTriggerBytes } = await workflow();
  let text: Buffer;
  try {
    text = await readFile(file);
  } catch (error) {
    throw new UsageError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (text.byteLength > maxTriggerBytes) {
    throw new UsageError(`${file} is ${text.byteLength} bytes; a trigger is at most ${maxTriggerBytes}`);
  }
  let json = text.toString('utf8');
  // A byte-order mark carries no content (Windows editors add one); JSON.parse would refuse it.
  if (json.startsWith('\uFEFF')) json = json.slice(1);
  try {
    return JSON.parse(json);
  } catch (error) {
    throw new UsageError(`${file} is not JSON: ${safe((error as Error).message, 200)}`);
  }
}

/** The execution input, checked before any AWS call: a manual start or a finding file as it is. */
async function triggerFrom(
  ctx: CommandContext,
  values: Values,
): Promise<{ input: unknown; manual?: ManualStart }> {
  const finding = stringValue(values, 'finding');
  const instance = stringValue(values, 'instance');
  if (finding && instance) throw new UsageError('pass either --instance or --finding, not both');
  if (finding) {
    for (const name of ['account', 'instance-region', 'reason']) {
      if (values[name] !== undefined)
        throw new UsageError(`--${name} goes with --instance; a finding names its own`);
    }
    return { input: await readFinding(finding) };
  }
  if (!instance) throw new UsageError('pass --instance i-… with --reason "…", or --finding FILE');
  const reason = stringValue(values, 'reason');
  if (reason === undefined)
    throw new UsageError('--reason is required with --instance: say why, it is recorded');
  const fields = {
    instanceId: instance,
    accountId: stringValue(values, 'account'),
    region: stringValue(values, 'instance-region'),
    reason,
  };
  const { manualStartInput } = await workflow();
  manualStartInput({ ...fields, requestedBy: 'checking' });
  const requestedBy = (await ctx.aws.identity()).arn;
  const manual = manualStartInput({ ...fields, requestedBy });
  return { input: manual, manual };
}

async function caseOfManualStart(
  ctx: CommandContext,
  manual: ManualStart,
  since: Date,
): Promise<string | undefined> {
  const stack = await ctx.stack();
  const { listCases } = await import('../cases.js');
  const rows = await listCases(await ctx.aws.ddb(), stack.casesTable, {
    instance: {
      instanceId: manual.instanceId,
      accountId: manual.accountId ?? stack.local?.env.CORDON_ACCOUNT_ID ?? (await ctx.aws.identity()).account,
      region: manual.region ?? stack.region,
    },
  });
  return rows.find((r) => String(r.openedAt) >= since.toISOString().slice(0, 19))?.caseId;
}

/** The account of an ARN (`arn:aws:sns:us-east-1:111122223333:topic`), if it names one. */
const accountOfArn = (arn: string) => /^arn:[\w-]+:[\w-]+:[\w-]*:(\d{12}):/.exec(arn)?.[1];

/**
 * The settings of Isolate, Revoke and Protect that the plan depends on, as the functions have them:
 * the emulated stack publishes its functions' environment, a deployed one declares it in its template.
 */
async function containmentSettings(ctx: CommandContext, stack: StackInfo) {
  const [{ configSlice, loadConfig }, { functionEnvironment }] = await Promise.all([
    import('../../../functions/core/config.js'),
    import('../stack.js'),
  ]);
  const envOf = async (fn: string) =>
    (stack.local
      ? stack.local.env
      : await functionEnvironment(
          await ctx.aws.cloudformation(),
          stack.stackName,
          `${stack.stackName}-${fn}`,
        )) as Record<string, string | undefined>;
  const [isolate, revoke, protect, intake] = await Promise.all([
    envOf('isolate-instance'),
    envOf('revoke-credentials'),
    envOf('protect-instance'),
    envOf('intake-finding'),
  ]);
  try {
    const i = loadConfig(configSlice('isolate-instance', ['FORENSIC_CIDR']), isolate);
    const r = loadConfig(
      configSlice('revoke-credentials', ['REVOKE_SCOPE', 'REQUIRE_IMDSV2', 'QUARANTINE_PROFILE_NAME']),
      revoke,
    );
    const p = loadConfig(configSlice('protect-instance', ['ASG_MODE', 'MEMBER_ROLE_NAME']), protect);
    const policy = loadConfig(configSlice('intake-finding', ['RESPONSE_POLICY']), intake);
    return {
      stage: stack.stage,
      forensicCidr: i.FORENSIC_CIDR,
      revokeScope: r.REVOKE_SCOPE,
      requireImdsv2: r.REQUIRE_IMDSV2,
      quarantineProfileName: r.QUARANTINE_PROFILE_NAME,
      asgMode: p.ASG_MODE,
      memberRoleName: p.MEMBER_ROLE_NAME,
      responsePolicy: policy.RESPONSE_POLICY,
    };
  } catch (error) {
    throw new CliError(
      `The ${stack.local ? 'LocalStackJson output' : 'template'} of ${stack.stackName} does not show the containment functions' settings: ${safe((error as Error).message, 300)}`,
      'Deploy the stack again from this version of Cordon.',
    );
  }
}

/**
 * `start --dry-run`: the plan, from reads only. In the stack's own account with the CLI's credentials;
 * in another account through the member role of Triage (the Read capability: Describe and Get only).
 */
async function dryRun(ctx: CommandContext, values: Values): Promise<number> {
  if (stringValue(values, 'finding') !== undefined) {
    throw new UsageError('--dry-run goes with --instance; a finding is planned for once Intake has read it');
  }
  if (values.wait !== undefined) throw new UsageError('--wait has nothing to follow with --dry-run');
  const instance = stringValue(values, 'instance');
  if (!instance) throw new UsageError('pass --instance i-… with --dry-run');
  const { manualStartInput } = await workflow();
  const fields = manualStartInput({
    instanceId: instance,
    accountId: stringValue(values, 'account'),
    region: stringValue(values, 'instance-region'),
    reason: stringValue(values, 'reason') ?? 'dry run',
    requestedBy: 'dry-run',
  });
  const stack = await ctx.stack();
  const settings = await containmentSettings(ctx, stack);
  const home =
    stack.local?.env.CORDON_ACCOUNT_ID ??
    accountOfArn(stack.alertTopicArn) ??
    (await ctx.aws.identity()).account;
  const target = {
    instanceId: fields.instanceId,
    accountId: fields.accountId ?? home,
    region: fields.region ?? stack.region,
  };
  const [
    { AutoScalingClient },
    { EC2Client },
    { IAMClient },
    { SSMClient },
    { clientsFactory },
    { planContainment, planText },
  ] = await Promise.all([
    import('@aws-sdk/client-auto-scaling'),
    import('@aws-sdk/client-ec2'),
    import('@aws-sdk/client-iam'),
    import('@aws-sdk/client-ssm'),
    import('../../../functions/core/clients.js'),
    import('../dry-run.js'),
  ]);
  const member =
    target.accountId === home
      ? undefined
      : clientsFactory(
          {
            homeAccountId: home,
            homeRegion: stack.region,
            memberRoleName: settings.memberRoleName,
            functionKey: 'triage-instance',
            maxAttempts: 5,
            ...(ctx.aws.endpoint ? { endpoint: ctx.aws.endpoint } : {}),
          },
          await ctx.aws.sts(),
        )({ accountId: target.accountId, region: target.region });
  const plan = await planContainment(
    target,
    {
      ec2: member ? member(EC2Client) : ctx.aws.clientOf(EC2Client, target.region),
      ssm: member ? member(SSMClient) : ctx.aws.clientOf(SSMClient, target.region),
      iam: member ? member(IAMClient) : ctx.aws.clientOf(IAMClient, target.region),
      autoscaling: member ? member(AutoScalingClient) : ctx.aws.clientOf(AutoScalingClient, target.region),
    },
    settings,
    ctx.now(),
  );
  ctx.io.out(ctx.json ? jsonDocument(plan) : planText(plan));
  return 0;
}

export const startCommand: CommandSpec = {
  path: ['start'],
  summary: 'start a case by hand, for an instance or from a finding file',
  positionals: [],
  options: {
    instance: { type: 'string' },
    account: { type: 'string' },
    'instance-region': { type: 'string' },
    reason: { type: 'string' },
    finding: { type: 'string' },
    wait: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
  },
  help: `usage: cordon start --instance i-… [--account ID] [--instance-region REGION] --reason "…" [--wait]
       cordon start --finding FILE [--wait]
       cordon start --dry-run --instance i-… [--account ID] [--instance-region REGION]

Starts the forensic workflow on one instance: contain it, preserve its evidence, seal the manifest.

  --instance ID             the instance to contain
  --account ID              its account (default: the stack's own account)
  --instance-region REGION  its region (default: the stack's region, --region)
  --reason TEXT             why, in a sentence; recorded on the case with who asked
  --finding FILE            a finding or trigger as JSON, in any shape Intake accepts (a GuardDuty
                            finding or event, a Security Hub finding or custom action, a manual start)
  --wait                    follow the case live, one line per step as it finishes, ending with the
                            outcome
  --dry-run                 print what containment would do to the instance (each interface and the
                            group it would get, the Elastic IPs, the role and its denies, the profile,
                            IMDSv2, the protection, the volumes), decided by the code a real run uses,
                            from reads only: no case, no execution, nothing written. With --json, the
                            plan as a document, the deny policies included. Not with --finding

Against AWS the workflow runs in Step Functions: start waits for Intake's decision, prints the case id
and returns, or with --wait follows the execution to its end. With --endpoint the emulator's Step
Functions stores workflows but does not run them, so the same workflow (the real ASL and handlers)
runs in this process, and start always follows it to the end.`,
  async run(ctx, values) {
    if (values['dry-run'] === true) return dryRun(ctx, values);
    const trigger = await triggerFrom(ctx, values);
    const { followExecution, forensicOutcome, manualExecutionName, runLocally, startExecution } =
      await workflow();
    const stack = await ctx.stack();
    requireLocalRunner(ctx, stack);
    const wait = values.wait === true;
    const onStep = (step: StepLine) => {
      if (!ctx.json) ctx.io.out(stepLine(step, ctx.io.colour?.out));
    };
    const started = ctx.now();
    let result: RunResult;
    if (stack.local) {
      if (!ctx.json)
        ctx.io.out(`Running the forensic workflow in this process against ${ctx.aws.endpoint}\n`);
      const run = await runLocally(stack.local, 'forensics', trigger.input, onStep, { debug: ctx.debug });
      const outcome = forensicOutcome(run.status, run.output, run.error, run.steps);
      const caseId =
        outcome.caseId ??
        (trigger.manual ? await caseOfManualStart(ctx, trigger.manual, started) : undefined);
      result = { status: run.status, ...outcome, ...(caseId ? { caseId } : {}), steps: run.steps };
    } else {
      const sfn = await ctx.aws.sfn();
      const name = trigger.manual ? manualExecutionName(trigger.manual.instanceId, started) : undefined;
      const executionArn = await startExecution(sfn, stack.forensicsStateMachineArn, trigger.input, name);
      if (!ctx.json) ctx.io.out(`Started ${executionArn}\n`);
      // A failed Intake attempt is retried; only a finished one has decided.
      const intakeDecided = (steps: readonly StepLine[]) => steps.some((s) => s.decision !== undefined);
      const run = await followExecution(sfn, executionArn, {
        onStep,
        ...(wait ? {} : { until: intakeDecided }),
        sleep: (ms) => ctx.sleep(ms),
      });
      const intake = run.steps.find((s) => s.decision);
      if (run.status === 'RUNNING' && intake && intake.decision !== 'accepted') {
        // Rejected or joined to an open case: the execution ends without doing anything more.
        result = {
          status: run.status,
          ...(intake.caseId ? { caseId: intake.caseId } : {}),
          outcome: intake.decision ?? 'rejected',
          reason: intake.reason ?? '',
          steps: run.steps,
          executionArn,
        };
      } else if (run.status === 'RUNNING') {
        const caseId = intake?.caseId;
        result = {
          status: run.status,
          ...(caseId ? { caseId } : {}),
          outcome: 'running',
          reason: caseId ? `follow it with: cordon status ${caseId}` : 'Intake has not decided yet',
          steps: run.steps,
          executionArn,
        };
      } else {
        result = {
          status: run.status,
          ...forensicOutcome(run.status, run.output, run.error, run.steps),
          steps: run.steps,
          executionArn,
        };
      }
    }
    printRun(ctx, result, 'Case');
    return result.outcome === 'failed' || result.outcome === 'rejected' ? 1 : 0;
  },
};
