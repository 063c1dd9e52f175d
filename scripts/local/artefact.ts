/**
 * The deployable artefact, packaged once and shared by whatever reads it: the template tests, the
 * bundle suite, the IAM contract, `npm run demo -- --bundled`. `osls package` writes one zip per function
 * (the esbuild bundle Lambda runs) and the CloudFormation template. The result is cached under
 * node_modules/.cache by a hash of everything that goes into it, so a second project (or a second run
 * on an unchanged tree) reuses it; a lock keeps two projects from packaging at once.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const repoRoot = resolve(import.meta.dirname, '../..');

export interface Artefact {
  /** Folders holding each stage's zips and `cloudformation-template-update-stack.json`. */
  dev: string;
  prod: string;
}

/** What the packaged artefact is made from: a change in any of these packages it anew. */
const inputs = [
  'serverless.yml',
  'package-lock.json',
  'tsconfig.json',
  'functions',
  'resources',
  'statemachines',
  'capture',
];

function files(path: string): string[] {
  const full = join(repoRoot, path);
  if (!existsSync(full)) return [];
  // Documentation beside the code is not packaged.
  if (!statSync(full).isDirectory()) return path.endsWith('.md') ? [] : [path];
  return readdirSync(full)
    .sort()
    .flatMap((entry) => files(join(path, entry)));
}

function inputHash(): string {
  const hash = createHash('sha256');
  for (const file of inputs.flatMap(files)) {
    hash.update(relative(repoRoot, join(repoRoot, file)));
    hash.update('\0');
    hash.update(readFileSync(join(repoRoot, file)));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * What a stage must be told on the command line. Production pins the SHA-256 of the memory tools it
 * uploads (serverless.yml has no default on purpose); the template does not depend on the value.
 */
const stageArguments: Record<'dev' | 'prod', string[]> = {
  dev: [],
  prod: [`--param=avmlSha256=${'0'.repeat(64)}`, `--param=winpmemSha256=${'0'.repeat(64)}`],
};

/** Packages the service offline, as `npm run package` does; any failure throws with the packager's output. */
function packageStage(stage: 'dev' | 'prod', outDir: string, prebuilt = false): void {
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
  if (run.status !== 0 || !existsSync(join(outDir, 'cloudformation-template-update-stack.json'))) {
    throw new Error(
      `osls ${args.slice(1).join(' ')} failed (exit ${run.status ?? run.signal}):\n${run.stdout}\n${run.stderr}`,
    );
  }
}

async function withLock<T>(lock: string, work: () => T): Promise<T> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock older than the longest packaging run is left by a run that was killed.
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 10 * 60_000)
        rmSync(lock, { recursive: true });
      if (Date.now() > deadline) throw new Error(`Waited 10 minutes for ${lock}`);
      await sleep(500);
    }
  }
  try {
    return work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** An artefact used this recently is never removed: longer than any test run takes. */
const keepUsedMs = 60 * 60_000;

/** Marks an artefact as used now (its folder's time), so that no other run removes it meanwhile. */
function used(dir: string, artefact: Artefact): Artefact {
  const now = new Date();
  utimesSync(dir, now, now);
  return artefact;
}

/** The packaged dev and prod artefacts for the tree as it is now, packaging them if no run has yet. */
export async function packagedArtefact(): Promise<Artefact> {
  const cache = join(repoRoot, 'node_modules', '.cache', 'cordon-artefact');
  mkdirSync(cache, { recursive: true });
  const hash = inputHash();
  const done = join(cache, hash);
  const artefact = { dev: join(done, 'dev'), prod: join(done, 'prod') };
  if (existsSync(join(done, 'complete'))) return used(done, artefact);
  return withLock(join(cache, 'lock'), () => {
    if (existsSync(join(done, 'complete'))) return used(done, artefact);
    const work = join(cache, `${hash}.partial`);
    rmSync(work, { recursive: true, force: true });
    // One after the other: both runs share the bundler's working folder in the repository.
    packageStage('dev', join(work, 'dev'));
    // The code is the same for every stage: prod is packaged from dev's bundles, only its template is new.
    mkdirSync(join(work, 'prod'));
    for (const zip of readdirSync(join(work, 'dev')).filter((f) => f.endsWith('.zip'))) {
      copyFileSync(join(work, 'dev', zip), join(work, 'prod', zip));
    }
    packageStage('prod', join(work, 'prod'), true);
    // Older artefacts go, but not the few last used, nor any used within the hour: another test run
    // (on this tree, or on another working tree sharing node_modules) may still be reading one.
    const older = readdirSync(cache)
      .filter((name) => name !== 'lock' && name !== `${hash}.partial`)
      .map((name) => ({ name, at: statSync(join(cache, name)).mtimeMs }))
      .sort((a, b) => b.at - a.at)
      .slice(3)
      .filter(({ at }) => Date.now() - at > keepUsedMs);
    for (const { name } of older) rmSync(join(cache, name), { recursive: true, force: true });
    renameSync(work, done);
    writeFileSync(join(done, 'complete'), new Date().toISOString());
    return artefact;
  });
}

export const templateOf = (stageDir: string) => join(stageDir, 'cloudformation-template-update-stack.json');
