/**
 * Revoke's action: the Deny policies on the instance's roles, the quarantine instance profile in
 * place of its own, and IMDSv2 required.
 */
import { z } from 'zod';
import { caseIdSchema } from '../case.js';
import { changeKeys, instanceProfileArnSchema, roleNameSchema } from '../containment.js';
import { containmentAction } from './action.js';

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
});
