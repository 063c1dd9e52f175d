import type { TestProject } from 'vitest/node';
import { type Moto, startMoto } from '../../scripts/local/moto.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The emulator of the test file that asks: its worker's own (test/support/moto-worker.ts). */
    motoEndpoint: string;
    /** One emulator per worker of the integration project, by `VITEST_POOL_ID` (1 is the first). */
    motoEndpoints: string[];
  }
}

/**
 * The integration project's emulators, started and stopped by the test run itself: one per worker,
 * so that files run at once and each still has an account to itself (a file resets it first).
 */
export async function setup(project: TestProject) {
  // The project's and the run's (`--maxWorkers` on the command line sets the run's): whichever is more.
  const workers = Math.max(1, project.config.maxWorkers ?? 1, project.vitest.config.maxWorkers ?? 1);
  const motos: Moto[] = [];
  try {
    for (const moto of await Promise.allSettled(Array.from({ length: workers }, () => startMoto()))) {
      if (moto.status === 'rejected') throw moto.reason;
      motos.push(moto.value);
    }
  } catch (error) {
    await Promise.all(motos.map((moto) => moto.stop()));
    throw error;
  }
  project.provide(
    'motoEndpoints',
    motos.map((moto) => moto.endpoint),
  );
  project.provide('motoEndpoint', (motos[0] as Moto).endpoint);
  return async () => {
    await Promise.all(motos.map((moto) => moto.stop()));
  };
}
