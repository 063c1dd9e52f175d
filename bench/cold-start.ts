import { spawnSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { build } from 'esbuild';
import { functionKeys, repoRoot } from '../scripts/local/runner.js';
import { median } from './meter.js';

export interface ColdStartRow {
  fn: string;
  bundledBytes: number;
  bundledInitMs: number;
  externalBytes: number;
  externalInitMs: number;
}

const outDir = resolve(repoRoot, 'bench', '.out');

async function bundle(fn: string, external: boolean): Promise<string> {
  const outfile = resolve(outDir, `${fn}${external ? '.sdk-external' : ''}.cjs`);
  await build({
    entryPoints: [resolve(repoRoot, `functions/${fn}/handler.ts`)],
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile,
    logLevel: 'silent',
    external: external ? ['@aws-sdk/*', '@smithy/*'] : [],
  });
  return outfile;
}

/** Module initialisation in a fresh Node process: the time `require` of the bundle takes. */
function initMs(file: string): number {
  const script = `const t=process.hrtime.bigint();require(${JSON.stringify(file)});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`;
  const run = spawnSync(process.execPath, ['-e', script], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT', AWS_REGION: 'us-east-1' },
  });
  if (run.status !== 0) throw new Error(`loading ${file} failed: ${run.stderr}`);
  return Number(run.stdout);
}

/**
 * For every function: the bytes of its bundle and the median module-initialisation time over `runs`
 * fresh processes, bundled with the AWS SDK and with the SDK left external (resolved from
 * node_modules, as a runtime-provided SDK would be).
 */
export async function measureColdStarts(runs = 20): Promise<ColdStartRow[]> {
  mkdirSync(outDir, { recursive: true });
  const rows: ColdStartRow[] = [];
  for (const fn of functionKeys) {
    const bundled = await bundle(fn, false);
    const external = await bundle(fn, true);
    const bundledTimes: number[] = [];
    const externalTimes: number[] = [];
    // Interleaved, so that machine noise falls on both variants alike.
    for (let i = 0; i < runs; i += 1) {
      bundledTimes.push(initMs(bundled));
      externalTimes.push(initMs(external));
    }
    rows.push({
      fn,
      bundledBytes: statSync(bundled).size,
      bundledInitMs: median(bundledTimes),
      externalBytes: statSync(external).size,
      externalInitMs: median(externalTimes),
    });
  }
  return rows;
}
