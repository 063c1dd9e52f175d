/**
 * What Revoke decides before it changes anything: the profile the instance holds, the roles whose
 * sessions reached it, the denies each role gets, and whether IMDSv2 is to be required. Revoke and
 * `cordon start --dry-run` decide with these same functions.
 */
import {
  DescribeIamInstanceProfileAssociationsCommand,
  type EC2Client,
  type IamInstanceProfileAssociation,
} from '@aws-sdk/client-ec2';
import { GetInstanceProfileCommand, type IAMClient } from '@aws-sdk/client-iam';
import {
  denyPolicyName,
  issuedBeforeDenyPolicyName,
  longestRoleSessionMs,
  roleNameSchema,
} from './containment.js';
import { denyPolicies } from './denies.js';

export const profileNameOf = (arn: string) => arn.split('/').pop() ?? '';

/** The instance's live profile association (associated or associating), if any. */
export async function liveAssociation(
  ec2: EC2Client,
  instanceId: string,
): Promise<IamInstanceProfileAssociation | undefined> {
  const out = await ec2.send(
    new DescribeIamInstanceProfileAssociationsCommand({
      Filters: [{ Name: 'instance-id', Values: [instanceId] }],
    }),
  );
  return out.IamInstanceProfileAssociations?.find(
    (a) => a.State === 'associated' || a.State === 'associating',
  );
}

/** The profile the instance holds, unless it is Cordon's quarantine profile (never taken for its own). */
export function ownProfileArn(
  association: IamInstanceProfileAssociation | undefined,
  quarantineProfileName: string,
): string | undefined {
  const arn = association?.IamInstanceProfile?.Arn;
  return arn && profileNameOf(arn) !== quarantineProfileName ? arn : undefined;
}

/** The roles of an instance profile, each a valid role name (anything else is not put in a policy call). */
export async function rolesOf(iam: IAMClient, profileName: string): Promise<string[]> {
  const out = await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: profileName }));
  return (out.InstanceProfile?.Roles ?? [])
    .map((r) => r.RoleName ?? '')
    .filter((n) => roleNameSchema.safeParse(n).success);
}

export interface RoleDeny {
  roleName: string;
  /** How a failure names it: the role, and for the second deny what it denies. */
  target: string;
  policyName: string;
  document: string;
  /** The second deny has nothing left to deny after this instant (the longest session has expired). */
  until?: string;
}

/** The two inline denies each role gets for this case, with their names and documents. */
export function roleDenies(input: {
  caseId: string;
  roleNames: readonly string[];
  scope: 'instance' | 'role';
  instanceArn: string;
  cutoff: string;
}): RoleDeny[] {
  const documents = denyPolicies(input.scope, input.instanceArn, input.cutoff);
  const until = new Date(Date.parse(input.cutoff) + longestRoleSessionMs).toISOString();
  // The policy names carry the case id, which the notification already says.
  return input.roleNames.flatMap((roleName) => [
    {
      roleName,
      target: roleName,
      policyName: denyPolicyName(input.caseId),
      document: documents.containment,
    },
    {
      roleName,
      target: `${roleName}, sessions issued before ${input.cutoff}`,
      policyName: issuedBeforeDenyPolicyName(input.caseId),
      document: documents.issuedBefore,
      until,
    },
  ]);
}

export type Imdsv2Outcome = 'required by Cordon' | 'already required' | 'not requested';

/** What requiring IMDSv2 comes to, given the stage's setting and the instance's `HttpTokens`. */
export function imdsv2Outcome(requireImdsv2: boolean, httpTokens: string | undefined): Imdsv2Outcome {
  if (!requireImdsv2) return 'not requested';
  return httpTokens === 'required' ? 'already required' : 'required by Cordon';
}
