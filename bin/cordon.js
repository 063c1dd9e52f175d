#!/usr/bin/env node
// The `cordon` command (package.json "bin"). In a clone it runs the TypeScript sources through tsx, so
// that `npx cordon` works right after `npm ci`, with no build step; installed from the package (npm pack,
// then npm i), where there are no sources, it runs the bundle the build wrote (dist/cordon.mjs).
import { existsSync } from 'node:fs';

// The SDK warns on every run that Node 20 support ends in 2027; a person reading CLI output needs it once,
// in the docs, not on each command. A value set by the user is kept.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const sources = new URL('../scripts/cli/main.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import(sources.href);
  await main();
} else {
  await import('../dist/cordon.mjs');
}
