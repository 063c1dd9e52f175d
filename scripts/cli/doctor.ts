import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type CloudFormationClient, GetTemplateCommand } from '@aws-sdk/client-cloudformation';
import { DescribeTrailsCommand, GetTrailStatusCommand, type Trail } from '@aws-sdk/client-cloudtrail';
import {
  DescribeInstancesCommand,
  DescribeRegionsCommand,
  DescribeVpcEndpointsCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { GetDetectorCommand, ListDetectorsCommand } from '@aws-sdk/client-guardduty';
import { GetAccountSummaryCommand, type IAMClient } from '@aws-sdk/client-iam';
import { DescribeKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import {
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DescribeHubCommand } from '@aws-sdk/client-securityhub';
import { DescribeInstanceInformationCommand } from '@aws-sdk/client-ssm';
import { parse } from 'yaml';
import { serviceOf, ssmEndpointServices } from '../../functions/core/endpoints.js';
import { awsErrorCode } from '../../functions/core/errors.js';
import type { RegionalClients } from './aws.js';
import { explain } from './errors.js';
import { mapLimit } from './evidence.js';
import { safe } from './output.js';
import type { StackInfo } from './stack.js';

export type CheckStatus = 'pass' | 'fail' | 'unknown';

/** One readiness check: what was looked at, the verdict, a one-line detail and how to fix a gap. */
export interface Check {
  check: string;
  /** A region, a VPC, a bucket: what the verdict is about. */
  scope: string;
  status: CheckStatus;
  detail: string;
  fix: string;
  /** The resources the detail is about (instances without SSM, say), in full for --json. */
  resources?: string[];
}

/** What the stack pins for the memory tools (the capture function's environment). */
export interface PinnedTools {
  prefix: string;
  avmlSha256: string;
  winpmemSha256: string;
}

/**
 * The triggers a deploy of the stage creates that depend on a service being on in the stack's region.
 * The GuardDuty rules have no condition: every stage has them, and the GuardDuty check covers them.
 */
export interface StageTriggers {
  stage: string;
  /** acceptSecurityHubCustomAction: the stack creates the custom action, which Security Hub must host. */
  securityHubCustomAction: boolean;
  /** acceptSecurityHubImported: a rule on findings Security Hub imports. */
  securityHubImported: boolean;
}

/** Which triggers a stage turns on, from its params as serverless resolves them (strings compared to 'true'). */
export function triggersOf(stage: string, params: Record<string, unknown>): StageTriggers {
  const on = (name: string) => String(params[name] ?? '') === 'true';
  return {
    stage,
    securityHubCustomAction: on('acceptSecurityHubCustomAction'),
    securityHubImported: on('acceptSecurityHubImported'),
  };
}

const repoRoot = resolve(import.meta.dirname, '../..');

/**
 * The stage's params as a deploy would see them: serverless.yml's `params.default`, overlaid by the
 * stage's own, overlaid by the `--param NAME=VALUE` given on the command line (as `osls deploy` takes them).
 */
export function stageParams(
  stage: string,
  overrides: Record<string, string> = {},
  file = resolve(repoRoot, 'serverless.yml'),
): Record<string, unknown> {
  const doc = parse(readFileSync(file, 'utf8'), { logLevel: 'error' }) as {
    params?: Record<string, Record<string, unknown> | undefined>;
  };
  return { ...doc.params?.default, ...doc.params?.[stage], ...overrides };
}

export interface DoctorDeps {
  homeRegion: string;
  /** The regions whose GuardDuty, SSM coverage and VPC endpoints are checked. */
  regions: string[];
  regional: (region: string) => Promise<RegionalClients>;
  iam: IAMClient;
  /** The deployed stack and clients for its resources; or why it could not be found. */
  stack:
    | { info: StackInfo; s3: S3Client; kms: KMSClient; tools: PinnedTools | { error: string } }
    | { error: string; fix: string };
  /** What a deploy of the stage turns on; its services are checked in the stack's region. */
  triggers: StageTriggers;
  concurrency?: number;
}

const why = (error: unknown) => explain(error).message;
const list = (ids: string[], max = 8) =>
  ids.length <= max ? ids.join(', ') : `${ids.slice(0, max).join(', ')} and ${ids.length - max} more`;

/** CloudTrail: at least one multi-region trail that is logging now. */
export async function checkCloudTrail(clients: RegionalClients, homeRegion: string): Promise<Check> {
  const base = { check: 'CloudTrail', scope: 'all regions' };
  const fix =
    'Create a multi-region trail and start it: aws cloudtrail create-trail --name cordon-audit --s3-bucket-name BUCKET --is-multi-region-trail, then aws cloudtrail start-logging --name cordon-audit';
  try {
    const trails =
      (await clients.cloudtrail.send(new DescribeTrailsCommand({ includeShadowTrails: true }))).trailList ??
      [];
    const multi = trails.filter((t) => t.IsMultiRegionTrail);
    const logging: string[] = [];
    for (const t of multi) {
      if (await isLogging(clients, t, homeRegion)) logging.push(t.Name ?? t.TrailARN ?? '?');
    }
    if (logging.length)
      return {
        ...base,
        status: 'pass',
        detail: `multi-region trail ${safe(logging[0])} is logging`,
        fix: '',
      };
    if (multi.length) {
      const name = safe(multi[0]?.Name);
      return {
        ...base,
        status: 'fail',
        detail: `the multi-region trail ${name} is not logging`,
        fix: `aws cloudtrail start-logging --name ${name}`,
      };
    }
    const single = trails.map((t) => `${safe(t.Name)} (${safe(t.HomeRegion)})`);
    return {
      ...base,
      status: 'fail',
      detail: single.length
        ? `no multi-region trail; only single-region trails: ${list(single)}`
        : 'no trail at all: API calls in this account are not recorded',
      fix,
    };
  } catch (error) {
    return {
      ...base,
      status: 'unknown',
      detail: `could not check: ${why(error)}`,
      fix: 'Allow cloudtrail:DescribeTrails and cloudtrail:GetTrailStatus.',
    };
  }
}

async function isLogging(clients: RegionalClients, trail: Trail, homeRegion: string): Promise<boolean> {
  // A shadow trail (another region's, or an organization's) is named by its ARN; a local one by name.
  const local = trail.HomeRegion === homeRegion && !trail.IsOrganizationTrail;
  const name = local ? (trail.Name ?? trail.TrailARN) : (trail.TrailARN ?? trail.Name);
  const status = await clients.cloudtrail.send(new GetTrailStatusCommand({ Name: name }));
  return status.IsLogging === true;
}

export async function checkGuardDuty(clients: RegionalClients, region: string): Promise<Check> {
  const base = { check: 'GuardDuty', scope: region };
  try {
    const ids = (await clients.guardduty.send(new ListDetectorsCommand({}))).DetectorIds ?? [];
    const id = ids[0];
    if (!id) {
      return {
        ...base,
        status: 'fail',
        detail: 'no detector: GuardDuty is off, so no finding can start a case here',
        fix: `aws guardduty create-detector --enable --region ${region}`,
      };
    }
    const detector = await clients.guardduty.send(new GetDetectorCommand({ DetectorId: id }));
    return detector.Status === 'ENABLED'
      ? { ...base, status: 'pass', detail: `detector ${safe(id)} is enabled`, fix: '' }
      : {
          ...base,
          status: 'fail',
          detail: `detector ${safe(id)} is ${safe(detector.Status ?? 'not enabled')}`,
          fix: `aws guardduty update-detector --detector-id ${safe(id)} --enable --region ${region}`,
        };
  } catch (error) {
    return {
      ...base,
      status: 'unknown',
      detail: `could not check: ${why(error)}`,
      fix: 'Allow guardduty:ListDetectors and guardduty:GetDetector.',
    };
  }
}

/**
 * Security Hub, where the stage's triggers need it: the custom action is a resource the stack creates,
 * so without Security Hub the deploy fails; imported findings would simply never arrive.
 */
export async function checkSecurityHub(
  clients: RegionalClients,
  region: string,
  triggers: StageTriggers,
): Promise<Check> {
  const base = { check: 'Security Hub', scope: region };
  const uses = [
    triggers.securityHubCustomAction ? 'the custom action (acceptSecurityHubCustomAction)' : '',
    triggers.securityHubImported ? 'imported findings (acceptSecurityHubImported)' : '',
  ].filter(Boolean);
  if (!uses.length) {
    return {
      ...base,
      status: 'pass',
      detail: `not needed: stage ${triggers.stage} turns on no Security Hub trigger`,
      fix: '',
    };
  }
  try {
    const hub = await clients.securityhub.send(new DescribeHubCommand({}));
    return {
      ...base,
      status: 'pass',
      detail: `enabled${hub.SubscribedAt ? ` since ${safe(hub.SubscribedAt)}` : ''}, for ${uses.join(' and ')}`,
      fix: '',
    };
  } catch (error) {
    // Security Hub's answer for an account that has not enabled it; a missing IAM permission is
    // AccessDeniedException, which stays "could not check".
    if (awsErrorCode(error) === 'InvalidAccessException') {
      const consequence = triggers.securityHubCustomAction
        ? 'the deploy cannot create the custom action and rolls back'
        : 'no imported finding can start a case';
      return {
        ...base,
        status: 'fail',
        detail: `not enabled, but stage ${triggers.stage} uses ${uses.join(' and ')}: ${consequence}`,
        fix: `aws securityhub enable-security-hub --region ${region}, or set ${[
          triggers.securityHubCustomAction ? 'acceptSecurityHubCustomAction' : '',
          triggers.securityHubImported ? 'acceptSecurityHubImported' : '',
        ]
          .filter(Boolean)
          .join(' and ')} to 'false' for this stage`,
      };
    }
    return {
      ...base,
      status: 'unknown',
      detail: `could not check: ${why(error)}`,
      fix: 'Allow securityhub:DescribeHub.',
    };
  }
}

interface RegionInstance {
  instanceId: string;
  vpcId?: string;
  state?: string;
}

async function liveInstances(ec2: EC2Client): Promise<RegionInstance[]> {
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

/** Which instances SSM manages (and reaches): memory is captured only from those. */
export async function checkSsmCoverage(
  clients: RegionalClients,
  region: string,
  instances: RegionInstance[],
): Promise<Check> {
  const base = { check: 'SSM management', scope: region };
  if (!instances.length) return { ...base, status: 'pass', detail: 'no instances in this region', fix: '' };
  const online = new Set<string>();
  const known = new Set<string>();
  try {
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
  } catch (error) {
    return {
      ...base,
      status: 'unknown',
      detail: `could not check: ${why(error)}`,
      fix: 'Run doctor with ssm:DescribeInstanceInformation allowed, against AWS.',
    };
  }
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
}

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
    try {
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
      checks.push(
        missing.length
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
            },
      );
    } catch (error) {
      checks.push({
        ...base,
        status: 'unknown',
        detail: `could not check: ${why(error)}`,
        fix: 'Allow ec2:DescribeVpcEndpoints.',
      });
    }
  }
  return checks;
}

