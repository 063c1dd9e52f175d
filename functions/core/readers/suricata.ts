/**
 * Suricata's EVE JSON alert records, read defensively. Written from the EVE format documentation
 * (docs.suricata.io, "Eve JSON Format"): every record has `timestamp`, `event_type` and the flow's
 * addresses; an `alert` record carries `alert.signature_id`, `rev`, `signature`, `category`,
 * `severity` (1 is the most severe) and `action` (`allowed`, or `blocked` when Suricata runs inline).
 * A line is data from a host that may be compromised: nothing in it is trusted, pasted or executed.
 */
import { z } from 'zod';
import { ipSchema } from '../case.js';
import { isRecord } from '../text.js';

/** A log event larger than this is not one EVE alert (CloudWatch Logs allows 1 MB per event). */
export const maxLineBytes = 64 * 1024;

const port = z.number().int().min(0).max(65535);
const shortText = (max: number) => z.string().max(max);

const eveAlertSchema = z.looseObject({
  timestamp: z.string().min(1).max(64),
  event_type: z.literal('alert'),
  src_ip: ipSchema,
  dest_ip: ipSchema,
  src_port: port.optional(),
  dest_port: port.optional(),
  proto: shortText(16).optional(),
  app_proto: shortText(32).optional(),
  in_iface: shortText(64).optional(),
  direction: shortText(16).optional(),
  alert: z.looseObject({
    action: z.enum(['allowed', 'blocked']).optional(),
    gid: z.number().int().min(0).optional(),
    signature_id: z.number().int().min(0).max(4_294_967_295),
    rev: z.number().int().min(0).optional(),
    signature: z.string().min(1).max(1024),
    category: z.string().max(256).optional(),
    severity: z.number().int().min(1).max(255),
  }),
});

export interface EveAlert {
  timestamp: string;
  /** The 64-bit flow id as text: JSON numbers above 2^53 lose digits when parsed. */
  flowId?: string;
  srcIp: string;
  destIp: string;
  srcPort?: number;
  destPort?: number;
  proto?: string;
  action?: 'allowed' | 'blocked';
  signatureId: number;
  rev?: number;
  signature: string;
  category?: string;
  severity: number;
}

export type EveParse =
  | { kind: 'alert'; alert: EveAlert }
  /** A well-formed EVE record of another type (flow, dns, http…): not an alert, not an error. */
  | { kind: 'other'; eventType: string }
  | { kind: 'malformed'; reason: string };

const eventTypePattern = /^[a-z0-9_]{1,32}$/;

/**
 * Reads one log line. Never throws: a line that is not JSON, not an object, or an alert without the
 * fields an alert must have comes back as `malformed` with a short reason naming only the field.
 */
export function parseEveLine(line: string): EveParse {
  if (Buffer.byteLength(line) > maxLineBytes) return { kind: 'malformed', reason: 'line too long' };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { kind: 'malformed', reason: 'not JSON' };
  }
  if (!isRecord(value)) return { kind: 'malformed', reason: 'not a JSON object' };
  const eventType = value.event_type;
  if (typeof eventType !== 'string' || !eventTypePattern.test(eventType)) {
    return { kind: 'malformed', reason: 'no event_type' };
  }
  if (eventType !== 'alert') return { kind: 'other', eventType };
  const parsed = eveAlertSchema.safeParse(value);
  if (!parsed.success) {
    const where = parsed.error.issues[0]?.path.join('.') || 'alert';
    return { kind: 'malformed', reason: `bad field ${where.slice(0, 40)}` };
  }
  const e = parsed.data;
  const flowId = /"flow_id"\s*:\s*(\d{1,20})\b/.exec(line)?.[1];
  return {
    kind: 'alert',
    alert: {
      timestamp: e.timestamp,
      ...(flowId ? { flowId } : {}),
      srcIp: e.src_ip,
      destIp: e.dest_ip,
      ...(e.src_port === undefined ? {} : { srcPort: e.src_port }),
      ...(e.dest_port === undefined ? {} : { destPort: e.dest_port }),
      ...(e.proto ? { proto: e.proto } : {}),
      ...(e.alert.action ? { action: e.alert.action } : {}),
      signatureId: e.alert.signature_id,
      ...(e.alert.rev === undefined ? {} : { rev: e.alert.rev }),
      signature: e.alert.signature,
      ...(e.alert.category ? { category: e.alert.category } : {}),
      severity: e.alert.severity,
    },
  };
}
