import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';

/** An instance a regional check is about. */
export interface RegionInstance {
  instanceId: string;
  vpcId?: string;
  state?: string;
}

/** The region's instances that are not terminated. */
export async function liveInstances(ec2: EC2Client): Promise<RegionInstance[]> {
  const found: RegionInstance[] = [];
  let token: string | undefined;
  do {
    const page = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }],
        NextToken: token,
      }),
    );
    for (const r of page.Reservations ?? []) {
      for (const i of r.Instances ?? []) {
        if (!i.InstanceId) continue;
        found.push({
          instanceId: i.InstanceId,
          ...(i.VpcId ? { vpcId: i.VpcId } : {}),
          ...(i.State?.Name ? { state: i.State.Name } : {}),
        });
      }
    }
    token = page.NextToken;
  } while (token);
  return found;
}
