import { BatchUpdateFindingsCommand, SecurityHubClient } from '@aws-sdk/client-securityhub';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { findingLock, principalLock } from '../../../functions/core/credentials.js';
import {
  type CredentialIntakeDeps,
  credentialIntake,
} from '../../../functions/credentials/credential-intake/credential-intake.js';
import { normaliseTrigger } from '../../../functions/forensics/intake-finding/normalise.js';
import { readRealEvent, realEventFiles } from '../../support/fixtures.js';
import { credentialIntakeDeps } from '../../support/playbooks-fixtures.js';

const now = new Date('2026-11-27T20:10:03.000Z');
const accessKeyFixtures = realEventFiles().filter((f) => f.includes('REJECT') && f.includes('accesskey'));
const fixture = () =>
  structuredClone(
    readRealEvent('gd_detail_REJECT_accesskey_recon_maliciousipcaller_custom_sample_archived.json'),
  ) as Record<string, unknown>;

const deps = (overrides: Partial<CredentialIntakeDeps['config']> = {}) =>
  credentialIntakeDeps(overrides, now);

/** An EventBridge GuardDuty event around a finding detail. */
const envelope = (detail: unknown) => ({
  version: '0',
  id: 'e0c3bd5a-0000-4000-8000-000000000001',
  'detail-type': 'GuardDuty Finding',
  source: 'aws.guardduty',
  account: '123456789012',
  time: '2026-11-27T20:10:00Z',
  region: 'us-east-1',
  resources: [],
  detail,
});

/** The parts of a GuardDuty finding detail the tests change. */
interface Detail {
  id: string;
  type: string;
  severity: number;
  resource: { accessKeyDetails: Record<string, unknown>; instanceDetails?: unknown };
  service: { archived: boolean; additionalInfo: { sample: boolean } };
}

/** The fixture as a live finding: not a sample, not archived, severity high. */
function liveDetail(changes: (detail: Detail) => void = () => undefined) {
  const detail = fixture() as unknown as Detail;
  detail.service.additionalInfo.sample = false;
  detail.service.archived = false;
  detail.severity = 8;
  changes(detail);
  return detail;
}

