/**
 * Cordon's CloudWatch metrics, written as CloudWatch embedded metric format (EMF) documents: one JSON
 * line on the function's log stream, from which CloudWatch Logs extracts the metrics. No API call, so no
 * permission beyond the log stream every function already writes. The document follows AWS's
 * "Specification: Embedded metric format" (CloudWatch User Guide): a root object whose `_aws` member
 * holds `Timestamp` (milliseconds since the epoch) and `CloudWatchMetrics`, an array of directives
 * `{Namespace, Dimensions: [[key, ...]], Metrics: [{Name, Unit}]}`; every dimension and metric a
 * directive names is a top-level member of the root, dimensions as strings and metrics as numbers.
 *
 * resources/observability.yml graphs and alarms on these names; test/template/observability.test.ts
 * reads them from here, so the dashboard and the code cannot drift apart.
 */
import type { Outcome } from './case.js';
import { config, configSlice } from './config.js';

export const metricNamespace = 'Cordon';

export const metricNames = {
  /** Seconds from the case's `openedAt` to the end of containment (Isolate and Revoke both done). */
  timeToContainment: 'TimeToContainment',
  /** One per case outcome Notify reports, by `Outcome`. */
  cases: 'Cases',
  /** Bytes of the objects a case's signed manifest seals (Archive Evidence succeeded). */
  evidenceBytes: 'EvidenceBytes',
  /** One per failed invocation of a step, by `Step`: a retried step counts each failed attempt. */
  stepFailures: 'StepFailures',
} as const;
export type MetricName = (typeof metricNames)[keyof typeof metricNames];

export const metricDimensions = { stage: 'Stage', outcome: 'Outcome', step: 'Step' } as const;
type ExtraDimension = typeof metricDimensions.outcome | typeof metricDimensions.step;

/** EMF's units are CloudWatch's `StandardUnit` names. */
export type MetricUnit = 'Seconds' | 'Count' | 'Bytes';

/** The outcomes a case reports: the `Outcome` dimension's only values. */
export const outcomes = ['completed', 'partial', 'failed'] as const satisfies readonly Outcome[];

export interface Metric {
  name: MetricName;
  unit: MetricUnit;
  value: number;
  /** A dimension besides `Stage`, for the metrics that are split by one. */
  dimension?: { name: ExtraDimension; value: string };
}

/** A step name or an outcome: our own identifiers, and nothing else reaches a dimension. */
const dimensionValuePattern = /^[a-z][a-z0-9-]{0,63}$/;
/** As functions/core/config.ts holds CORDON_STAGE. */
const stagePattern = /^[a-z0-9-]{1,16}$/;

/**
 * Builds one EMF document holding `metrics`, each under `Stage` and its own extra dimension (one
 * directive per dimension set). Refuses, with a thrown `TypeError`, what CloudWatch would reject or
 * misread: a value that is not a finite non-negative number, a dimension value that is not one of our
 * identifiers, two values for one dimension in one document, or nothing to emit.
 */
export function emfDocument(stage: string, metrics: readonly Metric[], now: Date): Record<string, unknown> {
  if (!stagePattern.test(stage)) throw new TypeError('metrics: not a stage name');
  if (metrics.length === 0) throw new TypeError('metrics: nothing to emit');
  const root: Record<string, unknown> = { [metricDimensions.stage]: stage };
  const directives = new Map<string, { dimensions: string[]; metrics: { Name: string; Unit: string }[] }>();
  for (const m of metrics) {
    if (!Number.isFinite(m.value) || m.value < 0) throw new TypeError(`metrics: ${m.name} is not a count`);
    if (m.name in root) throw new TypeError(`metrics: ${m.name} given twice`);
    const dimensions: string[] = [metricDimensions.stage];
    if (m.dimension) {
      const { name, value } = m.dimension;
      if (!dimensionValuePattern.test(value)) throw new TypeError(`metrics: not a ${name} value`);
      if (name in root && root[name] !== value) throw new TypeError(`metrics: two values for ${name}`);
      root[name] = value;
      dimensions.push(name);
    }
    const key = dimensions.join('\0');
    const directive = directives.get(key) ?? { dimensions, metrics: [] };
    directive.metrics.push({ Name: m.name, Unit: m.unit });
    directives.set(key, directive);
    root[m.name] = m.value;
  }
  return {
    _aws: {
      Timestamp: now.getTime(),
      CloudWatchMetrics: [...directives.values()].map((d) => ({
        Namespace: metricNamespace,
        Dimensions: [d.dimensions],
        Metrics: d.metrics,
      })),
    },
    ...root,
  };
}

