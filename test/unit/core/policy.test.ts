import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { responseSchema } from '../../../functions/core/case.js';
import { ConfigurationError } from '../../../functions/core/errors.js';
import {
  decideResponse,
  defaultPolicyText,
  globMatches,
  type PolicyInput,
  parseResponsePolicy,
  policyResponses,
  readsTags,
} from '../../../functions/core/policy.js';
import { normaliseTrigger } from '../../../functions/forensics/intake-finding/normalise.js';
import { devConfig, now, readRealEvent, settingsOf, withAccount } from '../../support/intake-fixtures.js';

const policy = (document: unknown) => parseResponsePolicy(JSON.stringify(document));

/** What Intake decides from for a real event: its account, finding type and severity, and the tags. */
function inputOf(file: string, tags: PolicyInput['tags'] = { known: {} }): PolicyInput {
  const event = readRealEvent(file);
  const given = file.startsWith('gd_api_') ? withAccount(event, '444455556666') : event;
  const normalised = normaliseTrigger(given, settingsOf(devConfig), now);
  if (!('ok' in normalised)) throw new Error(`${file} was refused: ${normalised.rejected}`);
  const { accountId, trigger } = normalised.ok;
  return { accountId, findingType: trigger.findingType, severity: trigger.severity, tags };
}

const backdoor = 'gd_api_getfindings_backdoor_cc_activity_b_dns_count3.json'; // severity 8, Backdoor:EC2/…
const canary = 'gd_detail_canary_ec2_stateless_integtest.json'; // severity 5, Canary:EC2/…, 123456789012
const bruteForce = 'gd_eb_partial_sshbruteforce_sample.json'; // severity 2, UnauthorizedAccess:EC2/SSHBruteForce
const asffBruteForce = 'gd_asff_sshbruteforce_real_count74_from_docs.json'; // the ASFF type, severity 2

const manualStart: PolicyInput = { accountId: '123456789012', tags: { known: {} } };

describe('reading a policy document', () => {
  it('contains everything when the stage sets no policy', () => {
    const p = parseResponsePolicy(defaultPolicyText);

    expect(p).toEqual({ default: 'contain', tagKeys: [], rules: [] });
    expect(decideResponse(inputOf(backdoor), p)).toEqual({
      response: 'contain',
      rule: 'default',
      reason: "no rule matched: the policy's default",
    });
  });

  it('refuses text that is not JSON, saying so', () => {
    expect(() => parseResponsePolicy('{default: contain}')).toThrow(ConfigurationError);
    expect(() => parseResponsePolicy('{default: contain}')).toThrow(/^the response policy is not JSON: /);
  });

  it.each([
    ['no default', {}, /default: /],
    ['an unknown response', { default: 'isolate' }, /default: /],
    [
      'a misspelt condition, which would widen its rule',
      { default: 'contain', rules: [{ name: 'a', response: 'approve', tag: {} }] },
      /rules\.0: .*tag/,
    ],
    ['an unknown top-level field', { default: 'contain', rule: [] }, /rule/],
    [
      'a rule name the case cannot hold',
      { default: 'contain', rules: [{ name: 'prod db', response: 'approve' }] },
      /rules\.0\.name: not a policy rule name/,
    ],
    [
      'two rules of one name',
      {
        default: 'contain',
        rules: [
          { name: 'a', response: 'approve' },
          { name: 'a', response: 'exempt' },
        ],
      },
      /rules\.1\.name: "a" names two rules/,
    ],
    [
      'an account that is not 12 digits',
      { default: 'contain', rules: [{ name: 'a', response: 'approve', accounts: ['1234'] }] },
      /rules\.0\.accounts\.0: /,
    ],
    [
      'an empty list, which would match nothing',
      { default: 'contain', rules: [{ name: 'a', response: 'approve', accounts: [] }] },
      /rules\.0\.accounts: /,
    ],
    [
      'a severity off the 0-10 scale',
      { default: 'contain', rules: [{ name: 'a', response: 'approve', minSeverity: 11 }] },
      /rules\.0\.minSeverity: /,
    ],
    [
      'bounds the wrong way round',
      { default: 'contain', rules: [{ name: 'a', response: 'approve', minSeverity: 8, maxSeverity: 4 }] },
      /minSeverity is above maxSeverity/,
    ],
    [
      'an AWS-reserved tag key',
      { default: 'contain', tagKeys: ['aws:cloudformation:stack-name'] },
      /tagKeys\.0: aws: keys are AWS-reserved/,
    ],
    [
      'a finding type with a quote',
      { default: 'contain', rules: [{ name: 'a', response: 'approve', findingTypes: ['Backdoor"'] }] },
      /findingTypes\.0: /,
    ],
  ])('refuses %s, naming where', (_, document, message) => {
    expect(() => policy(document)).toThrow(ConfigurationError);
    expect(() => policy(document)).toThrow(message);
  });

  it('refuses a tag condition on a key not listed in tagKeys, naming the rule and the key', () => {
    const document = {
      default: 'contain',
      tagKeys: ['cordon:response'],
      rules: [{ name: 'prod-db', response: 'approve', tags: { Environment: ['prod'] } }],
    };

    expect(() => policy(document)).toThrow(
      /rules\.0\.tags: rule "prod-db" reads the tag "Environment", which is not in tagKeys/,
    );
  });

  it('accepts a tag condition on a listed key, and says that the policy reads tags', () => {
    const p = policy({
      default: 'contain',
      tagKeys: ['cordon:response'],
      rules: [{ name: 'db', response: 'approve', tags: { 'cordon:response': ['approve'] } }],
    });

    expect(readsTags(p)).toBe(true);
    expect(readsTags(policy({ default: 'contain', rules: [{ name: 'a', response: 'exempt' }] }))).toBe(false);
  });
});

