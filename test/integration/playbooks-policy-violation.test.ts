import { beforeAll, describe, expect, inject, it } from 'vitest';
import {
  runPolicyViolationPlaybook,
  type ViolationPlaybookReport,
} from '../../scripts/playbooks/policy-violation.js';

/**
 * The policy-violation playbook against the emulated account: every recorded CloudTrail event in
 * test/fixtures/cloudtrail through the real handler, the SSH rules really opened in moto and reverted.
 */
const endpoint = inject('motoEndpoint');
let report: ViolationPlaybookReport;

beforeAll(async () => {
  report = await runPolicyViolationPlaybook({ endpoint });
}, 120_000);

const verdict = (file: string) => report.verdicts.find((v) => v.file === file)?.result;

describe('the policy-violation filter on recorded CloudTrail events', () => {
  it('alerts on every change by a principal outside the allowlist', () => {
    expect(
      report.verdicts
        .map((v) => [v.file, v.result.decision])
        .filter(([, d]) => d === 'alerted')
        .map(([f]) => f),
    ).toEqual([
      'authorize-ingress-denied.json',
      'authorize-ingress-https-open-to-world.json',
      'authorize-ingress-rdp-without-rule-ids.json',
      'authorize-ingress-ssh-open-to-world.json',
      'import-key-pair.json',
      'modify-instance-metadata-options.json',
      'run-instances.json',
    ]);
  });

  it("lets Cordon's own role and AWS's service-linked roles through without an alert", () => {
    expect(verdict('authorize-egress-by-cordon.json')?.decision).toBe('allowed');
    expect(verdict('run-instances-by-autoscaling.json')?.decision).toBe('allowed');
  });

  it('ignores read-only calls', () => {
    expect(verdict('describe-instances.json')?.decision).toBe('ignored');
  });

  it('publishes one alert per alerted event, saying who, what, where and from which IP', () => {
    expect(report.alerts).toHaveLength(7);
    const ssh = report.alerts.find((a) =>
      a.subject?.startsWith('[Cordon] SENSITIVE PORT OPENED TO THE INTERNET'),
    );
    expect(ssh?.body).toContain('Who:   arn:aws:iam::123456789012:user/dev-alice (IAMUser)');
    expect(ssh?.body).toContain(`What:  AuthorizeSecurityGroupIngress on ${report.groupId}`);
    expect(ssh?.body).toContain('From:  198.51.100.23');
  });

  it('revokes the SSH rules opened to the world, and only those, in the emulated group', () => {
    expect(report.rulesBefore).toHaveLength(2);
    expect(verdict('authorize-ingress-ssh-open-to-world.json')?.revert).toMatchObject({ status: 'reverted' });
    expect(verdict('authorize-ingress-ssh-open-to-world.json')?.revert?.revoked).toHaveLength(2);
    expect(report.rulesAfter).toEqual([]);
  });

  it('revokes nothing for a rule the emulated group does not hold', () => {
    expect(verdict('authorize-ingress-rdp-without-rule-ids.json')?.revert?.status).toBe('nothing-to-revert');
  });
});
