import { CloudTrailClient, CreateTrailCommand } from '@aws-sdk/client-cloudtrail';
import { CreateDetectorCommand, GuardDutyClient } from '@aws-sdk/client-guardduty';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { EnableSecurityHubCommand, SecurityHubClient } from '@aws-sdk/client-securityhub';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { Check } from '../../scripts/cli/doctor/check.js';
import { resetMoto } from '../../scripts/local/moto.js';
import { type SeededAccount, seedAccount } from '../../scripts/local/seed.js';
import { deployLocalStack, type LocalStack } from '../../scripts/local/stack.js';
import { cordon, emulator, publishStack } from '../support/cli-fixtures.js';

const endpoint = inject('motoEndpoint');
const aws = emulator(endpoint);
const s3 = new S3Client({ ...aws, forcePathStyle: true });

let exposed: SeededAccount;
let covered: SeededAccount;

/**
 * A second stage whose outputs name resources with one gap each: a bucket without Object Lock, a
 * symmetric key where a signing key belongs, a tools bucket with the wrong AVML and no WinPmem.
 */
async function publishStageWithGaps(ready: LocalStack): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: 'gaps-evidence' }));
  await s3.send(new CreateBucketCommand({ Bucket: 'gaps-tools' }));
  await s3.send(
    new PutObjectCommand({ Bucket: 'gaps-tools', Key: 'tools/avml', Body: 'not the pinned build' }),
  );
  const key = await new KMSClient(aws).send(new CreateKeyCommand({ Description: 'not a signing key' }));
  await publishStack(endpoint, {
    ...ready,
    stackName: 'cordon-gaps',
    bucket: 'gaps-evidence',
    toolsBucket: 'gaps-tools',
    signingKeyId: key.KeyMetadata?.Arn as string,
    env: {
      ...ready.env,
      TOOLS_PREFIX: 'tools/',
      AVML_SHA256: 'a'.repeat(64),
      WINPMEM_SHA256: 'b'.repeat(64),
    },
  });
}

beforeAll(async () => {
  await resetMoto(endpoint);
  const ready = await deployLocalStack(endpoint, 'dev');
  await publishStack(endpoint, ready);
  await publishStageWithGaps(ready);
  // An account as a team might have it before an incident: a trail in one region only, GuardDuty
  // switched off, one VPC with the SSM and S3 endpoints and one without.
  await s3.send(new CreateBucketCommand({ Bucket: 'audit-logs' }));
  await new CloudTrailClient(aws).send(
    new CreateTrailCommand({ Name: 'audit', S3BucketName: 'audit-logs', IsMultiRegionTrail: false }),
  );
  await new GuardDutyClient(aws).send(new CreateDetectorCommand({ Enable: false }));
  exposed = await seedAccount(endpoint, { vpcEndpoints: false });
  covered = await seedAccount(endpoint, { vpcEndpoints: true });
}, 120_000);

async function doctor(...args: string[]): Promise<{ code: number; checks: Check[] }> {
  const { code, stdout } = await cordon(endpoint, ['doctor', '--json', ...args]);
  return { code, checks: (JSON.parse(stdout) as { checks: Check[] }).checks };
}

const find = (checks: Check[], name: string, scope?: string) =>
  checks.find((c) => c.check === name && (scope === undefined || c.scope.includes(scope)));

