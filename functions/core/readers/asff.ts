/**
 * The reader of findings in the AWS Security Finding Format: a Security Hub finding handed over on its
 * own or in a list, or inside a Security Hub EventBridge event (`detail.findings`). Cordon acts on
 * instances, so it reads the instance a finding is about and refuses a finding about anything else.
 */
import { instanceIdPattern, partitionOf } from '../case.js';
import { cleanText, isRecord } from '../text.js';
import {
  type Envelope,
  type Home,
  optionalCount,
  optionalFlag,
  pickAccount,
  pickRegion,
  RemoteIps,
  refuse,
  refuseNotInstance,
} from './fields.js';

/** What an ASFF finding says about the instance it is about, before any policy applies. */
export interface AsffFinding {
  instanceId: string;
  accountId: string;
  region: string;
  /** Finding text is cleaned (`cleanText`). */
  id: string;
  type?: string;
  title?: string;
  /** On GuardDuty's 0–10 scale. */
  severity: number;
  count?: number;
  sample: boolean;
  archived: boolean;
  remoteIps: string[];
}

/** What ASFF's deprecated `Normalized` is set to when a provider gives only a `Label`. */
const labelScore: Record<string, number> = { INFORMATIONAL: 0, LOW: 1, MEDIUM: 40, HIGH: 70, CRITICAL: 90 };

/** GuardDuty's own fields as Security Hub flattens them into `ProductFields`. */
const gd = {
  count: 'aws/guardduty/service/count',
  archived: 'aws/guardduty/service/archived',
  sample: 'aws/guardduty/service/additionalInfo/sample',
};
const gdRemoteIp =
  /^aws\/guardduty\/service\/action\/(?:networkConnectionAction|awsApiCallAction|portProbeAction)\/(?:.*\/)?remoteIpDetails\/ipAddressV[46]$/;

interface InstanceArn {
  instanceId: string;
  partition?: string;
  region?: string;
  account?: string;
}

/**
 * An instance ARN as Intake reads it: partition, region, account and instance id. `::?` accepts the
 * published typo `arn:aws::ec2:…`, an empty field before the service. The demo's mapping reads ARNs
 * with this same pattern, so that it finds the instance exactly where Intake does.
 */
export const instanceArnPattern = /^arn:([^:]*)::?ec2:([^:]*):([^:]*):instance\/(.*)$/;

/**
 * Reads an `AwsEc2Instance` resource id. It must be an instance ARN, read tolerantly: GuardDuty
 * findings in Security Hub have been published with `arn:aws::ec2:…` (an extra empty field), and an
 * empty partition, region or account says nothing rather than something wrong.
 */
function readInstanceArn(id: unknown): InstanceArn {
  const match = typeof id === 'string' ? instanceArnPattern.exec(id) : null;
  if (!match) refuse('MALFORMED', 'the AwsEc2Instance resource id is not an instance ARN');
  const [, partition = '', region = '', account = '', instanceId = ''] = match;
  if (!instanceIdPattern.test(instanceId)) {
    refuse('MALFORMED', 'the instance id is not i- followed by 8 or 17 hex digits');
  }
  if (partition !== '' && !['aws', 'aws-cn', 'aws-us-gov'].includes(partition)) {
    refuse('MALFORMED', 'the instance ARN names an unknown partition');
  }
  return {
    instanceId,
    ...(partition ? { partition } : {}),
    ...(region ? { region } : {}),
    ...(account ? { account } : {}),
  };
}

/**
 * Severity on GuardDuty's 0–10 scale: a GuardDuty finding keeps its own score in `Severity.Product`;
 * for any other product, and when that score is missing, `Normalized` (0–100) divided by ten, or the
 * score Security Hub derives from `Label`.
 */
function severityOf(finding: Record<string, unknown>): number {
  const severity = finding.Severity;
  if (!isRecord(severity)) refuse('MALFORMED', 'the finding has no severity');
  const fromGuardDuty =
    typeof finding.ProductArn === 'string' && finding.ProductArn.endsWith(':product/aws/guardduty');
  const product = severity.Product;
  if (
    fromGuardDuty &&
    typeof product === 'number' &&
    Number.isFinite(product) &&
    product >= 0 &&
    product <= 10
  ) {
    return product;
  }
  const normalized = severity.Normalized;
  if (typeof normalized === 'number' && Number.isFinite(normalized) && normalized >= 0 && normalized <= 100) {
    return normalized / 10;
  }
  const label = severity.Label;
  if (typeof label === 'string' && Object.hasOwn(labelScore, label)) return (labelScore[label] ?? 0) / 10;
  return refuse('MALFORMED', 'the severity is not a number');
}

function productFieldsOf(finding: Record<string, unknown>): Record<string, unknown> {
  const fields = finding.ProductFields;
  if (fields === undefined) return {};
  if (!isRecord(fields)) refuse('MALFORMED', 'ProductFields is not an object');
  return fields;
}

/**
 * The remote party: ASFF's `Network` source when traffic came in to the instance, its destination when
 * the instance reached out; for GuardDuty findings also the remote addresses flattened into
 * `ProductFields`.
 */
