import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { type BuildOptions, build } from 'esbuild';
import { parse } from 'yaml';
import { repoRoot } from '../scripts/local/runner.js';
import { median } from './meter.js';

export interface ColdStartRow {
  fn: string;
  bundledBytes: number;
  bundledInitMs: number;
  externalBytes: number;
  externalInitMs: number;
}

const outDir = resolve(repoRoot, 'bench', '.out');

interface ServerlessFile {
  functions: Record<string, { handler: string }>;
  custom: { esbuild: Record<string, unknown> };
}

/**
 * Every function of serverless.yml with its entry file, and the esbuild options the deployment
 * bundles it with: the benchmark measures the bundles that ship, not a variant of them.
 */
export function deployedBundles(): { functions: { fn: string; entry: string }[]; options: BuildOptions } {
  const file = parse(readFileSync(resolve(repoRoot, 'serverless.yml'), 'utf8'), {
    logLevel: 'error',
  }) as ServerlessFile;
  const functions = Object.entries(file.functions).map(([fn, { handler }]) => ({
    fn,
    entry: resolve(repoRoot, `${handler.slice(0, handler.lastIndexOf('.'))}.ts`),
  }));
  const e = file.custom.esbuild;
  const options: BuildOptions = {
    bundle: e.bundle === true,
    minify: e.minify === true,
    platform: e.platform as BuildOptions['platform'],
    format: e.format as BuildOptions['format'],
    target: e.target as string,
    ...(Array.isArray(e.mainFields) ? { mainFields: e.mainFields as string[] } : {}),
  };
  return { functions, options };
}

/** Every function's bundle in one esbuild run (it shares the parsing of what the functions share). */
async function bundleAll(
  functions: { fn: string; entry: string }[],
  options: BuildOptions,
  external: boolean,
) {
  const suffix = external ? '.sdk-external' : '';
  await build({
    ...options,
    entryPoints: Object.fromEntries(functions.map(({ fn, entry }) => [`${fn}${suffix}`, entry])),
    outdir: outDir,
    outExtension: { '.js': '.cjs' },
    logLevel: 'silent',
    external: external ? ['@aws-sdk/*', '@smithy/*'] : [],
  });
  return (fn: string) => resolve(outDir, `${fn}${suffix}.cjs`);
}

/** Module initialisation in a fresh Node process: the time `require` of the bundle takes. */
function initMs(file: string): Promise<number> {
  const script = `const t=process.hrtime.bigint();require(${JSON.stringify(file)});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`;
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['-e', script], {
      cwd: repoRoot,
      env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT', AWS_REGION: 'us-east-1' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d;
    });
    child.on('error', fail);
    child.on('close', (code) =>
      code === 0 ? done(Number(out)) : fail(new Error(`loading ${file} failed: ${err}`)),
    );
  });
}

/**
 * For every function: the bytes of its bundle and the median module-initialisation time over `runs`
 * fresh processes, bundled with the AWS SDK and with the SDK left external (resolved from
 * node_modules, as a runtime-provided SDK would be). `parallel` processes run at once (at most one
 * per core, so that each has a core of its own).
 */
export async function measureColdStarts(runs = 20, parallel = 1): Promise<ColdStartRow[]> {
  mkdirSync(outDir, { recursive: true });
  const { functions, options } = deployedBundles();
  const bundledFile = await bundleAll(functions, options, false);
  const externalFile = await bundleAll(functions, options, true);
  const rows: ColdStartRow[] = [];
  for (const { fn } of functions) {
    const bundled = bundledFile(fn);
    const external = externalFile(fn);
    // Interleaved, so that machine noise falls on both variants alike.
    const queue = Array.from({ length: runs * 2 }, (_, i) => (i % 2 === 0 ? bundled : external));
    const times = new Map<string, number[]>([
      [bundled, []],
      [external, []],
    ]);
    const worker = async () => {
      for (let file = queue.shift(); file; file = queue.shift()) times.get(file)?.push(await initMs(file));
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    rows.push({
      fn,
      bundledBytes: statSync(bundled).size,
      bundledInitMs: median(times.get(bundled) ?? []),
      externalBytes: statSync(external).size,
      externalInitMs: median(times.get(external) ?? []),
    });
  }
  return rows;
}
