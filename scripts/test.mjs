#!/usr/bin/env node
// `npm test`: the Python tools, lint, typecheck, then every vitest project (unit, workflow, integration on
// moto, template).
// Each stage's failure stops the run with a non-zero exit; nothing is skipped quietly.
import { spawnSync } from 'node:child_process';

// First the Python tools the tests start (moto) and run (cfn-lint): the system's where it has them,
// otherwise the project's .venv, installed once from requirements.txt (scripts/local/python.ts).
const python = spawnSync('npx', ['tsx', 'scripts/local/python.ts', 'test'], {
  stdio: ['ignore', 'pipe', 'inherit'],
  encoding: 'utf8',
});
if (python.status !== 0) {
  console.error(
    `\npython failed (exit ${python.status ?? python.signal}): the tests need moto, boto3 and cfn-lint`,
  );
  process.exit(python.status || 1);
}
Object.assign(process.env, JSON.parse(python.stdout));

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
