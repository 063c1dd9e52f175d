import { describe, expect, it } from 'vitest';
import { readCloudTrailCall } from '../../../../functions/core/readers/cloudtrail.js';
import { cloudTrailEvent } from '../../../support/playbooks-fixtures.js';

describe('readCloudTrailCall', () => {
  it('reads who called what, where and from which address', () => {
    const call = readCloudTrailCall(cloudTrailEvent('run-instances.json'));

    expect(call).toMatchObject({
      detailType: 'AWS API Call via CloudTrail',
      eventSource: 'ec2.amazonaws.com',
      eventName: 'RunInstances',
      eventId: '3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e05',
      principal: {
        arn: 'arn:aws:iam::123456789012:role/AdminAccess',
        type: 'AssumedRole',
        callerArn: 'arn:aws:sts::123456789012:assumed-role/AdminAccess/bob@example.com',
        mfa: true,
      },
      accountId: '123456789012',
      region: 'us-east-1',
      sourceIp: '192.0.2.44',
    });
    expect(call.resourceIds).toContain('i-0fedcba9876543210');
  });

  it('reads the rules an ingress authorisation added from the response, with their ids', () => {
    const call = readCloudTrailCall(cloudTrailEvent('authorize-ingress-ssh-open-to-world.json'));

    expect(call.ingress).toEqual([
      {
        groupId: 'sg-0123456789abcdef0',
        ruleId: 'sgr-0a1b2c3d4e5f60001',
        protocol: 'tcp',
        fromPort: 22,
        toPort: 22,
        cidr: '0.0.0.0/0',
      },
      {
        groupId: 'sg-0123456789abcdef0',
        ruleId: 'sgr-0a1b2c3d4e5f60002',
        protocol: 'tcp',
        fromPort: 22,
        toPort: 22,
        cidr: '::/0',
      },
    ]);
  });

  it('reads them from the request when the response lists none', () => {
    const call = readCloudTrailCall(cloudTrailEvent('authorize-ingress-rdp-without-rule-ids.json'));

    expect(call.ingress).toEqual([
      { groupId: 'sg-0123456789abcdef0', protocol: 'tcp', fromPort: 3389, toPort: 3389, cidr: '0.0.0.0/0' },
    ]);
  });

  it('keeps the caller and the event id printable ASCII', () => {
    const event = cloudTrailEvent('import-key-pair.json');
    const detail = event.detail as Record<string, unknown> & { userIdentity: Record<string, unknown> };
    detail.eventID = 'id\u001b[2J\u202e';
    detail.userIdentity.arn = 'arn:aws:iam::123456789012:user/dev\nWho: forged';

    const call = readCloudTrailCall(event);

    expect(call.eventId).toBe('id [2J');
    expect(call.principal.arn).toBe('arn:aws:iam::123456789012:user/dev Who: forged');
  });

  it('reads nothing it cannot find, and never throws', () => {
    expect(readCloudTrailCall({ detail: 'not an event' })).toEqual({
      eventId: '',
      principal: { arn: 'principal:unknown', type: 'Unknown' },
      accountId: '',
      region: '',
      resourceIds: [],
      ingress: [],
    });
  });
});
