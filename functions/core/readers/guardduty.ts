/**
 * The one reader of GuardDuty findings, in the three shapes they come in: inside an EventBridge event
 * (`detail`, camelCase; cut down to `{ region, detail }` by some forwarders), the finding object alone,
 * and the PascalCase object `GetFindings` returns. It says what the finding says, before any policy
 * (archived, sample, severity, which resource a caller acts on) applies: the callers decide.
 */
import { instanceIdPattern } from '../case.js';
import { accessKeyIdSchema, iamNameSchema, principalIdSchema } from '../credentials.js';
import { cleanText, isRecord } from '../text.js';
import {
  type Envelope,
  field,
  fieldAt,
  type Home,
  optionalCount,
  optionalFlag,
  optionalRecord,
  pickAccount,
  pickRegion,
  quotableType,
  RemoteIps,
  refuse,
} from './fields.js';

/** An EventBridge event that GuardDuty sent, by its source and detail type. */
export function isGuardDutyEvent(event: Record<string, unknown>): boolean {
  return event.source === 'aws.guardduty' && event['detail-type'] === 'GuardDuty Finding';
}

/**
 * The shape of a finding handed over on its own: `api` (PascalCase, as `GetFindings` returns it),
 * `detail` (camelCase, as EventBridge carries it), or undefined for an object that is neither.
 */
export function bareFindingShape(value: Record<string, unknown>): 'api' | 'detail' | undefined {
  if (Object.hasOwn(value, 'Resource') || Object.hasOwn(value, 'Service')) return 'api';
  if (Object.hasOwn(value, 'resource') || Object.hasOwn(value, 'service')) return 'detail';
  return undefined;
}

/** The instance a finding names: its id, and the VPCs of its interfaces as the finding writes them. */
export interface FindingInstance {
  instanceId: string;
  /** Unchecked text, deduplicated: check each against a VPC id pattern before use. */
  vpcIds: string[];
}

/** The credentials an `AccessKey` finding names; each identifier only when well formed. */
export interface FindingAccessKey {
  /** `IAMUser`, `AssumedRole`, `Root`, `FederatedUser`…, when a short identifier. */
  userType?: string;
  userName?: string;
  accessKeyId?: string;
  principalId?: string;
}

/** The remote addresses each kind of action names (RemoteIps: valid, not loopback or unspecified). */
export interface FindingActions {
  /** `networkConnectionAction`, with its direction as GuardDuty writes it (`INBOUND`, `OUTBOUND`…). */
  networkConnection?: { direction?: string; remoteIps: string[] };
  awsApiCall?: { remoteIps: string[] };
  portProbe?: { remoteIps: string[] };
}

/** What one GuardDuty finding says, read and checked, before any policy applies. */
export interface GuardDutyFinding {
  /** Finding text is cleaned (`cleanText`): the id, the type and the title are safe to store and show. */
  id: string;
  type: string;
  title?: string;
  /** GuardDuty's 0–10 scale. */
  severity: number;
  count?: number;
  sample: boolean;
  archived: boolean;
  /** The finding's own account and region, else the envelope's, else Cordon's own. */
  accountId: string;
  region: string;
  resourceType: string;
  /** Present for every `Instance` finding; for another resource only when its instance id is well formed. */
  instance?: FindingInstance;
  /** Present for every `AccessKey` finding. */
  accessKey?: FindingAccessKey;
  /** Whether the resource was the target of the activity or its actor. */
  resourceRole?: 'TARGET' | 'ACTOR';
  actions: FindingActions;
  /** Every remote address the actions name, deduplicated, at most 50. */
  remoteIps: string[];
}

/**
 * A finding's resource type, read first and alone: so that a caller can refuse a resource it does not
 * act on before anything else about the finding is judged (a sample access-key finding is refused by
 * the instance workflow for its resource, the more fundamental reason).
 */
export function readGuardDutyResourceType(finding: unknown): string {
  return resourceOf(finding).resourceType;
}

function resourceOf(finding: unknown) {
  if (!isRecord(finding)) refuse('MALFORMED', 'the GuardDuty finding is not an object');
  if (Object.hasOwn(finding, 'findings') || Object.hasOwn(finding, 'Findings')) {
    refuse('MALFORMED', 'a GuardDuty event carries one finding in its detail, never a findings array');
  }
  const resource = field(finding, 'resource');
  if (!isRecord(resource)) refuse('MALFORMED', 'the finding names no resource');
  const resourceType = field(resource, 'resourceType');
  if (typeof resourceType !== 'string') refuse('MALFORMED', 'the finding has no resource type');
  return { record: finding, resource, resourceType };
}

/**
 * Reads one GuardDuty finding, camelCase or PascalCase. The resource type decides which details are
 * read, whatever else the finding carries (GuardDuty's own sample findings attach `instanceDetails` to
 * access-key and S3 findings). Anything malformed is refused (`MALFORMED: …`), never guessed at.
 */
