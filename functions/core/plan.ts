/**
 * The order of the response, and the first look at the instance that decides it. Intake takes that
 * look before the case opens (`assessInstance`: one round of reads; the response policy may need the
 * instance's tags it reads), so that containment starts
 * at once, in the same shape Triage's full inventory has (functions/core/containment.ts `triageSchema`):
 * Isolate writes the isolation group's egress from the same VPC endpoints the plan was chosen from.
 */
import {
  DescribeVpcEndpointsCommand,
  type EC2Client,
  type Instance,
  type VpcEndpoint,
} from '@aws-sdk/client-ec2';
import { DescribeInstanceInformationCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { Case } from './case.js';
import type { TriagePicture } from './containment.js';
import { ssmSurvivesIsolation } from './endpoints.js';
import { describeError } from './errors.js';
import { readInstance } from './instance.js';
import type { Plan, TriageResult } from './state.js';

export function platformOf(instance: Instance): Plan['platform'] {
  if (instance.Platform === 'Windows' || /windows/i.test(instance.PlatformDetails ?? '')) return 'windows';
  if (
    instance.PlatformDetails === undefined ||
    /linux|unix|ubuntu|red hat|suse/i.test(instance.PlatformDetails)
  ) {
    return 'linux';
  }
  return 'unknown';
}

/**
 * Decides the order of the response. Memory is captured whenever SSM may manage the instance; if the
 * agent would lose SSM once isolated (no VPC endpoints the isolation group can allow), memory is
 * captured first, within its time budget, and containment follows.
 */
export function choosePlan(input: {
  platform: Plan['platform'];
  ssmManaged: Plan['ssmManaged'];
  survives: boolean;
}): Plan {
  const base = {
    platform: input.platform,
    ssmManaged: input.ssmManaged,
    ssmSurvivesIsolation: input.survives,
  };
  if (input.platform === 'unknown') {
    return {
      ...base,
      order: 'contain-first',
      memory: 'skip',
      reason: 'no memory acquisition tool for this platform',
    };
  }
  if (input.ssmManaged === false) {
    return { ...base, order: 'contain-first', memory: 'skip', reason: 'the instance is not managed by SSM' };
  }
  const managed =
    input.ssmManaged === true ? 'SSM manages the instance' : 'SSM reachability could not be read';
  if (input.survives) {
    return {
      ...base,
      order: 'contain-first',
      memory: 'capture',
      reason: `${managed}; VPC endpoints keep SSM and S3 reachable under isolation, so containment goes first`,
    };
  }
  return {
    ...base,
    order: 'capture-first',
    memory: 'capture',
    reason: `${managed}; without SSM and S3 VPC endpoints isolation would cut the agent off, so memory is captured first within its time budget`,
  };
}

/** The VPC endpoints an isolation group can allow, as Triage's picture lists them. */
export function endpointsOf(endpoints: readonly VpcEndpoint[], vpcId: string | undefined) {
  return endpoints
    .filter((e) => e.VpcId === vpcId && e.VpcEndpointId)
    .map((e) => ({
      id: e.VpcEndpointId as string,
      serviceName: e.ServiceName ?? '',
      type: e.VpcEndpointType ?? 'Interface',
      groups: (e.Groups ?? []).map((g) => g.GroupId ?? '').filter(Boolean),
    }));
}

/** What Intake hands containment: the plan and what Isolate needs of the instance, nothing else. */
export interface Assessment {
  plan: Plan;
  instance: TriagePicture['instance'];
  /** Reads that failed: the plan then assumes the worst of what they would have said. */
  unavailable: TriageResult['unavailable'];
}

/** Why no plan could be made at the first look; the case goes on to Triage. */
export interface NoAssessment {
  failed: string;
}

/**
 * A first look with the instance's tags as it read them, for the response policy
 * (functions/core/policy.ts): `tags` is absent when the instance could not be read. The tags stay out
 * of the Assessment that the workflow carries.
 */
export type FirstLook = (Assessment | NoAssessment) & { tags?: Record<string, string> };

/**
 * The instance, its SSM registration and the VPC endpoints of the region, read at once; then the
 * plan. The endpoints are read for every VPC and filtered here, so that they need not wait for the
 * instance's VPC id. When the instance cannot be read (missing, terminated, outside a VPC, or the read
 * refused) the answer says why: Triage then decides, and fails by name if the instance is gone.
 */
export async function assessInstance(
  c: Pick<Case, 'instanceId' | 'region'>,
  deps: { ec2: EC2Client; ssm: SSMClient },
): Promise<FirstLook> {
  const unavailable: TriageResult['unavailable'] = [];
  const optional = <T>(api: string, read: () => Promise<T>) =>
    read().catch((error: unknown) => {
      const e = describeError(error);
      unavailable.push({ api, reason: `${e.name}: ${e.message}` });
      return undefined;
    });
  const [instance, ssm, endpoints] = await Promise.all([
    optional('ec2:DescribeInstances', () => readInstance(deps.ec2, c.instanceId)),
    optional('ssm:DescribeInstanceInformation', () =>
      deps.ssm.send(
        new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: [c.instanceId] }] }),
      ),
    ),
    optional('ec2:DescribeVpcEndpoints', () => availableEndpoints(deps.ec2)),
  ]);
  if (!instance) {
    const refused = unavailable.find((u) => u.api === 'ec2:DescribeInstances');
    return { failed: refused ? `ec2:DescribeInstances: ${refused.reason}` : 'the instance was not found' };
  }
  const tags = Object.fromEntries(
    (instance.Tags ?? []).flatMap((t) => (t.Key === undefined ? [] : [[t.Key, t.Value ?? '']])),
  );
  if (instance.State?.Name === 'terminated') return { failed: 'the instance is terminated', tags };
  if (!instance.VpcId) return { failed: 'the instance is in no VPC', tags };
  const vpcEndpoints = endpointsOf(endpoints ?? [], instance.VpcId);
  const info = ssm?.InstanceInformationList?.find((i) => i.InstanceId === c.instanceId);
  const plan = choosePlan({
    platform: platformOf(instance),
    ssmManaged: ssm === undefined ? 'unknown' : info?.PingStatus === 'Online',
    survives: ssmSurvivesIsolation(vpcEndpoints, c.region),
  });
  return {
    plan,
    instance: {
      instanceId: c.instanceId,
      vpcId: instance.VpcId,
      vpcEndpoints,
      // Isolate, Protect and Revoke read the interfaces, volumes, profile and groups themselves.
      enis: [],
      volumes: [],
      targetGroups: [],
      classicLoadBalancers: [],
    },
    unavailable,
    tags,
  };
}

async function availableEndpoints(ec2: EC2Client): Promise<VpcEndpoint[]> {
  const found: VpcEndpoint[] = [];
  let token: string | undefined;
  do {
    const page = await ec2.send(
      new DescribeVpcEndpointsCommand({
        Filters: [{ Name: 'vpc-endpoint-state', Values: ['available'] }],
        MaxResults: 1000,
        ...(token ? { NextToken: token } : {}),
      }),
    );
    found.push(...(page.VpcEndpoints ?? []));
    token = page.NextToken;
  } while (token);
  return found;
}
