/**
 * A RECORDING DOUBLE for the IAM contract suite: a client plugin (see `useClientPlugin`) that writes
 * down every AWS request a Cordon function sends in an emulated run, with what IAM would look at when
 * deciding it: the function (and so the role) that sent it, whose credentials signed it (the
 * function's own role, or the member role assumed for a case), its parameters, and the facts about
 * the resources it names as they stood just before the call (their tags, the instance an interface is
 * attached to...), read from the emulator through clients that are not recorded. Production code
 * never installs it. A presigned request (the host's memory upload) passes here too: IAM decides it
 * as the function's own, since the function's role signed it.
 */
import { type ClientOrigin, type PluggableClient, useClientPlugin } from '../../../functions/core/clients.js';
import { taskScope } from '../../../scripts/local/runner.js';
import { callLabel } from '../faults.js';
import { type Facts, observe } from './operations.js';

export interface RecordedRequest {
  /** The serverless.yml function key whose role signs the request. */
  fn: string;
  /** The Task state (or, outside a state machine, the function) that made it. */
  state: string;
  /** `service:Operation` as the SDK names it: `ec2:ModifyNetworkInterfaceAttribute`. */
  operation: string;
  input: Record<string, unknown>;
  origin: ClientOrigin;
  region: string;
  facts: Facts;
}

export interface Recording {
  requests: RecordedRequest[];
  /** Calls made by a Cordon client outside any function: a harness gap the suite refuses. */
  unattributed: string[];
  uninstall: () => void;
}

/** Installs the recorder on every client Cordon builds from now on; `endpoint` is the emulator's. */
export function recordRequests(endpoint: () => string): Recording {
  const requests: RecordedRequest[] = [];
  const unattributed: string[] = [];
  const uninstall = useClientPlugin((client: PluggableClient, origin: ClientOrigin) => {
    const stack = client.middlewareStack as unknown as {
      add: (mw: unknown, options: { step: string; name: string; priority?: string }) => void;
    };
    const clientRegion = (client as unknown as { config: { region: () => Promise<string> } }).config.region;
    stack.add(
      (
        next: (args: unknown) => Promise<unknown>,
        context: { clientName?: string; commandName?: string; __smithy_context?: unknown },
      ) =>
        async (args: { input: Record<string, unknown> }) => {
          const operation = callLabel(context.clientName, context.commandName);
          const scope = taskScope.getStore();
          if (!scope?.fn) {
            unattributed.push(operation);
            return next(args);
          }
          const region = await clientRegion();
          const input = structuredClone(args.input);
          const facts = await observe(operation, input, { endpoint: endpoint(), region });
          requests.push({
            fn: scope.fn,
            state: scope.stateName,
            operation,
            input,
            origin,
            region,
            facts,
          });
          return next(args);
        },
      // Once per call, before the retries: what IAM decides does not change between attempts.
      { step: 'initialize', name: 'cordonIamRecorder', priority: 'high' },
    );
  });
  return { requests, unattributed, uninstall };
}
