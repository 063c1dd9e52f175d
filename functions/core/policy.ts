/**
 * The response policy: what Cordon does about an instance, decided at Intake from the trigger's
 * account, finding type and severity and the instance's tags. Pure: no I/O, no clock.
 *
 * - `contain`: contain at once (the behaviour without a policy);
 * - `approve`: evidence and triage at once, containment once a person approves (`cordon approve`);
 * - `evidence-only`: snapshots, memory and the sealed archive; network, credentials and profile untouched;
 * - `exempt`: no case at all; Intake refuses the trigger, naming the rule, and the refusal is notified.
 *
 * A tag condition is only as strong as whoever may write the tag: tag conditions may name only the
 * keys the document lists in `tagKeys`, which the organisation must protect (a tag policy or an SCP);
 * `cordon doctor` checks that no instance role in the account may write them (scripts/cli/doctor/).
 */
import { z } from 'zod';
import { accountIdSchema, responseSchema } from './case.js';
import { ConfigurationError } from './errors.js';

export const policyResponses = ['contain', 'approve', 'evidence-only', 'exempt'] as const;
export type PolicyResponse = (typeof policyResponses)[number];

/** What the policy holds when the stage sets none: today's behaviour. */
export const defaultPolicyText = '{"default":"contain"}';

// EC2's tag rules: keys 1-128, values 0-256 characters of letters, digits, spaces and `_ . : / = + - @`;
// `aws:` keys are AWS's own, which nobody may write.
const tagText = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const tagKeySchema = z
  .string()
  .min(1)
  .max(128)
  .regex(tagText, 'not a tag key EC2 allows')
  .refine((k) => !k.toLowerCase().startsWith('aws:'), 'aws: keys are AWS-reserved');
const tagValueSchema = z.string().max(256).regex(tagText, 'not a tag value EC2 allows');

/** A finding type, or a pattern where `*` stands for any run of characters. */
const findingTypePatternSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[\w.:/!&*+\- ]+$/, 'not a finding type or a pattern of one');

const severitySchema = z.number().min(0).max(10);
const nonEmpty = <T extends z.ZodType>(item: T) => z.array(item).min(1).max(100);

const ruleSchema = z
  .strictObject({
    name: responseSchema.shape.rule,
    response: z.enum(policyResponses),
    accounts: nonEmpty(accountIdSchema).optional(),
    tags: z
      .record(tagKeySchema, nonEmpty(tagValueSchema))
      .refine((tags) => Object.keys(tags).length > 0, 'names no tag')
      .optional(),
    findingTypes: nonEmpty(findingTypePatternSchema).optional(),
    minSeverity: severitySchema.optional(),
    maxSeverity: severitySchema.optional(),
  })
  .refine(
    (r) => r.minSeverity === undefined || r.maxSeverity === undefined || r.minSeverity <= r.maxSeverity,
    {
      message: 'minSeverity is above maxSeverity, so the rule can never match',
      path: ['minSeverity'],
    },
  );
export type PolicyRule = z.infer<typeof ruleSchema>;

const policySchema = z
  .strictObject({
    default: z.enum(policyResponses),
    tagKeys: z.array(tagKeySchema).max(50).default([]),
    rules: z.array(ruleSchema).max(100).default([]),
  })
  .superRefine((p, ctx) => {
    const keys = new Set(p.tagKeys);
    const names = new Set<string>();
    p.rules.forEach((rule, i) => {
      if (names.has(rule.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'name'],
          message: `"${rule.name}" names two rules`,
        });
      }
      names.add(rule.name);
      for (const key of Object.keys(rule.tags ?? {})) {
        if (keys.has(key)) continue;
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'tags'],
          message: `rule "${rule.name}" reads the tag "${key}", which is not in tagKeys (list only keys your organisation protects from the instances' own roles)`,
        });
      }
    });
  });
export type ResponsePolicy = z.infer<typeof policySchema>;

/** Why a policy document is refused, each problem with where it is (`rules.1.tags`). */
function problems(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`).join('; ');
}

/**
 * Reads a policy document (JSON text, as the `responsePolicy` stage parameter holds it). A document
 * that is not JSON, has an unknown field (a misspelt condition would otherwise widen its rule), or
 * whose tag conditions name a key outside `tagKeys` is a ConfigurationError saying what and where.
 */
export function parseResponsePolicy(text: string, setting = 'the response policy'): ResponsePolicy {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new ConfigurationError(`${setting} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  const parsed = policySchema.safeParse(document);
  if (!parsed.success) throw new ConfigurationError(`${setting} is refused: ${problems(parsed.error)}`);
  return parsed.data;
}

/** Whether any rule reads the instance's tags: only then must the instance be read before the decision. */
export function readsTags(policy: ResponsePolicy): boolean {
  return policy.rules.some((r) => r.tags !== undefined);
}

/**
 * What the decision is made from. A manual start has no finding type and no severity: rules that name
 * finding types or severity bounds do not match it, the others (accounts, tags) do.
 */
