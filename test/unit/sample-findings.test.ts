/**
 * One sample flag, read alike by every function that acts on GuardDuty findings. `GetFindings` returns
 * `additionalInfo` as `{ Value: '<JSON text>', Type }`, so a sample finding handed over from the API
 * carries its flag only inside that text. The instance workflow's Intake read it there; the
 * credentials intake and block-ip read `additionalInfo.sample` only, so the credentials intake opened a
 * case for a sample finding that Intake refused. They now share one reader (core/readers/guardduty.ts).
 *
 * The findings are under test/fixtures/guardduty-api: real events from ../shared/fixtures/real-events
 * (an SSH brute-force finding about an instance, a reconnaissance finding about an access key) put
 * into the shape GetFindings returns, as its README says.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { type BlockDeps, blockIp } from '../../functions/core/blocks.js';
import { readGuardDutyFinding } from '../../functions/core/readers/guardduty.js';
import { credentialIntake } from '../../functions/credentials/credential-intake/credential-intake.js';
import { type IntakeSettings, normaliseTrigger } from '../../functions/forensics/intake-finding/normalise.js';
import { credentialIntakeDeps, MemoryCases } from '../support/playbooks-fixtures.js';

const ec2Mock = mockClient(EC2Client);
const now = new Date('2026-11-27T20:10:03.000Z');
const home = { accountId: '123456789012', region: 'us-east-1' };

function apiFinding(name: string): Record<string, unknown> {
  const file = resolve(import.meta.dirname, '../fixtures/guardduty-api', name);
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}
const instanceSample = () => apiFinding('gd_api_sshbruteforce_sample_in_additionalinfo_value.json');
const accessKeySample = () => apiFinding('gd_api_accesskey_sample_in_additionalinfo_value.json');

const intakeSettings = (acceptSampleFindings: boolean): IntakeSettings => ({
  homeAccountId: home.accountId,
  homeRegion: home.region,
  minSeverity: 7,
  acceptSampleFindings,
  acceptSecurityHubImported: false,
  securityHubActionId: 'ForensicTriageAction',
});

function blockDeps(acceptSampleFindings: boolean): BlockDeps {
  const cases = new MemoryCases();
  return {
    ec2For: () => new EC2Client({}),
    cases,
    recorder: cases.recorder,
    sns: new SNSClient({}),
    config: {
      CORDON_ACCOUNT_ID: home.accountId,
      AWS_REGION: home.region,
      NACL_RULE_QUOTA: 20,
      FORENSIC_CIDR: '',
      AUTO_BLOCK_FINDINGS: true,
      AUTO_BLOCK_TTL: '24h',
      ACCEPT_SAMPLE_FINDINGS: acceptSampleFindings,
      ALERT_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:cordon-alerts',
    },
    now: () => now,
  };
}

const sampleRefusal = 'SAMPLE_FINDING: sample findings start no response unless ACCEPT_SAMPLE_FINDINGS is on';

beforeEach(() => {
  ec2Mock.reset();
});

describe('a GetFindings sample finding whose flag is only in AdditionalInfo.Value', () => {
  it.each([
    ['instance', instanceSample],
    ['access-key', accessKeySample],
  ])('is read as a sample: the %s finding', (_kind, finding) => {
    const read = readGuardDutyFinding(finding(), {}, home);

    expect(read.sample).toBe(true);
  });

  it.each([
    ['on its own', instanceSample],
    ['in a Findings list', () => ({ Findings: [instanceSample()] })],
  ])('is refused as a sample by the instance intake, handed over %s', (_how, event) => {
    expect(normaliseTrigger(event(), intakeSettings(false), now)).toEqual({ rejected: sampleRefusal });
  });

  it.each([
    ['on its own', accessKeySample],
    ['in a Findings list', () => ({ Findings: [accessKeySample()] })],
  ])(
    'is refused as a sample by the credentials intake, handed over %s, opening no case',
    async (_how, event) => {
      const { cases, put, d } = credentialIntakeDeps({ ACCEPT_SAMPLE_FINDINGS: false }, now);

      const result = await credentialIntake({ event: event() }, d);

      expect(result.intake).toEqual({ decision: 'rejected', reason: sampleRefusal });
      expect(cases.items.size).toBe(0);
      expect(put).not.toHaveBeenCalled();
    },
  );

  it("is refused by block-ip's automatic block, which sends no EC2 call", async () => {
    const { blocks } = await blockIp({ detail: instanceSample() }, blockDeps(false));

    expect(blocks).toEqual([
      {
        decision: 'refused',
        reason: 'SAMPLE_FINDING: sample findings block nothing unless ACCEPT_SAMPLE_FINDINGS is on',
      },
    ]);
    expect(ec2Mock.calls()).toHaveLength(0);
  });

  it('starts a response in each intake once sample findings are accepted', async () => {
    expect(normaliseTrigger(instanceSample(), intakeSettings(true), now)).toMatchObject({
      ok: { instanceId: 'i-99999999', trigger: { sample: true, shape: 'guardduty-api' } },
    });
    const { d } = credentialIntakeDeps({ ACCEPT_SAMPLE_FINDINGS: true }, now);
    const result = await credentialIntake({ event: accessKeySample() }, d);
    expect(result.intake.decision).toBe('accepted');
    expect(result.case?.finding.sample).toBe(true);
  });

  it("reaches block-ip's VPC check once sample findings are accepted, its VPC being a placeholder", async () => {
    const { blocks } = await blockIp({ detail: instanceSample() }, blockDeps(true));

    expect(blocks[0]?.reason).toBe('MALFORMED: the finding does not name exactly one valid VPC');
    expect(ec2Mock.calls()).toHaveLength(0);
  });
});