/** What a step's result says about the case, as metrics: nothing for most steps. */
export function stepMetrics(step: string, input: unknown, output: unknown): Metric[] {
  if (step === 'snapshot-volumes') {
    // The first step after containment: the Contain state's branches say when each finished.
    const c = input as {
      case?: { openedAt?: unknown };
      containment?: Record<string, { status?: unknown; result?: { finishedAt?: unknown } } | undefined>;
    };
    // An approved case's containment waited for a person: its time measures the person, not Cordon.
    if ((c?.case as { response?: { action?: unknown } } | undefined)?.response?.action === 'approve')
      return [];
    const held = ['isolate', 'revoke'].map((k) => c?.containment?.[k]);
    if (!held.every((b) => b?.status === 'succeeded')) return [];
    const ends = held.map((b) => Date.parse(String(b?.result?.finishedAt)));
    const seconds = (Math.max(...ends) - Date.parse(String(c.case?.openedAt))) / 1000;
    if (!Number.isFinite(seconds) || seconds < 0) return [];
    return [{ name: metricNames.timeToContainment, unit: 'Seconds', value: seconds }];
  }
  if (step === 'archive-evidence') {
    const archive = output as { manifest?: { bytes?: unknown }; signature?: { bytes?: unknown } } & {
      artifacts?: { bytes?: unknown }[];
    };
    if (!Array.isArray(archive?.artifacts)) return [];
    const sealed = [...archive.artifacts, archive.manifest, archive.signature];
    const sizes = sealed.map((a) => a?.bytes);
    if (!sizes.every((b): b is number => Number.isSafeInteger(b) && (b as number) >= 0)) return [];
    return [{ name: metricNames.evidenceBytes, unit: 'Bytes', value: sizes.reduce((s, b) => s + b, 0) }];
  }
  if (step === 'notify-outcome') {
    const outcome = (output as { outcome?: unknown })?.outcome;
    if (!outcomes.includes(outcome as (typeof outcomes)[number])) return [];
    return [
      {
        name: metricNames.cases,
        unit: 'Count',
        value: 1,
        dimension: { name: metricDimensions.outcome, value: outcome as string },
      },
    ];
  }
  return [];
}

/** A failed invocation of `step`. */
export function stepFailure(step: string): Metric[] {
  return [
    {
      name: metricNames.stepFailures,
      unit: 'Count',
      value: 1,
      dimension: { name: metricDimensions.step, value: step },
    },
  ];
}

const stageSlice = configSlice('metrics', ['CORDON_STAGE']);

/**
 * Writes `metrics` as one EMF line on stdout, which Lambda sends, unprefixed, to the function's log
 * stream (the runtime prefixes `console.log`, and an EMF line must be JSON and nothing else). Only
 * inside Lambda (`AWS_LAMBDA_FUNCTION_NAME`, which the runtime sets): elsewhere stdout belongs to the
 * CLI or the demo running the handlers in-process. `POWERTOOLS_METRICS_DISABLED=true` turns it off, as
 * it does Powertools Metrics. Returns the document written, if any.
 */
export function emitMetrics(
  metrics: readonly Metric[],
  now: Date,
  write: (line: string) => unknown = (line) => process.stdout.write(line),
): Record<string, unknown> | undefined {
  if (metrics.length === 0) return undefined;
  if (!process.env.AWS_LAMBDA_FUNCTION_NAME) return undefined;
  if (process.env.POWERTOOLS_METRICS_DISABLED?.toLowerCase() === 'true') return undefined;
  const doc = emfDocument(config(stageSlice).CORDON_STAGE, metrics, now);
  write(`${JSON.stringify(doc)}\n`);
  return doc;
}
