import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import {
  blockCaseIdPattern,
  caseIdPattern,
  credentialCaseIdPattern,
  violationCaseIdPattern,
} from './case.js';
import { CaseStore, Recorder } from './cases.js';
import {
  type ClientsFor,
  clientsFactory,
  type HomeClients,
  homeClientFactory,
  homeClients,
  homeRegionClientFactory,
  type MemberClient,
} from './clients.js';
import { type Config, type ConfigSlice, config, configSlices, type SettingName } from './config.js';
import { CordonError, InvalidStepInputError, normaliseError } from './errors.js';
import { EvidenceStore } from './evidence.js';
import { emitMetrics, type Metric, stepFailure, stepMetrics } from './metrics.js';
import { escapeCharacter, oneLine, rawInJson } from './text.js';

/** Everything a step's logic may use, built once per Lambda process; `config` holds its slice only. */
export interface StepContext<K extends SettingName = SettingName> {
  config: Pick<Config, K>;
  log: Logger;
  home: HomeClients;
  /** Any other client for Cordon's own account, by class. */
  homeClient: MemberClient;
  /** The same in another region of Cordon's own account (Security Hub updates a finding where it is). */
  homeClientIn: (region: string) => MemberClient;
  clientsFor: ClientsFor;
  cases: CaseStore;
  evidence: EvidenceStore;
  recorder: (caseId: string, step: string) => Recorder;
  now: () => Date;
}

/**
 * JSON escapes C0 controls (the ANSI escape, newlines) but writes DEL, C1 controls (U+009B is a one-byte
 * CSI to some terminals), U+2028/U+2029 (line breaks to some viewers) and format characters such as
 * bidirectional overrides as they are. Every string a log line carries gets those written as visible
 * escapes instead, so that a value from outside can neither forge a line nor act on whoever reads it.
 */
export function logSafe(_key: string, value: unknown): unknown {
  return typeof value === 'string' ? value.replace(rawInJson, escapeCharacter) : value;
}

export const logger = new Logger({ serviceName: 'cordon', jsonReplacerFn: logSafe });

let shared: Omit<StepContext, 'config'> | undefined;

/**
 * Builds the process's context: the clients and stores once, from the settings every function reads,
 * and the configuration as the slice the handler names. A bad setting in that slice fails here, by
 * name; a bad setting outside it is none of this function's business.
 */
export function stepContext<K extends SettingName>(slice: ConfigSlice<K>): StepContext<K> {
  const own = config(slice);
  if (!shared) {
    const cfg = config(configSlices.common);
    const settings = {
      homeAccountId: cfg.CORDON_ACCOUNT_ID,
      homeRegion: cfg.AWS_REGION,
      memberRoleName: cfg.MEMBER_ROLE_NAME,
      endpoint: process.env.AWS_ENDPOINT_URL || undefined,
    };
    const home = homeClients(settings);
    const cases = new CaseStore(home.ddb, cfg.CASES_TABLE);
    shared = {
      log: logger,
      home,
      homeClient: homeClientFactory(settings),
      homeClientIn: homeRegionClientFactory(settings),
      clientsFor: clientsFactory(settings, home.sts),
      cases,
      evidence: new EvidenceStore(home.s3, cfg.EVIDENCE_BUCKET, {
        mode: cfg.OBJECT_LOCK_MODE,
        days: cfg.OBJECT_LOCK_DAYS,
      }),
      recorder: (caseId, step) => new Recorder(cases, caseId, step),
      now: () => new Date(),
    };
  }
  return { ...shared, config: own };
}

/** For tests and the local runner, which change the configuration between runs. */
export function resetStepContext(): void {
  shared = undefined;
}

