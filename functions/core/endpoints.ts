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

/** Condition keys that tie an S3 request to buckets the organisation or an account owns. */
const ownershipKeys = [
  'aws:resourceorgid',
  'aws:resourceorgpaths',
  'aws:resourceaccount',
  's3:resourceaccount',
];

/**
 * Whether an S3 endpoint's policy lets anything through it reach any bucket: true for the default
 * policy (no document, or Allow `*` on `*`) and for any Allow statement whose resources cover every
 * bucket (`*`, `arn:aws:s3:::*`) without a condition on who owns the bucket. Cordon's isolation group
 * allows HTTPS to the VPC's S3 endpoint for the memory upload, so such an endpoint is a way out of
 * isolation to a bucket of the attacker's. Conservative: a policy it cannot read counts as open.
 */
export function s3EndpointIsOpen(policyDocument: string | undefined): boolean {
  if (!policyDocument) return true;
  let policy: unknown;
  try {
    policy = JSON.parse(policyDocument);
  } catch {
    return true;
  }
  const statements = (policy as { Statement?: unknown }).Statement;
  const list = Array.isArray(statements) ? statements : [statements];
  return list.some((s) => {
    if (typeof s !== 'object' || s === null) return true;
    const st = s as { Effect?: unknown; Resource?: unknown; NotResource?: unknown; Condition?: unknown };
    if (st.Effect !== 'Allow') return false;
    if (st.NotResource !== undefined) return true;
    const resources = (Array.isArray(st.Resource) ? st.Resource : [st.Resource]).map(String);
    const everyBucket = resources.some((r) => r === '*' || /^arn:[\w-]*:s3:::\*/.test(r));
    if (!everyBucket) return false;
    const keys = Object.values((st.Condition ?? {}) as Record<string, Record<string, unknown>>).flatMap((c) =>
      Object.keys(c ?? {}).map((k) => k.toLowerCase()),
    );
    return !keys.some((k) => ownershipKeys.includes(k));
  });
}
