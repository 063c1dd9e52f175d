import {
  DescribeInstancesCommand,
  type EC2Client,
  type Instance,
  ModifyInstanceMetadataOptionsCommand,
  ReplaceIamInstanceProfileAssociationCommand,
} from '@aws-sdk/client-ec2';
import type { IAMClient } from '@aws-sdk/client-iam';
import { z } from 'zod';
import { protectAction } from '../../core/actions/protect.js';
import { type RevokeChanges, revokeAction } from '../../core/actions/revoke.js';
import { type Case, caseIdSchema, caseSchema, tagKeys } from '../../core/case.js';
import type { CaseRecord, CaseStore, Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import { type Change, changeKeys, progress, settledAll } from '../../core/containment.js';
import { instanceArnOf, putDeny } from '../../core/denies.js';
import { RevocationError } from '../../core/errors.js';
import {
  type Imdsv2Outcome,
  imdsv2Outcome,
  liveAssociation,
  ownProfileArn,
  profileNameOf,
  roleDenies,
  rolesOf,
} from '../../core/revocation.js';
import { mayHoldContainment } from '../../core/takeover.js';

/**
 * Revoke reads what it changes itself (the live profile association, the profile's roles, the
 * metadata options), so that it can run as soon as the case is open, beside Protect and Isolate.
 * Triage's result, which the workflow may still pass, is dropped when the input is parsed.
 */
export const revokeInputSchema = z.object({ case: caseSchema });
export type RevokeInput = z.infer<typeof revokeInputSchema> & {
  /** Triage's result, where a caller still has it: not read. */
  triage?: unknown;
};

export interface RevokeDeps {
  ec2: EC2Client;
  iam: IAMClient;
  recorder: Recorder;
  cases: Pick<CaseStore, 'get' | 'saveChanges'>;
  config: Pick<Config, 'REVOKE_SCOPE' | 'REQUIRE_IMDSV2' | 'QUARANTINE_PROFILE_NAME'>;
  now: () => Date;
}

export interface RevokeResult {
  instanceId: string;
  scope: 'instance' | 'role';
  /** Role scope: sessions of the role issued before this instant are denied, on every instance. */
  cutoff: string;
  /** The roles that now carry a Cordon deny for this case (names, not ARNs). */
  revokedRoles: string[];
  profile: { originalArn?: string; quarantineProfile?: string; replaced: boolean };
  imdsv2: Imdsv2Outcome;
  done: string[];
  /** When the step finished: the end of containment, with Isolate's, for the time-to-containment metric. */
  finishedAt: string;
}

const phases = {
  read: 'instance read',
  record: 'changes recorded on the case',
  deny: 'deny on the role',
  swap: 'instance profile replaced by the quarantine profile',
  imdsv2: 'IMDSv2 required',
} as const;

/**
 * Revokes the credentials the instance holds: an inline deny on its role (this instance's sessions by
 * default, every session issued before now with REVOKE_SCOPE=role), its instance profile replaced by
 * the quarantine profile, whose role can only keep the SSM agent alive, and IMDSv2 required
 * (REQUIRE_IMDSV2).
 *
 * In as few sequential AWS rounds as the record allows: every read at once (the case, the profile
 * association, the instance), then the profile's roles, then ONE save of what is about to change (the
 * cutoff, the denies, the original profile and metadata setting: on the case before any change it
 * describes), then every change at once, then the case event. The changes do not wait on each other:
 * each is containment on its own, and a failed one (a role too full for the deny) fails the step by
 * name after the others have landed, listing every change that failed (docs/containment.md).
 */
export async function revokeCredentials(input: RevokeInput, deps: RevokeDeps): Promise<RevokeResult> {
  const c = input.case;
  const { ec2, iam, recorder } = deps;
  const quarantine = deps.config.QUARANTINE_PROFILE_NAME;
  const requireImdsv2 = deps.config.REQUIRE_IMDSV2;
  const steps = progress(
    'Revocation',
    [phases.read, phases.record, phases.deny, phases.swap, ...(requireImdsv2 ? [phases.imdsv2] : [])],
    RevocationError,
  );
  const startedAt = deps.now().toISOString();

  const read = await steps.phase(phases.read, async () => {
    const [record, association, instance] = await settledAll([
      deps.cases.get(c.caseId),
      liveAssociation(ec2, c.instanceId),
      describeInstance(ec2, c.instanceId),
    ]);
    const live = ownProfileArn(association, quarantine);
    const own = revokeAction.read(record);
    const [liveRoles, previous] = await settledAll([
      // The roles of the profile the instance holds now, unless it is the one already recorded.
      live && live !== own?.profile?.originalArn ? rolesOf(iam, profileNameOf(live)) : undefined,
      own ? undefined : earlierContainment(deps.cases, c, record, instance),
    ]);
    return { own, previous, association, instance, live, liveRoles: liveRoles ?? [] };
  });
  const { association, instance, live, liveRoles } = read;

  const inherited = revokeAction.read(read.previous);
  const changes: RevokeChanges = structuredClone(
    read.own ?? {
      ...(read.previous ? { previousCaseId: read.previous.caseId } : {}),
      scope: deps.config.REVOKE_SCOPE,
      cutoff: startedAt,
      // The earlier case's denies stay in force and become this case's to remove on release.
      denies: [...(inherited?.denies ?? [])],
      ...(inherited?.profile ? { profile: inherited.profile } : {}),
      ...(inherited?.metadata ? { metadata: inherited.metadata } : {}),
    },
  );
  // Cordon's quarantine profile is never taken for the original: without a record of the original,
  // an instance that already holds it has no role of its own to revoke.
  if (!changes.profile && live) changes.profile = { originalArn: live, roleNames: liveRoles };
  const tokens = instance?.MetadataOptions?.HttpTokens;
  if (requireImdsv2 && !changes.metadata && (tokens === 'optional' || tokens === 'required')) {
    changes.metadata = { originalHttpTokens: tokens };
  }
  // Every role whose sessions reached the instance: the recorded original profile's, and the live
  // profile's when that is another (the instance holds its credentials now).
  const roleNames = [...new Set([...(changes.profile?.roleNames ?? []), ...liveRoles])];
  // Each deny named, in a failure, by its role and (for the second) what it denies.
  const denies = roleDenies({
    caseId: c.caseId,
    roleNames,
    scope: changes.scope,
    instanceArn: instanceArnOf(c),
    cutoff: changes.cutoff,
  });
  for (const { roleName, policyName, until: keptUntil } of denies) {
    if (!changes.denies.some((d) => d.roleName === roleName && d.policyName === policyName)) {
      changes.denies.push({ roleName, policyName, ...(keptUntil ? { until: keptUntil } : {}) });
    }
  }

  await steps.phase(phases.record, async () => {
    // A run again after a failure finds its own record, complete: nothing new to write.
    if (read.own && JSON.stringify(read.own) === JSON.stringify(changes)) return;
    await deps.cases.saveChanges(c.caseId, changeKeys.revoke, changes);
  });

  const isQuarantine = association?.IamInstanceProfile?.Arn !== undefined && !live;
  const replaced = Boolean(association?.AssociationId);
  const imdsv2 = imdsv2Outcome(requireImdsv2, tokens);
  const noRole = !association?.IamInstanceProfile?.Arn
    ? 'the instance has no instance profile'
    : isQuarantine && !changes.profile
      ? "the instance already holds Cordon's quarantine profile, and no case records a profile of its own"
      : 'its instance profile has no role';
  const work: Change[] = [
    ...denies.map(({ roleName, target, policyName, document }) => ({
      label: phases.deny,
      target,
      work: () => putDeny({ iam, recorder, now: deps.now }, roleName, policyName, document),
    })),
    ...(denies.length === 0
      ? [
          {
            label: phases.deny,
            work: () =>
              recorder.note('no role to revoke', 'info', {
                target: c.instanceId,
                detail: `${noRole}: no role credentials of its own were delivered to it`,
              }),
          },
        ]
      : []),
    {
      label: phases.swap,
      work: async () => {
        if (!association?.AssociationId || isQuarantine) return;
        await recorder.run('ec2:ReplaceIamInstanceProfileAssociation', c.instanceId, () =>
          ec2.send(
            new ReplaceIamInstanceProfileAssociationCommand({
              AssociationId: association.AssociationId,
              IamInstanceProfile: { Name: quarantine },
            }),
          ),
        );
      },
    },
    ...(requireImdsv2
      ? [
          {
            label: phases.imdsv2,
            work: async () => {
              if (tokens === 'required') return;
              await recorder.run('ec2:ModifyInstanceMetadataOptions', c.instanceId, () =>
                ec2.send(
                  new ModifyInstanceMetadataOptionsCommand({
                    InstanceId: c.instanceId,
                    HttpTokens: 'required',
                  }),
                ),
              );
            },
          },
        ]
      : []),
  ];
  await steps.together(work);
  await steps.recorded(recorder);

  // The case's "contained" event waits for Isolate too: the first step after both sends it.
  return {
    instanceId: c.instanceId,
    scope: changes.scope,
    cutoff: changes.cutoff,
    revokedRoles: [...new Set(changes.denies.map((d) => d.roleName))],
    profile: {
      ...(changes.profile ? { originalArn: changes.profile.originalArn } : {}),
      ...(replaced ? { quarantineProfile: quarantine } : {}),
      replaced,
    },
    imdsv2,
    done: steps.done,
    finishedAt: deps.now().toISOString(),
  };
}

/**
 * The earlier case whose containment this case takes over: one that holds the instance and was never
 * released. Its recorded originals are the instance's true originals; what the instance shows now is
 * Cordon's own work. Protect names it on the case before it re-tags the instance; Revoke, running
 * beside Protect, may read the case before Protect wrote it, and then reads the case tag Protect has
 * not yet replaced, or, if Protect replaced it meanwhile, the case again. Only a case about this same
 * instance counts: the tag is the suspect's to change.
 */
async function earlierContainment(
  cases: Pick<CaseStore, 'get'>,
  c: Case,
  record: CaseRecord | undefined,
  instance: Instance | undefined,
): Promise<CaseRecord | undefined> {
  let protect = protectAction.read(record);
  const tag = instance?.Tags?.find((t) => t.Key === tagKeys.caseId)?.Value;
  if (!protect && tag === c.caseId) {
    protect = protectAction.read(await cases.get(c.caseId));
  }
  const heldBy = protect
    ? protect.previousCaseId
    : tag !== c.caseId && caseIdSchema.safeParse(tag).success
      ? tag
      : undefined;
  if (!heldBy) return undefined;
  const previous = await cases.get(heldBy);
  const same =
    previous?.instanceId === c.instanceId &&
    previous.accountId === c.accountId &&
    previous.region === c.region;
  return same && mayHoldContainment(previous) ? previous : undefined;
}

/** The instance's metadata options, and its case tag (which case held it before this one). */
async function describeInstance(ec2: EC2Client, instanceId: string): Promise<Instance | undefined> {
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  return out.Reservations?.[0]?.Instances?.[0];
}
