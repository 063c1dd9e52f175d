import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { partSizeFor } from '../scripts/cli/download.js';
import { runLocalCase } from '../scripts/local/case.js';
import { freePort } from '../scripts/local/moto.js';
import { quickHost } from '../scripts/local/quick-host.js';
import { repoRoot } from '../scripts/local/runner.js';
import { deployLocalStack, localRegion } from '../scripts/local/stack.js';
import { bundledEvent } from './containment.js';
import { median } from './meter.js';

/** s3rver's only account: it refuses a signature made with any other key. */
const s3rverKey = 'S3RVER';

interface S3rver {
  endpoint: string;
  /** CPU time the server has used so far, in ms (Linux: /proc); undefined where it cannot be read. */
  cpuMs: () => number | undefined;
  stop: () => Promise<void>;
}

/** A process's user and system CPU time, from /proc/PID/stat (clock ticks of 10 ms). */
function cpuMsOf(pid: number | undefined): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/**
 * s3rver (npm, an S3-compatible server) in a child process on a free loopback port, its objects in a
 * temporary folder. A child, not this process: the runs below are timed with `spawnSync`, which would
 * stop an in-process server from answering.
 */
async function startS3rver(): Promise<S3rver> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const directory = mkdtempSync(join(tmpdir(), 'cordon-s3rver-'));
  let log = '';
  const child: ChildProcess = spawn(
    process.execPath,
    [
      resolve(repoRoot, 'node_modules', 's3rver', 'bin', 's3rver.js'),
      '--directory',
      directory,
      '--address',
      '127.0.0.1',
      '--port',
      String(port),
      '--silent',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  });
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    rmSync(directory, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(1000) });
      return { endpoint, cpuMs: () => cpuMsOf(child.pid), stop };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await stop();
  throw new Error(`s3rver did not answer on ${endpoint}:\n${log}`);
}

/** PUT without a signature (s3rver accepts anonymous writes), streamed: a 1 GiB body is never held whole. */
async function putStream(url: string, body: AsyncIterable<Uint8Array>, bytes: number): Promise<void> {
  await new Promise<void>((done, failed) => {
    const req = request(url, { method: 'PUT', headers: { 'content-length': String(bytes) } }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? done() : failed(new Error(`PUT ${url}: HTTP ${res.statusCode}`)),
      );
    });
    req.on('error', failed);
    pipeline(body, req).catch(failed);
  });
}

/**
 * Copies the sealed case's objects (every artifact, the manifest and its signature, each the version
 * the case sealed) from moto into a bucket of the same name in s3rver, under the same keys.
 */
