/**
 * Which role each function assumes in a member account. resources/member-account.yml splits what Cordon
 * may do there by capability, one role each, and trusts each role only from the exact roles of the
 * functions listed for it here (test/template/member-account.test.ts holds the two together). No
 * function that parses text an attacker can shape (a finding, a CloudTrail event, an IDS alert) is
 * listed for a role that writes IAM.
 */
export const memberCapabilities = {
  /** Describe calls, the console, an instance profile, CloudTrail history. */
  Read: ['intake-finding', 'triage-instance', 'ids-alert', 'collect-activity'],
  /** Network and instance attributes: tags, groups, interfaces, ACL entries, standby, stop. */
  Contain: [
    'protect-instance',
    'isolate-instance',
    'block-ip',
    'unblock-ip',
    'expire-blocks',
    'policy-violation',
    'ids-alert-stop',
  ],
  /** The deny on the instance role's older sessions, and the quarantine profile. Writes IAM. */
  Revoke: ['revoke-credentials'],
  /** Undoes containment after a false positive. Passes roles to EC2. */
  Release: ['release-instance'],
  /** Snapshots (locked, shared, copied) and memory capture through Cordon's SSM documents. */
  Evidence: ['snapshot-volumes', 'check-snapshots', 'capture-memory', 'check-memory'],
  /** The compromised-credentials workflow: keys, inline denies on users and roles. Writes IAM. */
  Credentials: ['deactivate-access-key', 'quarantine-principal', 'revoke-sessions'],
} as const satisfies Record<string, readonly string[]>;

export type MemberCapability = keyof typeof memberCapabilities;

/** The capability whose role `functionKey` assumes, or undefined for a function that acts at home only. */
export function memberCapabilityOf(functionKey: string): MemberCapability | undefined {
  for (const [capability, functions] of Object.entries(memberCapabilities)) {
    if ((functions as readonly string[]).includes(functionKey)) return capability as MemberCapability;
  }
  return undefined;
}

/** The member role's name for a capability: the deployment's `memberRoleName` and the capability. */
export const memberRoleName = (prefix: string, capability: MemberCapability) => `${prefix}-${capability}`;

/**
 * The function key within a Lambda function's name (`cordon-<stage>-<key>`): the longest key the
 * name ends with after a dash, so that `…-unblock-ip` is never read as `block-ip`.
 */
export function functionKeyIn(lambdaName: string | undefined): string | undefined {
  if (!lambdaName) return undefined;
  const keys = Object.values(memberCapabilities).flat() as string[];
  return keys.filter((key) => lambdaName.endsWith(`-${key}`)).sort((a, b) => b.length - a.length)[0];
}
