/**
 * A FAULT-INJECTION DOUBLE for the AWS network, for the fault-matrix suite. A client plugin (see
 * `useClientPlugin`) added after the SDK's retry middleware, so that it sees every attempt of every
 * call, attributes each to the Task state that made it (`taskScope`), records it, and fails the
 * attempts a test asked it to fail, as AWS would answer them. Faults are keyed by execution, state and
 * operation, so cases running together on one stack never see each other's faults. Production code
 * never installs it.
 */
import { type PluggableClient, useClientPlugin } from '../../functions/core/clients.js';
import { taskScope } from '../../scripts/local/runner.js';

/**
 * `once`: the first attempt of the first such call fails with a transient error, then AWS recovers.
 * `for-good`: every attempt is refused (access denied). `throttled`: every attempt is throttled, for
 * longer than any retry budget.
 */
export type FaultMode = 'once' | 'for-good' | 'throttled';

export interface Fault {
  stateName: string;
  /** `service:Operation`, as `callLabel` names it: `ec2:CreateTags`, `dynamodb:PutItem`. */
  operation: string;
  mode: FaultMode;
}

export interface Attempt {
  executionArn: string;
  stateName: string;
  operation: string;
  /** The error this double answered with, when it failed the attempt. */
  injected?: string;
  /** How the attempt ended: `ok`, or the error code AWS (the emulator or this double) answered with. */
  result: string;
}

/** Each service's own answer to a caller without permission (the code and the HTTP status). */
const denied: Record<string, { code: string; status: number }> = {
  ec2: { code: 'UnauthorizedOperation', status: 403 },
  dynamodb: { code: 'AccessDeniedException', status: 400 },
  kms: { code: 'AccessDeniedException', status: 400 },
  ssm: { code: 'AccessDeniedException', status: 400 },
  sns: { code: 'AuthorizationError', status: 403 },
  eventbridge: { code: 'AccessDeniedException', status: 400 },
  securityhub: { code: 'AccessDeniedException', status: 403 },
};
const deniedByDefault = { code: 'AccessDenied', status: 403 };

/** Each service's own "slow down" code; the rest answer 503, which the SDK also retries. */
const throttled: Record<string, { code: string; status: number }> = {
  ec2: { code: 'RequestLimitExceeded', status: 503 },
  dynamodb: { code: 'ThrottlingException', status: 400 },
  s3: { code: 'SlowDown', status: 503 },
  eventbridge: { code: 'ThrottlingException', status: 400 },
  securityhub: { code: 'TooManyRequestsException', status: 429 },
};
const unavailable = { code: 'ServiceUnavailable', status: 503 };

/** What this double answers for `mode` on `service`. */
export function faultAnswer(service: string, mode: FaultMode): { code: string; status: number } {
  return mode === 'for-good' ? (denied[service] ?? deniedByDefault) : (throttled[service] ?? unavailable);
}

function awsError(service: string, operation: string, mode: FaultMode): Error {
  const answer = faultAnswer(service, mode);
  const message =
    mode !== 'for-good'
      ? `Rate exceeded (injected: ${service}:${operation})`
      : `User: arn:aws:sts::123456789012:assumed-role/cordon-test/fault-matrix is not authorized to perform: ${service}:${operation} (injected)`;
  return Object.assign(new Error(message), {
    name: answer.code,
    Code: answer.code,
    $fault: answer.status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: answer.status, requestId: 'injected', attempts: 1, totalRetryDelay: 0 },
  });
}

/** `DynamoDBClient` + `PutItemCommand` → `dynamodb:PutItem`. */
export function callLabel(clientName: string | undefined, commandName: string | undefined): string {
  const service = (clientName ?? 'Unknown')
    .replace(/Client$/, '')
    .replace(/^ElasticLoadBalancingV2$/, 'elbv2')
    .replace(/^ElasticLoadBalancing$/, 'elb')
    .replace(/^AutoScaling$/, 'autoscaling')
    .toLowerCase();
  return `${service}:${(commandName ?? 'Unknown').replace(/Command$/, '')}`;
}

const errorCode = (error: unknown): string => {
  const e = error as { name?: unknown; Code?: unknown };
  return String(e?.Code ?? e?.name ?? 'Error');
};

export interface FaultInjector {
  /** Every attempt of every call made inside a Task, in order. */
  attempts: Attempt[];
  /** Faults for one execution; call before the execution starts. */
  arm(executionArn: string, faults: Fault[]): void;
  /** The attempts one execution made. */
  of(executionArn: string): Attempt[];
  uninstall(): void;
}

/** The parts of a built client's resolved configuration that decide how it retries. */
interface RetryConfig {
  retryStrategy?: () => Promise<{
    retryBackoffStrategy?: { computeNextBackoffDelay: (i: number) => number };
  }>;
}

/**
 * Keeps the client's retry strategy (its attempts, its retry quota, which errors it retries) and drops
 * only the wait between attempts: full jitter on a 1 s base for throttling, some 3.5 s per call of four
 * attempts, and a throttled step retried by its ASL pays that on every attempt. The runner already
 * waits 0 s between the ASL's own retries; the tests count attempts, not seconds.
 */
function withoutBackoff(client: PluggableClient): void {
  const config = (client as { config?: RetryConfig }).config;
  const resolve = config?.retryStrategy;
  if (!config || !resolve) return;
  config.retryStrategy = async () => {
    const strategy = await resolve();
    if (strategy.retryBackoffStrategy) strategy.retryBackoffStrategy.computeNextBackoffDelay = () => 0;
    return strategy;
  };
}

/** Installs the double on every client Cordon builds from now on. */
export function installFaults(): FaultInjector {
  const attempts: Attempt[] = [];
  const armed = new Map<string, Fault[]>();
  const spent = new Set<string>();
  const uninstall = useClientPlugin((client: PluggableClient) => {
    const stack = client.middlewareStack as unknown as {
      add: (mw: unknown, options: { step: string; name: string; priority: string }) => void;
    };
    stack.add(
      (next: (args: unknown) => Promise<unknown>, context: { clientName?: string; commandName?: string }) =>
        async (args: unknown) => {
          const scope = taskScope.getStore();
          if (!scope) return next(args);
          const operation = callLabel(context.clientName, context.commandName);
          const attempt: Attempt = {
            executionArn: scope.executionArn,
            stateName: scope.stateName,
            operation,
            result: 'pending',
          };
          attempts.push(attempt);
          const fault = armed
            .get(scope.executionArn)
            ?.find((f) => f.stateName === scope.stateName && f.operation === operation);
          const key = `${scope.executionArn}|${scope.stateName}|${operation}`;
          if (fault && (fault.mode !== 'once' || !spent.has(key))) {
            spent.add(key);
            const [service = '', op = ''] = operation.split(':');
            const error = awsError(service, op, fault.mode);
            attempt.injected = error.name;
            attempt.result = error.name;
            throw error;
          }
          try {
            const out = await next(args);
            attempt.result = 'ok';
            return out;
          } catch (error) {
            attempt.result = errorCode(error);
            throw error;
          }
        },
      // After the retry middleware: every attempt passes here, and an injected failure is retried as AWS's.
      { step: 'finalizeRequest', name: 'cordonFaultMatrix', priority: 'low' },
    );
    withoutBackoff(client);
  });
  return {
    attempts,
    arm: (executionArn, faults) => armed.set(executionArn, faults),
    of: (executionArn) => attempts.filter((a) => a.executionArn === executionArn),
    uninstall,
  };
}