async function regionChecks(clients: RegionalClients, region: string): Promise<Check[]> {
  const guardduty = await checkGuardDuty(clients, region);
  let instances: RegionInstance[];
  try {
    instances = await liveInstances(clients.ec2);
  } catch (error) {
    return [
      guardduty,
      {
        check: 'SSM management',
        scope: region,
        status: 'unknown',
        detail: `could not list instances: ${why(error)}`,
        fix: 'Allow ec2:DescribeInstances.',
      },
    ];
  }
  // A stopped instance holds no memory and its agent cannot answer: SSM coverage is about running ones.
  return [
    guardduty,
    await checkSsmCoverage(
      clients,
      region,
      instances.filter((i) => i.state === undefined || i.state === 'running'),
    ),
    ...(await checkVpcEndpoints(clients, region, instances)),
  ];
}

export async function checkEvidenceBucket(s3: S3Client, bucket: string): Promise<Check> {
  const base = { check: 'Evidence bucket lock', scope: bucket };
  const fix =
    'Redeploy the stack: the evidence bucket is created with Object Lock, versioning and a default retention.';
  try {
    const versioning = await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }));
    const lock = await s3
      .send(new GetObjectLockConfigurationCommand({ Bucket: bucket }))
      .catch((error: unknown) => {
        if (awsErrorCode(error) === 'ObjectLockConfigurationNotFoundError') return undefined;
        throw error;
      });
    const config = lock?.ObjectLockConfiguration;
    const retention = config?.Rule?.DefaultRetention;
    const problems = [
      versioning.Status === 'Enabled' ? '' : 'versioning is not enabled',
      config?.ObjectLockEnabled === 'Enabled' ? '' : 'Object Lock is not enabled',
      retention?.Mode && (retention.Days || retention.Years) ? '' : 'there is no default retention',
    ].filter(Boolean);
    if (problems.length) return { ...base, status: 'fail', detail: problems.join('; '), fix };
    const period = retention?.Days ? `${retention.Days} days` : `${retention?.Years} years`;
    const note =
      retention?.Mode === 'GOVERNANCE'
        ? ' (GOVERNANCE: principals allowed s3:BypassGovernanceRetention can still delete; production stages use COMPLIANCE)'
        : '';
    return {
      ...base,
      status: 'pass',
      detail: `versioned, Object Lock ${retention?.Mode} for ${period} by default${note}`,
      fix: '',
    };
  } catch (error) {
    return {
      ...base,
      status: 'unknown',
      detail: `could not check: ${why(error)}`,
      fix: 'Allow s3:GetBucketVersioning and s3:GetBucketObjectLockConfiguration.',
    };
  }
}

