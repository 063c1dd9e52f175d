import { gzipSync } from 'node:zlib';
import { DescribeInstancesCommand, DescribeNetworkInterfacesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError, InvalidStepInputError } from '../../../functions/core/errors.js';
import { parseEveLine } from '../../../functions/core/readers/suricata.js';
import { type IdsDeps, idsAlert } from '../../../functions/playbooks/ids-alert/ids-alert.js';
import { eveLines } from '../../support/playbooks-fixtures.js';

const ec2Mock = mockClient(EC2Client);
const sfnMock = mockClient(SFNClient);
const snsMock = mockClient(SNSClient);

const instanceId = 'i-0123456789abcdef0';
/** The instance the fixtures' lateral movement (10.0.1.4 -> 10.0.1.9) reaches. */
const neighbourId = 'i-0fedcba9876543210';
const forensics = 'arn:aws:states:us-east-1:123456789012:stateMachine:cordon-forensics-dev';
const topic = 'arn:aws:sns:us-east-1:123456789012:cordon-alerts-dev';
const config: IdsDeps['config'] = {
  AWS_REGION: 'us-east-1',
  ALERT_TOPIC_ARN: topic,
  IDS_START_MAX_SEVERITY: 1,
  IDS_STOP_MAX_SEVERITY: 0,
  FORENSICS_STATE_MACHINE_ARN: forensics,
};
const deps = (overrides: Partial<IdsDeps['config']> = {}): IdsDeps => ({
  ec2For: () => new EC2Client({}),
  sfn: new SFNClient({}),
  sns: new SNSClient({}),
  config: { ...config, ...overrides },
});

/** What CloudWatch Logs hands a subscribed function: base64 of the gzipped message. */
function delivery(lines: string[], extra: Record<string, unknown> = {}) {
  const message = {
    messageType: 'DATA_MESSAGE',
    owner: '123456789012',
    logGroup: '/cordon/dev/ids/suricata',
    logStream: 'sensor-1',
    subscriptionFilters: ['cordon-dev-ids'],
    logEvents: lines.map((message, i) => ({
      id: `3725648765289365847367${String(i).padStart(4, '0')}`,
      timestamp: 1795809662000 + i,
      message,
    })),
    ...extra,
  };
  return { awslogs: { data: gzipSync(Buffer.from(JSON.stringify(message))).toString('base64') } };
}

const alerts = eveLines('alerts.jsonl');
const line = (signatureId: number) =>
  alerts.find((l) => l.includes(`"signature_id":${signatureId},`)) as string;

/** The one notification of a batch. */
const published = () => snsMock.commandCalls(PublishCommand)[0]?.args[0].input;

/** Swaps an EVE line's source and destination addresses. */
const reversed = (eve: string) => {
  const record = JSON.parse(eve) as { src_ip: string; dest_ip: string };
  return JSON.stringify({ ...record, src_ip: record.dest_ip, dest_ip: record.src_ip });
};

beforeEach(() => {
  ec2Mock.reset();
  sfnMock.reset();
  snsMock.reset();
  snsMock.on(PublishCommand).resolves({ MessageId: 'msg-0001' });
  ec2Mock.on(DescribeNetworkInterfacesCommand).resolves({ NetworkInterfaces: [] });
  ec2Mock
    .on(DescribeNetworkInterfacesCommand, {
      Filters: [{ Name: 'addresses.private-ip-address', Values: ['10.0.1.4'] }],
    })
    .resolves({
      NetworkInterfaces: [
        { NetworkInterfaceId: 'eni-0aaaaaaaaaaaaaaa1', Attachment: { InstanceId: instanceId } },
      ],
    });
  ec2Mock
    .on(DescribeNetworkInterfacesCommand, {
      Filters: [{ Name: 'addresses.private-ip-address', Values: ['10.0.1.9'] }],
    })
    .resolves({
      NetworkInterfaces: [
        { NetworkInterfaceId: 'eni-0aaaaaaaaaaaaaaa2', Attachment: { InstanceId: neighbourId } },
      ],
    });
  sfnMock.on(StartExecutionCommand).callsFake((input: { name: string }) => ({
    executionArn: `arn:aws:states:us-east-1:123456789012:execution:cordon-forensics-dev:${input.name}`,
  }));
});