function remoteIpsOf(finding: Record<string, unknown>, fields: Record<string, unknown>): string[] {
  const ips = new RemoteIps();
  const network = finding.Network;
  if (isRecord(network)) {
    if (network.Direction === 'IN') {
      ips.add(network.SourceIpV4);
      ips.add(network.SourceIpV6);
    } else if (network.Direction === 'OUT') {
      ips.add(network.DestinationIpV4);
      ips.add(network.DestinationIpV6);
    }
  }
  for (const [key, value] of Object.entries(fields)) {
    if (gdRemoteIp.test(key)) ips.add(value);
  }
  return ips.list();
}

/**
 * Reads one finding in the AWS Security Finding Format. The instance is the `Resources[]` entry of type
 * `AwsEc2Instance`; a finding that names several different instances is refused, because one response
 * contains one instance.
 */
export function readAsffFinding(finding: unknown, envelope: Envelope, home: Home): AsffFinding {
  if (!isRecord(finding)) refuse('MALFORMED', 'the Security Hub finding is not an object');
  const resources = finding.Resources;
  if (!Array.isArray(resources) || resources.length === 0)
    refuse('MALFORMED', 'the finding lists no resources');
  const instances = resources.filter(
    (r): r is Record<string, unknown> => isRecord(r) && r.Type === 'AwsEc2Instance',
  );
  if (instances.length === 0) {
    const first: unknown = resources[0];
    refuseNotInstance(isRecord(first) ? first.Type : undefined);
  }
  const arns = instances.map((r) => ({ resource: r, arn: readInstanceArn(r.Id) }));
  const named = new Set(arns.map(({ arn }) => `${arn.account ?? ''}/${arn.region ?? ''}/${arn.instanceId}`));
  if (named.size > 1) {
    refuse(
      'MULTIPLE_INSTANCES',
      `the finding names ${named.size} instances; Cordon contains one instance per case`,
    );
  }
  const [chosen] = arns;
  if (!chosen) return refuse('MALFORMED', 'the finding names no instance');
  const { resource, arn } = chosen;

  const id = cleanText(finding.Id);
  if (!id) refuse('MALFORMED', 'the finding has no id');
  // A finding imported into Security Hub says which account it is from (AwsAccountId, which Security
  // Hub checks against the importer for most products) and names the instance by ARN, which nobody
  // checks: a member principal allowed BatchImportFindings could name another account's instance.
  // The two must agree.
  const claimed = pickAccount([finding.AwsAccountId], '');
  if (arn.account && claimed && arn.account !== claimed) {
    refuse('ACCOUNT_MISMATCH', 'the instance belongs to another account than the one the finding is from');
  }
  const accountId = pickAccount([arn.account, finding.AwsAccountId, envelope.account], home.accountId);
  const region = pickRegion([arn.region, resource.Region, finding.Region, envelope.region], home.region);
  if (arn.partition && arn.partition !== partitionOf(region)) {
    refuse('MALFORMED', 'the instance ARN partition does not match its region');
  }
  const fields = productFieldsOf(finding);
  const types = finding.Types;
  const type = Array.isArray(types) ? cleanText(types[0]) : undefined;
  const title = cleanText(finding.Title);
  const count = optionalCount(fields[gd.count]);
  return {
    instanceId: arn.instanceId,
    accountId,
    region,
    id,
    ...(type ? { type } : {}),
    ...(title ? { title } : {}),
    severity: severityOf(finding),
    ...(count === undefined ? {} : { count }),
    sample: optionalFlag(finding.Sample, 'Sample') || fields[gd.sample] === 'true',
    // Archived in GuardDuty (by hand), or no longer active in Security Hub.
    archived: fields[gd.archived] === 'true' || finding.RecordState === 'ARCHIVED',
    remoteIps: remoteIpsOf(finding, fields),
  };
}

/** A finding in ASFF, as opposed to a GuardDuty one: ASFF alone has `Resources` and `ProductArn`. */
export function isAsffFinding(value: unknown): boolean {
  return isRecord(value) && (Object.hasOwn(value, 'Resources') || Object.hasOwn(value, 'ProductArn'));
}

/** Which of the two Security Hub EventBridge events Cordon takes this is, if either. */
export function securityHubEventKind(
  event: Record<string, unknown>,
): 'custom-action' | 'imported' | undefined {
  if (event.source !== 'aws.securityhub') return undefined;
  if (event['detail-type'] === 'Security Hub Findings - Custom Action') return 'custom-action';
  if (event['detail-type'] === 'Security Hub Findings - Imported') return 'imported';
  return undefined;
}

/** The findings a Security Hub event carries in `detail.findings`: at least one, or the event is refused. */
export function securityHubFindings(detail: unknown): unknown[] {
  if (!isRecord(detail)) refuse('MALFORMED', 'the Security Hub event has no detail');
  const findings = detail.findings;
  if (!Array.isArray(findings) || findings.length === 0)
    refuse('MALFORMED', 'the Security Hub event lists no findings');
  return findings;
}

const customActionArn = /^arn:[a-z-]*:securityhub:[a-z0-9-]*:\d{12}:action\/custom\/([A-Za-z0-9]{1,20})$/;

/**
 * The ids of the custom actions a custom-action event names in `resources` (`…:action/custom/<Id>`).
 * The display name (`actionName`) is not read: it is free text, edited in the console, and has been
 * seen with trailing spaces.
 */
export function customActionIds(resources: unknown): string[] {
  return Array.isArray(resources)
    ? resources.flatMap((r) => {
        const match = typeof r === 'string' ? customActionArn.exec(r) : null;
        return match?.[1] ? [match[1]] : [];
      })
    : [];
}