export async function checkSigningKey(kms: KMSClient, keyArn: string): Promise<Check> {
  const base = { check: 'Signing key', scope: keyArn };
  try {
    const meta = (await kms.send(new DescribeKeyCommand({ KeyId: keyArn }))).KeyMetadata;
    const problems = [
      meta?.KeySpec === 'ECC_NIST_P256'
        ? ''
        : `key spec is ${safe(meta?.KeySpec ?? 'unknown')}, not ECC_NIST_P256`,
      meta?.KeyUsage === 'SIGN_VERIFY'
        ? ''
        : `key usage is ${safe(meta?.KeyUsage ?? 'unknown')}, not SIGN_VERIFY`,
      meta?.Enabled === true && meta.KeyState === 'Enabled'
        ? ''
        : `the key is ${safe(meta?.KeyState ?? 'not enabled')}`,
    ].filter(Boolean);
    return problems.length
      ? {
          ...base,
          status: 'fail',
          detail: `${problems.join('; ')}: manifests cannot be signed`,
          fix:
            meta?.KeyState === 'Disabled'
              ? `aws kms enable-key --key-id ${keyArn}`
              : 'Redeploy the stack to restore its signing key.',
        }
      : { ...base, status: 'pass', detail: 'ECC_NIST_P256, SIGN_VERIFY, enabled', fix: '' };
  } catch (error) {
    return {
      ...base,
      status: 'unknown',
      detail: `could not check: ${why(error)}`,
      fix: 'Allow kms:DescribeKey on the signing key.',
    };
  }
}

