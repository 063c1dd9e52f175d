import {
  accountIdPattern,
  instanceIdPattern,
  partitionOf,
  regionPattern,
} from '../../functions/core/case.js';
import { instanceArnPattern } from '../../functions/core/readers/asff.js';
import { field } from '../../functions/core/readers/fields.js';
import { isRecord } from '../../functions/core/text.js';

/**
 * Puts a real finding onto the emulated account. Only what Intake reads to place the instance is
 * changed, in the field Intake's readers read it from (functions/core/readers/): the instance id, the
 * account and the region, each in the finding's own shape; and, where a GuardDuty finding carries its
 * ARN, the same account and region in it, which Intake reads to find the finding in Security Hub. Everything else stays as it came, and a
 * value Intake refuses is never replaced, so the demo refuses what a deployed Cordon refuses, for the
 * same reason.
 */
export interface Mapping {
  /** The values replaced, as the finding named them. */
  from: { instanceId?: string; accountId?: string; region?: string };
  to: { instanceId: string; accountId: string; region: string };
  /** Values Intake reads that were left as they came, because Intake refuses them. */
  kept: { what: What; value: unknown }[];
}

type What = 'instance id' | 'account' | 'region';

/** One place Intake reads a value from, and how to replace it there. */
interface Slot {
  value: unknown;
  set(value: string): void;
}

/**
 * Published findings redact their account to a word (the bundled `get-findings` sample says `id`).
 * Such a placeholder is replaced like a real account; anything else that is not 12 digits is left for
 * Intake to refuse.
 */
const accountPlaceholder = /^[A-Za-z_]{1,32}$/;

const accepts: Record<What, (value: unknown) => value is string> = {
  'instance id': (v): v is string => typeof v === 'string' && instanceIdPattern.test(v),
  account: (v): v is string =>
    typeof v === 'string' && (accountIdPattern.test(v) || accountPlaceholder.test(v)),
  region: (v): v is string => typeof v === 'string' && regionPattern.test(v),
};

/** The key `field` (core/readers/fields.ts) reads: the camelCase name, else its PascalCase twin. */
function keyOf(record: Record<string, unknown>, name: string): string | undefined {
  if (Object.hasOwn(record, name)) return name;
  const pascal = `${name.charAt(0).toUpperCase()}${name.slice(1)}`;
  return Object.hasOwn(record, pascal) ? pascal : undefined;
}

function slotAt(record: unknown, key: string | undefined): Slot | undefined {
  if (!isRecord(record) || key === undefined || !Object.hasOwn(record, key)) return undefined;
  return {
    value: record[key],
    set: (value) => {
      record[key] = value;
    },
  };
}

const fieldSlot = (record: unknown, name: string) =>
  isRecord(record) ? slotAt(record, keyOf(record, name)) : undefined;

/** Intake's `pickAccount`/`pickRegion`: the first source that names a value; later ones only when it is absent or empty. */
function firstNamed(slots: (Slot | undefined)[]): Slot | undefined {
  return slots.find((s): s is Slot => s !== undefined && s.value !== undefined && s.value !== '');
}

class Mapper {
  readonly from: Mapping['from'] = {};
  readonly kept: Mapping['kept'] = [];

  constructor(readonly to: Mapping['to']) {}

  /** Replaces the value if Intake accepts it, else keeps it and says so. Returns whether it was replaced. */
  map(what: What, slot: Slot | undefined): boolean {
    if (!slot) return false;
    if (!accepts[what](slot.value)) {
      this.kept.push({ what, value: slot.value });
      return false;
    }
    const key = what === 'instance id' ? 'instanceId' : what === 'account' ? 'accountId' : 'region';
    this.from[key] ??= slot.value;
    slot.set(this.to[key]);
    return true;
  }

