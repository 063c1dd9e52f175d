import { describe, expect, inject, it } from 'vitest';
import { metricDimensions, metricNames, metricNamespace, outcomes } from '../../functions/core/metrics.js';
import {
  type CfnResource,
  type CfnTemplate,
  loadTemplate,
  paramFor,
  resource,
  resourcesOfType,
} from '../support/template-model.js';

/**
 * The dashboard and the alarms on Cordon's own metrics (resources/observability.yml), read from the
 * packaged template and held to the names functions/core/metrics.ts emits.
 */
const stages = ['dev', 'prod'] as const;
const templates: Record<(typeof stages)[number], CfnTemplate> = {
  dev: loadTemplate(inject('cfnTemplates').dev),
  prod: loadTemplate(inject('cfnTemplates').prod),
};

interface Widget {
  type: string;
  properties: {
    alarms?: string[];
    metrics?: (string | Record<string, unknown>)[][];
    annotations?: { horizontal?: { value: unknown }[] };
  };
}

/** A stand-in ARN for each `${Id}` / `${Id.Arn}` of a Fn::Sub, naming the logical id it came from. */
const placeholder = (ref: string) => `arn:test:${ref.replace(/\.Arn$/, '')}`;

/** The dashboard body as CloudWatch receives it, its substitutions replaced by stand-ins. */
function dashboard(t: CfnTemplate): { body: { widgets: Widget[] }; references: string[] } {
  const [entry] = resourcesOfType(t, 'AWS::CloudWatch::Dashboard');
  const text = (entry?.[1].Properties?.DashboardBody as { 'Fn::Sub'?: unknown })?.['Fn::Sub'];
  if (typeof text !== 'string') throw new Error('the dashboard body is not a Fn::Sub string');
  const references: string[] = [];
  const resolved = text.replace(/\$\{([\w:.]+)\}/g, (_, ref: string) => {
    references.push(ref);
    return ref === 'AWS::Region' ? 'us-east-1' : placeholder(ref);
  });
  return { body: JSON.parse(resolved) as { widgets: Widget[] }, references };
}

/** Every metric row of the dashboard's graphs. */
const metricRows = (body: { widgets: Widget[] }) =>
  body.widgets.filter((w) => w.type === 'metric').flatMap((w) => w.properties.metrics ?? []);

