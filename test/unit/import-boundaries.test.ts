import { readdirSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layout's boundaries, read from the sources: the CLI and the benchmarks call functions/core, never
 * a Lambda's folder; no function imports from scripts or bench; and the CLI never changes the process
 * environment (its clients and settings are its own, built from its options and the stack).
 */
const root = resolve(import.meta.dirname, '../..');

function sourcesUnder(folder: string): string[] {
  return readdirSync(resolve(root, folder), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `${folder}/${f}`);
}
/** A file's code without its comments, which may name what they do not import. */
const codeOf = (file: string) =>
  readFileSync(resolve(root, file), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');

/** Every module a file imports or re-exports, static or dynamic, as a path from the repository root. */
function importsOf(file: string, code = codeOf(file)): string[] {
  const specifiers = [
    ...code.matchAll(/\b(?:import|export)\s[^;'"`]*?\bfrom\s*'([^']+)'/g),
    ...code.matchAll(/\bimport\s*\(\s*'([^']+)'\s*\)/g),
    ...code.matchAll(/^\s*import\s*'([^']+)'/gm),
  ].map((m) => m[1] ?? '');
  return specifiers
    .filter((s) => s.startsWith('.'))
    .map((s) => relative(root, resolve(root, dirname(file), s)).replace(/\.js$/, '.ts'));
}
/** An import whose path is computed, which the check above cannot follow. */
const computedImport = /\bimport\s*\(\s*(?!'[^']*'\s*\))/;

/** Whether code assigns to, merges into or deletes from `process.env`. */
function changesEnvironment(code: string): boolean {
  return [
    /\bprocess\.env\s*(?:\.\s*[\w$]+|\[[^\]]*\])?\s*(?:[-+*/%&|^]|\?\?|\|\||&&|<<|>>>?|\*\*)?=(?!=)/,
    /\b(?:Object\.assign|Object\.defineProperty|Reflect\.(?:set|deleteProperty|defineProperty))\s*\(\s*process\.env\b/,
    /\bdelete\s+process\.env\b/,
  ].some((pattern) => pattern.test(code));
}

const lambdaFolder = /^functions\/(?:forensics|release|credentials|playbooks)\//;
const cliAndBench = [...sourcesUnder('scripts/cli'), ...sourcesUnder('bench')];

describe('the import boundaries', () => {
  it('read every kind of import this test relies on', () => {
    const sample = [
      "import { a } from '../../functions/playbooks/block-ip/block-ip.js';",
      "import type { B } from '../../functions/core/blocks.js';",
      "export { c } from './c.js';",
      "const lib = () => import('../../functions/release/release-instance/release-instance.js');",
    ].join('\n');

    expect(importsOf('scripts/cli/x.ts', sample)).toEqual([
      'functions/playbooks/block-ip/block-ip.ts',
      'functions/core/blocks.ts',
      'scripts/cli/c.ts',
      'functions/release/release-instance/release-instance.ts',
    ]);
  });

  it.each(cliAndBench)('keep %s out of every Lambda folder', (file) => {
    expect(importsOf(file).filter((f) => lambdaFolder.test(f))).toEqual([]);
    expect(codeOf(file)).not.toMatch(computedImport);
  });

  it.each(sourcesUnder('functions'))('keep %s out of scripts and bench', (file) => {
    expect(importsOf(file).filter((f) => /^(?:scripts|bench)\//.test(f))).toEqual([]);
  });
});

describe('the CLI and the process environment', () => {
  it('recognises each way of changing the environment', () => {
    for (const code of [
      "process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';",
      "process.env['AWS_REGION'] = region;",
      'process.env.X ??= y;',
      'Object.assign(process.env, stack.local.env);',
      'delete process.env.AWS_PROFILE;',
      'process.env = {};',
    ]) {
      expect(changesEnvironment(code), code).toBe(true);
    }
    expect(changesEnvironment("if (process.env.X === 'y' || !process.env.AWS_PROFILE) read();")).toBe(false);
  });

  it.each(sourcesUnder('scripts/cli'))('is never changed by %s', (file) => {
    expect(changesEnvironment(codeOf(file))).toBe(false);
  });
});