  /**
   * `readGuardDutyFinding`: an `Instance` resource's `instanceDetails.instanceId`, then the account and
   * region, the finding's own before the envelope's. Intake reads nothing else of a finding about
   * another kind of resource, nor the account and region once the instance id is refused.
   */
  guardDuty(finding: unknown, envelope: Record<string, unknown> | undefined): void {
    if (!isRecord(finding)) return;
    const resource = field(finding, 'resource');
    if (!isRecord(resource) || field(resource, 'resourceType') !== 'Instance') return;
    if (!this.map('instance id', fieldSlot(field(resource, 'instanceDetails'), 'instanceId'))) return;
    const account = firstNamed([fieldSlot(finding, 'accountId'), slotAt(envelope, 'account')]);
    const region = firstNamed([fieldSlot(finding, 'region'), slotAt(envelope, 'region')]);
    const before = { account: account?.value, region: region?.value };
    const accountMapped = this.map('account', account);
    const regionMapped = this.map('region', region);
    this.findingArn(fieldSlot(finding, 'arn'), before, { account: accountMapped, region: regionMapped });
  }

  /**
   * The finding's own ARN, which names its account and region too: Intake reads it to find the finding
   * in Security Hub (functions/core/securityhub.ts). Moved with the finding where it named the
   * account and region the finding did; an ARN that named others is left, and Intake leaves Security
   * Hub alone for it, as it would for the finding itself.
   */
  findingArn(
    slot: Slot | undefined,
    before: { account: unknown; region: unknown },
    mapped: { account: boolean; region: boolean },
  ): void {
    const match = typeof slot?.value === 'string' ? guardDutyFindingArn.exec(slot.value) : null;
    if (!slot || !match) return;
    const [, partition = '', region = '', account = '', rest = ''] = match;
    if (account !== before.account || region !== before.region) return;
    const to = {
      account: mapped.account ? this.to.accountId : account,
      region: mapped.region ? this.to.region : region,
    };
    const movedPartition =
      mapped.region && partition === partitionOf(region) ? partitionOf(to.region) : partition;
    slot.set(`arn:${movedPartition}:guardduty:${to.region}:${to.account}:${rest}`);
  }

  /**
   * `readAsffFinding`: the instance is the first `Resources[]` entry of type `AwsEc2Instance`, read from
   * its ARN, which also names the account and region when those fields are not empty. Every instance
   * resource naming the same instance is changed alike, so that the finding names as many distinct
   * instances as before (Intake refuses several).
   */
  asff(finding: unknown, envelope: Record<string, unknown> | undefined): void {
    if (!isRecord(finding) || !Array.isArray(finding.Resources)) return;
    const instances = finding.Resources.filter(
      (r): r is Record<string, unknown> => isRecord(r) && r.Type === 'AwsEc2Instance',
    );
    const [first] = instances;
    if (!first) return;
    const arn = parseArn(first.Id);
    if (!arn) {
      this.kept.push({ what: 'instance id', value: first.Id });
      return;
    }
    const next = { ...arn };
    const part = (name: 'instanceId' | 'region' | 'account'): Slot => ({
      value: arn[name],
      set: (value) => {
        next[name] = value;
      },
    });
    if (!this.map('instance id', part('instanceId'))) return;
    const claimed = slotAt(finding, 'AwsAccountId');
    // Intake refuses an instance ARN whose account is not the finding's AwsAccountId: where the two
    // agree, both are mapped and still agree; where they disagree, neither is, and Intake refuses.
    const disagree =
      arn.account !== '' &&
      typeof claimed?.value === 'string' &&
      claimed.value !== '' &&
      claimed.value !== arn.account;
    if (disagree) this.kept.push({ what: 'account', value: arn.account });
    else {
      const sameAccount = arn.account !== '' && claimed?.value === arn.account;
      this.map('account', firstNamed([part('account'), claimed, slotAt(envelope, 'account')]));
      if (sameAccount && next.account !== arn.account) claimed?.set(next.account);
    }
    const region = firstNamed([
      part('region'),
      slotAt(first, 'Region'),
      slotAt(finding, 'Region'),
      slotAt(envelope, 'region'),
    ]);
    const regionBefore = region?.value;
    // Intake refuses a partition that does not match the region: a matching one must keep matching.
    if (
      this.map('region', region) &&
      arn.partition !== '' &&
      arn.partition === partitionOf(regionBefore as string)
    ) {
      next.partition = partitionOf(this.to.region);
    }
    for (const resource of instances) {
      const own = parseArn(resource.Id);
      if (own?.instanceId !== arn.instanceId || own.region !== arn.region || own.account !== arn.account)
        continue;
      resource.Id = formatArn({
        ...own,
        instanceId: next.instanceId,
        region: next.region,
        account: next.account,
        ...(resource === first ? { partition: next.partition } : {}),
      });
    }
  }

