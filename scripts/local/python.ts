/**
 * The Python tools `npm test` and `npm run demo` need (moto and boto3 for the emulated account,
 * cfn-lint for the template tests), found or installed, so that a fresh machine needs only the two
 * commands. Where the system's python3 has them, it is used and nothing is downloaded. Where it lacks
 * them, a project-local virtual environment (`.venv`) gets the pinned `requirements.txt`, once. Where
 * there is no Python 3 at all, one line says what to install.
 *
 * `planPython` is the decision, pure; `probePython` looks at the machine; `ensurePython` acts.
 * `tsx scripts/local/python.ts test|demo` prints, as JSON, the environment to run them with.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** What a command needs: the demo starts moto; the tests also lint the template. */
export type Purpose = 'test' | 'demo';

export const venvDir = '.venv';
export const requirementsFile = 'requirements.txt';
/** Beside the virtual environment: the SHA-256 of the requirements.txt it was installed from. */
export const stampFile = '.cordon-requirements.sha256';

/** What is on the machine, as far as the decision needs to know. */
export interface PythonProbe {
  /** `python3` runs and is Python 3.9 or later (what moto 5 needs). */
  python: boolean;
  /** The system's python3 imports moto, moto.server and boto3. */
  systemModules: boolean;
  /** `cfn-lint` runs from PATH. */
  systemCfnLint: boolean;
  venv: {
    exists: boolean;
    /** Its python imports moto, moto.server and boto3. */
    modules: boolean;
    cfnLint: boolean;
    /** It was installed from the requirements.txt there is now (its stamp matches). */
    current: boolean;
  };
}

export type PythonPlan =
  | { use: 'system' }
  | { use: 'venv'; create: boolean; install: boolean; missing: string[] }
  | { use: 'none'; message: string };

export const noPythonMessage =
  'Python 3 (3.9 or later, with venv) is missing: install it (Debian/Ubuntu: apt install python3 python3-venv; macOS: brew install python3) and run the command again.';

/** The tools `purpose` needs that the system lacks, by their pip names. */
function systemMissing(p: PythonProbe, purpose: Purpose): string[] {
  return [
    ...(p.systemModules ? [] : ['moto', 'boto3']),
    ...(purpose === 'test' && !p.systemCfnLint ? ['cfn-lint'] : []),
  ];
}

/** Which Python to run `purpose` with, and what, if anything, to install first. */
export function planPython(p: PythonProbe, purpose: Purpose): PythonPlan {
  const missing = systemMissing(p, purpose);
  if (missing.length === 0) return { use: 'system' };
  const venvReady =
    p.venv.exists && p.venv.current && p.venv.modules && (purpose === 'demo' || p.venv.cfnLint);
  if (venvReady) return { use: 'venv', create: false, install: false, missing };
  if (!p.python) return { use: 'none', message: noPythonMessage };
  return { use: 'venv', create: !p.venv.exists, install: true, missing };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const binDir = (venv: string) => join(venv, process.platform === 'win32' ? 'Scripts' : 'bin');
const runs = (command: string, args: string[]) => {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
};
const importsMoto = [
  '-c',
  'import sys, moto, moto.server, boto3; sys.exit(0 if sys.version_info >= (3, 9) else 1)',
];

/** Looks at the machine: the system's python3 and cfn-lint, and the project's virtual environment. */
export function probePython(root: string, python = 'python3'): PythonProbe {
  const venv = resolve(root, venvDir);
  const bin = binDir(venv);
  const venvPython = join(bin, 'python');
  const exists = existsSync(venvPython);
  const stamp = join(venv, stampFile);
  const requirements = readFileSync(resolve(root, requirementsFile), 'utf8');
  return {
    python: runs(python, ['-c', 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)']),
    systemModules: runs(python, importsMoto),
    systemCfnLint: runs('cfn-lint', ['--version']),
    venv: {
      exists,
      modules: exists && runs(venvPython, importsMoto),
      cfnLint: exists && runs(join(bin, 'cfn-lint'), ['--version']),
      current: existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === sha256(requirements),
    },
  };
}

export class PythonSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PythonSetupError';
  }
}

/**
 * Makes sure `purpose` can run, and returns the environment to run it with: nothing for the system's
 * Python; for the virtual environment, CORDON_PYTHON (which moto.ts starts) and PATH with its bin
 * first (where cfn-lint is). Installing says so on `log`, once; a failure throws, naming the step.
 */
export function ensurePython(
  root: string,
  purpose: Purpose,
  log: (line: string) => void,
  python = 'python3',
): Record<string, string> {
  const plan = planPython(probePython(root, python), purpose);
  if (plan.use === 'system') return {};
  if (plan.use === 'none') throw new PythonSetupError(plan.message);
  const venv = resolve(root, venvDir);
  const bin = binDir(venv);
  if (plan.install) {
    log(
      `Python: ${plan.missing.join(', ')} missing from ${python}; installing the pinned ${requirementsFile} into ${venvDir}/ (once).`,
    );
    const step = (what: string, command: string, args: string[]) => {
      const r = spawnSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
      if (r.error || r.status !== 0) {
        throw new PythonSetupError(
          `${what} failed (${r.error?.message ?? `exit ${r.status}`}): ${command} ${args.join(' ')}`,
        );
      }
    };
    if (plan.create) step(`Creating ${venvDir}`, python, ['-m', 'venv', venv]);
    step(`Installing ${requirementsFile}`, join(bin, 'python'), [
      '-m',
      'pip',
      'install',
      '--disable-pip-version-check',
      '--quiet',
      '-r',
      resolve(root, requirementsFile),
    ]);
    writeFileSync(
      join(venv, stampFile),
      `${sha256(readFileSync(resolve(root, requirementsFile), 'utf8'))}\n`,
    );
  }
  return {
    CORDON_PYTHON: join(bin, 'python'),
    PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`,
  };
}

// `tsx scripts/local/python.ts test|demo`: the environment as JSON on stdout, messages on stderr.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const purpose = process.argv[2];
  if (purpose !== 'test' && purpose !== 'demo') {
    process.stderr.write('usage: tsx scripts/local/python.ts test|demo\n');
    process.exit(2);
  }
  try {
    const env = ensurePython(resolve(import.meta.dirname, '..', '..'), purpose, (line) =>
      process.stderr.write(`${line}\n`),
    );
    process.stdout.write(`${JSON.stringify(env)}\n`);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  }
}