/**
 * Summarises why input failed its schema by path and rule only: the values may be hostile, and so may
 * a path, whose keys come from the input wherever the schema takes a record or names an unknown key.
 */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${oneLine(i.path.map(String).join('.'), 80) || '(input)'}: ${oneLine(i.message, 80)}`)
    .join('; ');
}

/** A Step Functions execution ARN (`$$.Execution.Id`): names and ids as the service issues them. */
const executionArnPattern =
  /^arn:aws(?:-cn|-us-gov)?:states:[a-z0-9-]{1,30}:\d{12}:execution:[A-Za-z0-9_.-]{1,80}:[A-Za-z0-9_.-]{1,80}$/;
const anyCaseId = z
  .string()
  .refine((v) =>
    [caseIdPattern, blockCaseIdPattern, credentialCaseIdPattern, violationCaseIdPattern].some((p) =>
      p.test(v),
    ),
  );
const executionArn = z.string().regex(executionArnPattern);
const correlationSchema = z.looseObject({
  caseId: anyCaseId.optional().catch(undefined),
  executionArn: executionArn.optional().catch(undefined),
  case: z
    .looseObject({
      caseId: anyCaseId.optional().catch(undefined),
      executionArn: executionArn.optional().catch(undefined),
    })
    .optional()
    .catch(undefined),
});
/** The log keys that tie a line to its case and execution. */
export const correlationKeys = ['caseId', 'executionArn'] as const;

/**
 * The case id and execution ARN a step's input carries (`case.caseId`, `case.executionArn`, or the
 * same at the top, as Intake and Hold Trigger receive the ARN), each only where it has the exact form
 * Cordon and Step Functions issue: anything else is left out, never logged.
 */
export function correlation(event: unknown): { caseId?: string; executionArn?: string } {
  const parsed = correlationSchema.safeParse(event);
  if (!parsed.success) return {};
  const caseId = parsed.data.case?.caseId ?? parsed.data.caseId;
  const arn = parsed.data.case?.executionArn ?? parsed.data.executionArn;
  return { ...(caseId ? { caseId } : {}), ...(arn ? { executionArn: arn } : {}) };
}

/** Metrics never fail a step: one that cannot be written is a warning. */
function emitSafely(metrics: () => Metric[]): void {
  try {
    emitMetrics(metrics(), new Date());
  } catch (error) {
    logger.warn('metrics not written', { reason: oneLine(String((error as Error)?.message), 200) });
  }
}

/**
 * The one middy wrapper every Cordon Lambda uses: Lambda context in every log line, the input checked
 * against the step's schema and the configuration slice it names (functions/core/config.ts) before any
 * logic runs, and every error turned into a named `CordonError`
 * whose name the ASL's Retry and Catch match: an AWS SDK error into one of the Aws* errors, anything
 * else that is not already ours into an `InternalError` that names the step. Every line logged during
 * the invocation carries the case id and execution ARN where the input has them (`correlation`), and
 * the invocation's metrics (functions/core/metrics.ts) are written as it ends.
 */
export function stepHandler<S extends z.ZodType, O, K extends SettingName>(
  name: string,
  slice: ConfigSlice<K>,
  schema: S,
  logic: (input: z.infer<S>, ctx: StepContext<K>) => Promise<O>,
) {
  return middy<unknown, O, Error, Context>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (event) => {
      const started = Date.now();
      const recorders: Recorder[] = [];
      logger.appendKeys(correlation(event));
      try {
        const parsed = schema.safeParse(event);
        if (!parsed.success) {
          throw new InvalidStepInputError(
            `${name} received input it cannot use: ${describeIssues(parsed.error)}`,
          );
        }
        const shared = stepContext(slice);
        // Every recorder of this invocation, flushed before the step reports either way.
        const ctx: StepContext<K> = {
          ...shared,
          recorder: (caseId, step) => {
            const r = shared.recorder(caseId, step);
            recorders.push(r);
            return r;
          },
        };
        const out = await logic(parsed.data, ctx);
        await Promise.all(recorders.map((r) => r.flush()));
        logger.info('step finished', { step: name, ms: Date.now() - started });
        emitSafely(() => stepMetrics(name, parsed.data, out));
        return out;
      } catch (error) {
        // What the step recorded before it failed is written (or known lost) before it reports.
        await Promise.allSettled(recorders.map((r) => r.flush()));
        const named = normaliseError(error, name);
        logger.error('step failed', {
          step: name,
          ms: Date.now() - started,
          error: { name: named.name, message: oneLine(named.message, 500) },
        });
        emitSafely(() => stepFailure(name));
        throw named;
      } finally {
        logger.removeKeys([...correlationKeys]);
      }
    });
}

export { CordonError };