describe('credentialIntake', () => {
  it('has the access-key findings among the real events to accept', () => {
    expect(accessKeyFixtures).toEqual([
      'gd_detail_REJECT_accesskey_recon_maliciousipcaller_custom_sample_archived.json',
    ]);
  });

  it.each(accessKeyFixtures)('accepts %s, which the instance workflow refuses', async (file) => {
    const event = readRealEvent(file);
    const instance = normaliseTrigger(
      event,
      {
        homeAccountId: '123456789012',
        homeRegion: 'us-east-1',
        minSeverity: 1,
        acceptSampleFindings: true,
        acceptSecurityHubImported: false,
        securityHubActionId: 'ForensicTriageAction',
      },
      now,
    );
    expect(instance).toEqual({ rejected: expect.stringMatching(/^RESOURCE_NOT_INSTANCE/) });

    const { d } = deps();
    const result = await credentialIntake({ event }, d);
    expect(result.intake.decision).toBe('accepted');
    expect(result.case).toMatchObject({
      kind: 'credential',
      accountId: '123456789012',
      region: 'us-east-1',
      principal: {
        type: 'IAMUser',
        name: 'GeneratedFindingUserName',
        accessKeyId: 'GeneratedFindingAccessKeyId',
        principalId: 'GeneratedFindingPrincipalId',
      },
      finding: {
        id: '30bf285e52a1e405084ff6ec28e06e17',
        type: 'Recon:IAMUser/MaliciousIPCaller.Custom',
        severity: 5,
        sample: true,
        archived: true,
        remoteIps: ['198.51.100.0'],
      },
      trigger: { shape: 'guardduty-detail', requestedBy: 'operator' },
      exfiltration: false,
    });
  });

  it('opens the case with one lock for the principal and one for the finding, and stores the trigger', async () => {
    const { d, cases, put } = deps();
    const result = await credentialIntake(
      { event: envelope(liveDetail()), executionArn: 'arn:aws:states:us-east-1:1:execution:c:e' },
      d,
    );
    const c = result.case;
    if (!c) throw new Error('no case');
    expect(c.caseId).toMatch(/^20261127T201003Z-cred-[0-9a-f]{8}-[0-9a-f]{4}$/);
    expect(cases.locks.get(principalLock(c))).toBe(c.caseId);
    expect(cases.locks.get(findingLock(c))).toBe(c.caseId);
    expect(put).toHaveBeenCalledWith(expect.anything(), 'trigger.json', expect.any(String), {
      contentType: 'application/json',
    });
    expect(cases.actions(c.caseId)).toEqual(['case opened']);
  });

  it('reads the instance of exfiltrated credentials from the role session name', async () => {
    const detail = liveDetail((d) => {
      d.type = 'UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS';
      d.resource.accessKeyDetails = {
        accessKeyId: 'ASIAEXAMPLEWEBROLE01',
        principalId: 'AROAEXAMPLEWEBROLE01:i-0123456789abcdef0',
        userType: 'AssumedRole',
        userName: 'web-role',
      };
      delete d.resource.instanceDetails;
    });
    const { d } = deps();
    const result = await credentialIntake({ event: envelope(detail) }, d);
    expect(result.case).toMatchObject({
      principal: { type: 'AssumedRole', name: 'web-role' },
      finding: { instanceId: 'i-0123456789abcdef0' },
      exfiltration: true,
      trigger: { shape: 'eventbridge-guardduty', requestedBy: 'guardduty' },
    });
  });

  it('joins the open case of the same principal instead of starting a second response', async () => {
    const { d, cases } = deps();
    const first = await credentialIntake({ event: envelope(liveDetail()) }, d);
    const second = await credentialIntake(
      {
        event: envelope(
          liveDetail((x) => {
            x.id = 'a0000000000000000000000000000001';
          }),
        ),
      },
      d,
    );
    expect(second.intake).toMatchObject({ decision: 'duplicate', caseId: first.case?.caseId });
    expect(cases.actions(first.case?.caseId)).toEqual(['case opened', 'finding joined']);
  });

  it('finishes the same case when Step Functions retries intake after the case was opened', async () => {
    const { d } = deps();
    const executionArn = 'arn:aws:states:us-east-1:1:execution:c:e';
    const first = await credentialIntake({ event: envelope(liveDetail()), executionArn }, d);
    const again = await credentialIntake({ event: envelope(liveDetail()), executionArn }, d);
    expect(again.intake).toMatchObject({ decision: 'accepted', caseId: first.case?.caseId });
  });

  it.each([
    [
      'an instance finding',
      () => readRealEvent('gd_detail_canary_ec2_stateless_integtest.json'),
      /^RESOURCE_NOT_ACCESS_KEY/,
    ],
    [
      'an archived finding from EventBridge',
      () =>
        envelope(
          liveDetail((x) => {
            x.service.archived = true;
          }),
        ),
      /^FINDING_ARCHIVED/,
    ],
    [
      'a finding below the severity minimum',
      () =>
        envelope(
          liveDetail((x) => {
            x.severity = 5;
          }),
        ),
      /^SEVERITY_BELOW_MINIMUM/,
    ],
    [
      'an event from another source',
      () => ({ ...envelope(liveDetail()), source: 'aws.securityhub' }),
      /^UNSUPPORTED_TRIGGER/,
    ],
    [
      'a finding naming no user',
      () =>
        envelope(
          liveDetail((x) => {
            delete x.resource.accessKeyDetails.userName;
          }),
        ),
      /^PRINCIPAL_UNKNOWN/,
    ],
    [
      'a user name IAM would refuse',
      () =>
        envelope(
          liveDetail((x) => {
            x.resource.accessKeyDetails.userName = 'alice; rm -rf /';
          }),
        ),
      /^PRINCIPAL_UNKNOWN/,
    ],
    ['a list of two findings', () => ({ Findings: [liveDetail(), liveDetail()] }), /^MULTIPLE_FINDINGS/],
    ['a string', () => 'not a finding', /^MALFORMED/],
  ])('refuses %s without opening a case', async (_what, event, reason) => {
    const { d, cases, put } = deps();
    const result = await credentialIntake({ event: event() }, d);
    expect(result.intake.decision).toBe('rejected');
    expect(result.intake.reason).toMatch(reason);
    expect(cases.items.size).toBe(0);
    expect(put).not.toHaveBeenCalled();
  });

  it('refuses sample findings outside test mode', async () => {
    const { d } = deps({ ACCEPT_SAMPLE_FINDINGS: false });
    const result = await credentialIntake({ event: fixture() }, d);
    expect(result.intake.reason).toMatch(/^SAMPLE_FINDING/);
  });

  it('accepts the PascalCase shape GetFindings returns', async () => {
    const pascal = {
      Id: 'b0000000000000000000000000000002',
      Type: 'CredentialAccess:IAMUser/AnomalousBehavior',
      Severity: 8,
      AccountId: '123456789012',
      Region: 'us-east-1',
      Resource: {
        ResourceType: 'AccessKey',
        AccessKeyDetails: { UserType: 'IAMUser', UserName: 'dev-alice', AccessKeyId: 'AKIAEXAMPLEALICE0001' },
      },
      Service: { Archived: false, Count: 2 },
    };
    const { d } = deps();
    const result = await credentialIntake({ event: { Findings: [pascal] } }, d);
    expect(result.case).toMatchObject({
      principal: { type: 'IAMUser', name: 'dev-alice', accessKeyId: 'AKIAEXAMPLEALICE0001' },
      finding: { count: 2 },
      trigger: { shape: 'guardduty-api' },
    });
  });
});