describe('deciding', () => {
  it('takes the first matching rule, not the strictest nor the last', () => {
    const p = policy({
      default: 'contain',
      rules: [
        { name: 'first', response: 'evidence-only', findingTypes: ['Backdoor:EC2/*'] },
        { name: 'second', response: 'approve', minSeverity: 7 },
      ],
    });

    expect(decideResponse(inputOf(backdoor), p)).toMatchObject({ response: 'evidence-only', rule: 'first' });
  });

  it('needs every condition of a rule to hold', () => {
    const p = policy({
      default: 'contain',
      rules: [{ name: 'both', response: 'approve', accounts: ['123456789012'], minSeverity: 7 }],
    });

    // The canary is in that account but only severity 5.
    expect(decideResponse(inputOf(canary), p)).toMatchObject({ response: 'contain', rule: 'default' });
  });

  it('lets any value of one condition match', () => {
    const p = policy({
      default: 'contain',
      rules: [{ name: 'either', response: 'approve', accounts: ['999999999999', '123456789012'] }],
    });

    expect(decideResponse(inputOf(canary), p)).toEqual({
      response: 'approve',
      rule: 'either',
      reason: 'rule "either" matched (account 123456789012)',
    });
  });

  it('holds severity bounds inclusive at both ends', () => {
    const p = policy({
      default: 'contain',
      rules: [{ name: 'mid', response: 'approve', minSeverity: 5, maxSeverity: 5 }],
    });

    expect(decideResponse(inputOf(canary), p).rule).toBe('mid');
    expect(decideResponse(inputOf(backdoor), p).rule).toBe('default');
    expect(decideResponse(inputOf(bruteForce), p).rule).toBe('default');
  });

  it('matches finding types by glob, case-sensitively, against the type the trigger names', () => {
    const p = policy({
      default: 'contain',
      rules: [
        { name: 'lower', response: 'exempt', findingTypes: ['backdoor:ec2/*'] },
        { name: 'brute', response: 'approve', findingTypes: ['UnauthorizedAccess:EC2/SSHBruteForce'] },
        { name: 'canary', response: 'evidence-only', findingTypes: ['Canary:*.IntegTest'] },
      ],
    });

    expect(decideResponse(inputOf(backdoor), p).rule).toBe('default');
    expect(decideResponse(inputOf(bruteForce), p).rule).toBe('brute');
    expect(decideResponse(inputOf(canary), p)).toMatchObject({
      rule: 'canary',
      reason: 'rule "canary" matched (finding type matches "Canary:*.IntegTest")',
    });
    // An ASFF trigger names the ASFF type, which an exact GuardDuty type does not match.
    expect(decideResponse(inputOf(asffBruteForce), p).rule).toBe('default');
  });

  it('reaches an ASFF finding type with a wider pattern', () => {
    const p = policy({
      default: 'contain',
      rules: [
        { name: 'brute', response: 'approve', findingTypes: ['*UnauthorizedAccess:EC2*SSHBruteForce'] },
      ],
    });

    expect(decideResponse(inputOf(asffBruteForce), p).rule).toBe('brute');
    expect(decideResponse(inputOf(bruteForce), p).rule).toBe('brute');
  });

  it('decides a manual start by its account and tags; finding-type and severity rules do not match it', () => {
    const p = policy({
      default: 'contain',
      rules: [
        { name: 'types', response: 'exempt', findingTypes: ['*'] },
        { name: 'low', response: 'exempt', maxSeverity: 10 },
        { name: 'acct', response: 'approve', accounts: ['123456789012'] },
      ],
    });

    expect(decideResponse(manualStart, p)).toMatchObject({ response: 'approve', rule: 'acct' });
  });

  it('matches a tag on its exact value, and says the value the policy named', () => {
    const p = policy({
      default: 'contain',
      tagKeys: ['cordon:response'],
      rules: [{ name: 'db', response: 'approve', tags: { 'cordon:response': ['approve', 'db'] } }],
    });

    expect(decideResponse({ ...manualStart, tags: { known: { 'cordon:response': 'db' } } }, p)).toEqual({
      response: 'approve',
      rule: 'db',
      reason: 'rule "db" matched (tag cordon:response=db)',
    });
    expect(decideResponse({ ...manualStart, tags: { known: { 'cordon:response': 'DB' } } }, p).rule).toBe(
      'default',
    );
    expect(decideResponse({ ...manualStart, tags: { known: {} } }, p).rule).toBe('default');
  });

  it('passes over tag rules when the tags could not be read, and says so', () => {
    const p = policy({
      default: 'contain',
      tagKeys: ['cordon:response'],
      rules: [
        { name: 'db', response: 'exempt', tags: { 'cordon:response': ['exempt'] } },
        { name: 'acct', response: 'approve', accounts: ['999999999999'] },
      ],
    });

    const decision = decideResponse({ ...manualStart, tags: { unread: 'the instance was not found' } }, p);

    expect(decision).toEqual({
      response: 'contain',
      rule: 'default',
      reason:
        'no rule matched: the policy\'s default; the instance\'s tags could not be read (the instance was not found), so the tag conditions of "db" could not match',
    });
  });

  it('contains when a tag rule it could not judge comes before a weaker decision', () => {
    const p = policy({
      default: 'approve',
      tagKeys: ['tier'],
      rules: [
        { name: 'crown-jewels', response: 'contain', tags: { tier: ['critical'] } },
        { name: 'acct', response: 'exempt', accounts: [manualStart.accountId] },
      ],
    });

    const decision = decideResponse({ ...manualStart, tags: { unread: 'Throttling' } }, p);

    expect(decision.response).toBe('contain');
    expect(decision.reason).toContain('"crown-jewels"');
    expect(decision.reason).toContain('rather than exempt by rule "acct"');
    // A rule decided before any tag rule is not second-guessed.
    const first = policy({ ...p, rules: [...p.rules].reverse() } as never);
    expect(decideResponse({ ...manualStart, tags: { unread: 'Throttling' } }, first).response).toBe('exempt');
  });

  it('does not take a tag named "unread" for tags that could not be read', () => {
    const p = policy({
      default: 'contain',
      tagKeys: ['unread'],
      rules: [{ name: 'u', response: 'approve', tags: { unread: ['x'] } }],
    });

    expect(decideResponse({ ...manualStart, tags: { known: { unread: 'x' } } }, p).rule).toBe('u');
  });

  it('does not read a tag from the prototype of the tags it was given', () => {
    const p = policy({
      default: 'contain',
      tagKeys: ['toString'],
      rules: [{ name: 'proto', response: 'exempt', tags: { toString: [''] } }],
    });

    expect(decideResponse(manualStart, p).rule).toBe('default');
  });
});

