import { instanceIdPattern } from '../../core/case.js';
import {
  cleanText,
  type Envelope,
  type FindingFacts,
  field,
  type Home,
  isRecord,
  optionalCount,
  optionalFlag,
  optionalRecord,
  pickAccount,
  pickRegion,
  quotableType,
  RemoteIps,
  refuse,
} from './values.js';

/**
 * Reads one GuardDuty finding: the camelCase object EventBridge carries in `detail`, or the PascalCase
 * one `get-findings` prints. The resource type decides whether it is about an instance, whatever else
 * the finding carries (GuardDuty's own sample findings attach `instanceDetails` to access-key and
 * S3 findings).
 */
export function readGuardDutyFinding(finding: unknown, envelope: Envelope, home: Home): FindingFacts {
  if (!isRecord(finding)) refuse('MALFORMED', 'the GuardDuty finding is not an object');
  if (Object.hasOwn(finding, 'findings') || Object.hasOwn(finding, 'Findings')) {
    refuse('MALFORMED', 'a GuardDuty event carries one finding in its detail, never a findings array');
  }
  const resource = field(finding, 'resource');
  if (!isRecord(resource)) refuse('MALFORMED', 'the finding names no resource');
  const resourceType = field(resource, 'resourceType');
  if (typeof resourceType !== 'string') refuse('MALFORMED', 'the finding has no resource type');
  if (resourceType !== 'Instance') {
    const quoted = quotableType(resourceType);
    refuse(
      'RESOURCE_NOT_INSTANCE',
      quoted
        ? `the finding is about a resource of type ${quoted}, not an EC2 instance`
        : 'the finding is not about an EC2 instance',
    );
  }
  const details = field(resource, 'instanceDetails');
  if (!isRecord(details)) refuse('MALFORMED', 'the finding names no instance');
  const instanceId = field(details, 'instanceId');
  if (typeof instanceId !== 'string' || !instanceIdPattern.test(instanceId)) {
    refuse('MALFORMED', 'the instance id is not i- followed by 8 or 17 hex digits');
  }

  const findingId = cleanText(field(finding, 'id'));
  if (!findingId) refuse('MALFORMED', 'the finding has no id');
  const findingType = cleanText(field(finding, 'type'));
  if (!findingType) refuse('MALFORMED', 'the finding has no type');
  const severity = field(finding, 'severity');
  if (typeof severity !== 'number' || !Number.isFinite(severity) || severity < 0 || severity > 10) {
    refuse('MALFORMED', 'the severity is not a number from 0 to 10');
  }

  const service = optionalRecord(field(finding, 'service'), 'the finding service block') ?? {};
  const title = cleanText(field(finding, 'title'));
  return {
    instanceId,
    accountId: pickAccount([field(finding, 'accountId'), envelope.account], home.accountId),
    region: pickRegion([field(finding, 'region'), envelope.region], home.region),
    findingId,
    findingType,
    ...(title ? { title } : {}),
    severity,
    ...countOf(service),
    sample: isSample(service),
    archived: optionalFlag(field(service, 'archived'), 'service.archived'),
    remoteIps: remoteIpsOf(service),
  };
}

function countOf(service: Record<string, unknown>): { count?: number } {
  const count = optionalCount(field(service, 'count'));
  return count === undefined ? {} : { count };
}

/**
 * GuardDuty marks its generated sample findings with `additionalInfo.sample: true`; `get-findings`
 * returns `additionalInfo` as `{ value: '<JSON text>', type }`, so the flag may sit inside that text.
 */
function isSample(service: Record<string, unknown>): boolean {
  const info = field(service, 'additionalInfo');
  if (!isRecord(info)) return false;
  if (optionalFlag(field(info, 'sample'), 'service.additionalInfo.sample')) return true;
  const text = field(info, 'value');
  if (typeof text !== 'string' || text.length > 65_536) return false;
  try {
    const parsed: unknown = JSON.parse(text);
    return isRecord(parsed) && parsed.sample === true;
  } catch {
    return false;
  }
}

/**
 * The remote party of the three instance actions that name one. Odd shapes here are skipped, not
 * refused: a missing address must not stop containment.
 */
function remoteIpsOf(service: Record<string, unknown>): string[] {
  const ips = new RemoteIps();
  const action = field(service, 'action');
  if (!isRecord(action)) return [];
  const addFrom = (details: unknown) => {
    if (!isRecord(details)) return;
    ips.add(field(details, 'ipAddressV4'));
    ips.add(field(details, 'ipAddressV6'));
  };
  for (const name of ['networkConnectionAction', 'awsApiCallAction']) {
    const taken = field(action, name);
    if (isRecord(taken)) addFrom(field(taken, 'remoteIpDetails'));
  }
  const probe = field(action, 'portProbeAction');
  const probes = isRecord(probe) ? field(probe, 'portProbeDetails') : undefined;
  if (Array.isArray(probes)) {
    for (const detail of probes.slice(0, 1000)) {
      if (isRecord(detail)) addFrom(field(detail, 'remoteIpDetails'));
    }
  }
  return ips.list();
}
