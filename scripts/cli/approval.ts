import type { SFNClient } from '@aws-sdk/client-sfn';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { type ApprovalAnswer, decideApproval } from '../../functions/core/approval.js';
import { CaseStore } from '../../functions/core/cases.js';
import type { TaskTokens } from '../local/runner.js';

/**
 * How a decision reaches the waiting workflow: SendTaskSuccess with the stored token on AWS; against
 * the emulated account, the local runner's token store (scripts/local/task-tokens.ts), since moto's
 * Step Functions runs no execution. Everything before it is the same code.
 */
export type AnswerTransport = { sfn: SFNClient } | { local: TaskTokens };

export interface DecideOptions {
  ddb: DynamoDBDocumentClient;
  table: string;
  transport: AnswerTransport;
  now?: () => Date;
}

/**
 * `cordon approve` and `cordon reject`, and the demo's `--approve`: the one way a person's decision is
 * taken (functions/core/approval.ts), then handed over by the transport.
 */
export async function decide(
  request: { caseId: string; decision: 'approved' | 'rejected'; by: string; reason?: string },
  options: DecideOptions,
): Promise<ApprovalAnswer> {
  const { transport } = options;
  const answer = async (token: string, output: ApprovalAnswer) => {
    if ('local' in transport) {
      await transport.local.answer(token, { output });
      return;
    }
    const { SendTaskSuccessCommand } = await import('@aws-sdk/client-sfn');
    await transport.sfn.send(
      new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify(output) }),
    );
  };
  return decideApproval(request, {
    ddb: options.ddb,
    table: options.table,
    cases: new CaseStore(options.ddb, options.table),
    answer,
    ...(options.now ? { now: options.now } : {}),
  });
}
