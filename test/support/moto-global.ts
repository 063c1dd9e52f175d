import type { TestProject } from 'vitest/node';
import { startMoto } from '../../scripts/local/moto.js';

declare module 'vitest' {
  export interface ProvidedContext {
    motoEndpoint: string;
  }
}

/** One moto server for the integration project, started and stopped by the test run itself. */
export async function setup(project: TestProject) {
  const moto = await startMoto();
  project.provide('motoEndpoint', moto.endpoint);
  return async () => moto.stop();
}
