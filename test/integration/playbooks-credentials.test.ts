import { beforeAll, describe, expect, inject, it } from 'vitest';
import { type CredentialPlaybookReport, runCredentialPlaybook } from '../../scripts/playbooks/credentials.js';

/**
 * The compromised-credentials playbook against the emulated account: the real credentials ASL with
 * every Task bound to its real handler, on GuardDuty's access-key finding (the one the instance
 * workflow refuses) mapped onto a seeded IAM user and key, and on exfiltrated instance credentials.
 * moto does not implement CloudTrail LookupEvents: activity collection fails there, by name, and the
 * case is sealed as partial.
 */
const endpoint = inject('motoEndpoint');
let user: CredentialPlaybookReport;
let exfiltration: CredentialPlaybookReport;

beforeAll(async () => {
  user = await runCredentialPlaybook({ endpoint });
  exfiltration = await runCredentialPlaybook({ endpoint, exfiltration: true });
}, 240_000);

describe("a compromised IAM user's access key", () => {
  it('accepts the access-key finding and opens a credential case', () => {
    expect(user.status).toBe('SUCCEEDED');
    expect(user.caseId).toMatch(/^\d{8}T\d{6}Z-cred-[0-9a-f]{8}-[0-9a-f]{4}$/);
  });

  it('deactivates the key in the emulated account, keeping it', () => {
    expect(user.keyStatus).toBe('Inactive');
  });

  it('quarantines the user and revokes its sessions with inline denies named after the case', () => {
    expect(user.userPolicies.sort()).toEqual([
      `cordon-quarantine-${user.caseId}`,
      `cordon-revoke-${user.caseId}`,
    ]);
  });

  it('records activity collection as unavailable on the emulator and seals the case as partial', () => {
    expect(user.state.activity).toMatchObject({ Error: 'AwsServiceError' });
    expect(user.state.archive).toMatchObject({ outcome: 'partial' });
    expect(user.outcome).toBe('partial');
  });

  it('notifies once, saying the credentials are contained and the evidence incomplete', () => {
    const messages = user.alerts.filter((a) => a.body.includes(user.caseId as string));
    expect(messages).toHaveLength(1);
    expect(messages[0]?.subject).toMatch(/^\[Cordon\] CREDENTIALS CONTAINED, EVIDENCE INCOMPLETE/);
  });
});

describe('exfiltrated instance credentials', () => {
  it("revokes the role's sessions and neither deactivates nor quarantines anything", () => {
    expect(exfiltration.rolePolicies).toEqual([`cordon-revoke-${exfiltration.caseId}`]);
    expect(exfiltration.userPolicies).toEqual([]);
    expect(exfiltration.keyStatus).toBe('Active');
  });

  it('starts the forensic workflow on the instance named by the role session', () => {
    expect(exfiltration.forensicExecutions).toEqual([`cred-${exfiltration.caseId}`]);
    expect(exfiltration.steps.map((s) => s.name)).toContain('Start Instance Response');
  });
});
