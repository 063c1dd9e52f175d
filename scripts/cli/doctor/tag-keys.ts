import {
  type EvaluationResult,
  type IAMClient,
  ListInstanceProfilesCommand,
  SimulatePrincipalPolicyCommand,
} from '@aws-sdk/client-iam';
import { defaultPolicyText, parseResponsePolicy } from '../../../functions/core/policy.js';
import { mapLimit } from '../evidence.js';
import { safe } from '../output.js';
import { allow, type Check, guarded, list } from './check.js';

/** The tag keys the stage's response policy reads (`tagKeys`), or why its policy cannot be read. */
export type PolicyTagKeys = { stage: string; keys: string[] } | { stage: string; error: string };

/** From the stage's params as a deploy would resolve them (`responsePolicy`; unset is the default). */
export function policyTagKeysOf(stage: string, params: Record<string, unknown>): PolicyTagKeys {
  const given = params.responsePolicy;
  const text = typeof given === 'string' && given.trim() !== '' ? given : defaultPolicyText;
  try {
    return { stage, keys: parseResponsePolicy(text, `stage ${stage}'s responsePolicy`).tagKeys };
  } catch (error) {
    return { stage, error: (error as Error).message };
  }
}

const tagActions = ['ec2:CreateTags', 'ec2:DeleteTags'];

/** The roles of every instance profile in the account, each once. */
async function instanceRoles(iam: IAMClient): Promise<string[]> {
  const roles = new Set<string>();
  let marker: string | undefined;
  do {
    const page = await iam.send(new ListInstanceProfilesCommand({ ...(marker ? { Marker: marker } : {}) }));
    for (const profile of page.InstanceProfiles ?? []) {
      for (const role of profile.Roles ?? []) if (role.Arn) roles.add(role.Arn);
    }
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  return [...roles].sort();
}

interface Verdict {
  role: string;
  key: string;
  allowed: string[];
  missing: string[];
}

/**
 * Whether the role may tag an instance of its own account with the key, or remove it, as IAM's
 * simulator decides (identity policies, boundary and, in an organisation, its SCPs) with `aws:TagKeys`
 * naming the key alone.
 */
async function simulate(iam: IAMClient, role: string, key: string, region: string): Promise<Verdict> {
  const [, partition = 'aws', , , account = ''] = role.split(':');
  const results: EvaluationResult[] = [];
  let marker: string | undefined;
  do {
    const page = await iam.send(
      new SimulatePrincipalPolicyCommand({
        PolicySourceArn: role,
        ActionNames: tagActions,
        ResourceArns: [`arn:${partition}:ec2:${region}:${account}:instance/*`],
        ContextEntries: [
          { ContextKeyName: 'aws:TagKeys', ContextKeyValues: [key], ContextKeyType: 'stringList' },
        ],
        ...(marker ? { Marker: marker } : {}),
      }),
    );
    results.push(...(page.EvaluationResults ?? []));
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  const allowed = results
    .filter(
      (r) =>
        r.EvalDecision === 'allowed' ||
        (r.ResourceSpecificResults ?? []).some((s) => s.EvalResourceDecision === 'allowed'),
    )
    .map((r) => r.EvalActionName ?? '');
  const missing = results.flatMap((r) => [
    ...(r.MissingContextValues ?? []),
    ...(r.ResourceSpecificResults ?? []).flatMap((s) => s.MissingContextValues ?? []),
  ]);
  return { role, key, allowed, missing: [...new Set(missing)] };
}

const roleName = (arn: string) => arn.slice(arn.lastIndexOf('/') + 1);

/**
 * The response policy's tag conditions hold only while the instance cannot rewrite its own tags: for
 * every role an instance profile of the account holds, and every key the policy reads, IAM's simulator
 * is asked whether the role may create or delete that tag on the account's instances. Any allowed is a
 * failure naming the role and the key; a simulation that lacked a condition key it needed is UNKNOWN.
 */
export async function checkTagKeys(
  iam: IAMClient,
  region: string,
  policy: PolicyTagKeys,
  concurrency = 4,
): Promise<Check> {
  const base = { check: 'Protected tag keys', scope: `account, ${region}` };
  if ('error' in policy) {
    return {
      ...base,
      status: 'fail',
      detail: policy.error,
      fix: 'Correct the responsePolicy parameter (README, Response policy): Intake would not start with it.',
    };
  }
  if (!policy.keys.length) {
    return {
      ...base,
      status: 'pass',
      detail: `not needed: stage ${policy.stage}'s response policy reads no tag`,
      fix: '',
    };
  }
  return guarded(base, allow('iam:ListInstanceProfiles', 'iam:SimulatePrincipalPolicy'), async () => {
    const roles = await instanceRoles(iam);
    const keys = policy.keys.map((k) => safe(k, 128)).join(', ');
    if (!roles.length) {
      return {
        ...base,
        status: 'pass',
        detail: `no instance profile holds a role, so none may write ${keys}`,
        fix: '',
      };
    }
    const pairs = roles.flatMap((role) => policy.keys.map((key) => ({ role, key })));
    const verdicts = await mapLimit(pairs, concurrency, ({ role, key }) => simulate(iam, role, key, region));
    const writers = verdicts.filter((v) => v.allowed.length);
    if (writers.length) {
      const said = writers.map((v) => `${roleName(v.role)} (${v.allowed.join(', ')} ${safe(v.key, 128)})`);
      return {
        ...base,
        status: 'fail',
        detail: `instance roles may write the response policy's tag keys, so a compromised instance could choose its own response: ${list(said)}`,
        fix: `Deny ec2:CreateTags and ec2:DeleteTags with aws:TagKeys ${keys} to instance roles (an SCP, or each role's policy), or take the tag rules out of responsePolicy.`,
        resources: [...new Set(writers.map((v) => v.role))],
      };
    }
    const undecided = verdicts.filter((v) => v.missing.length);
    if (undecided.length) {
      const missing = [...new Set(undecided.flatMap((v) => v.missing))].map((m) => safe(m, 128));
      return {
        ...base,
        status: 'unknown',
        detail: `denied as simulated, but the simulation lacked ${list(missing)}, which a condition of ${list(
          [...new Set(undecided.map((v) => roleName(v.role)))],
        )} reads: a real request could be allowed`,
        fix: `Read those roles' policies for ec2:CreateTags and ec2:DeleteTags on ${keys}.`,
        resources: [...new Set(undecided.map((v) => v.role))],
      };
    }
    return {
      ...base,
      status: 'pass',
      detail: `none of the ${roles.length} instance role(s) may create or delete the tag key(s) ${keys} on the account's instances`,
      fix: '',
    };
  });
}
