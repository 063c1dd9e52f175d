import {
  DescribeIamInstanceProfileAssociationsCommand,
  DescribeInstancesCommand,
  type EC2Client,
  type IamInstanceProfileAssociation,
  ModifyInstanceMetadataOptionsCommand,
  ReplaceIamInstanceProfileAssociationCommand,
} from '@aws-sdk/client-ec2';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { GetInstanceProfileCommand, type IAMClient } from '@aws-sdk/client-iam';
import type { CaseStore, Recorder } from '../../core/cases.js';
import type { Config } from '../../core/config.js';
import {
  type ContainInput,
  changeKeys,
  changesOf,
  containInputSchema,
  denyPolicyName,
  issuedBeforeDenyPolicyName,
  longestRoleSessionMs,
  previousContainment,
  progress,
  type RevokeChanges,
  revokeChangesSchema,
  roleNameSchema,
} from '../../core/containment.js';
import { denyPolicies, instanceArnOf, putDeny } from '../../core/denies.js';
import { RevocationError } from '../../core/errors.js';
import { emitCaseEvent } from '../../core/events.js';

export const revokeInputSchema = containInputSchema;
export type RevokeInput = ContainInput;

export interface RevokeDeps {
  ec2: EC2Client;
  iam: IAMClient;
  recorder: Recorder;
  cases: Pick<CaseStore, 'get' | 'saveChanges'>;
  config: Pick<Config, 'REVOKE_SCOPE' | 'REQUIRE_IMDSV2' | 'QUARANTINE_PROFILE_NAME'>;
  now: () => Date;
  /**
   * Where the "contained" event goes: Revoke is the last containment step (it runs only once Isolate
   * succeeded), so its success is what makes the instance contained. An event that cannot be sent is
   * recorded and containment stands.
   */
  events: EventBridgeClient;
}

export interface RevokeResult {
  instanceId: string;
  scope: 'instance' | 'role';
  /** Role scope: sessions of the role issued before this instant are denied, on every instance. */
  cutoff: string;
  /** The roles that now carry a Cordon deny for this case (names, not ARNs). */
  revokedRoles: string[];
  profile: { originalArn?: string; quarantineProfile?: string; replaced: boolean };
  imdsv2: 'required by Cordon' | 'already required' | 'not requested';
  done: string[];
}

const profileName = (arn: string) => arn.split('/').pop() ?? '';

/**
 * Revokes the credentials the instance holds: an inline deny on its role (this instance's sessions by
 * default, every session issued before now with REVOKE_SCOPE=role), then its instance profile replaced
 * by the quarantine profile, whose role can only keep the SSM agent alive, then IMDSv2 required
 * (REQUIRE_IMDSV2). The original profile and metadata options are saved on the case before they change.
 */
