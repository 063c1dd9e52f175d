/**
 * `cordon`: the command line for responders and investigators. Works against a deployed stack with
 * normal AWS credentials, or against the emulated account with --endpoint. See docs/investigators.md.
 */
import { parseArgs } from 'node:util';
import { regionSchema } from '../../functions/core/case.js';
import { Aws } from './aws.js';
import { paint } from './colour.js';
import { approveCommand, rejectCommand } from './commands/approve.js';
import { blockIpCommand } from './commands/block-ip.js';
import { casesCommand, statusCommand } from './commands/cases.js';
import { evidenceDiskCommand } from './commands/disk.js';
import { doctorCommand } from './commands/doctor.js';
import { evidenceGetCommand, evidenceLsCommand, evidenceVerifyCommand } from './commands/evidence.js';
import { redriveCommand } from './commands/redrive.js';
import { releaseCommand } from './commands/release.js';
import { startCommand } from './commands/start.js';
import { unblockCommand } from './commands/unblock.js';
import { completionScript, type Shell, shells } from './completion.js';
import {
  type CommandContext,
  type CommandSpec,
  type OptionSpec,
  stageSchema,
  type Values,
} from './context.js';
import { exitCodes, explain, UsageError } from './errors.js';
import { type Io, jsonDocument, processIo, safe } from './output.js';
import type { StackInfo } from './stack.js';
import { cliVersion } from './version.js';

const completionCommand: CommandSpec = {
  path: ['completion'],
  summary: 'print the shell completion script for bash or zsh',
  positionals: ['SHELL'],
  options: {},
  help: `usage: cordon completion bash|zsh

Prints a script that completes cordon's commands and options in that shell. Load it from your profile:
  bash (~/.bashrc):  eval "$(cordon completion bash)"
  zsh (~/.zshrc):    eval "$(cordon completion zsh)"   (after compinit)`,
  async run(ctx, _values, positionals) {
    const shell = positionals[0];
    if (!shells.includes(shell as Shell)) {
      throw new UsageError(
        shell === undefined
          ? 'SHELL is missing: cordon completion bash, or cordon completion zsh'
          : `${JSON.stringify(safe(shell, 20))} is not a shell cordon completes: bash or zsh`,
      );
    }
    ctx.io.out(completionScript(shell as Shell, commands, globalOptions));
    return exitCodes.ok;
  },
};

export const commands: CommandSpec[] = [
  startCommand,
  statusCommand,
  casesCommand,
  evidenceLsCommand,
  evidenceGetCommand,
  evidenceVerifyCommand,
  evidenceDiskCommand,
  releaseCommand,
  approveCommand,
  rejectCommand,
  redriveCommand,
  blockIpCommand,
  unblockCommand,
  doctorCommand,
  completionCommand,
];

const globalOptions: Record<string, OptionSpec> = {
  stage: { type: 'string' },
  region: { type: 'string' },
  // The stack's region, before --region took that meaning in every command: kept so that old scripts run.
  'stack-region': { type: 'string' },
  profile: { type: 'string' },
  endpoint: { type: 'string' },
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
};

const globalHelp = `Options for every command:
  --stage STAGE          the Cordon stage: the stack is cordon-STAGE (default dev)
  --region REGION        the AWS region of the stack and of every call, as in the AWS CLI (default:
                         AWS_REGION, then AWS_DEFAULT_REGION, then the profile's region)
  --profile NAME         the AWS profile to use
  --endpoint URL         use an emulated AWS account (moto) at URL instead of AWS: region us-east-1
                         and credentials test/test unless set; workflows then run in this process
  --json                 print one JSON document on stdout
  --debug                print stack traces and the functions' logs
  -h, --help             this help
  --version              print cordon's version

Exit codes: 0 done, 1 a check or the case failed, 2 the command line is wrong, 3 could not run
(credentials, permissions, no stack, unknown case, network).`;

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length));
  const list = commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`).join('\n');
  return `usage: cordon COMMAND [options]

Contain a compromised EC2 instance, follow its case and prove its evidence intact.

Commands:
${list}

Run cordon COMMAND --help for a command's options.

