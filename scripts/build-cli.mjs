#!/usr/bin/env node
// `npm run build:cli` (and `npm pack`, through prepack): bundles the `cordon` CLI into dist/cordon.mjs,
// with every library it uses inlined (the AWS SDK, zod, yaml…), so that the package installs with no
// dependency and runs on Node.js alone, without tsx. What a command imports lazily (its SDK clients, its
// own modules) goes into chunks under dist/chunks/, loaded when it runs: one file would make every
// command parse all of the 5 MB at start (about 0.2 s of each `cordon evidence get` and `verify`). The licence of each package inlined goes
// to dist/THIRD-PARTY-LICENSES.txt, which the package carries beside the bundle.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { parse } from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8'));
// `doctor` reads the stage params a deploy would use; the package carries those of this version.
const params =
  parse(readFileSync(resolve(root, 'serverless.yml'), 'utf8'), { logLevel: 'error' }).params ?? {};

/** The local runner needs the repository's files: the package gets the module that says so instead. */
const packagedRunner = {
  name: 'cordon-packaged-runner',
  setup(b) {
    b.onResolve({ filter: /\/local\/case\.js$/ }, (args) =>
      args.importer === resolve(root, 'scripts/cli/workflow.ts')
        ? { path: resolve(root, 'scripts/cli/local-runner-packaged.ts') }
        : undefined,
    );
  },
};

// Chunks of an earlier build would otherwise go into the package beside the new ones.
rmSync(resolve(root, 'dist'), { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { cordon: 'scripts/cli/bin.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20.19',
  // The SDK's ES modules: esbuild then leaves out what the CLI never calls.
  mainFields: ['module', 'main'],
  minify: true,
  // Error names are what --json reports as `type`: the minifier must not rename the classes.
  keepNames: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  define: {
    CORDON_VERSION: JSON.stringify(pkg.version),
    CORDON_STAGE_PARAMS: JSON.stringify(params),
  },
  // Some of the inlined libraries are CommonJS and call require() for Node's own modules (each chunk
  // is a module of its own, with its own banner).
  banner: {
    js: "import { createRequire as __cordonRequire } from 'node:module'; const require = __cordonRequire(import.meta.url);",
  },
  plugins: [packagedRunner],
});
/** Each package whose code the bundle holds, with its licence text, for the notices their licences ask. */
function thirdPartyLicences(inputs) {
  const dirs = new Set();
  for (const input of Object.keys(inputs)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) dirs.add(m[1]);
  }
  const entries = [...dirs]
    .map((dir) => {
      const abs = resolve(root, dir);
      const meta = JSON.parse(readFileSync(resolve(abs, 'package.json'), 'utf8'));
      const file = readdirSync(abs).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
      const text = file ? readFileSync(resolve(abs, file), 'utf8').trim() : `License: ${meta.license}`;
      return { name: `${meta.name}@${meta.version}`, license: meta.license, text };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  const seen = new Set();
  return entries
    .filter((e) => !seen.has(e.name) && seen.add(e.name))
    .map((e) => `${e.name} (${e.license})\n\n${e.text}\n`)
    .join(`\n${'-'.repeat(78)}\n\n`);
}

writeFileSync(
  resolve(root, 'dist/THIRD-PARTY-LICENSES.txt'),
  `The cordon bundle (dist/cordon.mjs and dist/chunks/) includes code from these packages, under these licences.\n\n${thirdPartyLicences(result.metafile.inputs)}`,
);
if (!existsSync(resolve(root, 'dist/cordon.mjs'))) throw new Error('the bundle was not written');
console.log(`dist/cordon.mjs: cordon ${pkg.version}`);
