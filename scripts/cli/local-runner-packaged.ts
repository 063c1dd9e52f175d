/**
 * What the packaged `cordon` has in place of the local runner (scripts/local/case.ts), which the build
 * (scripts/build-cli.mjs) swaps in. The runner executes the state machines in this process from the
 * repository's own files: the ASL, serverless.yml, every function's TypeScript and the capture scripts.
 * A package installed from the tarball has none of them, so `start` and `release` against an emulator
 * say so, before any call that changes anything; against AWS they start the deployed state machines.
 */
import { CliError } from './errors.js';

export class LocalRunnerUnavailableError extends CliError {}

export async function runWorkflowLocally(): Promise<never> {
  throw new LocalRunnerUnavailableError(
    'This cordon was installed from its package, which does not carry the workflows, so it cannot run one in this process against the emulator.',
    'Run cordon start and cordon release with --endpoint from a clone of Cordon (npx cordon), or against AWS.',
  );
}