export interface PolicyInput {
  accountId: string;
  findingType?: string | undefined;
  /** On GuardDuty's 0-10 scale, as Intake normalises it. */
  severity?: number | undefined;
  /**
   * The instance's tags as Cordon read them at intake, with its own role (`{ known }`), or why they
   * could not be read (`{ unread }`): then no tag condition can match.
   */
  tags: { known: Readonly<Record<string, string>> } | { unread: string };
}

export interface PolicyDecision {
  response: PolicyResponse;
  /** The rule's name, or `default`. */
  rule: string;
  reason: string;
}

/** `*` is any run of characters; everything else is itself (case-sensitive, as GuardDuty's types are). */
export function globMatches(pattern: string, text: string): boolean {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`, 's').test(text);
}

type Check = { holds: true; said: string } | { holds: false; unreadTags?: true };

function checkRule(rule: PolicyRule, input: PolicyInput): Check[] {
  const checks: Check[] = [];
  if (rule.accounts) {
    checks.push(
      rule.accounts.includes(input.accountId)
        ? { holds: true, said: `account ${input.accountId}` }
        : { holds: false },
    );
  }
  if (rule.tags) {
    const tags = input.tags;
    for (const [key, values] of Object.entries(rule.tags)) {
      if (!('known' in tags)) {
        checks.push({ holds: false, unreadTags: true });
        continue;
      }
      const value = Object.hasOwn(tags.known, key) ? tags.known[key] : undefined;
      // The value said is the policy's own (equal to the instance's): no instance text in the reason.
      const matched = value === undefined ? undefined : values.find((v) => v === value);
      checks.push(matched === undefined ? { holds: false } : { holds: true, said: `tag ${key}=${matched}` });
    }
  }
  if (rule.findingTypes) {
    const type = input.findingType;
    const pattern = type === undefined ? undefined : rule.findingTypes.find((p) => globMatches(p, type));
    checks.push(
      pattern === undefined ? { holds: false } : { holds: true, said: `finding type matches "${pattern}"` },
    );
  }
  if (rule.minSeverity !== undefined || rule.maxSeverity !== undefined) {
    const s = input.severity;
    const within =
      s !== undefined &&
      (rule.minSeverity === undefined || s >= rule.minSeverity) &&
      (rule.maxSeverity === undefined || s <= rule.maxSeverity);
    checks.push(within ? { holds: true, said: `severity ${s}` } : { holds: false });
  }
  return checks;
}

/**
 * The response for one trigger: the first rule whose every condition holds (a condition holds when
 * any of its values does), else the policy's default. The reason says which conditions chose it, and,
 * when the instance's tags could not be read, that the tag rules were passed over for that; a decision
 * that passed over a tag rule it could not judge is never weaker than `contain`.
 */
export function decideResponse(input: PolicyInput, policy: ResponsePolicy): PolicyDecision {
  const decision = firstMatch(input, policy);
  const unread = 'unread' in input.tags ? input.tags.unread : undefined;
  // A tag rule that could not be judged might have chosen containment: an unread tag never weakens.
  if (unread !== undefined && decision.passedOver.length && decision.response !== 'contain') {
    const rules = decision.passedOver.map((n) => `"${n}"`).join(', ');
    return {
      response: 'contain',
      rule: 'default',
      reason: `the instance's tags could not be read (${unread}) and the tag conditions of ${rules}, which come first, might have decided otherwise: contain, the strictest response, rather than ${decision.response} by ${decision.rule === 'default' ? "the policy's default" : `rule "${decision.rule}"`}`,
    };
  }
  const { passedOver: _, ...decided } = decision;
  return decided;
}

function firstMatch(input: PolicyInput, policy: ResponsePolicy): PolicyDecision & { passedOver: string[] } {
  const unread = 'unread' in input.tags ? input.tags.unread : undefined;
  const passedOver: string[] = [];
  for (const rule of policy.rules) {
    const checks = checkRule(rule, input);
    if (checks.every((c) => c.holds)) {
      const said = checks.map((c) => (c.holds ? c.said : '')).filter(Boolean);
      return {
        response: rule.response,
        rule: rule.name,
        reason: `rule "${rule.name}" matched (${said.length ? said.join(', ') : 'it has no condition'})${unreadNote(passedOver, unread)}`,
        passedOver,
      };
    }
    if (checks.some((c) => !c.holds && c.unreadTags)) passedOver.push(rule.name);
  }
  return {
    response: policy.default,
    rule: 'default',
    reason: `no rule matched: the policy's default${unreadNote(passedOver, unread)}`,
    passedOver,
  };
}

function unreadNote(passedOver: string[], unread: string | undefined): string {
  if (!passedOver.length || unread === undefined) return '';
  const rules = passedOver.map((n) => `"${n}"`).join(', ');
  return `; the instance's tags could not be read (${unread}), so the tag conditions of ${rules} could not match`;
}
