import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ensurePython,
  noPythonMessage,
  type PythonProbe,
  PythonSetupError,
  planPython,
  stampFile,
} from '../../scripts/local/python.js';
import { repoRoot } from '../../scripts/local/runner.js';

const everything: PythonProbe = {
  python: true,
  systemModules: true,
  systemCfnLint: true,
  venv: { exists: false, modules: false, cfnLint: false, current: false },
};
const readyVenv = { exists: true, modules: true, cfnLint: true, current: true };

describe('which Python the tests and the demo run with', () => {
  it("is the system's where it has moto, boto3 and cfn-lint: nothing is installed", () => {
    expect(planPython(everything, 'test')).toEqual({ use: 'system' });
  });

  it("is the system's for the demo without cfn-lint, which only the tests need", () => {
    expect(planPython({ ...everything, systemCfnLint: false }, 'demo')).toEqual({ use: 'system' });
  });

  it('creates the venv and installs the requirements where the system lacks a tool', () => {
    expect(planPython({ ...everything, systemModules: false }, 'test')).toEqual({
      use: 'venv',
      create: true,
      install: true,
      missing: ['moto', 'boto3'],
    });
    expect(planPython({ ...everything, systemCfnLint: false }, 'test')).toMatchObject({
      use: 'venv',
      missing: ['cfn-lint'],
    });
  });

  it('uses the venv as it is once it holds the current requirements', () => {
    expect(planPython({ ...everything, systemModules: false, venv: readyVenv }, 'test')).toMatchObject({
      use: 'venv',
      create: false,
      install: false,
    });
  });

  it('installs again into the venv when requirements.txt changed, or a tool is gone from it', () => {
    for (const venv of [
      { ...readyVenv, current: false },
      { ...readyVenv, cfnLint: false },
    ]) {
      expect(planPython({ ...everything, systemModules: false, venv }, 'test')).toMatchObject({
        use: 'venv',
        create: false,
        install: true,
      });
    }
  });

  it('says in one line what to install when there is no Python 3', () => {
    const plan = planPython(
      { python: false, systemModules: false, systemCfnLint: false, venv: everything.venv },
      'demo',
    );

    expect(plan).toEqual({ use: 'none', message: noPythonMessage });
    expect(noPythonMessage).not.toContain('\n');
    expect(noPythonMessage).toContain('apt install python3 python3-venv');
  });
});

// Each case starts real processes (the system's cfn-lint --version alone takes seconds on a busy machine).
describe('ensurePython', { timeout: 60_000 }, () => {
  let root: string;
  let log: string[];

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'cordon-python-'));
    await copyFile(join(repoRoot, 'requirements.txt'), join(root, 'requirements.txt'));
    log = [];
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('changes nothing on this machine, whose python3 has every tool', () => {
    expect(ensurePython(repoRoot, 'test', (line) => log.push(line))).toEqual({});
    expect(log).toEqual([]);
  });

  it('fails with the one line when the python command does not exist', () => {
    expect(() => ensurePython(root, 'demo', (line) => log.push(line), join(root, 'no-python3'))).toThrow(
      new PythonSetupError(noPythonMessage),
    );
  });

  it('creates .venv, installs requirements.txt into it saying so, and the next time only uses it', async () => {
    // A python3 without moto: `-m venv DIR` makes DIR/bin/python (this same script, which there has
    // every module), `-m pip install` puts a cfn-lint beside it. Every call is written to calls.log.
    const fake = join(root, 'python3');
    await writeFile(
      fake,
      `#!/bin/sh
echo "$@" >> "${root}/calls.log"
case "$1" in
  -c) case "$2" in *moto*) case "$0" in *.venv*) exit 0 ;; *) exit 1 ;; esac ;; *) exit 0 ;; esac ;;
  -m) case "$2" in
        venv) mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0 ;;
        pip) printf '#!/bin/sh\\nexit 0\\n' > "$(dirname "$0")/cfn-lint" && chmod +x "$(dirname "$0")/cfn-lint" && exit 0 ;;
      esac ;;
esac
exit 1
`,
    );
    await chmod(fake, 0o755);

    const env = ensurePython(root, 'demo', (line) => log.push(line), fake);

    expect(log).toEqual([
      `Python: moto, boto3 missing from ${fake}; installing the pinned requirements.txt into .venv/ (once).`,
    ]);
    expect(env.CORDON_PYTHON).toBe(join(root, '.venv', 'bin', 'python'));
    expect(env.PATH?.startsWith(`${join(root, '.venv', 'bin')}:`)).toBe(true);
    const calls = await readFile(join(root, 'calls.log'), 'utf8');
    expect(calls).toContain(`-m venv ${join(root, '.venv')}`);
    expect(calls).toContain(
      `-m pip install --disable-pip-version-check --quiet -r ${join(root, 'requirements.txt')}`,
    );
    expect((await readFile(join(root, '.venv', stampFile), 'utf8')).trim()).toMatch(/^[0-9a-f]{64}$/);

    log = [];
    const again = ensurePython(root, 'demo', (line) => log.push(line), fake);

    expect(again).toEqual(env);
    expect(log).toEqual([]);
    expect((await readFile(join(root, 'calls.log'), 'utf8')).match(/pip install/g)).toHaveLength(1);
  });

  it('names the step that failed when the venv cannot be created', async () => {
    const fake = join(root, 'python3');
    await writeFile(
      fake,
      '#!/bin/sh\ncase "$1 $2" in "-c "*moto*) exit 1 ;; "-c "*) exit 0 ;; esac\nexit 1\n',
    );
    await chmod(fake, 0o755);

    expect(() => ensurePython(root, 'demo', () => undefined, fake)).toThrow(
      /^Creating \.venv failed \(exit 1\)/,
    );
  });
});
