import {
  DescribeSecurityGroupRulesCommand,
  EC2Client,
  RevokeSecurityGroupIngressCommand,
  type SecurityGroupRule,
} from '@aws-sdk/client-ec2';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { principalOf, readCloudTrailCall } from '../../../functions/core/readers/cloudtrail.js';
import {
  openIngressRules,
  policyViolation,
  sensitivePorts,
  type ViolationDeps,
} from '../../../functions/playbooks/policy-violation/policy-violation.js';
import { cloudTrailEvent, MemoryCases } from '../../support/playbooks-fixtures.js';

const ec2Mock = mockClient(EC2Client);
const snsMock = mockClient(SNSClient);

const sg = 'sg-0123456789abcdef0';
const config: ViolationDeps['config'] = {
  ALERT_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:cordon-alerts',
  POLICY_ALLOWLIST: 'arn:*:iam::*:role/aws-service-role/*',
  POLICY_REVERT_OPEN_INGRESS: true,
  POLICY_SENSITIVE_PORTS: '22,3389,5432',
  MEMBER_ROLE_NAME: 'CordonResponder',
  CORDON_ACCOUNT_ID: '123456789012',
  CORDON_STAGE: 'dev',
};

function deps(overrides: Partial<ViolationDeps['config']> = {}) {
  const cases = new MemoryCases();
  const d: ViolationDeps = {
    ec2For: () => new EC2Client({}),
    sns: new SNSClient({}),
    cases,
    recorder: cases.recorder,
    config: { ...config, ...overrides },
    now: () => new Date('2026-11-27T20:00:00.000Z'),
  };
  return { cases, d };
}

const worldSsh: SecurityGroupRule[] = [
  {
    SecurityGroupRuleId: 'sgr-0a1b2c3d4e5f60001',
    GroupId: sg,
    IsEgress: false,
    IpProtocol: 'tcp',
    FromPort: 22,
    ToPort: 22,
    CidrIpv4: '0.0.0.0/0',
  },
  {
    SecurityGroupRuleId: 'sgr-0a1b2c3d4e5f60002',
    GroupId: sg,
    IsEgress: false,
    IpProtocol: 'tcp',
    FromPort: 22,
    ToPort: 22,
    CidrIpv6: '::/0',
  },
  // A rule the event did not open: it must survive.
  {
    SecurityGroupRuleId: 'sgr-0a1b2c3d4e5f69999',
    GroupId: sg,
    IsEgress: false,
    IpProtocol: 'tcp',
    FromPort: 22,
    ToPort: 22,
    CidrIpv4: '10.0.0.0/8',
  },
];

const message = () => snsMock.commandCalls(PublishCommand)[0]?.args[0].input.Message ?? '';
const input = (name: string) => cloudTrailEvent(name) as Parameters<typeof policyViolation>[0];

beforeEach(() => {
  ec2Mock.reset();
  snsMock.reset();
  snsMock.on(PublishCommand).resolves({ MessageId: 'm-1' });
  ec2Mock.on(DescribeSecurityGroupRulesCommand).resolves({ SecurityGroupRules: worldSsh });
  ec2Mock
    .on(RevokeSecurityGroupIngressCommand)
    .resolves({ Return: true, $metadata: { requestId: 'req-revoke' } });
});