describe('cordon doctor on an account with one gap of each kind', () => {
  let result: { code: number; checks: Check[] };
  beforeAll(async () => {
    result = await doctor('--stage', 'gaps');
  });

  it('exits 1', () => {
    expect(result.code).toBe(1);
  });

  it('reports that no multi-region trail records API calls', () => {
    expect(find(result.checks, 'CloudTrail')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('no multi-region trail; only single-region trails: audit (us-east-1)'),
      fix: expect.stringContaining('--is-multi-region-trail'),
    });
  });

  it('reports GuardDuty switched off in the region', () => {
    expect(find(result.checks, 'GuardDuty', 'us-east-1')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/^detector \w+ is DISABLED$/),
      fix: expect.stringMatching(
        /^aws guardduty update-detector --detector-id \w+ --enable --region us-east-1$/,
      ),
    });
  });

  it('says it could not check SSM coverage where the API is missing, rather than passing', () => {
    expect(find(result.checks, 'SSM management', 'us-east-1')).toMatchObject({
      status: 'unknown',
      detail: expect.stringContaining('could not check'),
    });
  });

  it('reports the VPC without SSM and S3 endpoints, and passes the one with them', () => {
    expect(find(result.checks, 'VPC endpoints', exposed.vpcId)).toMatchObject({
      status: 'fail',
      resources: ['ssm', 'ssmmessages', 'ec2messages', 's3'],
      fix: expect.stringContaining(`com.amazonaws.us-east-1.ssm, com.amazonaws.us-east-1.ssmmessages`),
    });
    expect(find(result.checks, 'VPC endpoints', covered.vpcId)).toMatchObject({ status: 'pass' });
  });

  it('reports an evidence bucket without versioning or Object Lock', () => {
    expect(find(result.checks, 'Evidence bucket lock')).toMatchObject({
      status: 'fail',
      scope: 'gaps-evidence',
      detail: 'versioning is not enabled; Object Lock is not enabled; there is no default retention',
    });
  });

  it('reports a signing key that cannot sign', () => {
    expect(find(result.checks, 'Signing key')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('key spec is SYMMETRIC_DEFAULT, not ECC_NIST_P256'),
    });
  });

  it('reports a memory tool whose hash is not the pinned one, and one not uploaded', () => {
    expect(find(result.checks, 'Memory tool AVML (Linux)')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining(`but the stack pins ${'a'.repeat(64)}`),
    });
    expect(find(result.checks, 'Memory tool WinPmem (Windows)')).toMatchObject({
      status: 'fail',
      detail: 'not uploaded',
      fix: expect.stringContaining('s3://gaps-tools/tools/winpmem.exe'),
    });
  });

  it('reports the root user without MFA', () => {
    expect(find(result.checks, 'Root MFA')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('MFA'),
    });
  });

  it('gives every failed check a fix', () => {
    for (const c of result.checks.filter((c) => c.status === 'fail')) expect(c.fix, c.check).not.toBe('');
  });
});

describe('cordon doctor on a ready stack', () => {
  it('passes the evidence bucket and the signing key the stack created', async () => {
    const { checks } = await doctor();

    expect(find(checks, 'Cordon stack')).toMatchObject({ status: 'pass' });
    expect(find(checks, 'Evidence bucket lock')).toMatchObject({
      status: 'pass',
      detail: expect.stringContaining('Object Lock GOVERNANCE for 1 days'),
    });
    expect(find(checks, 'Signing key')).toMatchObject({ status: 'pass' });
  });

  it('reports a missing stack with how to deploy it, and still checks the account', async () => {
    const { code, checks } = await doctor('--stage', 'nothere');

    expect(code).toBe(1);
    expect(find(checks, 'Cordon stack')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('No Cordon stack cordon-nothere'),
    });
    expect(find(checks, 'GuardDuty', 'us-east-1')).toBeDefined();
    expect(find(checks, 'Signing key')).toBeUndefined();
  });

  it('prints each verdict with its fix for people', async () => {
    const { code, stdout } = await cordon(endpoint, ['doctor', '--stage', 'gaps']);

    expect(code).toBe(1);
    expect(stdout).toMatch(/^FAIL\s+GuardDuty\s+us-east-1: detector \w+ is DISABLED$/m);
    expect(stdout).toMatch(/^\s+fix: aws guardduty update-detector/m);
    expect(stdout).toMatch(/^UNKNOWN\s+SSM management\s+us-east-1: could not check/m);
    expect(stdout).toMatch(/^\d+ passed, \d+ failed, \d+ could not be checked\.$/m);
  });
});

// moto implements DescribeHub as Security Hub does: InvalidAccessException ("not subscribed") until
// EnableSecurityHub, then the hub. The tests below run in order on that one account.
describe('cordon doctor on the Security Hub trigger', () => {
  it('does not ask Security Hub when the stage turns on none of its triggers (the default)', async () => {
    const { checks } = await doctor();

    expect(find(checks, 'Security Hub')).toMatchObject({
      status: 'pass',
      scope: 'us-east-1',
      detail: 'not needed: stage dev turns on no Security Hub trigger',
    });
  });

  it('fails before a deploy that would create the custom action where Security Hub is off', async () => {
    const { code, checks } = await doctor('--param', 'acceptSecurityHubCustomAction=true');

    expect(code).toBe(1);
    expect(find(checks, 'Security Hub')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('the deploy cannot create the custom action and rolls back'),
      fix: expect.stringContaining('aws securityhub enable-security-hub --region us-east-1'),
    });
  });

  it('passes once Security Hub is enabled in the region', async () => {
    await new SecurityHubClient(aws).send(new EnableSecurityHubCommand({}));

    const { checks } = await doctor(
      '--param',
      'acceptSecurityHubCustomAction=true',
      '--param=acceptSecurityHubImported=true',
    );

    expect(find(checks, 'Security Hub')).toMatchObject({
      status: 'pass',
      detail: expect.stringMatching(
        /^enabled since .+, for the custom action \(acceptSecurityHubCustomAction\) and imported findings \(acceptSecurityHubImported\)$/,
      ),
    });
  });
});