describe('the finding in Security Hub', () => {
  const securityHub = mockClient(SecurityHubClient);
  const arn =
    'arn:aws:guardduty:us-east-1:123456789012:detector/123456789012/finding/30bf285e52a1e405084ff6ec28e06e17';
  beforeEach(() => {
    securityHub.reset();
    securityHub.on(BatchUpdateFindingsCommand).resolves({ UnprocessedFindings: [] });
  });
  const withSecurityHub = () => {
    const { d, cases } = deps();
    return {
      cases,
      d: {
        ...d,
        securityHub: {
          client: (region: string) => new SecurityHubClient({ region }),
          updatedBy: 'cordon-test',
        },
      },
    };
  };

  it('is marked NOTIFIED with the case id when the case opens', async () => {
    const { d } = withSecurityHub();

    const result = await credentialIntake({ event: envelope(liveDetail()) }, d);

    const caseId = result.intake.caseId as string;
    expect(result.case?.securityHub).toEqual({
      id: arn,
      productArn: 'arn:aws:securityhub:us-east-1::product/aws/guardduty',
    });
    expect(securityHub).toHaveReceivedCommandWith(BatchUpdateFindingsCommand, {
      FindingIdentifiers: [{ Id: arn, ProductArn: 'arn:aws:securityhub:us-east-1::product/aws/guardduty' }],
      Workflow: { Status: 'NOTIFIED' },
      UserDefinedFields: { cordonCaseId: caseId },
    });
  });

  it('opens the case all the same when Security Hub refuses, and records it', async () => {
    securityHub.on(BatchUpdateFindingsCommand).rejects(
      Object.assign(new Error('denied'), {
        name: 'AccessDeniedException',
        $metadata: { httpStatusCode: 403 },
      }),
    );
    const { d, cases } = withSecurityHub();

    const result = await credentialIntake({ event: envelope(liveDetail()) }, d);

    expect(result.intake.decision).toBe('accepted');
    expect(cases.events).toContainEqual(
      expect.objectContaining({ action: 'securityhub:BatchUpdateFindings', status: 'failed' }),
    );
  });

  it('is left alone when the same finding arrives again and joins its case', async () => {
    const { d } = withSecurityHub();
    await credentialIntake({ event: envelope(liveDetail()) }, d);
    securityHub.resetHistory();

    const again = await credentialIntake({ event: envelope(liveDetail()) }, d);

    expect(again.intake.decision).toBe('duplicate');
    expect(securityHub.calls()).toHaveLength(0);
  });
});
