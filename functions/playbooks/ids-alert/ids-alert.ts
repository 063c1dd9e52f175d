import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import {
  DescribeInstancesCommand,
  DescribeNetworkInterfacesCommand,
  type EC2Client,
  type Filter,
} from '@aws-sdk/client-ec2';
import { type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { accountIdPattern, instanceIdPattern } from '../../core/case.js';
import type { Config } from '../../core/config.js';
import { awsErrorCode, ConfigurationError, InvalidStepInputError } from '../../core/errors.js';
import { hostCidr, isPublicRange } from '../../core/nacl.js';
import { type EveAlert, parseEveLine } from '../../core/readers/suricata.js';

export const idsStep = 'ids-alert';
/** Who the forensic workflow records as having asked (Intake's `requestedBy`). */
export const idsRequester = 'ids:suricata';
/** Executions that should end with the instance stopped are named so; Stop After Evidence looks for it. */
export const stopPrefix = 'ids-stop-';

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
  config: Pick<
    Config,
    'AWS_REGION' | 'IDS_START_MAX_SEVERITY' | 'IDS_STOP_MAX_SEVERITY' | 'FORENSICS_STATE_MACHINE_ARN'
  >;
}

export interface Started {
  instanceId: string;
  executionArn: string;
  stopAfterEvidence: boolean;
  severity: number;
  signatureId: number;
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
  started: Started[];
}

/** Text from the IDS for the workflow's `reason`: printable ASCII only (Intake refuses control characters). */
const ascii = (text: string, max: number) =>
  text
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim()
    .slice(0, max);

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
 * (malformed lines are counted and skipped, never fatal), each alert at or above the configured
 * severity is matched to the instance that holds its source or destination address, and the forensic
 * workflow is started once per instance per batch. When the alert is severe enough
 * (IDS_STOP_MAX_SEVERITY), the execution is named so that Stop After Evidence stops the instance once
 * its disks and memory are safely captured.
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
    started: [],
  };
  // CloudWatch Logs checks that the destination is reachable with a control message: nothing to do.
  if (payload.messageType === 'CONTROL_MESSAGE') return result;
  if (!accountIdPattern.test(payload.owner))
    throw new InvalidStepInputError('The log data owner is not an account id');

  const candidates: { alert: EveAlert; eventId: string }[] = [];
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
  const chosen = new Map<string, { alert: EveAlert; eventId: string }>();
  for (const c of candidates) {
    const holders = new Set<string>();
    let ambiguous = false;
    for (const ip of new Set([c.alert.srcIp, c.alert.destIp])) {
      const found = await instancesAt(ip);
      if (found.length > 1) ambiguous = true;
      else if (found[0]) holders.add(found[0]);
    }
    if (holders.size === 0) {
      if (ambiguous) result.ambiguous++;
      else result.unmatched++;
      continue;
    }
    for (const instanceId of holders) {
      const best = chosen.get(instanceId);
      if (!best || c.alert.severity < best.alert.severity) chosen.set(instanceId, c);
    }
  }

  for (const [instanceId, { alert, eventId }] of chosen) {
    const stop = deps.config.IDS_STOP_MAX_SEVERITY > 0 && alert.severity <= deps.config.IDS_STOP_MAX_SEVERITY;
    const digest = createHash('sha256')
      .update(`${payload.logGroup}\n${payload.logStream}\n${eventId}`)
      .digest('hex');
    const reason = ascii(
      `Suricata alert sid ${alert.signatureId}${alert.rev === undefined ? '' : ` rev ${alert.rev}`}, severity ${alert.severity}` +
        `${alert.category ? ` (${alert.category})` : ''} at ${alert.timestamp}: ${alert.signature}; ` +
        `${alert.srcIp} -> ${alert.destIp}; log ${payload.logGroup} event ${eventId}`,
      512,
    );
    const out = await deps.sfn.send(
      new StartExecutionCommand({
        stateMachineArn: deps.config.FORENSICS_STATE_MACHINE_ARN,
        // The same batch retried starts nothing twice: same name, same input.
        name: `${stop ? stopPrefix : 'ids-'}${instanceId}-${digest.slice(0, 16)}`,
        input: JSON.stringify({
          instanceId,
          region,
          accountId: payload.owner,
          reason,
          requestedBy: idsRequester,
        }),
      }),
    );
    result.started.push({
      instanceId,
      executionArn: out.executionArn ?? '',
      stopAfterEvidence: stop,
      severity: alert.severity,
      signatureId: alert.signatureId,
    });
  }
  return result;
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
