/**
 * The packaged functions as Lambda runs them: each `<function>.zip` that `osls package` writes holds
 * the esbuild bundle of one handler (minified, CommonJS, its dependencies inlined). These helpers open
 * the zips and load the bundles, so that the local runner can bind each Task to the code that would
 * be deployed rather than to the TypeScript sources.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { constants, Script } from 'node:vm';
import { inflateRawSync } from 'node:zlib';
import { handlerSettings } from './runner.js';

/** The files of a zip archive (stored or deflated entries, as the packager writes them). */
export function unzip(archive: Buffer): Map<string, Buffer> {
  // The end-of-central-directory record: the last 22 bytes, plus a comment of up to 65,535 bytes.
  let end = -1;
  for (let i = archive.length - 22; i >= Math.max(0, archive.length - 22 - 65_535); i -= 1) {
    if (archive.readUInt32LE(i) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new Error('Not a zip archive: no end of central directory');
  const entries = archive.readUInt16LE(end + 10);
  let at = archive.readUInt32LE(end + 16);
  const files = new Map<string, Buffer>();
  for (let n = 0; n < entries; n += 1) {
    if (archive.readUInt32LE(at) !== 0x02014b50) throw new Error('Corrupt zip: bad central directory entry');
    const method = archive.readUInt16LE(at + 10);
    const compressed = archive.readUInt32LE(at + 20);
    const nameLength = archive.readUInt16LE(at + 28);
    const extraLength = archive.readUInt16LE(at + 30);
    const commentLength = archive.readUInt16LE(at + 32);
    const local = archive.readUInt32LE(at + 42);
    const name = archive.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (name.endsWith('/')) continue;
    const dataAt = local + 30 + archive.readUInt16LE(local + 26) + archive.readUInt16LE(local + 28);
    const data = archive.subarray(dataAt, dataAt + compressed);
    if (method === 0) files.set(name, Buffer.from(data));
    else if (method === 8) files.set(name, inflateRawSync(data));
    else throw new Error(`Zip entry ${name} uses compression method ${method}`);
  }
  return files;
}

/**
 * Extracts `<dir>/<fn>.zip` once (by content) into a folder of its own and returns the path of the
 * handler's bundle and the name of its export.
 */
export function extractBundle(dir: string, fn: string): { file: string; exportName: string } {
  const handler = handlerSettings()[fn];
  if (!handler) throw new Error(`serverless.yml has no function ${fn}`);
  const exportName = handler.slice(handler.lastIndexOf('.') + 1);
  const entry = `${handler.slice(0, handler.lastIndexOf('.'))}.js`;
  const zip = join(dir, `${fn}.zip`);
  if (!existsSync(zip)) throw new Error(`No packaged bundle ${zip}: run npx osls package first`);
  const archive = readFileSync(zip);
  const folder = join(
    tmpdir(),
    'cordon-bundles',
    `${fn}-${createHash('sha256').update(archive).digest('hex').slice(0, 16)}`,
  );
  const file = join(folder, ...entry.split('/'));
  if (!existsSync(file)) {
    const files = unzip(archive);
    if (!files.has(entry)) throw new Error(`${zip} does not hold ${entry}`);
    // Written beside it, then renamed into place: test files running at once extract the same bundles,
    // and none may load one another is still writing.
    const work = `${folder}.${process.pid}-${randomBytes(4).toString('hex')}`;
    for (const [name, data] of files) {
      const target = resolve(work, name);
      if (!target.startsWith(work + sep)) throw new Error(`${zip} holds a path outside its folder: ${name}`);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, data);
    }
    // A folder without the bundle is what an extraction cut short left (before they were renamed).
    if (existsSync(folder) && !existsSync(file)) rmSync(folder, { recursive: true, force: true });
    try {
      renameSync(work, folder);
    } catch (error) {
      // Another process put the same bundle there first.
      rmSync(work, { recursive: true, force: true });
      if (!existsSync(file)) throw error;
    }
  }
  return { file, exportName };
}

/**
 * Each bundle compiled once per process, in Node's own CommonJS wrapper (on the source's first line, so
 * that line numbers stay the bundle's). Compiling a 1.5 MB bundle costs V8 a tenth of a second, and a
 * suite loads each one afresh for every case it runs.
 */
const compiled = new Map<string, Script>();

function compiledBundle(file: string): Script {
  let script = compiled.get(file);
  if (!script) {
    script = new Script(
      `(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`,
      // The bundles import Node's built-ins (node:http) when they first need them.
      { filename: file, importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER },
    );
    compiled.set(file, script);
  }
  return script;
}

/**
 * Loads a function's bundle afresh (its own module state: configuration, clients, caches), as a new
 * Lambda execution environment would, and returns its handler. Only the compiled code is shared: the
 * module runs again from its first line, with a module object of its own.
 */
export function loadBundle(dir: string, fn: string): (event: unknown, context: unknown) => Promise<unknown> {
  const { file, exportName } = extractBundle(dir, fn);
  const module: { exports: Record<string, unknown> } = { exports: {} };
  const wrapper = compiledBundle(file).runInThisContext() as (...args: unknown[]) => void;
  wrapper.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  const handler = module.exports[exportName];
  if (typeof handler !== 'function') throw new Error(`${fn}'s bundle exports no function ${exportName}`);
  return handler as (event: unknown, context: unknown) => Promise<unknown>;
}