async function copyCase(
  motoEndpoint: string,
  s3rver: string,
  bucket: string,
  objects: { key: string; versionId: string; bytes: number }[],
): Promise<void> {
  const moto = new S3Client({
    endpoint: motoEndpoint,
    region: localRegion,
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const created = await fetch(`${s3rver}/${bucket}`, { method: 'PUT' });
  if (!created.ok) throw new Error(`s3rver: cannot create ${bucket}: HTTP ${created.status}`);
  for (const o of objects) {
    const got = await moto.send(new GetObjectCommand({ Bucket: bucket, Key: o.key, VersionId: o.versionId }));
    const path = o.key.split('/').map(encodeURIComponent).join('/');
    await putStream(`${s3rver}/${bucket}/${path}`, got.Body as AsyncIterable<Uint8Array>, o.bytes);
  }
  moto.destroy();
}

function timed(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const started = performance.now();
  const run = spawnSync(command, args, {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...env, POWERTOOLS_LOG_LEVEL: 'SILENT' },
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

/** The environment every timed process starts from: no profile or endpoint of the person running it. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^AWS_/.test(name)) delete env[name];
  }
  return { ...env, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
}

/** A process to time: the command line and the environment it runs with. */
export interface Command {
  args: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * How the CLI is run: `installed`, the package as an investigator installs it (`npm pack`, which
 * bundles it, then `npm i` of the tarball into an empty folder); `clone`, `bin/cordon.js` in this
 * repository, which runs the TypeScript sources through tsx (compiled at each start).
 */
export type CliForm = 'installed' | 'clone';
export const cliForms: readonly CliForm[] = ['installed', 'clone'];

export interface EvidenceBench {
  caseId: string;
  caseMs: number;
  outcome: string;
  /** `cordon evidence get CASE --out DIR`, its S3 calls to s3rver. */
  get: (dir: string, form: CliForm) => Command;
  /** `cordon evidence verify CASE --dir DIR`, against moto. */
  verify: (dir: string, form: CliForm) => Command;
  /** CPU time s3rver has used so far (ms), where it can be read. */
  serverCpuMs: () => number | undefined;
  stop: () => Promise<void>;
}

/** The package built and installed as docs/investigators.md says: its `bin/cordon.js`. */
function installPackage(into: string): string {
  const run = (command: string, args: string[], cwd: string) => {
    const r = spawnSync(command, args, { cwd, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  const packed = run('npm', ['pack', '--json', '--pack-destination', into], repoRoot);
  // prepack's build prints before npm's JSON report.
  const [report] = JSON.parse(packed.slice(packed.indexOf('['))) as { filename: string }[];
  const project = join(into, 'investigator');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), '{ "name": "case-notes", "private": true }\n');
  run(
    'npm',
    [
      'i',
      '--omit=dev',
      '--offline',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      join(into, report?.filename ?? ''),
    ],
    project,
  );
  return join(project, 'node_modules', 'cordon', 'bin', 'cordon.js');
}

/**
 * A case whose memory image is `bytes` long, run on moto, its sealed objects copied into s3rver, the
 * CLI installed from its package, and the two commands an investigator runs on the case.
 *
 * The download reads from s3rver, not moto: moto reads the whole object for every ranged GET, so a
 * download of 1 GiB in 8 MiB parts would measure 128 whole-object reads by the emulator.
 * s3rver answers a ranged GET by reading only that range from its file (`createReadStream` with
 * `start`/`end`), as S3 serves a range without reading the rest of the object; its figure is what the
 * CLI costs on this machine, with the server's own work (on the same cores) included. The case's
 * objects are copied into s3rver under the same bucket and keys, each the sealed version's bytes
 * (s3rver keeps no versions and ignores `versionId`; the manifest's version ids name moto's).
 *
 * `get` runs unchanged with no `--endpoint`: its S3 calls go to s3rver and its one CloudFormation call
 * (the stack's outputs) to moto, through the SDK's own service-specific endpoint variables
 * (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_CLOUDFORMATION`). `verify --dir` runs with `--endpoint`
 * moto: it reads no object's bytes from S3, only each version's lock (HEAD), which s3rver does not
 * know, and KMS for the signature, which s3rver does not have.
 */
export async function prepareEvidenceBench(endpoint: string, bytes: number): Promise<EvidenceBench> {
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
  // get's records of what it hashed, read by verify --dir, and the installed package: kept here.
  const work = mkdtempSync(join(tmpdir(), 'cordon-bench-evidence-'));
  const s3rver = await startS3rver();
  const stop = async () => {
    await s3rver.stop();
    rmSync(work, { recursive: true, force: true });
  };
  let installed: string;
  try {
    await copyCase(endpoint, s3rver.endpoint, run.report.bucket, run.report.evidence);
    installed = installPackage(work);
  } catch (error) {
    await stop();
    throw error;
  }
  const cli = (form: CliForm) => (form === 'installed' ? installed : resolve(repoRoot, 'bin', 'cordon.js'));
  const clean = { ...cleanEnvironment(), XDG_STATE_HOME: join(work, 'state') };
  return {
    caseId,
    caseMs,
    outcome: run.report.outcome,
    get: (dir, form) => ({
      args: [cli(form), 'evidence', 'get', caseId, '--out', dir],
      env: {
        ...clean,
        AWS_REGION: localRegion,
        AWS_ACCESS_KEY_ID: s3rverKey,
        AWS_SECRET_ACCESS_KEY: s3rverKey,
        AWS_ENDPOINT_URL_S3: s3rver.endpoint,
        AWS_ENDPOINT_URL_CLOUDFORMATION: endpoint,
      },
    }),
    verify: (dir, form) => ({
      args: [cli(form), 'evidence', 'verify', caseId, '--endpoint', endpoint, '--dir', dir],
      env: clean,
    }),
    serverCpuMs: s3rver.cpuMs,
    stop,
  };
}

/**
 * `runs` times, for each form of the CLI, into a fresh folder: `cordon evidence get` then `cordon
 * evidence verify --dir`, each a process of its own as an investigator runs them; then `sha256sum` of
 * the same image. Medians of each. The forms take turns going first.
 */
export async function evidenceIo(endpoint: string, bytes: number, runs: number) {
  const bench = await prepareEvidenceBench(endpoint, bytes);
  try {
    const times = Object.fromEntries(
      cliForms.map((form) => [
        form,
        { get: [] as number[], verify: [] as number[], both: [] as number[], server: [] as number[] },
      ]),
    ) as Record<CliForm, { get: number[]; verify: number[]; both: number[]; server: number[] }>;
    const sha256sumMs: number[] = [];
    const opensslMs: number[] = [];
    // The SHA-256 floor of this machine, for reference: coreutils' sha256sum may not use the CPU's
    // SHA instructions, OpenSSL (and so Node.js) does.
    const openssl = spawnSync('openssl', ['version']).status === 0;
    for (let i = 0; i < runs; i += 1) {
      const order = i % 2 === 0 ? cliForms : [...cliForms].reverse();
      for (const form of order) {
        const dir = mkdtempSync(join(tmpdir(), 'cordon-bench-'));
        try {
          const g = bench.get(dir, form);
          const serverBefore = bench.serverCpuMs();
          const get = timed(process.execPath, g.args, g.env);
          const serverAfter = bench.serverCpuMs();
          if (serverBefore !== undefined && serverAfter !== undefined)
            times[form].server.push(serverAfter - serverBefore);
          const v = bench.verify(dir, form);
          const verify = timed(process.execPath, v.args, v.env);
          times[form].get.push(get);
          times[form].verify.push(verify);
          times[form].both.push(get + verify);
          if (form === 'installed') {
            const image = largest(dir);
            sha256sumMs.push(timed('sha256sum', [image]));
            if (openssl) opensslMs.push(timed('openssl', ['dgst', '-sha256', image]));
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
    const m = (values: number[]) => Math.round(median(values));
    const sha256sum = m(sha256sumMs);
    const figures = (form: CliForm) => ({
      getMs: m(times[form].get),
      verifyMs: m(times[form].verify),
      getVerifyMs: m(times[form].both),
      ratio: m(times[form].both) / sha256sum,
      // s3rver's CPU time while get ran: work S3 does on its own machines, done here on the same cores.
      ...(times[form].server.length ? { serverCpuMs: m(times[form].server) } : {}),
      samples: { getMs: times[form].get.map(Math.round), verifyMs: times[form].verify.map(Math.round) },
    });
    return {
      bytes,
      runs,
      server: 's3rver',
      // The part size `evidence get` picks for an object of this size (it is given none).
      partSizeMiB: partSizeFor(bytes) / 2 ** 20,
      caseId: bench.caseId,
      caseMs: bench.caseMs,
      cli: 'installed package' as const,
      ...figures('installed'),
      sha256sumMs: sha256sum,
      sha256sumSamplesMs: sha256sumMs.map(Math.round),
      ...(openssl ? { opensslMs: m(opensslMs) } : {}),
      fromClone: figures('clone'),
      outcome: bench.outcome,
    };
  } finally {
    await bench.stop();
  }
}
