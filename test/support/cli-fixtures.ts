import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStacksCommand,
} from '@aws-sdk/client-cloudformation';
import { runCli } from '../../scripts/cli/main.js';
import type { Io } from '../../scripts/cli/output.js';
import type { LocalCase } from '../../scripts/local/case.js';
import { type LocalStack, localRegion, stackOutputsTemplate } from '../../scripts/local/stack.js';
import { readRealEvent } from './fixtures.js';

/** The real GuardDuty finding (GetFindings shape) the CLI's demo cases start from. */
export const demoFinding = 'gd_api_getfindings_backdoor_cc_activity_b_dns_count3.json';

export const emulator = (endpoint: string) => ({
  endpoint,
  region: localRegion,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  maxAttempts: 1,
});

/**
 * Publishes the emulated stack's outputs in moto's CloudFormation, as a deployed stack has them, unless
 * the local stack already did. The CLI finds its resources there.
 */
export async function publishStack(endpoint: string, stack: LocalStack): Promise<void> {
  const cfn = new CloudFormationClient(emulator(endpoint));
  const existing = await cfn
    .send(new DescribeStacksCommand({ StackName: stack.stackName }))
    .then((out) => out.Stacks?.[0])
    .catch(() => undefined);
  if (existing) return;
  await cfn.send(
    new CreateStackCommand({
      StackName: stack.stackName,
      TemplateBody: JSON.stringify(stackOutputsTemplate(stack)),
    }),
  );
}

/** One case, end to end, on the emulator: the demo's own path, with a real finding. */
export async function demoCase(endpoint: string): Promise<LocalCase & { caseId: string }> {
  // The functions' logger reads its level when first imported: set it before loading them.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  const { runLocalCase } = await import('../../scripts/local/case.js');
  const run = await runLocalCase(readRealEvent(demoFinding), { endpoint });
  await publishStack(endpoint, run.stack);
  const caseId = run.report.caseId;
  if (!caseId) throw new Error(`the demo case did not open: ${run.report.outcome} ${run.report.reason}`);
  return { ...run, caseId };
}

/** An Io that keeps what a command wrote, and answers a confirmation with `answer`. */
export function capturedIo(answer = ''): Io & { stdout: string; stderr: string; asked: string[] } {
  const io = {
    stdout: '',
    stderr: '',
    asked: [] as string[],
    errIsTty: false,
    inIsTty: answer !== '',
    out(text: string) {
      io.stdout += text;
    },
    err(text: string) {
      io.stderr += text;
    },
    async ask(question: string) {
      io.asked.push(question);
      return answer;
    },
  };
  return io;
}

/** Runs `cordon ARGS --endpoint URL` in this process, as a person would from a shell. */
export async function cordon(
  endpoint: string,
  args: string[],
  options: { answer?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string; asked: string[] }> {
  const io = capturedIo(options.answer);
  const code = await runCli([...args, '--endpoint', endpoint], { io, sleep: async () => undefined });
  return { code, stdout: io.stdout, stderr: io.stderr, asked: io.asked };
}
