import { DescribeInstanceInformationCommand } from '@aws-sdk/client-ssm';
import type { RegionalClients } from '../aws.js';
import { type Check, guarded, list } from './check.js';
import type { RegionInstance } from './instances.js';

/** Which instances SSM manages (and reaches): memory is captured only from those. */
export async function checkSsmCoverage(
  clients: RegionalClients,
  region: string,
  instances: RegionInstance[],
): Promise<Check> {
  const base = { check: 'SSM management', scope: region };
  if (!instances.length) return { ...base, status: 'pass', detail: 'no instances in this region', fix: '' };
  // The emulator lacks this API: the fix says where the check can run.
  return guarded(base, 'Run doctor with ssm:DescribeInstanceInformation allowed, against AWS.', async () => {
    const online = new Set<string>();
    const known = new Set<string>();
    let token: string | undefined;
    do {
      const page = await clients.ssm.send(
        new DescribeInstanceInformationCommand({ MaxResults: 50, NextToken: token }),
      );
      for (const info of page.InstanceInformationList ?? []) {
        if (!info.InstanceId) continue;
        known.add(info.InstanceId);
        if (info.PingStatus === 'Online') online.add(info.InstanceId);
      }
      token = page.NextToken;
    } while (token);
    const unmanaged = instances.filter((i) => !known.has(i.instanceId)).map((i) => i.instanceId);
    const unreachable = instances
      .filter((i) => known.has(i.instanceId) && !online.has(i.instanceId))
      .map((i) => i.instanceId);
    if (!unmanaged.length && !unreachable.length) {
      return {
        ...base,
        status: 'pass',
        detail: `all ${instances.length} instances are managed by SSM and online`,
        fix: '',
      };
    }
    const parts = [
      unmanaged.length
        ? `${unmanaged.length} of ${instances.length} instances are not managed by SSM: ${list(unmanaged)}`
        : '',
      unreachable.length ? `${unreachable.length} are registered but not online: ${list(unreachable)}` : '',
    ].filter(Boolean);
    return {
      ...base,
      status: 'fail',
      detail: `${parts.join('; ')}; their memory cannot be captured`,
      fix: 'Give their instance profiles AmazonSSMManagedInstanceCore (or turn on Default Host Management Configuration) and make sure the SSM agent runs.',
      resources: [...unmanaged, ...unreachable],
    };
  });
}
