/**
 * Revoke's action: the Deny policies on the instance's roles, the quarantine instance profile in
 * place of its own, and IMDSv2 required.
 */
import {
  DescribeIamInstanceProfileAssociationsCommand,
  ModifyInstanceMetadataOptionsCommand,
  ReplaceIamInstanceProfileAssociationCommand,
} from '@aws-sdk/client-ec2';
import { DeleteRolePolicyCommand } from '@aws-sdk/client-iam';
import { z } from 'zod';
import { caseIdSchema } from '../case.js';
import {
  changeKeys,
  codeOf,
  instanceProfileArnSchema,
  longestRoleSessionMs,
  roleNameSchema,
} from '../containment.js';
import { instanceArnOf, putDeny, releasedDeny } from '../denies.js';
import { containmentAction, type ReleaseContext } from './action.js';

// Every entry is written BEFORE the change it describes is made, so that a step that dies half-way
// still leaves Release a record of everything it may have applied; Release compares each entry with
// the live state and only restores what still differs.

export const revokeChangesSchema = z.object({
  previousCaseId: caseIdSchema.optional(),
  scope: z.enum(['instance', 'role']),
  /** Sessions issued before this instant are denied (role scope). */
  // Goes into the deny's aws:TokenIssueTime condition: a date, never a policy variable.
  cutoff: z.iso.datetime(),
  denies: z.array(
    z.object({
      roleName: roleNameSchema,
      policyName: z.string().regex(/^[\w+=,.@-]{1,128}$/),
      /**
       * Kept by Release until this instant: the deny on sessions issued before containment, each of
       * which has expired by then. Without it, the deny is containment's, which Release narrows to the
       * sessions issued before the release.
       */
      until: z.iso.datetime().optional(),
    }),
  ),
  profile: z
    .object({
      originalArn: instanceProfileArnSchema,
      roleNames: z.array(roleNameSchema),
    })
    .optional(),
  metadata: z.object({ originalHttpTokens: z.enum(['optional', 'required']) }).optional(),
});
export type RevokeChanges = z.infer<typeof revokeChangesSchema>;

export const revokeAction = containmentAction({
  key: changeKeys.revoke,
  step: 'revoke-credentials',
  description: 'the role denies, the instance profile, the instance metadata setting',
  schema: revokeChangesSchema,
  restore: restoreCredentials,
});

async function restoreCredentials(revoke: RevokeChanges, release: ReleaseContext): Promise<void> {
  const { clients, recorder, now, record, cutoff, instance, attempt, gone } = release;
  const { ec2, iam } = clients;
  const profile = revoke.profile;
  if (profile) {
    await attempt(`instance profile ${profile.originalArn.split('/').pop()}`, async () => {
      if (!instance) return gone;
      const live = (
        await ec2.send(
          new DescribeIamInstanceProfileAssociationsCommand({
            Filters: [{ Name: 'instance-id', Values: [record.instanceId] }],
          }),
        )
      ).IamInstanceProfileAssociations?.find((a) => a.State === 'associated' || a.State === 'associating');
      const arn = live?.IamInstanceProfile?.Arn;
      if (arn === profile.originalArn) return 'unchanged';
      if (!live?.AssociationId || arn?.split('/').pop() !== release.quarantineProfileName) {
        return { note: `the instance now holds ${arn ?? 'no profile'}, not Cordon's: left as it is` };
      }
      await recorder.run('ec2:ReplaceIamInstanceProfileAssociation', record.instanceId, () =>
        ec2.send(
          new ReplaceIamInstanceProfileAssociationCommand({
            AssociationId: live.AssociationId,
            IamInstanceProfile: { Arn: profile.originalArn },
          }),
        ),
      );
      return 'restored';
    });
  }
  const metadata = revoke.metadata;
  if (metadata) {
    await attempt(`instance metadata HttpTokens=${metadata.originalHttpTokens}`, async () => {
      if (!instance) return gone;
      if (instance.MetadataOptions?.HttpTokens === metadata.originalHttpTokens) return 'unchanged';
      await recorder.run('ec2:ModifyInstanceMetadataOptions', record.instanceId, () =>
        ec2.send(
          new ModifyInstanceMetadataOptionsCommand({
            InstanceId: record.instanceId,
            HttpTokens: metadata.originalHttpTokens,
          }),
        ),
      );
      return 'restored';
    });
  }
  // Containment's deny becomes a deny on this instance's sessions issued before the release: the
  // credentials the host held while contained (its own role's, if the profile swap failed or lagged)
  // never work again, and those it is issued from now on do. Kept, like the deny on sessions issued
  // before containment, until every session it denies has expired.
  const narrowed = releasedDeny(instanceArnOf(record), cutoff);
  const narrowedUntil = new Date(Date.parse(cutoff) + longestRoleSessionMs).toISOString();
  for (const deny of revoke.denies) {
    if (!deny.until) {
      await attempt(`deny ${deny.policyName} on ${deny.roleName}`, async () => {
        try {
          await putDeny({ iam, recorder, now }, deny.roleName, deny.policyName, narrowed);
        } catch (error) {
          if (codeOf(error) === 'NoSuchEntity' || codeOf(error) === 'NoSuchEntityException') {
            return { note: `${deny.roleName} no longer exists: nothing to narrow` };
          }
          throw error;
        }
        return {
          note: `narrowed to this instance's sessions issued before the release (${cutoff}), kept until ${narrowedUntil}, when Cordon removes it as spent; credentials the instance still holds from before the release stay denied until its metadata service hands it new ones (at least five minutes before the old ones expire)`,
        };
      });
      continue;
    }
    // The deny on sessions issued before containment stays while any of them may still be valid:
    // releasing the instance must not bring back credentials stolen before it was contained.
    if (now().getTime() < Date.parse(deny.until)) {
      await attempt(`deny ${deny.policyName} on ${deny.roleName}`, async () => ({
        note: `kept until ${deny.until}: sessions issued before containment stay denied until they have expired`,
      }));
      continue;
    }
    await attempt(`deny ${deny.policyName} removed from ${deny.roleName}`, async () => {
      try {
        await recorder.run('iam:DeleteRolePolicy', `${deny.roleName}/${deny.policyName}`, () =>
          iam.send(new DeleteRolePolicyCommand({ RoleName: deny.roleName, PolicyName: deny.policyName })),
        );
        return 'restored';
      } catch (error) {
        if (codeOf(error) === 'NoSuchEntity' || codeOf(error) === 'NoSuchEntityException') return 'unchanged';
        throw error;
      }
    });
  }
}
