#!/usr/bin/env -S npx tsx
/**
 * `npx tsx scripts/playbooks/run.ts PLAYBOOK [options]`: one entry point for the four playbook
 * scripts, each of which also runs on its own (`npx tsx scripts/playbooks/<playbook>.ts`).
 */
import './quiet.js';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const playbooks = ['block-ip', 'policy-violation', 'ids-alert', 'credentials'] as const;
const [name, ...rest] = process.argv.slice(2);

if (!name || !(playbooks as readonly string[]).includes(name)) {
  process.stderr.write(`usage: run.ts ${playbooks.join('|')} [options]\n`);
  process.exit(2);
}
const script = resolve(import.meta.dirname, `${name}.ts`);
const run = spawnSync(process.execPath, ['--import', 'tsx', script, ...rest], { stdio: 'inherit' });
process.exit(run.status ?? 1);
