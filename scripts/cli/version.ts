import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

// The packaged CLI is one bundle with no package.json beside its sources: the build writes the version
// in (scripts/build-cli.mjs, esbuild `define`). From the sources it is read from package.json.
declare const CORDON_VERSION: string | undefined;

/** This Cordon's version, as package.json gives it. */
export function cliVersion(): string {
  if (typeof CORDON_VERSION === 'string') return CORDON_VERSION;
  const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
