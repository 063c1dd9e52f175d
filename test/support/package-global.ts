import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Packaged CloudFormation templates, one per stage whose parameters the template tests compare. */
    cfnTemplates: { dev: string; prod: string };
  }
}

const repoRoot = resolve(import.meta.dirname, '../..');

/**
 * What a stage must be told on the command line. Production pins the SHA-256 of the memory tools it
 * uploads (serverless.yml has no default on purpose); the template does not depend on the value.
 */
const stageArguments: Record<'dev' | 'prod', string[]> = {
  dev: [],
  prod: [`--param=avmlSha256=${'0'.repeat(64)}`, `--param=winpmemSha256=${'0'.repeat(64)}`],
};

/**
 * Packages the service offline, as `npm run package` does, into a folder outside the repository. Any
 * failure stops the whole template project with the packager's own output.
 */
function packageStage(stage: 'dev' | 'prod', outDir: string, prebuilt = false): string {
  const args = ['osls', 'package', '--stage', stage, '--package', outDir, ...stageArguments[stage]];
  const run = spawnSync('npx', args, {
    cwd: repoRoot,
    encoding: 'utf8',
    env: {
      ...process.env,
      SLS_TELEMETRY_DISABLED: '1',
      SLS_NOTIFICATIONS_MODE: 'off',
      ...(prebuilt ? { CORDON_PREBUILT_BUNDLES: 'true' } : {}),
    },
  });
  const template = join(outDir, 'cloudformation-template-update-stack.json');
  if (run.status !== 0 || !existsSync(template)) {
    throw new Error(
      `osls ${args.slice(1).join(' ')} failed (exit ${run.status ?? run.signal}):\n${run.stdout}\n${run.stderr}`,
    );
  }
  return template;
}

/** Vitest globalSetup of the `template` project: package dev and prod once for every template test. */
export function setup(project: TestProject): () => void {
  const root = mkdtempSync(join(tmpdir(), 'cordon-template-'));
  const cleanUp = () => rmSync(root, { recursive: true, force: true });
  try {
    // One after the other: both runs share the bundler's working folder in the repository.
    const dev = packageStage('dev', join(root, 'dev'));
    // The code is the same for every stage: prod is packaged from dev's bundles, only its template is new.
    mkdirSync(join(root, 'prod'));
    for (const zip of readdirSync(join(root, 'dev')).filter((f) => f.endsWith('.zip'))) {
      copyFileSync(join(root, 'dev', zip), join(root, 'prod', zip));
    }
    const prod = packageStage('prod', join(root, 'prod'), true);
    project.provide('cfnTemplates', { dev, prod });
    return cleanUp;
  } catch (error) {
    cleanUp();
    throw error;
  }
}