async function hashToolObject(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const hash = createHash('sha256');
    for await (const chunk of out.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
    return hash.digest('hex');
  } catch (error) {
    if (awsErrorCode(error) === 'NoSuchKey' || awsErrorCode(error) === 'NotFound') return undefined;
    throw error;
  }
}

/** The memory tools in the tools bucket, hashed against what the stack pins. */
export async function checkTools(
  s3: S3Client,
  bucket: string,
  pinned: PinnedTools | { error: string },
): Promise<Check[]> {
  if ('error' in pinned) {
    return [
      {
        check: 'Memory tools',
        scope: bucket,
        status: 'unknown',
        detail: pinned.error,
        fix: 'Allow cloudformation:GetTemplate on the stack.',
      },
    ];
  }
  const tools = [
    { name: 'AVML (Linux)', file: 'avml', sha: pinned.avmlSha256, param: 'avmlSha256', platform: 'Linux' },
    {
      name: 'WinPmem (Windows)',
      file: 'winpmem.exe',
      sha: pinned.winpmemSha256,
      param: 'winpmemSha256',
      platform: 'Windows',
    },
  ];
  const checks: Check[] = [];
  for (const tool of tools) {
    const key = `${pinned.prefix}${tool.file}`;
    const base = { check: `Memory tool ${tool.name}`, scope: `s3://${bucket}/${key}` };
    if (!tool.sha) {
      checks.push({
        ...base,
        status: 'fail',
        detail: `no SHA-256 is pinned: memory capture is skipped on ${tool.platform} instances`,
        fix: `Set ${tool.param} in serverless.yml params to the tool's SHA-256 and deploy.`,
      });
      continue;
    }
    try {
      const found = await hashToolObject(s3, bucket, key);
      checks.push(
        found === undefined
          ? {
              ...base,
              status: 'fail',
              detail: 'not uploaded',
              fix: `Upload the build whose SHA-256 is ${tool.sha}: aws s3 cp ${tool.file} s3://${bucket}/${key}`,
            }
          : found === tool.sha
            ? { ...base, status: 'pass', detail: `SHA-256 ${found} as pinned`, fix: '' }
            : {
                ...base,
                status: 'fail',
                detail: `SHA-256 ${found}, but the stack pins ${tool.sha}: capture would refuse it`,
                fix: `Upload the pinned build to s3://${bucket}/${key}, or pin this one in ${tool.param}.`,
              },
      );
    } catch (error) {
      checks.push({
        ...base,
        status: 'unknown',
        detail: `could not check: ${why(error)}`,
        fix: 'Allow s3:GetObject on the tools bucket.',
      });
    }
  }
  return checks;
}

