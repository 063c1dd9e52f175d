#!/usr/bin/env node
// `npm test`: lint, typecheck, then every vitest project (unit, workflow, integration on moto, template).
// Each stage's failure stops the run with a non-zero exit; nothing is skipped quietly.
import { spawnSync } from 'node:child_process';

const stages = [
  ['lint', 'npx', ['biome', 'check', '.']],
  ['typecheck', 'npx', ['tsc', '--noEmit']],
  ['tests', 'npx', ['vitest', 'run', ...process.argv.slice(2)]],
];
for (const [name, cmd, args] of stages) {
  console.log(`\n== ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`\n${name} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}