/** The Cordon metrics a row graphs: `[namespace, name, dimension, value, ...]` or a SEARCH expression. */
function cordonMetrics(row: (string | Record<string, unknown>)[]): { name: string; dimensions: string[] }[] {
  const [first, second] = row;
  if (typeof first === 'string') {
    if (first !== metricNamespace || typeof second !== 'string') return [];
    const pairs = row.slice(2).filter((v): v is string => typeof v === 'string');
    return [{ name: second, dimensions: pairs.filter((_, i) => i % 2 === 0) }];
  }
  const expression = String(first?.expression ?? '');
  const search = /^SEARCH\('\{(\w+),([\w,]+)\} MetricName="(\w+)"/.exec(expression);
  if (!search || search[1] !== metricNamespace) return [];
  return [{ name: search[3] ?? '', dimensions: (search[2] ?? '').split(',') }];
}

describe.each(stages)('the %s dashboard', (stage) => {
  const t = templates[stage];

  it('is one dashboard named for the stage, whose body is valid JSON', () => {
    const dashboards = resourcesOfType(t, 'AWS::CloudWatch::Dashboard');

    expect(dashboards).toHaveLength(1);
    expect(dashboards[0]?.[1].Properties?.DashboardName).toBe(`cordon-${stage}`);
    expect(() => dashboard(t)).not.toThrow();
  });

  it('substitutes only resources the template has', () => {
    for (const ref of dashboard(t).references) {
      if (ref.startsWith('AWS::')) continue;
      expect(Object.keys(t.Resources), ref).toContain(ref.replace(/\.Arn$/, ''));
    }
  });

  it('graphs every metric the code emits, and no Cordon metric it does not', () => {
    const graphed = metricRows(dashboard(t).body).flatMap(cordonMetrics);

    expect(new Set(graphed.map((m) => m.name))).toEqual(new Set(Object.values(metricNames)));
  });

  it('graphs them only by the dimensions the code writes, always for this stage', () => {
    const known: string[] = Object.values(metricDimensions);
    for (const row of metricRows(dashboard(t).body)) {
      for (const m of cordonMetrics(row)) {
        expect(m.dimensions[0]).toBe(metricDimensions.stage);
        for (const d of m.dimensions) expect(known).toContain(d);
        if (typeof row[0] === 'string') expect(row[3]).toBe(stage);
        else expect(String(row[0]?.expression)).toContain(`Stage="${stage}"`);
      }
    }
  });

  it('graphs cases by every outcome Notify reports', () => {
    const rows = metricRows(dashboard(t).body).filter((r) => r[1] === metricNames.cases);

    expect(rows.map((r) => r[5])).toEqual([...outcomes]);
    for (const r of rows) expect(r[4]).toBe(metricDimensions.outcome);
  });

  it('shows every alarm of the stack', () => {
    const alarms = dashboard(t).body.widgets.flatMap((w) => w.properties.alarms ?? []);
    const declared = resourcesOfType(t, 'AWS::CloudWatch::Alarm').map(([id]) => placeholder(id));

    expect(new Set(alarms)).toEqual(new Set(declared));
  });

  it("graphs every state machine's executions", () => {
    const rows = metricRows(dashboard(t).body).filter((r) => r[0] === 'AWS/States');
    const machines = resourcesOfType(t, 'AWS::StepFunctions::StateMachine').map(([id]) => placeholder(id));

    expect(new Set(rows.map((r) => r[3]))).toEqual(new Set(machines));
    for (const r of rows) expect(r[2]).toBe('StateMachineArn');
  });

  it('marks the time-to-containment alarm threshold on its graph', () => {
    const graph = dashboard(t).body.widgets.find((w) =>
      (w.properties.metrics ?? []).some((r) => r[1] === metricNames.timeToContainment),
    );

    expect(graph?.properties.annotations?.horizontal?.[0]?.value).toBe(
      paramFor(stage, 'timeToContainmentAlarmSeconds'),
    );
  });
});

describe.each(stages)('the %s alarms on cases', (stage) => {
  const t = templates[stage];
  const props = (id: string) => (resource(t, id) as CfnResource).Properties ?? {};

  it.each([
    ['PartialCasesAlarm', 'partial'],
    ['FailedCasesAlarm', 'failed'],
  ])('%s counts the %s cases the code emits, for this stage', (id, outcome) => {
    expect(props(id)).toMatchObject({
      AlarmName: `cordon-${stage}-cases-${outcome}`,
      Namespace: metricNamespace,
      MetricName: metricNames.cases,
      Dimensions: [
        { Name: metricDimensions.stage, Value: stage },
        { Name: metricDimensions.outcome, Value: outcome },
      ],
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    expect(outcomes).toContain(outcome);
  });

  it('alarms on the p95 time to containment above the stage parameter', () => {
    expect(props('TimeToContainmentAlarm')).toMatchObject({
      AlarmName: `cordon-${stage}-time-to-containment`,
      Namespace: metricNamespace,
      MetricName: metricNames.timeToContainment,
      Dimensions: [{ Name: metricDimensions.stage, Value: stage }],
      ExtendedStatistic: 'p95',
      Unit: 'Seconds',
      Threshold: paramFor(stage, 'timeToContainmentAlarmSeconds'),
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
    });
  });

  it.each(['PartialCasesAlarm', 'FailedCasesAlarm', 'TimeToContainmentAlarm'])(
    '%s notifies the alert topic, under a name its policy admits',
    (id) => {
      expect(props(id).AlarmActions).toEqual([{ Ref: 'AlertTopic' }]);
      expect(String(props(id).AlarmName)).toMatch(new RegExp(`^cordon-${stage}-`));
    },
  );
});