describe('parseEveLine', () => {
  it('reads every well-formed alert of the fixture', () => {
    const parsed = alerts.map(parseEveLine);
    expect(parsed.map((p) => p.kind)).toEqual([
      'alert',
      'alert',
      'alert',
      'alert',
      'alert',
      'alert',
      'alert',
    ]);
    expect(parsed[0]).toEqual({
      kind: 'alert',
      alert: {
        timestamp: '2026-11-27T20:01:02.123456+0000',
        flowId: '1031464864740687',
        srcIp: '203.0.113.50',
        destIp: '10.0.1.4',
        srcPort: 44123,
        destPort: 22,
        proto: 'TCP',
        action: 'allowed',
        signatureId: 1000001,
        rev: 2,
        signature: 'CORDON TEST inbound SSH exploit attempt',
        category: 'Attempted Administrator Privilege Gain',
        severity: 1,
      },
    });
  });

  it('keeps every digit of a flow id above 2^53', () => {
    const parsed = parseEveLine(line(1000005));
    expect(parsed.kind === 'alert' && parsed.alert.flowId).toBe('18446744073709551');
  });

  it('tells records that are not alerts from malformed lines', () => {
    const kinds = eveLines('mixed.jsonl').map((l) => {
      const p = parseEveLine(l);
      return p.kind === 'malformed'
        ? `malformed: ${p.reason}`
        : p.kind === 'other'
          ? `other: ${p.eventType}`
          : 'alert';
    });
    expect(kinds).toEqual([
      'other: flow',
      'alert',
      'other: dns',
      'malformed: not JSON',
      'malformed: not JSON',
      'malformed: not a JSON object',
      'malformed: bad field src_ip',
      'malformed: bad field alert.severity',
      'malformed: bad field src_ip',
      'malformed: no event_type',
      'malformed: no event_type',
      'other: stats',
    ]);
  });

  it('refuses a line too long to be one alert without parsing it', () => {
    expect(parseEveLine(`{"event_type":"alert","pad":"${'x'.repeat(70_000)}"}`)).toEqual({
      kind: 'malformed',
      reason: 'line too long',
    });
  });
});

