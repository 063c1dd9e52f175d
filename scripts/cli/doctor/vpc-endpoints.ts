import { DescribeVpcEndpointsCommand } from '@aws-sdk/client-ec2';
import { s3EndpointIsOpen, serviceOf, ssmEndpointServices } from '../../../functions/core/endpoints.js';
import type { RegionalClients } from '../aws.js';
import { allow, type Check, guarded, list } from './check.js';
import type { RegionInstance } from './instances.js';

/** Per VPC with instances: interface endpoints for ssm, ssmmessages, ec2messages and one for s3. */
export async function checkVpcEndpoints(
  clients: RegionalClients,
  region: string,
  instances: RegionInstance[],
): Promise<Check[]> {
  const vpcs = [...new Set(instances.map((i) => i.vpcId).filter((v): v is string => Boolean(v)))].sort();
  const checks: Check[] = [];
  for (const vpcId of vpcs) {
    const base = { check: 'VPC endpoints', scope: `${region} ${vpcId}` };
    checks.push(
      await guarded(base, allow('ec2:DescribeVpcEndpoints'), async () => {
        const out = await clients.ec2.send(
          new DescribeVpcEndpointsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
        );
        const services = new Set(
          (out.VpcEndpoints ?? [])
            .filter((e) => String(e.State ?? '').toLowerCase() === 'available')
            .map((e) =>
              serviceOf(
                {
                  id: e.VpcEndpointId ?? '',
                  serviceName: e.ServiceName ?? '',
                  type: String(e.VpcEndpointType ?? ''),
                  groups: [],
                },
                region,
              ),
            )
            .filter(Boolean),
        );
        const missing = [...ssmEndpointServices, 's3'].filter((s) => !services.has(s));
        // The isolation group lets an isolated instance reach the VPC's S3 endpoint (for the memory
        // upload): an endpoint whose policy reaches every bucket is a way out to the attacker's own.
        const openS3 = (out.VpcEndpoints ?? [])
          .filter(
            (e) =>
              String(e.State ?? '').toLowerCase() === 'available' &&
              (e.ServiceName ?? '').endsWith(`.${region}.s3`) &&
              s3EndpointIsOpen(e.PolicyDocument),
          )
          .map((e) => e.VpcEndpointId ?? '');
        if (!missing.length && openS3.length) {
          return {
            ...base,
            status: 'fail',
            detail: `the S3 endpoint ${list(openS3)} lets any request reach any bucket: an isolated instance could upload to a bucket outside the organisation while its memory is captured`,
            fix: `Limit its policy to the organisation's buckets (an Allow on s3:* with aws:ResourceOrgID equal to your organisation's id), as docs/security.md shows.`,
            resources: openS3,
          };
        }
        return missing.length
          ? {
              ...base,
              status: 'fail',
              detail: `no available endpoint for ${missing.join(', ')}: isolating an instance here also cuts it from SSM, so memory is captured before containment`,
              fix: `Create ${missing.map((s) => `com.amazonaws.${region}.${s}`).join(', ')} in ${vpcId} (interface endpoints with private DNS; s3 may be a gateway endpoint).`,
              resources: missing,
            }
          : {
              ...base,
              status: 'pass',
              detail: 'ssm, ssmmessages, ec2messages and s3 endpoints are available',
              fix: '',
            };
      }),
    );
  }
  return checks;
}