describe('properties', () => {
  const responses = fc.constantFrom(...policyResponses);
  const rule = fc.record(
    {
      name: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
      response: responses,
      accounts: fc.array(fc.constantFrom('123456789012', '444455556666', '999999999999'), {
        minLength: 1,
        maxLength: 2,
      }),
      findingTypes: fc.array(fc.constantFrom('Backdoor:EC2/*', 'Canary:*', '*', 'UnauthorizedAccess:EC2/*'), {
        minLength: 1,
        maxLength: 2,
      }),
      minSeverity: fc.integer({ min: 0, max: 10 }),
    },
    { requiredKeys: ['name', 'response'] },
  );
  const document = fc
    .record({ default: responses, rules: fc.array(rule, { maxLength: 6 }) })
    .map((d) => ({ ...d, rules: d.rules.map((r, i) => ({ ...r, name: `${r.name}-${i}` })) }));
  const input = fc.constantFrom(backdoor, canary, bruteForce, asffBruteForce).map((f) => inputOf(f));

  it('always decides: a response of the four and a rule name the case can hold', () => {
    fc.assert(
      fc.property(document, input, (d, i) => {
        const decision = decideResponse(i, policy(d));

        expect(policyResponses).toContain(decision.response);
        expect(responseSchema.shape.rule.safeParse(decision.rule).success).toBe(true);
      }),
    );
  });

  it('is decided by the first rule that matches alone: rules after it change nothing', () => {
    fc.assert(
      fc.property(document, input, fc.array(rule, { maxLength: 3 }), (d, i, extra) => {
        const before = decideResponse(i, policy(d));
        fc.pre(before.rule !== 'default');
        const more = { ...d, rules: [...d.rules, ...extra.map((r, n) => ({ ...r, name: `extra-${n}` }))] };

        expect(decideResponse(i, policy(more))).toEqual(before);
      }),
    );
  });

  it('matches a glob against itself and a star against anything', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        expect(globMatches('*', text)).toBe(true);
        expect(globMatches(text.replaceAll('*', ''), text.replaceAll('*', ''))).toBe(true);
      }),
    );
  });
});
