import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { caseSchema, safeTextSchema } from '../../../functions/core/case.js';
import { intakeFinding } from '../../../functions/forensics/intake-finding/intake-finding.js';
import {
  type IntakeConfig,
  maxTriggerBytes,
  normaliseTrigger,
} from '../../../functions/forensics/intake-finding/normalise.js';
import {
  answerEverything,
  callsSent,
  devConfig,
  executionArn,
  intakeDeps,
  now,
  productionConfig,
  readRealEvent,
  realEventFiles,
  settingsOf,
  withAccount,
} from '../../support/intake-fixtures.js';

/**
 * Property tests over the real events: each run takes one of them and damages it the ways events get
 * damaged (a field gone, a field of another type, huge or hostile text, an extra level of nesting, an
 * array where an object was). Whatever comes in, Intake either opens a valid case or refuses with a
 * coded reason, throws nothing else, and a refusal sends nothing to AWS.
 */

type Json = unknown;
type Path = (string | number)[];

const seeds: Json[] = realEventFiles().flatMap((file) => {
  const event = readRealEvent(file);
  // The API fixtures also run with a real account, or every mutation of them would stop at the account.
  return file.startsWith('gd_api_') ? [event, withAccount(event, '444455556666')] : [event];
});

/** Every place in a JSON value where something can be removed or replaced, the root excluded. */
function pathsOf(value: Json, prefix: Path = [], out: Path[] = []): Path[] {
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      out.push([...prefix, i]);
      pathsOf(item, [...prefix, i], out);
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      out.push([...prefix, key]);
      pathsOf(item, [...prefix, key], out);
    }
  }
  return out;
}

function parentOf(root: Json, path: Path): Record<string | number, Json> {
  let at = root as Record<string | number, Json>;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, Json>;
  return at;
}

const hostile = [
  '\u0000',
  '\n',
  '\u001b[2J',
  '\u007f',
  '\u0085',
  '\u2028',
  '\u202e',
  '\u2066',
  '\ud800',
  '\udfff',
  '😀',
  '\u0301',
  '\ufeff',
  '%s%n%x',
  '"; rm -rf / #',
  '<script>',
  '__proto__',
];

const hostileText = fc
  .array(fc.oneof(fc.constantFrom(...hostile), fc.string({ unit: 'binary', maxLength: 20 })), {
    maxLength: 6,
  })
  .map((parts) => parts.join(''));

/** JSON-safe replacement values: what a field might turn into. */
const anyJson: fc.Arbitrary<Json> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 30 }),
  hostileText,
  fc.constantFrom(
    'i-0123456789abcdef0',
    '123456789012',
    'us-east-1',
    'Instance',
    'AwsEc2Instance',
    'true',
    '74',
  ),
  fc.jsonValue({ maxDepth: 3 }),
);

type Mutation =
  | { kind: 'remove'; pick: number }
  | { kind: 'retype'; pick: number; value: Json }
  | { kind: 'oversize'; pick: number; length: number }
  | { kind: 'unicode'; pick: number; text: string }
  | { kind: 'nest'; pick: number; asArray: boolean }
  | { kind: 'arrayify'; pick: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('retype' as const), pick: fc.nat(), value: anyJson }),
  fc.record({
    kind: fc.constant('oversize' as const),
    pick: fc.nat(),
    length: fc.oneof(
      fc.integer({ min: 500, max: 5_000 }),
      fc.integer({ min: maxTriggerBytes - 8_000, max: maxTriggerBytes + 8_000 }),
    ),
  }),
  fc.record({ kind: fc.constant('unicode' as const), pick: fc.nat(), text: hostileText }),
  fc.record({ kind: fc.constant('nest' as const), pick: fc.nat(), asArray: fc.boolean() }),
  fc.record({ kind: fc.constant('arrayify' as const), pick: fc.nat() }),
);

function mutate(event: Json, m: Mutation): Json {
  const paths = pathsOf(event);
  if (paths.length === 0) return m.kind === 'nest' ? { detail: event } : event;
  const path = paths[m.pick % paths.length] as Path;
  const parent = parentOf(event, path);
  const key = path.at(-1) as string | number;
  const current = parent[key];
  switch (m.kind) {
    case 'remove':
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
      break;
    case 'retype':
      parent[key] = m.value;
      break;
    case 'oversize':
      parent[key] = (typeof current === 'string' ? current : 'x').padEnd(m.length, 'A');
      break;
    case 'unicode':
      parent[key] = typeof current === 'string' ? `${current}${m.text}` : m.text;
      break;
    case 'nest':
      parent[key] = m.asArray ? [current] : { value: current };
      break;
    case 'arrayify':
      parent[key] = current !== null && typeof current === 'object' ? [current] : [current, current];
      break;
  }
  return event;
}

const configs: IntakeConfig[] = [
  devConfig,
  productionConfig,
  { ...devConfig, ACCEPT_SECURITYHUB_IMPORTED: true, MIN_SEVERITY: 0 },
];

const coded = /^[A-Z_]+: /;

beforeEach(() => {
  answerEverything();
});

describe('Intake under damaged real events', () => {
  it('opens a valid case or refuses with a coded reason, and a refusal sends nothing to AWS', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...seeds),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.constantFrom(...configs),
        async (seed, mutations, config) => {
          const event = mutations.reduce(mutate, structuredClone(seed));
          answerEverything();

          const result = await intakeFinding({ event, executionArn }, intakeDeps(config));

          if (result.intake.decision === 'accepted') {
            expect(caseSchema.safeParse(result.case).success).toBe(true);
          } else {
            expect(result.intake.decision).toBe('rejected');
            expect(result.intake.reason).toMatch(coded);
            expect(safeTextSchema.safeParse(result.intake.reason).success).toBe(true);
            expect(callsSent()).toBe(0);
          }
        },
      ),
      { numRuns: 1_200 },
    );
  }, 60_000);

  it('never throws on arbitrary JSON, and refuses what it cannot read with a coded reason', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.constantFrom(...configs), (event, config) => {
        const result = normaliseTrigger(event, settingsOf(config), now);

        if ('ok' in result) expect(caseSchema.omit({ caseId: true }).safeParse(result.ok).success).toBe(true);
        else expect(result.rejected).toMatch(coded);
      }),
      { numRuns: 2_000 },
    );
  });

  it('never throws on a real envelope whose parts are replaced with arbitrary JSON', () => {
    const shapes = fc.record({
      source: fc.oneof(fc.constantFrom('aws.guardduty', 'aws.securityhub'), anyJson),
      'detail-type': fc.oneof(
        fc.constantFrom(
          'GuardDuty Finding',
          'Security Hub Findings - Custom Action',
          'Security Hub Findings - Imported',
        ),
        anyJson,
      ),
      account: anyJson,
      region: anyJson,
      resources: fc.oneof(
        fc.constant(['arn:aws:securityhub:us-east-1:123456789012:action/custom/ForensicTriageAction']),
        anyJson,
      ),
      detail: fc.oneof(
        fc.constantFrom(...seeds),
        fc.record({ findings: fc.array(fc.constantFrom(...seeds), { maxLength: 3 }) }),
        anyJson,
      ),
    });
    fc.assert(
      fc.property(shapes, fc.constantFrom(...configs), (event, config) => {
        const result = normaliseTrigger(event, settingsOf(config), now);

        if ('ok' in result) expect(caseSchema.omit({ caseId: true }).safeParse(result.ok).success).toBe(true);
        else expect(result.rejected).toMatch(coded);
      }),
      { numRuns: 1_000 },
    );
  });
});
