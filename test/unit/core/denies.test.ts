import { describe, expect, it } from 'vitest';
import { longestRoleSessionMs } from '../../../functions/core/containment.js';
import { denyPolicies, isSpentDeny } from '../../../functions/core/denies.js';

const arn = 'arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0';
const cutoff = '2026-11-27T20:16:00Z';
const sinceCutoff = (ms: number) => new Date(Date.parse(cutoff) + ms);
/** As IAM's GetRolePolicy returns a document: URL-encoded. */
const asIamReturnsIt = (document: string) => encodeURIComponent(document);
const caseId = '20261127T201600Z-i-0123456789abcdef0-abcd';

describe('isSpentDeny', () => {
  const { containment, issuedBefore } = denyPolicies('instance', arn, cutoff);
  const roleScope = denyPolicies('role', arn, cutoff).issuedBefore;

  it('is spent once the longest role session issued before its cutoff has expired, in either scope', () => {
    for (const document of [issuedBefore, roleScope]) {
      expect(
        isSpentDeny(
          `cordon-revoke-${caseId}-issued-before`,
          asIamReturnsIt(document),
          sinceCutoff(longestRoleSessionMs),
        ),
      ).toBe(true);
      expect(
        isSpentDeny(
          `cordon-revoke-${caseId}-issued-before`,
          asIamReturnsIt(document),
          sinceCutoff(longestRoleSessionMs - 1),
        ),
      ).toBe(false);
    }
  });

  it('is never spent for a containment deny, whose sessions have no issue-time bound', () => {
    expect(
      isSpentDeny(`cordon-revoke-${caseId}`, asIamReturnsIt(containment), sinceCutoff(365 * 86_400_000)),
    ).toBe(false);
  });

  it('is never spent for a policy that is not named as Cordon names its denies, whatever it says', () => {
    for (const name of ['app-policy', 'cordon-revoke-', 'Cordon-revoke-x', `xcordon-revoke-${caseId}`]) {
      expect(isSpentDeny(name, asIamReturnsIt(issuedBefore), sinceCutoff(365 * 86_400_000))).toBe(false);
    }
  });

  it('is never spent when any statement is not a Deny bounded by issue time, or the document is unreadable', () => {
    const doc = (statements: object[]) =>
      asIamReturnsIt(JSON.stringify({ Version: '2012-10-17', Statement: statements }));
    const bounded = {
      Effect: 'Deny',
      Action: '*',
      Resource: '*',
      Condition: { DateLessThan: { 'aws:TokenIssueTime': cutoff } },
    };
    const late = sinceCutoff(365 * 86_400_000);
    const name = `cordon-revoke-${caseId}-issued-before`;
    expect(isSpentDeny(name, doc([bounded]), late)).toBe(true);
    expect(isSpentDeny(name, doc([bounded, { ...bounded, Effect: 'Allow' }]), late)).toBe(false);
    expect(isSpentDeny(name, doc([bounded, { Effect: 'Deny', Action: '*', Resource: '*' }]), late)).toBe(
      false,
    );
    expect(
      isSpentDeny(
        name,
        doc([{ ...bounded, Condition: { DateLessThan: { 'aws:TokenIssueTime': 'soon' } } }]),
        late,
      ),
    ).toBe(false);
    expect(isSpentDeny(name, doc([]), late)).toBe(false);
    expect(isSpentDeny(name, '%7Bnot json', late)).toBe(false);
    expect(isSpentDeny(name, '%E0%A4%A', late)).toBe(false);
  });

  it('waits for the latest cutoff among its statements', () => {
    const later = '2026-11-28T20:16:00Z';
    const doc = asIamReturnsIt(
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [cutoff, later].map((c) => ({
          Effect: 'Deny',
          Action: '*',
          Resource: '*',
          Condition: { DateLessThan: { 'aws:TokenIssueTime': c } },
        })),
      }),
    );
    const name = `cordon-revoke-${caseId}-issued-before`;
    expect(isSpentDeny(name, doc, new Date(Date.parse(later) + longestRoleSessionMs - 1))).toBe(false);
    expect(isSpentDeny(name, doc, new Date(Date.parse(later) + longestRoleSessionMs))).toBe(true);
  });
});
