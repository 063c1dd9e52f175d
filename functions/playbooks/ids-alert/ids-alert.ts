import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import {
  DescribeInstancesCommand,
  DescribeNetworkInterfacesCommand,
  type EC2Client,
  type Filter,
} from '@aws-sdk/client-ec2';
import { type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { accountIdPattern, instanceIdPattern } from '../../core/case.js';
import type { Config } from '../../core/config.js';
import { awsErrorCode, ConfigurationError, InvalidStepInputError } from '../../core/errors.js';
import { hostCidr, isPublicRange } from '../../core/nacl.js';
import { type EveAlert, parseEveLine } from '../../core/readers/suricata.js';
import { asciiLine } from '../../core/text.js';

export const idsStep = 'ids-alert';
/** Who the forensic workflow records as having asked (Intake's `requestedBy`). */
export const idsRequester = 'ids:suricata';
/** Executions that should end with the instance stopped are named so; Stop After Evidence looks for it. */
export const stopPrefix = 'ids-stop-';
/** Alerts listed one by one in the notification; the rest are counted. */
export const maxNotifiedAlerts = 50;

/** What CloudWatch Logs hands a subscribed Lambda function: base64 of a gzipped JSON document. */
export const idsInputSchema = z.object({ awslogs: z.object({ data: z.string().min(1).max(8_000_000) }) });
export type IdsInput = z.infer<typeof idsInputSchema>;

const payloadSchema = z.object({
  messageType: z.enum(['DATA_MESSAGE', 'CONTROL_MESSAGE']),
  owner: z.string(),
  logGroup: z.string().max(512),
  logStream: z.string().max(512),
  logEvents: z
    .array(z.object({ id: z.string().max(64), timestamp: z.number(), message: z.string() }))
    .max(20_000),
});

export interface IdsDeps {
  ec2For: (target: { accountId: string; region: string }) => EC2Client;
  sfn: SFNClient;
  sns: SNSClient;
  config: Pick<
    Config,
    | 'AWS_REGION'
    | 'ALERT_TOPIC_ARN'
    | 'IDS_START_MAX_SEVERITY'
    | 'IDS_STOP_MAX_SEVERITY'
    | 'FORENSICS_STATE_MACHINE_ARN'
  >;
}

export interface Started {
  instanceId: string;
  executionArn: string;
  stopAfterEvidence: boolean;
  severity: number;
  signatureId: number;
  /** The batch was delivered before and this execution, started then, has already ended. */
  startedBefore?: true;
}

export interface IdsResult {
  messageType: 'DATA_MESSAGE' | 'CONTROL_MESSAGE';
  received: number;
  alerts: number;
  /** Well-formed EVE records that are not alerts (the subscription filter normally keeps them out). */
  other: number;
  malformed: number;
  /** Malformed lines by reason: counted, never fatal to the batch. */
  refusals: Record<string, number>;
  belowSeverity: number;
  /** Alerts Suricata blocked inline: the packet never arrived, so the instance is not presumed compromised. */
  blocked: number;
  /** Alerts naming no address of an instance in the account. */
  unmatched: number;
  /** Alerts whose address belongs to more than one instance (overlapping VPC ranges). */
  ambiguous: number;
  /**
   * Alerts whose destination is one of our instances and whose source is not: inbound traffic, whose
   * destination the sender chose. Notified, never responded to.
   */
  destinationOnly: number;
  /** Alerts from one of our instances to another: the source is responded to, the destination notified. */
  lateral: number;
  /** Instances named as a destination in the notification, without a response of their own from it. */
  notified: string[];
  /** The alert topic's id for the one notification of the batch, when there was one. */
  messageId?: string;
  started: Started[];
}

interface Candidate {
  alert: EveAlert;
  eventId: string;
}

/** An alert naming one of our instances as its destination, told to people rather than acted on. */
interface Notice extends Candidate {
  destination: string;
  /** The instance that sent it, when it is ours too (lateral movement): that one gets the response. */
  source?: string;
}

function decode(input: IdsInput): z.infer<typeof payloadSchema> {
  let json: unknown;
  try {
    const raw = gunzipSync(Buffer.from(input.awslogs.data, 'base64'), { maxOutputLength: 64 * 1024 * 1024 });
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new InvalidStepInputError('The CloudWatch Logs payload is not gzipped JSON');
  }
  const parsed = payloadSchema.safeParse(json);
  if (!parsed.success)
    throw new InvalidStepInputError('The CloudWatch Logs payload is not a subscription message');
  return parsed.data;
}

/**
 * Suricata alerts shipped to CloudWatch Logs, delivered by a subscription filter: each line is parsed
 * (malformed lines are counted and skipped, never fatal), and each alert at or above the configured
 * severity whose SOURCE address is held by one of our instances starts the forensic workflow on that
 * instance, once per instance per batch. When the alert is severe enough (IDS_STOP_MAX_SEVERITY), the
 * execution is named so that Stop After Evidence stops the instance once its disks and memory are
 * safely captured.
 *
 * The destination of a packet is whoever its sender chose: an outside attacker who trips a signature
 * against one of our instances must not get it isolated or stopped. An alert whose destination only is
 * ours starts nothing; those instances (and the destinations of lateral movement) are listed in one
 * notification on the alert topic after the batch.
 */
export async function idsAlert(input: IdsInput, deps: IdsDeps): Promise<IdsResult> {
  const payload = decode(input);
  const result: IdsResult = {
    messageType: payload.messageType,
    received: payload.logEvents.length,
    alerts: 0,
    other: 0,
    malformed: 0,
    refusals: {},
    belowSeverity: 0,
    blocked: 0,
    unmatched: 0,
    ambiguous: 0,
    destinationOnly: 0,
    lateral: 0,
    notified: [],
    started: [],
  };
  // CloudWatch Logs checks that the destination is reachable with a control message: nothing to do.
  if (payload.messageType === 'CONTROL_MESSAGE') return result;
  if (!accountIdPattern.test(payload.owner))
    throw new InvalidStepInputError('The log data owner is not an account id');

  const candidates: Candidate[] = [];
  for (const event of payload.logEvents) {
    const parsed = parseEveLine(event.message);
    if (parsed.kind === 'malformed') {
      result.malformed++;
      result.refusals[parsed.reason] = (result.refusals[parsed.reason] ?? 0) + 1;
    } else if (parsed.kind === 'other') result.other++;
    else {
      result.alerts++;
      const { alert } = parsed;
      if (deps.config.IDS_START_MAX_SEVERITY === 0 || alert.severity > deps.config.IDS_START_MAX_SEVERITY)
        result.belowSeverity++;
      else if (alert.action === 'blocked') result.blocked++;
      else candidates.push({ alert, eventId: event.id });
    }
  }
  if (candidates.length === 0) return result;
  if (!deps.config.FORENSICS_STATE_MACHINE_ARN) {
    throw new ConfigurationError('FORENSICS_STATE_MACHINE_ARN is not set on this function');
  }

  const region = deps.config.AWS_REGION;
  const ec2 = deps.ec2For({ accountId: payload.owner, region });
  const vpcId = await sensorVpc(ec2, payload.logStream);
  const owners = new Map<string, string[]>();
  const instancesAt = async (ip: string): Promise<string[]> => {
    const cached = owners.get(ip);
    if (cached) return cached;
    const found = await instancesHolding(ec2, ip, vpcId);
    owners.set(ip, found);
    return found;
  };

  // The most severe alert per instance decides what its one execution asks for.
  const chosen = new Map<string, Candidate>();
  const notices: Notice[] = [];
  for (const c of candidates) {
    const sources = await instancesAt(c.alert.srcIp);
    const destinations = c.alert.destIp === c.alert.srcIp ? sources : await instancesAt(c.alert.destIp);
    const [source] = sources;
    const [destination] = destinations;
    if (sources.length > 1 || (!source && destinations.length > 1)) {
      result.ambiguous++;
      continue;
    }
    if (source) {
      const best = chosen.get(source);
      if (!best || c.alert.severity < best.alert.severity) chosen.set(source, c);
      if (destinations.length === 1 && destination && destination !== source) {
        result.lateral++;
        notices.push({ ...c, destination, source });
      }
    } else if (destination) {
      result.destinationOnly++;
      notices.push({ ...c, destination });
    } else result.unmatched++;
  }

  for (const [instanceId, { alert, eventId }] of chosen) {
    const stop = deps.config.IDS_STOP_MAX_SEVERITY > 0 && alert.severity <= deps.config.IDS_STOP_MAX_SEVERITY;
    const digest = createHash('sha256')
      .update(`${payload.logGroup}\n${payload.logStream}\n${eventId}`)
      .digest('hex');
    // Printable ASCII only: Intake refuses control characters in a reason.
    const reason = asciiLine(
      `Suricata alert sid ${alert.signatureId}${alert.rev === undefined ? '' : ` rev ${alert.rev}`}, severity ${alert.severity}` +
        `${alert.category ? ` (${alert.category})` : ''} at ${alert.timestamp}: ${alert.signature}; ` +
        `${alert.srcIp} -> ${alert.destIp}; log ${payload.logGroup} event ${eventId}`,
      512,
    );
    // The same batch retried starts nothing twice: same name, same input.
    const name = `${stop ? stopPrefix : 'ids-'}${instanceId}-${digest.slice(0, 16)}`;
    const started = await startOnce(deps, name, {
      instanceId,
      region,
      accountId: payload.owner,
      reason,
      requestedBy: idsRequester,
    });
    result.started.push({
      ...started,
      instanceId,
      stopAfterEvidence: stop,
      severity: alert.severity,
      signatureId: alert.signatureId,
    });
  }

  // Last, once every start has succeeded: a batch retried because a start failed has published
  // nothing yet, and nothing after the publication can fail the batch.
  if (notices.length > 0) {
    result.notified = [...new Set(notices.map((n) => n.destination))];
    const message = compose(notices, payload, result, new Set(chosen.keys()));
    const published = await deps.sns.send(
      new PublishCommand({
        TopicArn: deps.config.ALERT_TOPIC_ARN,
        Subject: message.subject,
        Message: message.body,
        MessageAttributes: {
          playbook: { DataType: 'String', StringValue: idsStep },
          // Standard topics do not deduplicate: a subscriber that must see a batch once can.
          batch: { DataType: 'String', StringValue: message.batch },
        },
      }),
    );
    if (published.MessageId) result.messageId = published.MessageId;
  }
  return result;
}

/**
 * StartExecution with a name already used returns the running execution when the input is the same,
 * and refuses once it has ended: a batch delivered again after its executions ended (its notification
 * failed, say) finds them started, and goes on to notify.
 */
async function startOnce(
  deps: IdsDeps,
  name: string,
  input: Record<string, string>,
): Promise<{ executionArn: string; startedBefore?: true }> {
  const stateMachineArn = deps.config.FORENSICS_STATE_MACHINE_ARN;
  try {
    const out = await deps.sfn.send(
      new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }),
    );
    return { executionArn: out.executionArn ?? '' };
  } catch (error) {
    if (awsErrorCode(error) !== 'ExecutionAlreadyExists') throw error;
    const executionArn = `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
    return { executionArn, startedBefore: true };
  }
}

/**
 * The notification of a batch. Every field from the IDS (signature, category, addresses, timestamp)
 * and the log stream's name are written by the sensor, a host that may be compromised: each is made
 * printable ASCII by the one text rule before it is written.
 */
function compose(
  notices: readonly Notice[],
  payload: z.infer<typeof payloadSchema>,
  result: IdsResult,
  responded: ReadonlySet<string>,
): { subject: string; body: string; batch: string } {
  const batch = createHash('sha256')
    .update(`${payload.logGroup}\n${payload.logStream}\n${notices.map((n) => n.eventId).join('\n')}`)
    .digest('hex')
    .slice(0, 16);
  const instances = result.notified.length;
  const lines = [
    `IDS ALERTS NAMING ${instances === 1 ? 'AN INSTANCE' : `${instances} INSTANCES`} AS DESTINATION: NO RESPONSE STARTED FROM THESE ALERTS`,
    '',
    'Cordon starts the forensic workflow only on the instance an alert names as its SOURCE. The',
    'destination of a packet is chosen by whoever sends it: an attacker outside could otherwise have any',
    'instance isolated or stopped by tripping a signature against it. Look at these instances; traffic',
    'they send in answer raises alerts of its own, with them as the source.',
    '',
    ...notices
      .slice(0, maxNotifiedAlerts)
      .flatMap(({ alert, eventId, destination, source }) => [
        `${destination}: ${source ? `lateral movement from ${source}, on which a response was started` : 'inbound'}` +
          `${responded.has(destination) ? '; a response was started on it for an alert it sent' : '; no response started on it'}`,
        `  sid ${alert.signatureId}${alert.rev === undefined ? '' : ` rev ${alert.rev}`}, severity ${alert.severity}, ` +
          `category ${asciiLine(alert.category ?? '(none)', 100)}: ${asciiLine(alert.signature, 200)}`,
        `  ${asciiLine(alert.srcIp, 45)} -> ${asciiLine(alert.destIp, 45)} at ${asciiLine(alert.timestamp, 40)}; event ${asciiLine(eventId, 64)}`,
      ]),
    ...(notices.length > maxNotifiedAlerts
      ? [`... and ${notices.length - maxNotifiedAlerts} more alert(s), in the log group`]
      : []),
    '',
    `Account ${payload.owner}; log ${asciiLine(payload.logGroup, 200)} stream ${asciiLine(payload.logStream, 200)}; batch ${batch}`,
    `Inbound: ${result.destinationOnly}; lateral: ${result.lateral}; responses started: ${result.started.length}`,
  ];
  return {
    subject:
      `[Cordon] IDS: ${notices.length} alert(s) on ${instances} instance(s) as destination, no response`.slice(
        0,
        100,
      ),
    body: `${lines.join('\n')}\n`,
    batch,
  };
}

/**
 * The VPC of the IDS sensor, when the log stream is named after its instance (the CloudWatch agent's
 * default `{instance_id}`): addresses are then looked up in that VPC only, since private ranges of
 * different VPCs may overlap.
 */
async function sensorVpc(ec2: EC2Client, logStream: string): Promise<string | undefined> {
  if (!instanceIdPattern.test(logStream)) return undefined;
  try {
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [logStream] }));
    return out.Reservations?.[0]?.Instances?.[0]?.VpcId;
  } catch (error) {
    // The stream only looks like an instance id: search the whole Region instead.
    if ((awsErrorCode(error) ?? '').startsWith('InvalidInstanceID')) return undefined;
    throw error;
  }
}

/** The instances whose network interfaces hold `ip` (private IPv4, or IPv6). */
async function instancesHolding(ec2: EC2Client, ip: string, vpcId: string | undefined): Promise<string[]> {
  const range = hostCidr(ip);
  if (!range) return [];
  // A public IPv4 address is never an interface's private address: skip the call.
  if (range.family === 'ipv4' && isPublicRange(range)) return [];
  const filters: Filter[] = [
    range.family === 'ipv4'
      ? { Name: 'addresses.private-ip-address', Values: [ip] }
      : { Name: 'ipv6-addresses.ipv6-address', Values: [ip] },
    ...(vpcId ? [{ Name: 'vpc-id', Values: [vpcId] }] : []),
  ];
  const out = await ec2.send(new DescribeNetworkInterfacesCommand({ Filters: filters }));
  const ids = (out.NetworkInterfaces ?? [])
    .map((n) => n.Attachment?.InstanceId)
    .filter((id): id is string => typeof id === 'string' && instanceIdPattern.test(id));
  return [...new Set(ids)];
}
