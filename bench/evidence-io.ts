import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runLocalCase } from '../scripts/local/case.js';
import { quickHost } from '../scripts/local/quick-host.js';
import { repoRoot } from '../scripts/local/runner.js';
import { deployLocalStack, localRegion } from '../scripts/local/stack.js';
import { bundledEvent } from './containment.js';
import { median } from './meter.js';

function timed(command: string, args: string[]): number {
  const started = performance.now();
  const run = spawnSync(command, args, {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' },
  });
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${run.stderr || run.stdout}`);
  return performance.now() - started;
}

function largest(dir: string): string {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(dir);
  return files.sort((a, b) => statSync(b).size - statSync(a).size)[0] as string;
}

/**
 * A case whose memory image is `bytes` long, then, `runs` times: `cordon evidence get` and
 * `cordon evidence verify --dir` as an investigator runs them, against `sha256sum` of the same bytes.
 * The download uses parts of `partSizeMiB`: moto reads a whole object for every ranged GET, so the
 * default 8 MiB parts would measure the emulator (128 whole-object reads of 1 GiB), not Cordon. The
 * image is written by the quick host double: the capture script's own upload is not what is measured.
 */
export async function evidenceIo(endpoint: string, bytes: number, runs: number, partSizeMiB: number) {
  const caseStarted = performance.now();
  const stack = await deployLocalStack(endpoint);
  const host = quickHost({
    endpoint,
    region: localRegion,
    toolsBucket: stack.toolsBucket,
    imageBytes: bytes,
  });
  const run = await runLocalCase(bundledEvent(), { endpoint, stack, host, enis: 1, volumes: 1 });
  const caseMs = Math.round(performance.now() - caseStarted);
  const caseId = run.report.caseId as string;
  const cli = resolve(repoRoot, 'bin', 'cordon.js');
  const getVerify: number[] = [];
  const hashOnly: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-bench-'));
    try {
      const get = timed(process.execPath, [
        cli,
        'evidence',
        'get',
        caseId,
        '--endpoint',
        endpoint,
        '--out',
        dir,
        '--part-size',
        String(partSizeMiB),
      ]);
      const verify = timed(process.execPath, [
        cli,
        'evidence',
        'verify',
        caseId,
        '--endpoint',
        endpoint,
        '--dir',
        dir,
      ]);
      getVerify.push(get + verify);
      hashOnly.push(timed('sha256sum', [largest(dir)]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const getVerifyMs = Math.round(median(getVerify));
  const sha256sumMs = Math.round(median(hashOnly));
  return {
    bytes,
    runs,
    partSizeMiB,
    caseId,
    caseMs,
    getVerifyMs,
    sha256sumMs,
    ratio: getVerifyMs / sha256sumMs,
    outcome: run.report.outcome,
  };
}