describe('idsAlert', () => {
  it('starts the forensic workflow on the instance an outbound alert names as its source, with a manual start', async () => {
    const result = await idsAlert(delivery([line(1000002)]), deps());
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 1);
    const call = sfnMock.commandCalls(StartExecutionCommand)[0]?.args[0].input;
    expect(call?.stateMachineArn).toBe(forensics);
    expect(call?.name).toMatch(/^ids-i-0123456789abcdef0-[0-9a-f]{16}$/);
    expect(JSON.parse(call?.input ?? '{}')).toEqual({
      instanceId,
      region: 'us-east-1',
      accountId: '123456789012',
      requestedBy: 'ids:suricata',
      reason:
        'Suricata alert sid 1000002 rev 1, severity 1 (A Network Trojan was detected) at 2026-11-27T20:03:44.500210+0000: ' +
        'CORDON TEST possible command-and-control beacon; 10.0.1.4 -> 198.51.100.77; log /cordon/dev/ids/suricata event 37256487652893658473670000',
    });
    expect(result.started).toEqual([
      expect.objectContaining({ instanceId, stopAfterEvidence: false, severity: 1, signatureId: 1000002 }),
    ]);
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('starts nothing for an inbound alert and names its destination in one notification', async () => {
    const result = await idsAlert(delivery([line(1000001), line(1000005)]), deps());
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(result).toMatchObject({
      destinationOnly: 2,
      lateral: 0,
      notified: [instanceId],
      messageId: 'msg-0001',
      started: [],
    });
    const message = published();
    expect(message?.TopicArn).toBe(topic);
    expect(message?.Subject).toBe('[Cordon] IDS: 2 alert(s) on 1 instance(s) as destination, no response');
    expect(message?.Message).toContain('NO RESPONSE STARTED FROM THESE ALERTS');
    expect(message?.Message).toContain('only on the instance an alert names as its SOURCE');
    expect(message?.Message).toContain(`${instanceId}: inbound; no response started on it`);
    expect(message?.Message).toContain(
      'sid 1000001 rev 2, severity 1, category Attempted Administrator Privilege Gain: CORDON TEST inbound SSH exploit attempt',
    );
    expect(message?.Message).toContain('203.0.113.50 -> 10.0.1.4 at 2026-11-27T20:01:02.123456+0000');
    expect(message?.Message).toContain('sid 1000005 rev 3, severity 1, category Web Application Attack');
    expect(message?.Message).toContain('203.0.113.52 -> 10.0.1.4');
  });

  it('gives the response to the source of lateral movement and names the destination in the notification', async () => {
    const result = await idsAlert(delivery([line(1000007)]), deps());
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 1);
    expect(result.started.map((s) => s.instanceId)).toEqual([instanceId]);
    expect(result).toMatchObject({ lateral: 1, destinationOnly: 0, notified: [neighbourId] });
    expect(published()?.Message).toContain(
      `${neighbourId}: lateral movement from ${instanceId}, on which a response was started; no response started on it`,
    );
    expect(published()?.Message).toContain('10.0.1.4 -> 10.0.1.9');
  });

  it('responds to the source of lateral movement whichever of the two instances sent it', async () => {
    const result = await idsAlert(delivery([reversed(line(1000007))]), deps());
    expect(result.started.map((s) => s.instanceId)).toEqual([neighbourId]);
    expect(result.notified).toEqual([instanceId]);
  });

  it('says so when an instance named as a destination was responded to for an alert it sent', async () => {
    const result = await idsAlert(delivery([line(1000001), line(1000002)]), deps());
    expect(result.started.map((s) => s.instanceId)).toEqual([instanceId]);
    expect(result.destinationOnly).toBe(1);
    expect(published()?.Message).toContain(
      `${instanceId}: inbound; a response was started on it for an alert it sent`,
    );
  });

  it('keeps control characters and other non-ASCII text from the IDS out of the notification', async () => {
    const hostile = line(1000001)
      .replace(
        'CORDON TEST inbound SSH exploit attempt',
        'pwn\\u001b[2J\\r\\nSubject: forged\\u2028\\u202e\\u0000',
      )
      .replace('Attempted Administrator Privilege Gain', 'cat\\u009b31m\\u200bégory');
    await idsAlert(delivery([hostile], { logStream: 'sensor\u001b]0;owned\u0007-1' }), deps());
    const message = published();
    expect(/^[\x20-\x7e\n]*$/.test(message?.Message ?? '')).toBe(true);
    expect(/^[\x20-\x7e]*$/.test(message?.Subject ?? '')).toBe(true);
    expect(message?.Message).toContain('pwn [2J Subject: forged');
    expect(message?.Message).not.toMatch(/^Subject: forged/m);
    expect(message?.Message).toContain('category cat 31m ?gory');
    expect(message?.Message).toContain('stream sensor ]0;owned -1');
  });

  it('publishes nothing when a start fails, so that the batch Lambda retries is notified once', async () => {
    sfnMock
      .on(StartExecutionCommand)
      .rejects(Object.assign(new Error('throttled'), { name: 'ThrottlingException' }));
    await expect(idsAlert(delivery([line(1000001), line(1000002)]), deps())).rejects.toThrow('throttled');
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('takes an execution that ended since the batch was first delivered as started, and still notifies', async () => {
    sfnMock
      .on(StartExecutionCommand)
      .rejects(Object.assign(new Error('Execution already exists'), { name: 'ExecutionAlreadyExists' }));
    const result = await idsAlert(delivery([line(1000001), line(1000002)]), deps());
    expect(result.started).toEqual([
      expect.objectContaining({
        instanceId,
        startedBefore: true,
        executionArn: expect.stringMatching(
          /^arn:aws:states:us-east-1:123456789012:execution:cordon-forensics-dev:ids-i-0123456789abcdef0-[0-9a-f]{16}$/,
        ),
      }),
    ]);
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 1);
  });

  it('marks the notification with the batch, the same for the same batch delivered again', async () => {
    await idsAlert(delivery([line(1000001)]), deps());
    await idsAlert(delivery([line(1000001)]), deps());
    const batches = snsMock
      .commandCalls(PublishCommand)
      .map((c) => c.args[0].input.MessageAttributes?.batch?.StringValue);
    expect(batches[0]).toMatch(/^[0-9a-f]{16}$/);
    expect(batches[1]).toBe(batches[0]);
  });

  it('looks only the private address up, never the public attacker', async () => {
    await idsAlert(delivery([line(1000001)]), deps());
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeNetworkInterfacesCommand, 1);
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeNetworkInterfacesCommand, {
      Filters: [{ Name: 'addresses.private-ip-address', Values: ['10.0.1.4'] }],
    });
  });

  it('starts one execution per instance for a batch of alerts from it, asking what the most severe asks', async () => {
    const result = await idsAlert(
      delivery([line(1000003), line(1000002), line(1000003)]),
      deps({ IDS_START_MAX_SEVERITY: 3 }),
    );
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 1);
    expect(result.alerts).toBe(3);
    expect(result.started).toEqual([expect.objectContaining({ instanceId, signatureId: 1000002 })]);
  });

  it('names the execution the same way for the same batch, so a retried batch starts nothing twice', async () => {
    await idsAlert(delivery([line(1000002)]), deps());
    await idsAlert(delivery([line(1000002)]), deps());
    const names = sfnMock.commandCalls(StartExecutionCommand).map((c) => c.args[0].input.name);
    expect(names[0]).toBe(names[1]);
  });

  it('asks for the instance to be stopped after its evidence when the alert is severe enough', async () => {
    await idsAlert(delivery([line(1000002)]), deps({ IDS_STOP_MAX_SEVERITY: 1 }));
    expect(sfnMock.commandCalls(StartExecutionCommand)[0]?.args[0].input.name).toMatch(
      /^ids-stop-i-0123456789abcdef0-/,
    );
  });

  it('starts nothing for alerts below the configured severity', async () => {
    const result = await idsAlert(delivery([line(1000003)]), deps());
    expect(result).toMatchObject({ alerts: 1, belowSeverity: 1, started: [] });
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeNetworkInterfacesCommand, 0);
  });

  it('starts nothing when IDS responses are turned off', async () => {
    const result = await idsAlert(delivery([line(1000002)]), deps({ IDS_START_MAX_SEVERITY: 0 }));
    expect(result.belowSeverity).toBe(1);
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
  });

  it('presumes nothing compromised for an alert the IDS blocked inline', async () => {
    const result = await idsAlert(delivery([line(1000004)]), deps());
    expect(result.blocked).toBe(1);
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('counts malformed lines by reason and still handles the alerts of the same batch', async () => {
    const result = await idsAlert(delivery(eveLines('mixed.jsonl')), deps());
    expect(result).toMatchObject({ received: 12, alerts: 1, other: 3, malformed: 8, destinationOnly: 1 });
    expect(result.refusals).toEqual({
      'not JSON': 2,
      'not a JSON object': 1,
      'bad field src_ip': 2,
      'bad field alert.severity': 1,
      'no event_type': 2,
    });
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 1);
  });

  it('finds an instance by its IPv6 address', async () => {
    ec2Mock
      .on(DescribeNetworkInterfacesCommand, {
        Filters: [{ Name: 'ipv6-addresses.ipv6-address', Values: ['2600:1f18:abcd:1201::10'] }],
      })
      .resolves({ NetworkInterfaces: [{ Attachment: { InstanceId: neighbourId } }] });
    const result = await idsAlert(delivery([reversed(line(1000006))]), deps());
    expect(result.started.map((s) => s.instanceId)).toEqual([neighbourId]);
  });

  it('starts nothing for an address two instances claim, in VPCs whose ranges overlap', async () => {
    ec2Mock
      .on(DescribeNetworkInterfacesCommand, {
        Filters: [{ Name: 'addresses.private-ip-address', Values: ['10.0.1.4'] }],
      })
      .resolves({
        NetworkInterfaces: [
          { Attachment: { InstanceId: instanceId } },
          { Attachment: { InstanceId: neighbourId } },
        ],
      });
    const result = await idsAlert(delivery([line(1000002)]), deps());
    expect(result.ambiguous).toBe(1);
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
  });

  it("looks addresses up in the sensor's VPC when the log stream is named after the sensor", async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [{ InstanceId: 'i-0aaaaaaaaaaaaaaa1', VpcId: 'vpc-0a1b2c3d4e5f60718' }] }],
    });
    await idsAlert(delivery([line(1000001)], { logStream: 'i-0aaaaaaaaaaaaaaa1' }), deps());
    expect(ec2Mock).toHaveReceivedCommandWith(DescribeNetworkInterfacesCommand, {
      Filters: [
        { Name: 'addresses.private-ip-address', Values: ['10.0.1.4'] },
        { Name: 'vpc-id', Values: ['vpc-0a1b2c3d4e5f60718'] },
      ],
    });
  });

  it('counts an alert that names no instance of the account', async () => {
    ec2Mock.on(DescribeNetworkInterfacesCommand).resolves({ NetworkInterfaces: [] });
    const result = await idsAlert(delivery([line(1000001)]), deps());
    expect(result.unmatched).toBe(1);
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
    expect(snsMock).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('keeps control characters and other non-ASCII text from the IDS out of the reason', async () => {
    const hostile = line(1000002).replace(
      'CORDON TEST possible command-and-control beacon',
      'pwn\\u001b[2J\\nrm -rf / \\u202e',
    );
    await idsAlert(delivery([hostile]), deps());
    const input = JSON.parse(sfnMock.commandCalls(StartExecutionCommand)[0]?.args[0].input.input ?? '{}') as {
      reason: string;
    };
    expect(input.reason).toContain('pwn [2J rm -rf /');
    expect(/^[\x20-\x7e]*$/.test(input.reason)).toBe(true);
  });

  it('does nothing with the control message CloudWatch Logs sends to check the destination', async () => {
    const result = await idsAlert(
      delivery([], { messageType: 'CONTROL_MESSAGE', owner: 'CloudwatchLogs' }),
      deps(),
    );
    expect(result.messageType).toBe('CONTROL_MESSAGE');
    expect(sfnMock).toHaveReceivedCommandTimes(StartExecutionCommand, 0);
  });

  it('refuses a payload that is not gzipped JSON', async () => {
    await expect(
      idsAlert({ awslogs: { data: Buffer.from('plain').toString('base64') } }, deps()),
    ).rejects.toBeInstanceOf(InvalidStepInputError);
  });

  it('fails by name when it would start the workflow but does not know which one', async () => {
    await expect(
      idsAlert(delivery([line(1000002)]), deps({ FORENSICS_STATE_MACHINE_ARN: '' })),
    ).rejects.toBeInstanceOf(ConfigurationError);
  });
});
