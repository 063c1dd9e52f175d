import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { errorNames } from '../../../functions/core/errors.js';
import { everyStep, stepErrors } from '../../../functions/core/step-errors.js';

/**
 * Holds functions/core/step-errors.ts to the source: for each function in serverless.yml, the error
 * names constructed (`new XError(`, or a class passed as a value: `forGood = ContainmentError`) in its
 * handler, in every module it imports (values only: a type alone throws nothing), and in the shared
 * modules behind the step-context members its handler uses.
 */
const root = resolve(import.meta.dirname, '../../..');
/** The wrapper every handler imports: what it throws is `everyStep`, and its own imports build the context. */
const wrapper = 'functions/core/handler.ts';
/** Where what `stepHandler` and the configuration throw is constructed. */
const wrapperSources = [wrapper, 'functions/core/config.ts', 'functions/core/errors.ts'];
/** The module behind each StepContext member, when its methods can throw a name of ours. */
const contextModules: Record<string, string | undefined> = {
  config: 'functions/core/config.ts',
  log: undefined,
  // Cordon's own SDK clients: what they fail with is an AWS error, which everyStep names.
  home: undefined,
  homeClient: undefined,
  homeClientIn: undefined,
  // Clients for the instance's account, signed with the member role assumed in clients.ts.
  clientsFor: 'functions/core/clients.ts',
  cases: 'functions/core/cases.ts',
  evidence: 'functions/core/evidence.ts',
  recorder: 'functions/core/cases.ts',
  now: undefined,
};

const known = new Set<string>(errorNames);
const sourceCache = new Map<string, string>();
/** A file's code without its comments, which may mention error names they do not throw. */
function codeOf(file: string): string {
  let code = sourceCache.get(file);
  if (code === undefined) {
    code = readFileSync(resolve(root, file), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    sourceCache.set(file, code);
  }
  return code;
}

/** The repository files a module imports for values (static, re-exported or dynamic), `import type` left out. */
function valueImports(file: string): string[] {
  const statements =
    /\b(?:import|export)\s+(type\s+)?[^;'"]*?\bfrom\s+'(\.{1,2}\/[^']+)'|\bimport\s*\(?\s*'(\.{1,2}\/[^']+)'/g;
  return [...codeOf(file).matchAll(statements)]
    .filter((m) => m[1] === undefined)
    .map((m) => relative(root, resolve(root, dirname(file), (m[2] ?? m[3] ?? '').replace(/\.js$/, '.ts'))))
    .filter((f) => existsSync(resolve(root, f)));
}

/** The names of ours a file constructs or hands on as a class to be constructed. */
function namesIn(file: string): string[] {
  return [...codeOf(file).matchAll(/(?:\bnew\s+|[=,(]\s*)([A-Z]\w*Error)\b/g)]
    .map((m) => m[1] ?? '')
    .filter((name) => known.has(name));
}

function contextMembers(file: string): string[] {
  return [...new Set([...codeOf(file).matchAll(/\bctx\.(\w+)/g)].map((m) => m[1] ?? ''))];
}

/** Every module a function's code can run: its handler's imports, followed, and its context's modules. */
function modulesOf(handlerFile: string): string[] {
  const context = contextMembers(handlerFile)
    .map((member) => contextModules[member])
    .filter((f): f is string => f !== undefined);
  const seen = new Set<string>();
  const queue = [handlerFile, ...context, ...wrapperSources];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    if (file !== wrapper) queue.push(...valueImports(file));
  }
  return [...seen];
}

const functions = (
  parse(readFileSync(resolve(root, 'serverless.yml'), 'utf8'), { logLevel: 'error' }) as {
    functions: Record<string, { handler: string }>;
  }
).functions;
const handlerFileOf = (key: string) => `${functions[key]?.handler.replace(/\.\w+$/, '')}.ts`;
const sorted = (names: Iterable<string>) => [...new Set(names)].sort();

describe('the error names each function can throw', () => {
  it('are listed for every function serverless.yml defines, and only for those', () => {
    expect(Object.keys(stepErrors).sort()).toEqual(Object.keys(functions).sort());
  });

  it('include for every step what the wrapper, the configuration and normaliseError throw', () => {
    expect(sorted(everyStep)).toEqual(sorted(wrapperSources.flatMap(namesIn)));
  });

  it('come from step-context members whose modules are known', () => {
    const unknown = Object.keys(functions).flatMap((key) =>
      contextMembers(handlerFileOf(key))
        .filter((member) => !(member in contextModules))
        .map((member) => `${key}: ctx.${member}`),
    );

    expect(unknown).toEqual([]);
  });

  it.each(Object.keys(functions))('are for %s what its source constructs', (key) => {
    const found = sorted(modulesOf(handlerFileOf(key)).flatMap(namesIn));

    expect(sorted(stepErrors[key as keyof typeof stepErrors])).toEqual(found);
  });

  it('follow a thrown name through the imports: a class handed on as a default counts', () => {
    // shared/containment.ts throws ContainmentError only as `progress`'s default for `forGood`.
    expect(namesIn('functions/core/containment.ts')).toContain('ContainmentError');
  });
});
