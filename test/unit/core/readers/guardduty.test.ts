import { describe, expect, it } from 'vitest';
import {
  bareFindingShape,
  isGuardDutyEvent,
  readGuardDutyFinding,
  readGuardDutyResourceType,
} from '../../../../functions/core/readers/guardduty.js';
import { readRealEvent } from '../../../support/fixtures.js';

const home = { accountId: '111122223333', region: 'eu-west-1' };

/** A camelCase finding in PascalCase, as GetFindings returns it. */
function pascal(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(pascal);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [`${k.charAt(0).toUpperCase()}${k.slice(1)}`, pascal(v)]),
  );
}

const sshEvent = () =>
  structuredClone(readRealEvent('gd_eb_partial_sshbruteforce_sample.json')) as {
    region: string;
    detail: Record<string, unknown> & { service: Record<string, unknown> };
  };

describe('readGuardDutyFinding', () => {
  it('reads the same finding alike in its three shapes: in an envelope, on its own, PascalCase', () => {
    const event = sshEvent();
    const inEnvelope = readGuardDutyFinding(event.detail, { region: event.region }, home);
    const alone = readGuardDutyFinding({ ...event.detail, region: event.region }, {}, home);
    const api = readGuardDutyFinding(pascal({ ...event.detail, region: event.region }), {}, home);

    expect(inEnvelope).toEqual({
      id: '02be5693b63eea1d67e6f321c6aee4f3',
      type: 'UnauthorizedAccess:EC2/SSHBruteForce',
      title: '198.51.100.0 is performing SSH brute force attacks against i-99999999.',
      severity: 2,
      count: 1,
      sample: true,
      archived: false,
      accountId: home.accountId,
      region: 'us-east-1',
      resourceType: 'Instance',
      instance: { instanceId: 'i-99999999', vpcIds: ['GeneratedFindingVPCId'] },
      resourceRole: 'TARGET',
      actions: { networkConnection: { direction: 'INBOUND', remoteIps: ['198.51.100.0'] } },
      remoteIps: ['198.51.100.0'],
    });
    expect(alone).toEqual(inEnvelope);
    expect(api).toEqual(inEnvelope);
  });

  it.each([
    ['additionalInfo.sample', { sample: true }],
    ['the JSON text in additionalInfo.value', { value: '{"sample":true}', type: 'default' }],
    [
      'the JSON text in AdditionalInfo.Value, PascalCase inside',
      { Value: '{"Sample":true}', Type: 'default' },
    ],
  ])('reads the sample flag in %s', (_where, additionalInfo) => {
    const event = sshEvent();
    event.detail.service.additionalInfo = additionalInfo;

    expect(readGuardDutyFinding(event.detail, {}, home).sample).toBe(true);
  });

  it.each([
    ['no additional information', undefined],
    ['a value that is not JSON', { value: '{sample:true', type: 'default' }],
    ['a sample flag that is text', { value: '{"sample":"true"}', type: 'default' }],
  ])('reads no sample flag from %s', (_what, additionalInfo) => {
    const event = sshEvent();
    event.detail.service.additionalInfo = additionalInfo;

    expect(readGuardDutyFinding(event.detail, {}, home).sample).toBe(false);
  });

  it("prefers the finding's own account and region to the envelope's", () => {
    const event = sshEvent();
    event.detail.accountId = '444455556666';

    expect(
      readGuardDutyFinding(event.detail, { account: '123456789012', region: 'ap-south-1' }, home),
    ).toMatchObject({ accountId: '444455556666', region: 'ap-south-1' });
  });

  it('reads the credentials of an access-key finding, leaving out identifiers IAM would refuse', () => {
    const finding = structuredClone(
      readRealEvent('gd_detail_REJECT_accesskey_recon_maliciousipcaller_custom_sample_archived.json'),
    ) as { resource: { accessKeyDetails: Record<string, unknown> } };
    finding.resource.accessKeyDetails.userName = 'alice; rm -rf /';

    const read = readGuardDutyFinding(finding, {}, home);

    expect(read).toMatchObject({
      resourceType: 'AccessKey',
      accessKey: {
        userType: 'IAMUser',
        accessKeyId: 'GeneratedFindingAccessKeyId',
        principalId: 'GeneratedFindingPrincipalId',
      },
      archived: true,
      sample: true,
      actions: { awsApiCall: { remoteIps: ['198.51.100.0'] } },
    });
    expect(read.accessKey?.userName).toBeUndefined();
  });

  it('collects the port probers and leaves out unspecified and loopback addresses', () => {
    const event = sshEvent();
    event.detail.service.action = {
      portProbeAction: {
        portProbeDetails: [
          { remoteIpDetails: { ipAddressV4: '203.0.113.9' } },
          { remoteIpDetails: { ipAddressV4: '0.0.0.0' } },
          { remoteIpDetails: { ipAddressV6: '::1' } },
          { remoteIpDetails: { ipAddressV4: 'not an address' } },
          { remoteIpDetails: { ipAddressV4: '203.0.113.9' } },
        ],
      },
    };

    expect(readGuardDutyFinding(event.detail, {}, home)).toMatchObject({
      actions: { portProbe: { remoteIps: ['203.0.113.9'] } },
      remoteIps: ['203.0.113.9'],
    });
  });

  it('cleans finding text an attacker may write, never refusing it', () => {
    const event = sshEvent();
    event.detail.title = 'brute force\u001b[2J\u202e against\u200b i-99999999\n';

    expect(readGuardDutyFinding(event.detail, {}, home).title).toBe('brute force [2J against i-99999999');
  });

  it.each([
    ['a severity given as text', { severity: '8' }, 'MALFORMED: the severity is not a number from 0 to 10'],
    ['an instance id that is not one', { instanceId: 'i-0abc;reboot' }, 'MALFORMED: the instance id'],
    ['an archived flag that is text', { archived: 'false' }, 'MALFORMED: service.archived'],
    ['a count that is not a whole number', { count: 1.5 }, 'MALFORMED: the finding count'],
  ])('refuses %s', (_what, change, reason) => {
    const event = sshEvent();
    const detail = event.detail as Record<string, unknown> & {
      resource: { instanceDetails: Record<string, unknown> };
      service: Record<string, unknown>;
    };
    if ('severity' in change) detail.severity = change.severity;
    if ('instanceId' in change) detail.resource.instanceDetails.instanceId = change.instanceId;
    if ('archived' in change) detail.service.archived = change.archived;
    if ('count' in change) detail.service.count = change.count;

    expect(() => readGuardDutyFinding(detail, {}, home)).toThrow(reason);
  });
});

describe('the shape of a GuardDuty trigger', () => {
  it('tells a GuardDuty EventBridge event by its source and detail type', () => {
    expect(isGuardDutyEvent({ source: 'aws.guardduty', 'detail-type': 'GuardDuty Finding' })).toBe(true);
    expect(isGuardDutyEvent({ source: 'aws.securityhub', 'detail-type': 'GuardDuty Finding' })).toBe(false);
  });

  it('tells a PascalCase finding from a camelCase one', () => {
    expect(bareFindingShape({ Resource: {} })).toBe('api');
    expect(bareFindingShape({ service: {} })).toBe('detail');
    expect(bareFindingShape({ instanceId: 'i-99999999' })).toBeUndefined();
  });

  it('reads the resource type on its own, so that a caller judges it first', () => {
    expect(readGuardDutyResourceType({ Resource: { ResourceType: 'S3Bucket' } })).toBe('S3Bucket');
    expect(() => readGuardDutyResourceType({ findings: [] })).toThrow(
      'MALFORMED: a GuardDuty event carries one finding in its detail, never a findings array',
    );
  });
});