describe('policyViolation', () => {
  it('alerts on a change by a principal outside the allowlist, saying who did what, where and from which IP', async () => {
    const { d } = deps({ POLICY_REVERT_OPEN_INGRESS: false });
    const result = await policyViolation(input('run-instances.json'), d);
    expect(result).toMatchObject({ decision: 'alerted', eventName: 'RunInstances' });
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(snsMock).toHaveReceivedCommandWith(PublishCommand, {
      TopicArn: config.ALERT_TOPIC_ARN,
      Subject: '[Cordon] POLICY VIOLATION: RunInstances by AdminAccess',
    });
    const body = message();
    expect(body).toContain('Who:   arn:aws:iam::123456789012:role/AdminAccess (AssumedRole, MFA)');
    expect(body).toContain('session arn:aws:sts::123456789012:assumed-role/AdminAccess/bob@example.com');
    expect(body).toContain('What:  RunInstances on');
    expect(body).toContain('i-0fedcba9876543210');
    expect(body).toContain('Where: account 123456789012, us-east-1');
    expect(body).toContain('From:  192.0.2.44, AWS Internal');
    expect(body).toContain('Event: 3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e05');
  });

  it('names the IAM user and its access key for a change made with long-term credentials', async () => {
    const { d } = deps();
    await policyViolation(input('import-key-pair.json'), d);
    expect(message()).toContain('Who:   arn:aws:iam::123456789012:user/dev-alice (IAMUser)');
    expect(message()).toContain('access key AKIAEXAMPLEALICE0001');
    expect(message()).toContain('key pair "maintenance"');
  });

  it('reverts the rules that opened SSH to the world, by rule id, after reading them back', async () => {
    const { d, cases } = deps();
    const result = await policyViolation(input('authorize-ingress-ssh-open-to-world.json'), d);
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeSecurityGroupRulesCommand, {
      Filters: [{ Name: 'group-id', Values: [sg] }],
    });
    expect(ec2Mock).toHaveReceivedCommandTimes(RevokeSecurityGroupIngressCommand, 1);
    expect(ec2Mock).toHaveReceivedCommandWith(RevokeSecurityGroupIngressCommand, {
      GroupId: sg,
      SecurityGroupRuleIds: ['sgr-0a1b2c3d4e5f60001', 'sgr-0a1b2c3d4e5f60002'],
    });
    expect(result.revert).toMatchObject({
      status: 'reverted',
      revoked: ['sgr-0a1b2c3d4e5f60001', 'sgr-0a1b2c3d4e5f60002'],
    });
    expect(result.revert?.caseId).toMatch(/^20261127T200000Z-policy-[0-9a-f]{8}-[0-9a-f]{4}$/);
    expect(cases.events.find((e) => e.action === 'ec2:RevokeSecurityGroupIngress')).toMatchObject({
      status: 'ok',
      requestId: 'req-revoke',
    });
    expect(message()).toContain('SENSITIVE PORT OPENED TO THE INTERNET');
    expect(message()).toContain('Reverted (case');
  });

  it('reverts nothing when reverting is off, and says so in the alert', async () => {
    const { d } = deps({ POLICY_REVERT_OPEN_INGRESS: false });
    await policyViolation(input('authorize-ingress-ssh-open-to-world.json'), d);
    expect(ec2Mock).toHaveReceivedCommandTimes(RevokeSecurityGroupIngressCommand, 0);
    expect(message()).toContain('Not reverted: POLICY_REVERT_OPEN_INGRESS is off');
  });

  it('reverts nothing for a port that is not sensitive', async () => {
    const { d } = deps();
    const result = await policyViolation(input('authorize-ingress-https-open-to-world.json'), d);
    expect(result.openRules).toEqual([]);
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeSecurityGroupRulesCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(RevokeSecurityGroupIngressCommand, 0);
  });

  it('finds the rule to revert from the request when the response lists no rule ids', async () => {
    ec2Mock.on(DescribeSecurityGroupRulesCommand).resolves({
      SecurityGroupRules: [
        {
          SecurityGroupRuleId: 'sgr-0000000000000rdp1',
          GroupId: sg,
          IsEgress: false,
          IpProtocol: 'tcp',
          FromPort: 3389,
          ToPort: 3389,
          CidrIpv4: '0.0.0.0/0',
        },
        {
          SecurityGroupRuleId: 'sgr-0000000000000rdp2',
          GroupId: sg,
          IsEgress: false,
          IpProtocol: 'tcp',
          FromPort: 3389,
          ToPort: 3389,
          CidrIpv4: '192.0.2.0/24',
        },
      ],
    });
    const { d } = deps();
    await policyViolation(input('authorize-ingress-rdp-without-rule-ids.json'), d);
    expect(ec2Mock).toHaveReceivedCommandWith(RevokeSecurityGroupIngressCommand, {
      GroupId: sg,
      SecurityGroupRuleIds: ['sgr-0000000000000rdp1'],
    });
  });

  it('revokes nothing when the rule is already gone by the time it is read back', async () => {
    ec2Mock.on(DescribeSecurityGroupRulesCommand).resolves({ SecurityGroupRules: worldSsh.slice(2) });
    const { d } = deps();
    const result = await policyViolation(input('authorize-ingress-ssh-open-to-world.json'), d);
    expect(result.revert?.status).toBe('nothing-to-revert');
    expect(ec2Mock).toHaveReceivedCommandTimes(RevokeSecurityGroupIngressCommand, 0);
  });

  it('reverts nothing twice when EventBridge delivers the same event again', async () => {
    const { d } = deps();
    await policyViolation(input('authorize-ingress-ssh-open-to-world.json'), d);
    ec2Mock.resetHistory();
    const again = await policyViolation(input('authorize-ingress-ssh-open-to-world.json'), d);
    expect(again.revert?.status).toBe('already-handled');
    expect(ec2Mock).toHaveReceivedCommandTimes(RevokeSecurityGroupIngressCommand, 0);
  });

  it('alerts on a refused attempt without trying to revert anything', async () => {
    const { d } = deps();
    const result = await policyViolation(input('authorize-ingress-denied.json'), d);
    expect(result.decision).toBe('alerted');
    expect(ec2Mock).toHaveReceivedCommandTimes(RevokeSecurityGroupIngressCommand, 0);
    expect(snsMock).toHaveReceivedCommandWith(PublishCommand, {
      Subject: '[Cordon] POLICY VIOLATION ATTEMPTED: AuthorizeSecurityGroupIngress by dev-alice',
    });
  });

  it('stays silent for a principal on the allowlist', async () => {
    const { d } = deps();
    const result = await policyViolation(input('run-instances-by-autoscaling.json'), d);
    expect(result.decision).toBe('allowed');
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it("always allows Cordon's own member role, whose isolation adds such rules", async () => {
    const { d } = deps({ POLICY_ALLOWLIST: '' });
    const result = await policyViolation(input('authorize-egress-by-cordon.json'), d);
    expect(result.decision).toBe('allowed');
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('matches allowlist patterns against the role behind a session', async () => {
    const { d } = deps({ POLICY_ALLOWLIST: 'arn:aws:iam::123456789012:role/Admin*' });
    const result = await policyViolation(input('run-instances.json'), d);
    expect(result.decision).toBe('allowed');
  });

  it('ignores events it does not watch', async () => {
    const { d } = deps();
    const result = await policyViolation(input('describe-instances.json'), d);
    expect(result.decision).toBe('ignored');
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('keeps control characters from the event out of the message', async () => {
    const event = input('import-key-pair.json');
    (event.detail as Record<string, unknown>).userAgent = 'evil\r\nSubject: forged\u001b[2J';
    const { d } = deps();
    await policyViolation(event, d);
    const body = message();
    expect(body.includes('\r') || body.includes('\u001b')).toBe(false);
    expect(body).toContain('evil Subject: forged [2J');
  });
});

describe('policyViolation, given a rule whose ids carry text', () => {
  it('keeps a forged line and terminal escapes in a group id or rule id out of the message', async () => {
    const event = input('authorize-ingress-ssh-open-to-world.json');
    const detail = event.detail as {
      responseElements: { securityGroupRuleSet: { items: Record<string, unknown>[] } };
    };
    for (const rule of detail.responseElements.securityGroupRuleSet.items) {
      rule.groupId = 'sg-1\nWho: forged\u001b[2J\u202e';
      rule.securityGroupRuleId = 'sgr-1\r\nWho: again';
    }
    const { d } = deps({ POLICY_REVERT_OPEN_INGRESS: false });
    await policyViolation(event, d);
    const body = message();
    expect(body).toContain('opened sg-1 Who: forged');
    expect([...body].filter((c) => c !== '\n' && /[\p{Cc}\p{Cf}]/u.test(c))).toEqual([]);
    expect(body.split('\n').filter((line) => line.startsWith('Who:'))).toHaveLength(1);
  });
});

describe('openIngressRules', () => {
  it('counts every protocol and every port as exposing all sensitive ports', () => {
    const detail = {
      eventName: 'AuthorizeSecurityGroupIngress',
      requestParameters: { groupId: sg },
      responseElements: {
        securityGroupRuleSet: {
          items: [
            {
              groupId: sg,
              securityGroupRuleId: 'sgr-1',
              isEgress: false,
              ipProtocol: '-1',
              fromPort: -1,
              toPort: -1,
              cidrIpv4: '0.0.0.0/0',
            },
          ],
        },
      },
    };
    expect(openIngressRules(readCloudTrailCall({ detail }), [22, 3389])).toEqual([
      {
        groupId: sg,
        ruleId: 'sgr-1',
        protocol: '-1',
        fromPort: -1,
        toPort: -1,
        cidr: '0.0.0.0/0',
        ports: [22, 3389],
      },
    ]);
  });

  it('finds a sensitive port inside a range', () => {
    const detail = {
      eventName: 'AuthorizeSecurityGroupIngress',
      responseElements: {
        securityGroupRuleSet: {
          items: [
            {
              groupId: sg,
              securityGroupRuleId: 'sgr-2',
              isEgress: false,
              ipProtocol: 'tcp',
              fromPort: 3000,
              toPort: 6000,
              cidrIpv6: '::/0',
            },
          ],
        },
      },
    };
    expect(
      openIngressRules(
        readCloudTrailCall({ detail }),
        sensitivePorts({ POLICY_SENSITIVE_PORTS: '22,3389,5432' }),
      )[0]?.ports,
    ).toEqual([3389, 5432]);
  });

  it('ignores rules open to a narrower range than the world', () => {
    const detail = {
      eventName: 'AuthorizeSecurityGroupIngress',
      responseElements: {
        securityGroupRuleSet: {
          items: [
            {
              groupId: sg,
              securityGroupRuleId: 'sgr-3',
              isEgress: false,
              ipProtocol: 'tcp',
              fromPort: 22,
              toPort: 22,
              cidrIpv4: '0.0.0.0/1',
            },
          ],
        },
      },
    };
    expect(openIngressRules(readCloudTrailCall({ detail }), [22])).toEqual([]);
  });
});

describe('principalOf', () => {
  it('names an AWS service by the service that called', () => {
    expect(principalOf({ type: 'AWSService', invokedBy: 'ec2.amazonaws.com' })).toEqual({
      arn: 'service:ec2.amazonaws.com',
      type: 'AWSService',
    });
  });

  it('names the root user by its ARN', () => {
    expect(
      principalOf({ type: 'Root', arn: 'arn:aws:iam::123456789012:root', principalId: '123456789012' }),
    ).toMatchObject({
      arn: 'arn:aws:iam::123456789012:root',
      type: 'Root',
    });
  });
});
