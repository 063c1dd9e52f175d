import 'aws-sdk-client-mock-vitest/extend';
import '../../scripts/local/polyfills.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

// `cordon evidence get` keeps its records in the user's state folder: a test run keeps them in its own.
const state = mkdtempSync(join(tmpdir(), 'cordon-state-'));
process.env.XDG_STATE_HOME = state;
afterAll(() => rmSync(state, { recursive: true, force: true }));