export async function revokeCredentials(input: RevokeInput, deps: RevokeDeps): Promise<RevokeResult> {
  const c = input.case;
  const picture = input.triage.instance;
  const { ec2, iam, recorder } = deps;
  const quarantine = deps.config.QUARANTINE_PROFILE_NAME;
  const record = await deps.cases.get(c.caseId);
  const own = changesOf(record, changeKeys.revoke, revokeChangesSchema);
  const previous = await previousContainment(deps.cases, record);
  const inherited = changesOf(previous, changeKeys.revoke, revokeChangesSchema);
  const changes: RevokeChanges = own ?? {
    ...(previous ? { previousCaseId: previous.caseId } : {}),
    scope: deps.config.REVOKE_SCOPE,
    cutoff: deps.now().toISOString(),
    // The earlier case's denies stay in force and become this case's to remove on release.
    denies: [...(inherited?.denies ?? [])],
    ...(inherited?.profile ? { profile: inherited.profile } : {}),
    ...(inherited?.metadata ? { metadata: inherited.metadata } : {}),
  };
  const save = () => deps.cases.saveChanges(c.caseId, changeKeys.revoke, changes);
  const steps = progress(
    'Revocation',
    [
      'instance profile read',
      'deny on the role',
      'instance profile replaced by the quarantine profile',
      ...(deps.config.REQUIRE_IMDSV2 ? ['IMDSv2 required'] : []),
    ],
    RevocationError,
  );

  const live = await steps.phase('instance profile read', async () => {
    const association = await liveAssociation(ec2, c.instanceId);
    const arn = association?.IamInstanceProfile?.Arn;
    const isQuarantine = arn !== undefined && profileName(arn) === quarantine;
    if (!changes.profile && arn && !isQuarantine) {
      const roleNames =
        picture.instanceProfile?.arn === arn
          ? picture.instanceProfile.roleNames
          : await rolesOf(iam, profileName(arn));
      changes.profile = { originalArn: arn, roleNames };
    }
    if (
      !changes.profile &&
      isQuarantine &&
      picture.instanceProfile &&
      profileName(picture.instanceProfile.arn) !== quarantine
    ) {
      changes.profile = {
        originalArn: picture.instanceProfile.arn,
        roleNames: picture.instanceProfile.roleNames,
      };
    }
    await save();
    return { association, isQuarantine };
  });

  const instanceArn = instanceArnOf(c);
  const documents = denyPolicies(changes.scope, instanceArn, changes.cutoff);
  const until = new Date(Date.parse(changes.cutoff) + longestRoleSessionMs).toISOString();
  const denies = [
    { policyName: denyPolicyName(c.caseId), document: documents.containment },
    { policyName: issuedBeforeDenyPolicyName(c.caseId), document: documents.issuedBefore, until },
  ];
  await steps.phase('deny on the role', async () => {
    for (const roleName of changes.profile?.roleNames ?? []) {
      for (const { policyName, document, until: keptUntil } of denies) {
        if (!changes.denies.some((d) => d.roleName === roleName && d.policyName === policyName)) {
          changes.denies.push({ roleName, policyName, ...(keptUntil ? { until: keptUntil } : {}) });
          await save();
        }
        await putDeny({ iam, recorder, now: deps.now }, roleName, policyName, document);
      }
    }
    if (!changes.profile) {
      await recorder.note('no role to revoke', 'info', {
        target: c.instanceId,
        detail: 'the instance has no instance profile: no role credentials were delivered to it',
      });
    }
  });

  const replaced = await steps.phase('instance profile replaced by the quarantine profile', async () => {
    const { association, isQuarantine } = live;
    if (!association?.AssociationId) return false;
    if (isQuarantine) return true;
    await recorder.run('ec2:ReplaceIamInstanceProfileAssociation', c.instanceId, () =>
      ec2.send(
        new ReplaceIamInstanceProfileAssociationCommand({
          AssociationId: association.AssociationId,
          IamInstanceProfile: { Name: quarantine },
        }),
      ),
    );
    return true;
  });

  let imdsv2: RevokeResult['imdsv2'] = 'not requested';
  if (deps.config.REQUIRE_IMDSV2) {
    imdsv2 = await steps.phase('IMDSv2 required', async () => {
      const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [c.instanceId] }));
      const tokens = out.Reservations?.[0]?.Instances?.[0]?.MetadataOptions?.HttpTokens;
      if (!changes.metadata && (tokens === 'optional' || tokens === 'required')) {
        changes.metadata = { originalHttpTokens: tokens };
        await save();
      }
      if (tokens === 'required') return 'already required';
      await recorder.run('ec2:ModifyInstanceMetadataOptions', c.instanceId, () =>
        ec2.send(
          new ModifyInstanceMetadataOptionsCommand({ InstanceId: c.instanceId, HttpTokens: 'required' }),
        ),
      );
      return 'required by Cordon';
    });
  }

  await emitCaseEvent(c, 'contained', { events: deps.events, recorder, now: deps.now });
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
  };
}

async function liveAssociation(
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

async function rolesOf(iam: IAMClient, name: string): Promise<string[]> {
  const out = await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }));
  return (out.InstanceProfile?.Roles ?? [])
    .map((r) => r.RoleName ?? '')
    .filter((n) => roleNameSchema.safeParse(n).success);
}