/** Root user hygiene (GetAccountSummary): no access keys, MFA on. */
export async function checkRoot(iam: IAMClient): Promise<Check[]> {
  try {
    const map = (await iam.send(new GetAccountSummaryCommand({}))).SummaryMap ?? {};
    const keys = map.AccountAccessKeysPresent;
    const mfa = map.AccountMFAEnabled;
    return [
      keys === undefined
        ? {
            check: 'Root access keys',
            scope: 'account',
            status: 'unknown',
            detail: 'the account summary does not say',
            fix: '',
          }
        : keys > 0
          ? {
              check: 'Root access keys',
              scope: 'account',
              status: 'fail',
              detail: 'the root user has access keys: whoever holds them can undo any containment',
              fix: 'Sign in as root and delete its access keys (Security credentials).',
            }
          : {
              check: 'Root access keys',
              scope: 'account',
              status: 'pass',
              detail: 'the root user has no access keys',
              fix: '',
            },
      mfa === undefined
        ? {
            check: 'Root MFA',
            scope: 'account',
            status: 'unknown',
            detail: 'the account summary does not say',
            fix: '',
          }
        : mfa > 0
          ? { check: 'Root MFA', scope: 'account', status: 'pass', detail: 'the root user has MFA', fix: '' }
          : {
              check: 'Root MFA',
              scope: 'account',
              status: 'fail',
              detail: 'the root user has no MFA device',
              fix: 'Sign in as root and assign an MFA device (Security credentials).',
            },
    ];
  } catch (error) {
    return [
      {
        check: 'Root user',
        scope: 'account',
        status: 'unknown',
        detail: `could not check: ${why(error)}`,
        fix: 'Allow iam:GetAccountSummary.',
      },
    ];
  }
}

/** The regions `--all-regions` covers: those enabled for the account. */
export async function enabledRegions(ec2: EC2Client): Promise<string[]> {
  const out = await ec2.send(new DescribeRegionsCommand({ AllRegions: false }));
  return (out.Regions ?? [])
    .map((r) => r.RegionName ?? '')
    .filter(Boolean)
    .sort();
}

/**
 * What the stack pins for the memory tools, from the capture function's environment as the deployed
 * template declares it (serverless resolves its parameters into the template).
 */
export async function pinnedToolsFromTemplate(
  cfn: CloudFormationClient,
  stackName: string,
  functionName: string,
): Promise<PinnedTools | { error: string }> {
  try {
    const body = (
      await cfn.send(new GetTemplateCommand({ StackName: stackName, TemplateStage: 'Processed' }))
    ).TemplateBody;
    const template = JSON.parse(body ?? '{}') as {
      Resources?: Record<
        string,
        {
          Type?: string;
          Properties?: { FunctionName?: unknown; Environment?: { Variables?: Record<string, unknown> } };
        }
      >;
    };
    const fn = Object.values(template.Resources ?? {}).find(
      (r) => r.Type === 'AWS::Lambda::Function' && r.Properties?.FunctionName === functionName,
    );
    const vars = fn?.Properties?.Environment?.Variables ?? {};
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    const avml = str(vars.AVML_SHA256);
    const winpmem = str(vars.WINPMEM_SHA256);
    if (avml === undefined || winpmem === undefined) {
      return { error: `the template of ${stackName} does not show ${functionName}'s pinned tool hashes` };
    }
    return { prefix: str(vars.TOOLS_PREFIX) ?? 'tools/', avmlSha256: avml, winpmemSha256: winpmem };
  } catch (error) {
    return { error: `could not read the stack's template: ${why(error)}` };
  }
}

/** Runs every check; the account-wide ones once, the regional ones in each region. */
export async function runDoctor(deps: DoctorDeps): Promise<Check[]> {
  const home = await deps.regional(deps.homeRegion);
  const checks: Check[] = [await checkCloudTrail(home, deps.homeRegion)];
  const regional = await mapLimit(deps.regions, deps.concurrency ?? 4, (region) =>
    deps.regional(region).then((clients) => regionChecks(clients, region)),
  );
  checks.push(...regional.flat());
  // The trigger rules live in the stack's region, whichever regions were asked for.
  checks.push(await checkSecurityHub(home, deps.homeRegion, deps.triggers));
  if ('error' in deps.stack) {
    checks.push({
      check: 'Cordon stack',
      scope: deps.homeRegion,
      status: 'fail',
      detail: deps.stack.error,
      fix: deps.stack.fix,
    });
  } else {
    const { info, s3, kms, tools } = deps.stack;
    checks.push({
      check: 'Cordon stack',
      scope: `${info.stackName} ${info.region}`,
      status: 'pass',
      detail: 'found, with every output the CLI reads',
      fix: '',
    });
    checks.push(await checkEvidenceBucket(s3, info.evidenceBucket));
    checks.push(await checkSigningKey(kms, info.signingKeyArn));
    checks.push(...(await checkTools(s3, info.toolsBucket, tools)));
  }
  checks.push(...(await checkRoot(deps.iam)));
  return checks;
}