${globalHelp}
`;
}

/**
 * `--region`, the region of the stack and of every call (the AWS CLI's meaning), or the deprecated
 * `--stack-region` it replaced, checked before any call.
 */
function regionOption(values: Values, io: Io): string | undefined {
  const region = typeof values.region === 'string' ? values.region : undefined;
  const old = typeof values['stack-region'] === 'string' ? values['stack-region'] : undefined;
  if (old !== undefined) {
    if (region !== undefined) throw new UsageError('pass --region only (--stack-region is its old name)');
    io.err(
      'cordon: --stack-region is deprecated: use --region, which now means the same in every command.\n',
    );
  }
  const given = region ?? old;
  if (given !== undefined && !regionSchema.safeParse(given).success) {
    throw new UsageError(
      `${region !== undefined ? '--region' : '--stack-region'} is not an AWS region (such as eu-west-1)`,
    );
  }
  return given;
}

const commandHelp = (c: CommandSpec) => `${c.help}\n\n${globalHelp}\n`;

/** Every option any command takes, so that the command can be found before its own options are known. */
function allOptions(): Record<string, OptionSpec> {
  const all: Record<string, OptionSpec> = { ...globalOptions };
  for (const c of commands) Object.assign(all, c.options);
  return all;
}

function findCommand(positionals: string[]): CommandSpec | undefined {
  return commands
    .filter((c) => c.path.every((word, i) => positionals[i] === word))
    .sort((a, b) => b.path.length - a.path.length)[0];
}

export interface RunOptions {
  io?: Io;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

/** Runs one command line and returns the exit code; never throws, never prints a stack unless --debug. */
export async function runCli(argv: string[], options: RunOptions = {}): Promise<number> {
  const io = options.io ?? processIo();
  let debug = argv.includes('--debug');
  // Known before parsing, so that an error in the command line itself is reported as JSON too.
  const json = argv.includes('--json');
  let endpoint: string | undefined;
  try {
    const loose = parseArgs({ args: argv, options: allOptions(), allowPositionals: true, strict: false });
    const command = findCommand(loose.positionals);
    if (loose.values.version === true && !loose.values.help) {
      io.out(json ? jsonDocument({ version: cliVersion() }) : `cordon ${cliVersion()}\n`);
      return exitCodes.ok;
    }
    if (!command) {
      const [first] = loose.positionals;
      if (loose.values.help || first === undefined) {
        io.out(mainHelp());
        return first === undefined && !loose.values.help ? exitCodes.usage : exitCodes.ok;
      }
      if (first === 'evidence') {
        const subs = commands.filter((c) => c.path[0] === 'evidence');
        io.out(
          `usage: cordon evidence ls|get|verify|disk CASE\n\n${subs.map((c) => `  ${c.path.join(' ')}  ${c.summary}`).join('\n')}\n`,
        );
        return loose.values.help ? exitCodes.ok : exitCodes.usage;
      }
      throw new UsageError(
        `unknown command ${JSON.stringify(safe(first, 40))}`,
        'Run cordon --help for the list.',
      );
    }
    let parsed: { values: Values; positionals: string[] };
    try {
      parsed = parseArgs({
        args: argv,
        options: { ...globalOptions, ...command.options },
        allowPositionals: true,
        strict: true,
      }) as { values: Values; positionals: string[] };
    } catch (error) {
      throw new UsageError(
        safe((error as Error).message, 300),
        `Run cordon ${command.path.join(' ')} --help.`,
      );
    }
    const { values } = parsed;
    if (values.help) {
      io.out(commandHelp(command));
      return exitCodes.ok;
    }
    const positionals = parsed.positionals.slice(command.path.length);
    if (positionals.length > command.positionals.length) {
      throw new UsageError(
        `unexpected argument ${JSON.stringify(safe(positionals[command.positionals.length], 60))}`,
        `Run cordon ${command.path.join(' ')} --help.`,
      );
    }
    debug = values.debug === true;
    endpoint = typeof values.endpoint === 'string' ? values.endpoint : undefined;
    if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) {
      throw new UsageError('--endpoint must be an http(s) URL such as http://127.0.0.1:5000');
    }
    const stageValue = typeof values.stage === 'string' ? values.stage : 'dev';
    const stage = stageSchema.safeParse(stageValue);
    if (!stage.success) throw new UsageError(`--stage: ${stage.error.issues[0]?.message ?? 'invalid'}`);
    const stackRegion = regionOption(values, io);
    const aws = new Aws({
      ...(endpoint ? { endpoint } : {}),
      ...(typeof values.profile === 'string' ? { profile: values.profile } : {}),
      ...(stackRegion ? { region: stackRegion } : {}),
    });
    let stack: Promise<StackInfo> | undefined;
    const ctx: CommandContext = {
      io,
      aws,
      stage: stage.data,
      json: values.json === true,
      debug,
      stack: () => {
        stack ??= import('./stack.js').then(async ({ discoverStack }) =>
          discoverStack(
            await aws.cloudformation(),
            stage.data,
            await aws.region(),
            endpoint ? { endpoint } : {},
          ),
        );
        return stack;
      },
      now: options.now ?? (() => new Date()),
      sleep: options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
    };
    return await command.run(ctx, values, positionals);
  } catch (error) {
    const e = explain(error, endpoint ? { endpoint } : {});
    if (json) {
      // Scripts read stdout: the error is the one JSON document there, as a result would have been.
      io.out(
        jsonDocument({
          error: {
            type: e.type,
            message: e.message,
            ...(e.hint ? { hint: e.hint } : {}),
            exitCode: e.exitCode,
          },
        }),
      );
    }
    io.err(`${paint(io.colour?.err, 'red', 'cordon:')} ${e.message}\n`);
    if (e.hint) io.err(`  ${e.hint}\n`);
    if (debug)
      io.err(
        `${String((error as Error)?.stack ?? error)
          .split('\n')
          // The indentation of the frames stays; everything else is shown as `safe` shows text.
          .map((line) => `${/^ */.exec(line)?.[0] ?? ''}${safe(line, 2000)}`)
          .join('\n')}\n`,
      );
    else if (e.unrecognised) io.err('  (--debug shows the details)\n');
    return e.exitCode;
  }
}

/** The `cordon` binary's entry: runs the command line and exits with its code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  process.exitCode = await runCli(argv);
}
