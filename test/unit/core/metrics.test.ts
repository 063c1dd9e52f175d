import { afterEach, describe, expect, it, vi } from 'vitest';
import { resetConfig } from '../../../functions/core/config.js';
import {
  emfDocument,
  emitMetrics,
  type Metric,
  metricDimensions,
  metricNames,
  metricNamespace,
  stepFailure,
  stepMetrics,
} from '../../../functions/core/metrics.js';

/**
 * The metrics module (functions/core/metrics.ts): the embedded metric format documents it builds, as
 * CloudWatch's specification defines them, and which step results become which metrics.
 */
const now = new Date('2026-11-27T20:15:03.000Z');
const openedAt = '2026-11-27T20:10:03.000Z';

afterEach(() => {
  vi.unstubAllEnvs();
  resetConfig();
});

describe('an EMF document', () => {
  it('holds the timestamp, one directive per dimension set, and every value as a top-level member', () => {
    // Prepare
    const metrics: Metric[] = [
      ...stepMetrics('notify-outcome', {}, { outcome: 'partial' }),
      { name: metricNames.evidenceBytes, unit: 'Bytes', value: 1024 },
    ];

    // Act
    const doc = emfDocument('prod', metrics, now);

    // Assess
    expect(doc).toEqual({
      _aws: {
        Timestamp: now.getTime(),
        CloudWatchMetrics: [
          {
            Namespace: metricNamespace,
            Dimensions: [['Stage', 'Outcome']],
            Metrics: [{ Name: 'Cases', Unit: 'Count' }],
          },
          {
            Namespace: 'Cordon',
            Dimensions: [['Stage']],
            Metrics: [{ Name: 'EvidenceBytes', Unit: 'Bytes' }],
          },
        ],
      },
      Stage: 'prod',
      Outcome: 'partial',
      Cases: 1,
      EvidenceBytes: 1024,
    });
  });

  it('names, in each directive, only members the root holds: dimensions as strings, metrics as numbers', () => {
    const doc = emfDocument('dev', [...stepFailure('isolate-instance')], now);

    const aws = doc._aws as { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[] };
    for (const directive of aws.CloudWatchMetrics) {
      for (const key of directive.Dimensions.flat()) expect(typeof doc[key]).toBe('string');
      for (const m of directive.Metrics) expect(typeof doc[m.Name]).toBe('number');
    }
    expect(doc).toMatchObject({ Step: 'isolate-instance', StepFailures: 1 });
  });

  it('refuses a value CloudWatch would reject or misread, and an empty set', () => {
    const base = { name: metricNames.evidenceBytes, unit: 'Bytes' } as const;
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, -1]) {
      expect(() => emfDocument('dev', [{ ...base, value }], now)).toThrow(TypeError);
    }
    expect(() => emfDocument('dev', [], now)).toThrow(TypeError);
  });

  it('refuses a dimension value that is not one of our identifiers, and a stage that is not a stage name', () => {
    for (const value of ['Completed', 'a b', 'x\u001b[31m', '', 'a'.repeat(65)]) {
      const metric: Metric = {
        name: metricNames.stepFailures,
        unit: 'Count',
        value: 1,
        dimension: { name: metricDimensions.step, value },
      };
      expect(() => emfDocument('dev', [metric], now)).toThrow(TypeError);
    }
    expect(() => emfDocument('prod"', stepFailure('demo-step'), now)).toThrow(TypeError);
  });

  it('refuses two values for one dimension in one document', () => {
    expect(() => emfDocument('dev', [...stepFailure('a-step'), ...stepFailure('b-step')], now)).toThrow(
      /given twice|two values/,
    );
  });
});

