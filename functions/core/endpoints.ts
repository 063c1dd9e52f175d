import type { TriageResult } from './state.js';

type Endpoint = TriageResult['instance']['vpcEndpoints'][number];

/** The interface endpoints the SSM agent needs to keep receiving commands without internet access. */
export const ssmEndpointServices = ['ssm', 'ssmmessages', 'ec2messages'] as const;

/** The service an endpoint serves (`ssm`, `s3`…), or undefined for another region's or an unknown name. */
export function serviceOf(endpoint: Endpoint, region: string): string | undefined {
  // com.amazonaws.<region>.<service>; some partitions use another prefix, so match on the suffix.
  const suffix = `.${region}.`;
  const at = endpoint.serviceName.indexOf(suffix);
  return at < 0 ? undefined : endpoint.serviceName.slice(at + suffix.length);
}

/**
 * Whether the SSM agent (and a memory upload to S3) still works once the instance holds only the
 * isolation group: true when the VPC has interface endpoints for ssm, ssmmessages and ec2messages and
 * an S3 endpoint (gateway or interface), which the isolation group's egress rules then allow. Triage
 * uses it to choose the plan and Isolate uses the same endpoints to write the egress rules, so the two
 * cannot disagree.
 */
export function ssmSurvivesIsolation(endpoints: readonly Endpoint[], region: string): boolean {
  const services = new Set(endpoints.map((e) => serviceOf(e, region)).filter(Boolean));
  return ssmEndpointServices.every((s) => services.has(s)) && services.has('s3');
}
