import { z } from 'zod';
import {
  blockCaseIdPattern,
  caseIdPattern,
  credentialCaseIdPattern,
  violationCaseIdPattern,
} from '../../functions/core/case.js';
import type { Aws } from './aws.js';
import { CliError, UsageError } from './errors.js';
import { type Io, safe } from './output.js';
import type { StackInfo } from './stack.js';

export type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };
export type Values = Record<string, string | boolean | string[] | undefined>;

/** What every command gets: where to write, AWS, the stack (found on first use), the clock. */
export interface CommandContext {
  io: Io;
  aws: Aws;
  stage: string;
  json: boolean;
  debug: boolean;
  stack(): Promise<StackInfo>;
  now(): Date;
  /** How long to wait between polls of a running execution (tests pass a shorter one). */
  sleep(ms: number): Promise<void>;
}

export interface CommandSpec {
  /** `['evidence', 'verify']` for `cordon evidence verify`. */
  path: string[];
  summary: string;
  /** The synopsis and this command's own options; the global options are appended by --help. */
  help: string;
  options: Record<string, OptionSpec>;
  /** Names of the positional arguments, e.g. `['CASE']`. */
  positionals: string[];
  run(ctx: CommandContext, values: Values, positionals: string[]): Promise<number>;
}

export function stringValue(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export const stageSchema = z.string().regex(/^[a-z0-9-]{1,16}$/, 'a stage is 1 to 16 of a-z, 0-9 and -');

/** Every kind of case `cordon cases` lists: an instance's, an IP-range block, credentials, a policy violation. */
const caseIdPatterns = [caseIdPattern, blockCaseIdPattern, credentialCaseIdPattern, violationCaseIdPattern];

/** The case is an instance's (the forensic workflow's), not a playbook's. */
export const isInstanceCase = (caseId: string) => caseIdPattern.test(caseId);

/** Checks a CASE argument before any call is made with it: any case id `cordon cases` lists. */
export function parseCaseId(value: string | undefined): string {
  if (!value)
    throw new UsageError('CASE is missing: pass a case id such as 20261127T201003Z-i-0123456789abcdef0-3fa9');
  if (!caseIdPatterns.some((p) => p.test(value))) {
    throw new UsageError(
      `${JSON.stringify(safe(value, 80))} is not a Cordon case id (they look like 20261127T201003Z-i-0123456789abcdef0-3fa9, or …-block-3fa9c2d1-07be for a block; cordon cases lists them).`,
    );
  }
  return value;
}

/**
 * moto's Step Functions stores workflows without running them: against an endpoint, a workflow runs
 * in this process, which needs the local stack the emulated stack publishes (`LocalStackJson`).
 */
export function requireLocalRunner(ctx: CommandContext, stack: StackInfo): void {
  if (ctx.aws.endpoint && !stack.local) {
    throw new CliError(
      `The stack ${stack.stackName} at ${ctx.aws.endpoint} publishes no LocalStackJson output, so its workflows cannot run here.`,
      'Deploy the emulated stack with the local runner (npm run demo -- --endpoint URL).',
    );
  }
}