describe('the metrics of a step', () => {
  /** Snapshot Volumes' input: the case, and the Contain state's branches as they landed. */
  const afterContainment = (isolatedAt: unknown, revokedAt: unknown, status = 'succeeded') => ({
    case: { openedAt },
    containment: {
      protect: { status: 'succeeded', result: {} },
      isolate: { status, result: { finishedAt: isolatedAt } },
      revoke: { status: 'succeeded', result: { finishedAt: revokedAt } },
    },
  });

  it('are the time to containment, from the case opening to the later of Isolate and Revoke, once Snapshot Volumes starts', () => {
    const isolatedAt = '2026-11-27T20:14:03.000Z';
    const revokedAt = '2026-11-27T20:13:33.000Z';

    expect(stepMetrics('snapshot-volumes', afterContainment(isolatedAt, revokedAt), {})).toEqual([
      { name: 'TimeToContainment', unit: 'Seconds', value: 240 },
    ]);
    expect(stepMetrics('snapshot-volumes', afterContainment(revokedAt, isolatedAt), {})).toEqual([
      { name: 'TimeToContainment', unit: 'Seconds', value: 240 },
    ]);
  });

  it('are no time to containment where isolation or revocation failed or never ran', () => {
    const at = '2026-11-27T20:14:03.000Z';
    const failed = afterContainment(at, at, 'failed');
    const { revoke: _, ...withoutRevoke } = afterContainment(at, at).containment;

    expect(stepMetrics('snapshot-volumes', failed, {})).toEqual([]);
    expect(stepMetrics('snapshot-volumes', { case: { openedAt }, containment: withoutRevoke }, {})).toEqual(
      [],
    );
    expect(stepMetrics('snapshot-volumes', { case: { openedAt } }, {})).toEqual([]);
  });

  it('are no time to containment where the case has no usable opening time or a branch no usable end', () => {
    const at = '2026-11-27T20:14:03.000Z';
    for (const opened of [undefined, 'yesterday', '2026-11-27T20:20:03.000Z']) {
      const input = { ...afterContainment(at, at), case: { openedAt: opened } };
      expect(stepMetrics('snapshot-volumes', input, {})).toEqual([]);
    }
    for (const end of [undefined, 'later']) {
      expect(stepMetrics('snapshot-volumes', afterContainment(at, end), {})).toEqual([]);
    }
  });

  it('are no time to containment from the containment steps themselves, which finish one by one', () => {
    const at = '2026-11-27T20:14:03.000Z';

    for (const step of ['protect-instance', 'isolate-instance', 'revoke-credentials']) {
      expect(stepMetrics(step, { case: { openedAt } }, { finishedAt: at })).toEqual([]);
    }
  });

  it('are the sealed bytes (artifacts, manifest and signature) once Archive Evidence succeeded', () => {
    const archive = {
      manifest: { bytes: 2000 },
      signature: { bytes: 72 },
      artifacts: [{ bytes: 1_000_000 }, { bytes: 500 }],
    };

    expect(stepMetrics('archive-evidence', {}, archive)).toEqual([
      { name: 'EvidenceBytes', unit: 'Bytes', value: 1_002_572 },
    ]);
  });

  it('are no evidence bytes where a size is not a byte count', () => {
    const archive = { manifest: { bytes: 1 }, signature: { bytes: '72' }, artifacts: [] };

    expect(stepMetrics('archive-evidence', {}, archive)).toEqual([]);
    expect(stepMetrics('archive-evidence', {}, { ...archive, artifacts: { bytes: 1 } })).toEqual([]);
    expect(stepMetrics('archive-evidence', {}, undefined)).toEqual([]);
  });

  it('are one case by outcome for each outcome Notify reports, and none for anything else', () => {
    for (const outcome of ['completed', 'partial', 'failed']) {
      expect(stepMetrics('notify-outcome', {}, { outcome })).toEqual([
        { name: 'Cases', unit: 'Count', value: 1, dimension: { name: 'Outcome', value: outcome } },
      ]);
    }
    expect(stepMetrics('notify-outcome', {}, { outcome: 'Completed' })).toEqual([]);
    expect(stepMetrics('notify-outcome', {}, undefined)).toEqual([]);
  });

  it('are none for the other steps', () => {
    expect(stepMetrics('triage-instance', { case: { openedAt } }, { outcome: 'completed' })).toEqual([]);
  });
});

describe('emitting metrics', () => {
  it('writes one EMF line, with the configured stage, inside Lambda', () => {
    // Prepare
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'cordon-test-isolate-instance');
    vi.stubEnv('CORDON_STAGE', 'test');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', '');
    const lines: string[] = [];

    // Act
    emitMetrics(stepFailure('isolate-instance'), now, (line) => lines.push(line));

    // Assess
    const [line = ''] = lines;
    expect(lines).toHaveLength(1);
    expect(line.indexOf('\n')).toBe(line.length - 1);
    expect(JSON.parse(line)).toMatchObject({ Stage: 'test', Step: 'isolate-instance', StepFailures: 1 });
  });

  it('writes nothing outside Lambda, where stdout belongs to the CLI or the demo', () => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', '');
    vi.stubEnv('CORDON_STAGE', 'test');
    const write = vi.fn();

    expect(emitMetrics(stepFailure('isolate-instance'), now, write)).toBeUndefined();
    expect(write).not.toHaveBeenCalled();
  });

  it('writes nothing when POWERTOOLS_METRICS_DISABLED is true, nor when there is nothing to write', () => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'cordon-test-isolate-instance');
    vi.stubEnv('CORDON_STAGE', 'test');
    const write = vi.fn();

    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
    emitMetrics(stepFailure('isolate-instance'), now, write);
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', '');
    emitMetrics([], now, write);

    expect(write).not.toHaveBeenCalled();
  });
});