export function readGuardDutyFinding(finding: unknown, envelope: Envelope, home: Home): GuardDutyFinding {
  const { record, resource, resourceType } = resourceOf(finding);
  const instance = instanceOf(resource, resourceType === 'Instance');
  const accessKey = resourceType === 'AccessKey' ? accessKeyOf(resource) : undefined;

  const id = cleanText(field(record, 'id'));
  if (!id) refuse('MALFORMED', 'the finding has no id');
  const type = cleanText(field(record, 'type'));
  if (!type) refuse('MALFORMED', 'the finding has no type');
  const severity = field(record, 'severity');
  if (typeof severity !== 'number' || !Number.isFinite(severity) || severity < 0 || severity > 10) {
    refuse('MALFORMED', 'the severity is not a number from 0 to 10');
  }

  const service = optionalRecord(field(record, 'service'), 'the finding service block') ?? {};
  const title = cleanText(field(record, 'title'));
  const accountId = pickAccount([field(record, 'accountId'), envelope.account], home.accountId);
  const region = pickRegion([field(record, 'region'), envelope.region], home.region);
  const count = optionalCount(field(service, 'count'));
  const sample = isSample(service);
  const archived = optionalFlag(field(service, 'archived'), 'service.archived');
  const role = field(service, 'resourceRole');
  const { actions, remoteIps } = actionsOf(service);
  return {
    id,
    type,
    ...(title ? { title } : {}),
    severity,
    ...(count === undefined ? {} : { count }),
    sample,
    archived,
    accountId,
    region,
    resourceType,
    ...(instance ? { instance } : {}),
    ...(accessKey ? { accessKey } : {}),
    ...(role === 'TARGET' || role === 'ACTOR' ? { resourceRole: role } : {}),
    actions,
    remoteIps,
  };
}

/** The instance of an `Instance` finding, which must name one; of another finding, only a well-formed one. */
function instanceOf(resource: Record<string, unknown>, required: boolean): FindingInstance | undefined {
  const details = field(resource, 'instanceDetails');
  if (!isRecord(details)) return required ? refuse('MALFORMED', 'the finding names no instance') : undefined;
  const instanceId = field(details, 'instanceId');
  if (typeof instanceId !== 'string' || !instanceIdPattern.test(instanceId)) {
    return required
      ? refuse('MALFORMED', 'the instance id is not i- followed by 8 or 17 hex digits')
      : undefined;
  }
  const interfaces = field(details, 'networkInterfaces');
  const vpcIds = (Array.isArray(interfaces) ? interfaces.slice(0, 100) : [])
    .map((n) => fieldAt(n, 'vpcId'))
    .filter((v): v is string => typeof v === 'string');
  return { instanceId, vpcIds: [...new Set(vpcIds)] };
}

function accessKeyOf(resource: Record<string, unknown>): FindingAccessKey {
  const details = field(resource, 'accessKeyDetails');
  if (!isRecord(details)) refuse('MALFORMED', 'the finding has no access key details');
  const userType = quotableType(field(details, 'userType'));
  const userName = iamNameSchema.safeParse(field(details, 'userName'));
  const accessKeyId = accessKeyIdSchema.safeParse(field(details, 'accessKeyId'));
  const principalId = principalIdSchema.safeParse(field(details, 'principalId'));
  return {
    ...(userType ? { userType } : {}),
    ...(userName.success ? { userName: userName.data } : {}),
    ...(accessKeyId.success ? { accessKeyId: accessKeyId.data } : {}),
    ...(principalId.success ? { principalId: principalId.data } : {}),
  };
}

/**
 * GuardDuty marks the sample findings it generates with `additionalInfo.sample: true`; `GetFindings`
 * returns `additionalInfo` as `{ value: '<JSON text>', type }`, so the flag may sit inside that text.
 * Every reader of findings must see it in both places: a sample missed is a response to nothing.
 */
function isSample(service: Record<string, unknown>): boolean {
  const info = field(service, 'additionalInfo');
  if (!isRecord(info)) return false;
  if (optionalFlag(field(info, 'sample'), 'service.additionalInfo.sample')) return true;
  const text = field(info, 'value');
  if (typeof text !== 'string' || text.length > 65_536) return false;
  try {
    const parsed: unknown = JSON.parse(text);
    return isRecord(parsed) && field(parsed, 'sample') === true;
  } catch {
    return false;
  }
}

/**
 * The remote party of the three actions that name one. Odd shapes here are skipped, not refused: a
 * missing address must not stop a response.
 */
function actionsOf(service: Record<string, unknown>): { actions: FindingActions; remoteIps: string[] } {
  const all = new RemoteIps();
  const addressesOf = (...holders: unknown[]): string[] => {
    const own = new RemoteIps();
    for (const holder of holders) {
      for (const name of ['ipAddressV4', 'ipAddressV6']) {
        const ip = fieldAt(holder, 'remoteIpDetails', name);
        own.add(ip);
        all.add(ip);
      }
    }
    return own.list();
  };
  const action = field(service, 'action');
  if (!isRecord(action)) return { actions: {}, remoteIps: [] };
  const actions: FindingActions = {};
  const connection = field(action, 'networkConnectionAction');
  if (isRecord(connection)) {
    const direction = quotableType(field(connection, 'connectionDirection'));
    actions.networkConnection = { ...(direction ? { direction } : {}), remoteIps: addressesOf(connection) };
  }
  const call = field(action, 'awsApiCallAction');
  if (isRecord(call)) actions.awsApiCall = { remoteIps: addressesOf(call) };
  const probe = field(action, 'portProbeAction');
  const probes = isRecord(probe) ? field(probe, 'portProbeDetails') : undefined;
  if (Array.isArray(probes)) actions.portProbe = { remoteIps: addressesOf(...probes.slice(0, 1000)) };
  return { actions, remoteIps: all.list() };
}
