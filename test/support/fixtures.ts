import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { repoRoot } from '../../scripts/local/runner.js';

/** The real third-party events, used as they are; their absence fails the run instead of skipping. */
export const realEventsDir = resolve(repoRoot, '..', 'shared', 'fixtures', 'real-events');

export function realEventFiles(): string[] {
  if (!existsSync(realEventsDir)) throw new Error(`The real events are missing: expected ${realEventsDir}`);
  const files = readdirSync(realEventsDir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  if (files.length === 0) throw new Error(`No real events in ${realEventsDir}`);
  return files;
}

export function readRealEvent(file: string): unknown {
  return JSON.parse(readFileSync(resolve(realEventsDir, file), 'utf8'));
}
