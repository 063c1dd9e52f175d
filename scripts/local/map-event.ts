/**
 * Puts a real finding onto the emulated account: the finding's instance, account and region become
 * the seeded ones, wherever they appear (fields and ARNs), and the caller is told what was changed.
 */
export interface Mapping {
  from: { instanceId?: string; accountId?: string; region?: string };
  to: { instanceId: string; accountId: string; region: string };
}

type Json = unknown;

const get = (o: Json, path: (string | number)[]): unknown =>
  path.reduce<unknown>(
    (v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k as string] : undefined),
    o,
  );

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/** Where each accepted shape keeps the instance, account and region. */
export function originals(event: Json): Mapping['from'] {
  const detail = get(event, ['detail']);
  const finding = get(detail, ['findings', 0]) ?? (get(event, ['Findings', 0]) as Json) ?? event;
  const gd = detail && !get(detail, ['findings']) ? detail : event;
  const asffResource = (
    (get(finding, ['Resources']) as { Type?: string; Id?: string }[] | undefined) ?? []
  ).find((r) => r?.Type === 'AwsEc2Instance');
  const instanceId =
    str(get(gd, ['resource', 'instanceDetails', 'instanceId'])) ??
    str(get(finding, ['Resource', 'InstanceDetails', 'InstanceId'])) ??
    str(get(event, ['instanceId'])) ??
    asffResource?.Id?.match(/instance\/(i-[0-9a-f]+)/)?.[1];
  const accountId =
    str(get(event, ['account'])) ??
    str(get(gd, ['accountId'])) ??
    str(get(finding, ['AccountId'])) ??
    str(get(finding, ['AwsAccountId'])) ??
    str(get(event, ['accountId']));
  const region =
    str(get(event, ['region'])) ?? str(get(gd, ['region'])) ?? str(get(finding, ['Region'])) ?? undefined;
  return {
    ...(instanceId ? { instanceId } : {}),
    ...(accountId ? { accountId } : {}),
    ...(region ? { region } : {}),
  };
}

function replaceIn(value: string, from: Mapping['from'], to: Mapping['to']): string {
  let out = value;
  if (from.instanceId && out.includes(from.instanceId)) out = out.split(from.instanceId).join(to.instanceId);
  if (from.accountId) {
    if (out === from.accountId) return to.accountId;
    out = out.split(`:${from.accountId}:`).join(`:${to.accountId}:`);
  }
  if (from.region) {
    if (out === from.region) return to.region;
    out = out.split(`:${from.region}:`).join(`:${to.region}:`);
  }
  return out;
}

export function mapEvent(event: Json, to: Mapping['to']): { event: Json; mapping: Mapping } {
  const from = originals(event);
  const walk = (v: Json): Json => {
    if (typeof v === 'string') return replaceIn(v, from, to);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return { event: walk(event), mapping: { from, to } };
}
