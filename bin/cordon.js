#!/usr/bin/env node
// The `cordon` command (package.json "bin"): registers tsx's loader and runs the TypeScript CLI, so that
// `npx cordon` works right after `npm ci`, with no build step.
import { register } from 'tsx/esm/api';

// The SDK warns on every run that Node 20 support ends in 2027; a person reading CLI output needs it once,
// in the docs, not on each command. A value set by the user is kept.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
const { main } = await import('../scripts/cli/main.ts');
await main();
