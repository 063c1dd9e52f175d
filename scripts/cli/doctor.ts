/**
 * `cordon doctor`: every readiness check, in the order they print. Each check is a module of its own
 * under doctor/, guarded the same way (doctor/check.ts): what it could not look at is UNKNOWN, with
 * what to allow.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DescribeRegionsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { S3Client } from '@aws-sdk/client-s3';
import { parse } from 'yaml';
import type { RegionalClients } from './aws.js';
import { allow, type Check, couldNotCheck } from './doctor/check.js';
import { checkCloudTrail } from './doctor/cloudtrail.js';
import { checkEvidenceBucket } from './doctor/evidence-bucket.js';
import { checkGuardDuty } from './doctor/guardduty.js';
import { liveInstances, type RegionInstance } from './doctor/instances.js';
import { checkTools, type PinnedTools } from './doctor/memory-tools.js';
import { checkRoot } from './doctor/root-user.js';
import { checkSecurityHub, type StageTriggers } from './doctor/security-hub.js';
import { checkSigningKey } from './doctor/signing-key.js';
import { checkSsmCoverage } from './doctor/ssm-coverage.js';
import { checkTagKeys, type PolicyTagKeys } from './doctor/tag-keys.js';
import { checkVpcEndpoints } from './doctor/vpc-endpoints.js';
import { mapLimit } from './evidence.js';
import type { StackInfo } from './stack.js';

const repoRoot = resolve(import.meta.dirname, '../..');

type Params = Record<string, Record<string, unknown> | undefined>;
// The packaged CLI has no serverless.yml beside it: the build writes in the params of the version it
// was built from (scripts/build-cli.mjs, esbuild `define`).
declare const CORDON_STAGE_PARAMS: Params | undefined;

/** serverless.yml's `params`: the clone's file, or, in the packaged CLI, those it was built with. */
function deployParams(file: string | undefined): Params {
  if (file === undefined && typeof CORDON_STAGE_PARAMS === 'object') return CORDON_STAGE_PARAMS;
  const doc = parse(readFileSync(file ?? resolve(repoRoot, 'serverless.yml'), 'utf8'), {
    logLevel: 'error',
  }) as { params?: Params };
  return doc.params ?? {};
}

/**
 * The stage's params as a deploy would see them: serverless.yml's `params.default`, overlaid by the
 * stage's own, overlaid by the `--param NAME=VALUE` given on the command line (as `osls deploy` takes them).
 */
export function stageParams(
  stage: string,
  overrides: Record<string, string> = {},
  file?: string,
): Record<string, unknown> {
  const params = deployParams(file);
  return { ...params.default, ...params[stage], ...overrides };
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
  /** The tag keys the stage's response policy reads: checked when given (the command always gives them). */
  policyTagKeys?: PolicyTagKeys;
  concurrency?: number;
}

/** The regions `--all-regions` covers: those enabled for the account. */
export async function enabledRegions(ec2: EC2Client): Promise<string[]> {
  const out = await ec2.send(new DescribeRegionsCommand({ AllRegions: false }));
  return (out.Regions ?? [])
    .map((r) => r.RegionName ?? '')
    .filter(Boolean)
    .sort();
}

async function regionChecks(clients: RegionalClients, region: string): Promise<Check[]> {
  const guardduty = await checkGuardDuty(clients, region);
  let instances: RegionInstance[];
  try {
    instances = await liveInstances(clients.ec2);
  } catch (error) {
    const base = { check: 'SSM management', scope: region };
    return [guardduty, couldNotCheck(base, error, allow('ec2:DescribeInstances'), 'list instances')];
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

async function stackChecks(deps: DoctorDeps): Promise<Check[]> {
  if ('error' in deps.stack) {
    return [
      {
        check: 'Cordon stack',
        scope: deps.homeRegion,
        status: 'fail',
        detail: deps.stack.error,
        fix: deps.stack.fix,
      },
    ];
  }
  const { info, s3, kms, tools } = deps.stack;
  return [
    {
      check: 'Cordon stack',
      scope: `${info.stackName} ${info.region}`,
      status: 'pass',
      detail: 'found, with every output the CLI reads',
      fix: '',
    },
    await checkEvidenceBucket(s3, info.evidenceBucket),
    await checkSigningKey(kms, info.signingKeyArn),
    ...(await checkTools(s3, info.toolsBucket, tools)),
  ];
}

/** Runs every check; the account-wide ones once, the regional ones in each region. */
export async function runDoctor(deps: DoctorDeps): Promise<Check[]> {
  const home = await deps.regional(deps.homeRegion);
  const regional = await mapLimit(deps.regions, deps.concurrency ?? 4, (region) =>
    deps.regional(region).then((clients) => regionChecks(clients, region)),
  );
  return [
    await checkCloudTrail(home, deps.homeRegion),
    ...regional.flat(),
    // The trigger rules live in the stack's region, whichever regions were asked for.
    await checkSecurityHub(home, deps.homeRegion, deps.triggers),
    ...(await stackChecks(deps)),
    ...(deps.policyTagKeys ? [await checkTagKeys(deps.iam, deps.homeRegion, deps.policyTagKeys)] : []),
    ...(await checkRoot(deps.iam)),
  ];
}
