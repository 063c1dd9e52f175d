import { CordonError } from '../../../functions/core/errors.js';
import { typedText } from '../../../functions/core/text.js';
import {
  type CommandContext,
  type CommandSpec,
  isInstanceCase,
  parseCaseId,
  stringValue,
} from '../context.js';
import { CliError, exitCodes, UsageError } from '../errors.js';
import { jsonDocument, safe } from '../output.js';

/** Refusals of an answer, by the name functions/core/approval.ts gives them: the case went its way. */
const refusals = new Set([
  'ApprovalNotWaitingError',
  'ApprovalWindowClosedError',
  'ApprovalAlreadyDecidedError',
  'ApprovalTokenMismatchError',
  'ApprovalDeliveryError',
  'CaseNotFoundError',
]);

/** A refused answer, keeping the refusal's name: exit code 1, the decision was not taken. */
class ApprovalRefused extends CliError {
  constructor(error: CordonError) {
    super(error.message, 'See the case with `cordon status CASE`.', exitCodes.failed);
    this.name = error.name;
  }
}

async function answer(
  ctx: CommandContext,
  caseId: string,
  decision: 'approved' | 'rejected',
  reason?: string,
): Promise<number> {
  const stack = await ctx.stack();
  const [{ decide }, by, ddb] = await Promise.all([
    import('../approval.js'),
    ctx.aws.identity().then((i) => i.arn),
    ctx.aws.ddb(),
  ]);
  let transport: import('../approval.js').AnswerTransport;
  if (stack.local) {
    const { localTaskTokens } = await import('../../local/task-tokens.js');
    const endpoint = String(stack.local.env.AWS_ENDPOINT_URL);
    transport = { local: localTaskTokens(endpoint, stack.region, stack.casesTable) };
  } else {
    transport = { sfn: await ctx.aws.sfn() };
  }
  try {
    const done = await decide(
      { caseId, decision, by, ...(reason ? { reason } : {}) },
      { ddb, table: stack.casesTable, transport, now: () => ctx.now() },
    );
    if (ctx.json) ctx.io.out(jsonDocument({ caseId, ...done }));
    else {
      ctx.io.out(
        `Case ${caseId}: ${decision} by ${safe(by, 300)} at ${done.at}; the case goes on as ${done.goesOn}.\n`,
      );
    }
    return exitCodes.ok;
  } catch (error) {
    if (error instanceof CordonError && refusals.has(error.name)) throw new ApprovalRefused(error);
    throw error;
  }
}

function caseOf(positionals: string[]): string {
  const caseId = parseCaseId(positionals[0]);
  if (!isInstanceCase(caseId))
    throw new UsageError(`${caseId} is not an instance's case: only those wait for approval`);
  return caseId;
}

export const approveCommand: CommandSpec = {
  path: ['approve'],
  summary: "approve a waiting case's containment",
  positionals: ['CASE'],
  options: {},
  help: `usage: cordon approve CASE

Approves the containment of a case whose response policy asked for a person (approve): the workflow,
which has been gathering the evidence meanwhile, isolates the instance, revokes its credentials and
protects it. Recorded on the case with your identity (sts:GetCallerIdentity) and the time.

Refused, exit code 1, when the case does not exist, is not waiting, was already decided (by whom and
when is said), or its approval window closed (when, and what the case went on as).
List the waiting cases with \`cordon cases --waiting\`.`,
  async run(ctx, _values, positionals) {
    return answer(ctx, caseOf(positionals), 'approved');
  },
};

export const rejectCommand: CommandSpec = {
  path: ['reject'],
  summary: "reject a waiting case's containment: evidence only",
  positionals: ['CASE'],
  options: { reason: { type: 'string' } },
  help: `usage: cordon reject CASE --reason TEXT

Rejects the containment of a case waiting for approval: the instance is NOT contained; its evidence
is sealed and the case ends as evidence only. Recorded on the case with your identity, the time and
the reason.

  --reason TEXT   why (required; recorded and sent in the case's notification)

Refused, exit code 1, in the same cases as \`cordon approve\`.`,
  async run(ctx, values, positionals) {
    const caseId = caseOf(positionals);
    const given = stringValue(values, 'reason');
    if (given === undefined) throw new UsageError('--reason is required: say why containment is rejected');
    const reason = typedText.safeParse(given);
    if (!reason.success) throw new UsageError(`--reason: ${reason.error.issues[0]?.message ?? 'not usable'}`);
    return answer(ctx, caseId, 'rejected', reason.data);
  },
};
