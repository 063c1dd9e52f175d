import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { resetMoto } from '../../scripts/local/moto.js';
import { repoRoot } from '../../scripts/local/runner.js';
import { demoCase } from '../support/cli-fixtures.js';

/**
 * The CLI as an investigator installs it: `npm pack` (which bundles it), then `npm i --omit=dev` of the
 * tarball into an empty folder, offline. The package must bring everything it runs with: no
 * dependency, no tsx, no TypeScript, none of the repository's files.
 */
const endpoint = inject('motoEndpoint');
const version = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string })
  .version;

let work: string;
let project: string;
let tarball: string;
let caseId: string;

function run(command: string, args: string[], cwd: string) {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  await resetMoto(endpoint);
  caseId = (await demoCase(endpoint)).caseId;
  work = await mkdtemp(join(tmpdir(), 'cordon-package-'));
  const packed = run('npm', ['pack', '--json', '--pack-destination', work], repoRoot);
  expect(packed.code, packed.stderr).toBe(0);
  // prepack's build prints before npm's JSON report.
  const report = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string }[];
  tarball = join(work, report[0]?.filename ?? '');
  project = join(work, 'investigator');
  await mkdir(project);
  await writeFile(join(project, 'package.json'), '{ "name": "case-notes", "private": true }\n');
  const installed = run(
    'npm',
    ['i', '--omit=dev', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball],
    project,
  );
  expect(installed.code, installed.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('the cordon package', () => {
  it('is named cordon-VERSION.tgz and holds the launcher, the bundle (its entry and the chunks it loads) and its licences, nothing else', () => {
    expect(tarball.endsWith(`cordon-${version}.tgz`)).toBe(true);
    const listed = run('tar', ['tzf', tarball], work).stdout.split('\n').filter(Boolean).sort();
    const chunks = listed.filter((f) => f.startsWith('package/dist/chunks/'));

    expect(chunks.length).toBeGreaterThan(0);
    for (const chunk of chunks) expect(chunk).toMatch(/^package\/dist\/chunks\/[\w-]+\.mjs$/);
    expect(listed.filter((f) => !chunks.includes(f))).toEqual([
      'package/README.md',
      'package/bin/cordon.js',
      'package/dist/THIRD-PARTY-LICENSES.txt',
      'package/dist/cordon.mjs',
      'package/package.json',
    ]);
  });

  it('declares no runtime dependency, so installing it fetches nothing', async () => {
    const manifest = JSON.parse(
      await readFile(join(project, 'node_modules', 'cordon', 'package.json'), 'utf8'),
    ) as Record<string, unknown>;

    expect(manifest.dependencies).toBeUndefined();
    expect(await readdir(join(project, 'node_modules'))).toEqual(['.bin', '.package-lock.json', 'cordon']);
  });

  it('prints its version through npx, from the folder it was installed in', () => {
    const r = run('npx', ['--no-install', 'cordon', '--version'], project);

    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`cordon ${version}\n`);
  });

  it("verifies a demo case's evidence in the emulated bucket", () => {
    const r = run(
      join(project, 'node_modules', '.bin', 'cordon'),
      ['evidence', 'verify', caseId, '--endpoint', endpoint],
      project,
    );

    expect(r.stderr).toBe('');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain('VERIFIED: the signature is valid');
  });

  it('says why it cannot run a workflow against the emulator, and changes nothing', () => {
    const r = run(
      join(project, 'node_modules', '.bin', 'cordon'),
      ['release', caseId, '--yes', '--endpoint', endpoint, '--json'],
      project,
    );

    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout)).toMatchObject({
      error: { type: 'LocalRunnerUnavailableError', exitCode: 3 },
    });
    const status = run(
      join(project, 'node_modules', '.bin', 'cordon'),
      ['status', caseId, '--endpoint', endpoint, '--json'],
      project,
    );
    expect(JSON.parse(status.stdout)).toMatchObject({ case: { status: 'contained' } });
  });
});