  /** A manual start: `instanceId`, and `accountId` and `region` when given (an empty one is refused there). */
  manual(start: Record<string, unknown>): void {
    this.map('instance id', slotAt(start, 'instanceId'));
    this.map('account', slotAt(start, 'accountId'));
    this.map('region', slotAt(start, 'region'));
  }
}

/** A GuardDuty finding's ARN, read loosely (a published sample's account is a word): partition, region, account, the rest. */
const guardDutyFindingArn = /^arn:([\w-]*):guardduty:([\w-]*):([\w-]*):(detector\/.+)$/;

interface InstanceArn {
  partition: string;
  /** `arn:aws::ec2:…`, as some published findings have it. */
  typo: boolean;
  region: string;
  account: string;
  instanceId: string;
}

function parseArn(id: unknown): InstanceArn | undefined {
  const match = typeof id === 'string' ? instanceArnPattern.exec(id) : null;
  if (!match) return undefined;
  const [, partition = '', region = '', account = '', instanceId = ''] = match;
  return { partition, typo: (id as string).startsWith(`arn:${partition}::`), region, account, instanceId };
}

function formatArn(arn: InstanceArn): string {
  return `arn:${arn.partition}:${arn.typo ? ':' : ''}ec2:${arn.region}:${arn.account}:instance/${arn.instanceId}`;
}

const isAsff = (value: unknown) =>
  isRecord(value) && (Object.hasOwn(value, 'Resources') || Object.hasOwn(value, 'ProductArn'));

/**
 * Maps `event` as Intake's `normaliseTrigger` would read it, shape by shape (EventBridge GuardDuty or
 * Security Hub envelope, the partial `{region, detail}`, a manual start, a `Findings` list, a bare
 * GuardDuty or ASFF finding). Returns a copy; the event given is not changed.
 */
export function mapEvent(event: unknown, to: Mapping['to']): { event: unknown; mapping: Mapping } {
  const mapper = new Mapper(to);
  const copy: unknown = event === undefined ? undefined : structuredClone(event);
  if (isRecord(copy)) {
    if (Object.hasOwn(copy, 'source') || Object.hasOwn(copy, 'detail-type')) {
      const source = copy.source;
      const detailType = copy['detail-type'];
      if (source === 'aws.guardduty' && detailType === 'GuardDuty Finding') {
        mapper.guardDuty(copy.detail, copy);
      } else if (
        source === 'aws.securityhub' &&
        (detailType === 'Security Hub Findings - Custom Action' ||
          detailType === 'Security Hub Findings - Imported')
      ) {
        const findings = isRecord(copy.detail) ? copy.detail.findings : undefined;
        if (Array.isArray(findings)) for (const finding of findings) mapper.asff(finding, copy);
      }
    } else if (Object.hasOwn(copy, 'detail')) {
      mapper.guardDuty(copy.detail, copy);
    } else if (Object.hasOwn(copy, 'instanceId')) {
      mapper.manual(copy);
    } else if (Object.hasOwn(copy, 'Findings')) {
      const list = copy.Findings;
      if (Array.isArray(list)) {
        const asff = list.some(isAsff);
        for (const finding of list) {
          if (asff) mapper.asff(finding, undefined);
          else mapper.guardDuty(finding, undefined);
        }
      }
    } else if (isAsff(copy)) {
      mapper.asff(copy, undefined);
    } else if (['Resource', 'Service', 'resource', 'service'].some((k) => Object.hasOwn(copy, k))) {
      mapper.guardDuty(copy, undefined);
    }
  }
  return { event: copy, mapping: { from: mapper.from, to, kept: mapper.kept } };
}
