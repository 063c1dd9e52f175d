import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { paint, paintVerdict, wantsColour } from '../../scripts/cli/colour.js';
import { runCli } from '../../scripts/cli/main.js';
import { repoRoot } from '../../scripts/local/runner.js';
import { capturedIo } from '../support/cli-fixtures.js';
import { cordonOnAws, mockDeployedStack } from '../support/cli-mocks.js';

const ddb = mockClient(DynamoDBDocumentClient);
const version = (JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')) as { version: string }).version;

beforeEach(() => {
  ddb.reset();
  mockDeployedStack();
});

async function cordon(args: string[], io = capturedIo()) {
  const code = await runCli(args, { io });
  return { code, stdout: io.stdout, stderr: io.stderr };
}

describe('cordon --version', () => {
  it("prints package.json's version and touches nothing", async () => {
    expect(await cordon(['--version'])).toEqual({ code: 0, stdout: `cordon ${version}\n`, stderr: '' });
  });

  it('prints it as JSON with --json', async () => {
    const { stdout } = await cordon(['--version', '--json']);

    expect(JSON.parse(stdout)).toEqual({ version });
  });
});

describe('errors with --json', () => {
  it('are one JSON document on stdout, with the type, the sentence, the hint and the exit code', async () => {
    ddb.on(GetCommand).resolves({});
    const unknown = '20250101T000000Z-i-0123456789abcdef0-0000';

    const { code, stdout, stderr } = await cordonOnAws(['status', unknown, '--json']);

    expect(code).toBe(3);
    expect(JSON.parse(stdout)).toEqual({
      error: {
        type: 'UnknownCaseError',
        message: `There is no case ${unknown} in the table cordon-cases-dev.`,
        hint: 'List the cases with `cordon cases`; check --stage and --region.',
        exitCode: 3,
      },
    });
    expect(stderr).toContain(`cordon: There is no case ${unknown}`);
  });

  it('cover a command line that does not parse', async () => {
    const { code, stdout } = await cordon(['cases', '--bogus', '--json']);

    expect(code).toBe(2);
    expect(JSON.parse(stdout)).toMatchObject({
      error: {
        type: 'UsageError',
        message: expect.stringContaining("Unknown option '--bogus'"),
        exitCode: 2,
      },
    });
  });

  it('escape what AWS or a file put in them, as every JSON document does', async () => {
    const { stdout } = await cordon(['status', 'x\u001b[2J\u202e', '--json']);

    expect(stdout).not.toContain('\u001b');
    expect(stdout).not.toContain('\u202e');
    expect(JSON.parse(stdout).error.message).toMatch(/^"x\\+u001b\[2J\\+u202e" is not a Cordon case id/);
  });
});

describe('cordon completion', () => {
  async function bashCompletes(words: string[]): Promise<string[]> {
    const { stdout: script } = await cordon(['completion', 'bash']);
    const quoted = words.map((w) => `'${w}'`).join(' ');
    const run = spawnSync(
      'bash',
      [
        '-c',
        `${script}\nCOMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _cordon; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      { encoding: 'utf8' },
    );
    expect(run.stderr).toBe('');
    return run.stdout.split('\n').filter(Boolean);
  }

  it('completes the commands, then a group’s subcommands', async () => {
    expect(await bashCompletes(['cordon', 'st'])).toEqual(['start', 'status']);
    expect(await bashCompletes(['cordon', 're'])).toEqual(['release', 'reject', 'redrive']);
    expect(await bashCompletes(['cordon', 'app'])).toEqual(['approve']);
    expect(await bashCompletes(['cordon', 'reject', 'CASE', '--r'])).toEqual(
      expect.arrayContaining(['--reason']),
    );
    expect(await bashCompletes(['cordon', 'evidence', ''])).toEqual(['ls', 'get', 'verify', 'disk']);
    expect(await bashCompletes(['cordon', 'completion', ''])).toEqual(['bash', 'zsh']);
  });

  it('completes a command’s own options and the global ones, and nothing it does not take', async () => {
    const options = await bashCompletes(['cordon', 'evidence', 'get', 'CASE', '--']);

    expect(options).toEqual(expect.arrayContaining(['--out', '--part-size', '--region', '--json']));
    expect(options).not.toContain('--dir');
    expect(options).not.toContain('--stack-region');
  });

  it('leaves a value (a folder, a case id) to the shell’s own completion', async () => {
    expect(await bashCompletes(['cordon', 'evidence', 'get', 'CASE', '--out', 'ca'])).toEqual([]);
  });

  it('gives zsh the same function through bashcompinit', async () => {
    const { stdout } = await cordon(['completion', 'zsh']);

    expect(stdout.startsWith('#compdef cordon\nautoload -U +X bashcompinit && bashcompinit\n')).toBe(true);
    expect(stdout).toContain('complete -o default -F _cordon cordon');
  });

  it('refuses another shell by name', async () => {
    const { code, stderr } = await cordon(['completion', 'fish']);

    expect(code).toBe(2);
    expect(stderr).toContain('"fish" is not a shell cordon completes: bash or zsh');
  });
});

describe('colour', () => {
  it('follows FORCE_COLOR, then NO_COLOR, then whether the stream is a terminal', () => {
    const tty = { isTTY: true };
    const pipe = { isTTY: false };

    expect(wantsColour(tty, {})).toBe(true);
    expect(wantsColour(pipe, {})).toBe(false);
    expect(wantsColour(tty, { NO_COLOR: '1' })).toBe(false);
    expect(wantsColour(tty, { NO_COLOR: '' })).toBe(true);
    expect(wantsColour(tty, { TERM: 'dumb' })).toBe(false);
    expect(wantsColour(pipe, { FORCE_COLOR: '1' })).toBe(true);
    expect(wantsColour(pipe, { FORCE_COLOR: '' })).toBe(true);
    expect(wantsColour(tty, { FORCE_COLOR: '0', NO_COLOR: '' })).toBe(false);
    expect(wantsColour(pipe, { FORCE_COLOR: '1', NO_COLOR: '1' })).toBe(true);
  });

  it('paints verdicts through styleText, and leaves the text alone when colour is off', () => {
    expect(paintVerdict(true, 'PASS ')).toBe('\u001b[32mPASS \u001b[39m');
    expect(paintVerdict(true, 'FAIL')).toBe('\u001b[31mFAIL\u001b[39m');
    expect(paintVerdict(true, 'NOT CHECKED')).toBe('\u001b[33mNOT CHECKED\u001b[39m');
    expect(paintVerdict(false, 'PASS')).toBe('PASS');
    expect(paint(undefined, 'red', 'cordon:')).toBe('cordon:');
  });

  it('colours the error prefix on a colour terminal, and only there', async () => {
    const coloured = Object.assign(capturedIo(), { colour: { out: true, err: true } });

    const { stderr } = await cordon(['nosuch'], coloured);
    const plain = await cordon(['nosuch']);

    expect(stderr.startsWith('\u001b[31mcordon:\u001b[39m unknown command "nosuch"')).toBe(true);
    expect(plain.stderr.startsWith('cordon: unknown command "nosuch"')).toBe(true);
  });
});
