/**
 * Setup file of the integration project: points `inject('motoEndpoint')` at this worker's own
 * emulator (test/support/moto-global.ts starts one per worker), so that the files running at once
 * never share an account, and a file that resets its emulator wipes no other file's.
 */
import { inject } from 'vitest';

const endpoints = inject('motoEndpoints');
const pool = Number(process.env.VITEST_POOL_ID ?? '1');
const mine = endpoints[pool - 1];
// Vitest keeps what globalSetup provided in its worker state; `inject` reads it from there.
const state = (globalThis as { __vitest_worker__?: { providedContext?: Record<string, unknown> } })
  .__vitest_worker__;
if (!mine || !state?.providedContext) {
  throw new Error(
    `No emulator for worker ${pool} (${endpoints.length} started), or vitest keeps its worker state elsewhere: see test/support/moto-worker.ts`,
  );
}
state.providedContext.motoEndpoint = mine;
