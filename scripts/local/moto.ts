import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

export interface Moto {
  endpoint: string;
  stop: () => Promise<void>;
}

/** A TCP port on the loopback interface that nothing listens on now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function waitUntilUp(endpoint: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`moto exited with code ${child.exitCode} before it was ready:\n${output()}`);
    }
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`moto did not answer on ${endpoint} within 20 s:\n${output()}`);
}

/** `python -m moto.server`, with a parser cache moto lacks (see the file). */
const launcher = join(import.meta.dirname, 'moto-server.py');

/**
 * Starts the AWS emulator (moto's server, through moto-server.py) on a free loopback port. Fails
 * loudly, with what moto printed, when Python or moto is missing: a test run must never quietly skip
 * the AWS tests.
 */
export async function startMoto(python = process.env.CORDON_PYTHON ?? 'python3'): Promise<Moto> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let log = '';
  const child = spawn(python, [launcher, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      MOTO_ALLOW_NONEXISTENT_REGION: 'false',
      // Without them, moto holds some 1,200 snapshots of Amazon's images in every region: each
      // DescribeSnapshots matches its filters against all of them, and each reset loads them again.
      // Nothing here runs or reads a public image.
      MOTO_EC2_LOAD_DEFAULT_AMIS: 'false',
    },
  });
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) => reject(new Error(`cannot start ${python} ${launcher}: ${error.message}`)));
  });
  await spawned;
  await waitUntilUp(endpoint, child, () => log);
  return {
    endpoint,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Wipes every resource in the emulated account. */
export async function resetMoto(endpoint: string): Promise<void> {
  const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
  if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
}
