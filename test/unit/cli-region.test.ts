import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { profilesIn, regionFromEnvironment } from '../../scripts/cli/aws.js';
import { checkRegions } from '../../scripts/cli/commands/doctor.js';
import { runCli } from '../../scripts/cli/main.js';
import { capturedIo } from '../support/cli-fixtures.js';
import { cordonOnAws, mockDeployedStack } from '../support/cli-mocks.js';

const ddb = mockClient(DynamoDBDocumentClient);
const sfn = mockClient(SFNClient);
let stack: ReturnType<typeof mockDeployedStack>;
let home: string;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'cordon-region-'));
  await writeFile(
    join(home, 'config'),
    '[default]\nregion = ap-south-1\n\n[profile responder]\nregion = eu-central-1\n# [profile commented]\n',
  );
  await writeFile(join(home, 'credentials'), '[keys-only]\naws_access_key_id = AKIA\n');
});

afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

beforeEach(() => {
  ddb.reset();
  sfn.reset();
  stack = mockDeployedStack();
  ddb.on(ScanCommand).resolves({ Items: [] });
  // No region or profile from the machine running the tests: each test sets what it means.
  for (const name of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE']) vi.stubEnv(name, undefined);
  vi.stubEnv('AWS_CONFIG_FILE', join(home, 'config'));
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', join(home, 'credentials'));
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIATEST');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
});

/** `cordon ARGS` exactly as typed: no region added. */
async function cordon(args: string[]) {
  const io = capturedIo();
  const code = await runCli(args, { io, sleep: async () => undefined });
  return { code, stdout: io.stdout, stderr: io.stderr };
}

/** The region the client that asked CloudFormation for the stack was built for. */
async function stackRegionAsked(): Promise<string> {
  const call = stack.cfn.commandCalls(DescribeStacksCommand)[0];
  if (!call) throw new Error('CloudFormation was not asked for the stack');
  return (call.thisValue as CloudFormationClient).config.region();
}

describe('the region of the stack and of every call', () => {
  it('is AWS_DEFAULT_REGION when AWS_REGION is not set, as in the AWS CLI', async () => {
    vi.stubEnv('AWS_DEFAULT_REGION', 'eu-west-1');

    const { code, stderr } = await cordon(['cases']);

    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(await stackRegionAsked()).toBe('eu-west-1');
  });

  it('is AWS_REGION before AWS_DEFAULT_REGION', async () => {
    vi.stubEnv('AWS_REGION', 'us-west-2');
    vi.stubEnv('AWS_DEFAULT_REGION', 'eu-west-1');

    await cordon(['cases']);

    expect(await stackRegionAsked()).toBe('us-west-2');
  });

  it('is --region before either', async () => {
    vi.stubEnv('AWS_REGION', 'us-west-2');

    await cordon(['cases', '--region', 'sa-east-1']);

    expect(await stackRegionAsked()).toBe('sa-east-1');
  });

  it("is the profile's own region when the environment names none", async () => {
    await cordon(['cases', '--profile', 'responder']);

    expect(await stackRegionAsked()).toBe('eu-central-1');
  });

  it('still takes the old --stack-region, saying it is deprecated', async () => {
    const { code, stderr } = await cordon(['cases', '--stack-region', 'eu-north-1']);

    expect(code).toBe(0);
    expect(stderr).toBe(
      'cordon: --stack-region is deprecated: use --region, which now means the same in every command.\n',
    );
    expect(await stackRegionAsked()).toBe('eu-north-1');
  });

  it('refuses a region that is not one before any call', async () => {
    const { code, stderr } = await cordon(['cases', '--region', 'mars-1']);

    expect(code).toBe(2);
    expect(stderr).toContain('--region is not an AWS region');
    expect(stack.cfn.calls()).toHaveLength(0);
  });

  it('names every way to set one when none is configured', async () => {
    vi.stubEnv('AWS_CONFIG_FILE', join(home, 'no-such-config'));

    const { code, stderr } = await cordon(['cases']);

    expect(code).toBe(3);
    expect(stderr).toContain('cordon: No AWS region is configured.');
    expect(stderr).toContain('Pass --region REGION');
    expect(stderr).toContain('AWS_DEFAULT_REGION');
  });

  it('reads AWS_REGION, then AWS_DEFAULT_REGION, ignoring empty values', () => {
    expect(regionFromEnvironment({ AWS_REGION: '', AWS_DEFAULT_REGION: 'eu-west-1' })).toBe('eu-west-1');
    expect(regionFromEnvironment({ AWS_REGION: 'us-east-2', AWS_DEFAULT_REGION: 'eu-west-1' })).toBe(
      'us-east-2',
    );
    expect(regionFromEnvironment({})).toBeUndefined();
  });
});

describe('the instance region', () => {
  it('is --instance-region in start, sent as the instance’s own, while the stack stays in --region', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: 'arn:aws:states:us-east-1:1:execution:x:y' });

    await cordonOnAws([
      'start',
      '--instance',
      'i-0123456789abcdef0',
      '--instance-region',
      'eu-west-3',
      '--reason',
      'beaconing',
      '--json',
    ]);

    expect(sfn).toHaveReceivedCommandWith(StartExecutionCommand, {
      input: expect.stringContaining('"region":"eu-west-3"'),
    });
    expect(await stackRegionAsked()).toBe('us-east-1');
  });

  it('refuses one that is not a region, naming the option', async () => {
    const { code, stderr } = await cordonOnAws([
      'start',
      '--instance',
      'i-0123456789abcdef0',
      '--instance-region',
      'eu',
      '--reason',
      'x',
    ]);

    expect(code).toBe(2);
    expect(stderr).toContain('--instance-region');
    expect(sfn.calls()).toHaveLength(0);
  });
});

describe('doctor --check-region', () => {
  it('takes several regions, each checked, duplicates once', () => {
    expect(checkRegions(['eu-west-1', 'us-east-1', 'eu-west-1'])).toEqual(['eu-west-1', 'us-east-1']);
    expect(checkRegions(undefined)).toEqual([]);
    expect(() => checkRegions(['eu-west-1', 'nowhere'])).toThrow(
      '--check-region "nowhere" is not an AWS region',
    );
  });
});

describe('a profile', () => {
  it('that no shared file defines is named, and nothing is called', async () => {
    const { code, stderr } = await cordon(['cases', '--profile', 'nosuch', '--region', 'us-east-1']);

    expect(code).toBe(3);
    expect(stderr).toContain(
      `cordon: The AWS profile "nosuch" is not defined in ${join(home, 'config')} or ${join(home, 'credentials')}.`,
    );
    expect(stderr).toContain('aws configure list-profiles');
    expect(stack.cfn.calls()).toHaveLength(0);
  });

  it('named by AWS_PROFILE is checked the same way', async () => {
    vi.stubEnv('AWS_PROFILE', 'typo');

    const { code, stderr } = await cordon(['cases', '--region', 'us-east-1']);

    expect(code).toBe(3);
    expect(stderr).toContain('The AWS profile "typo" is not defined');
  });

  it('is found in the config file as [profile NAME] or [default], in the credentials file as [NAME]', () => {
    const config = '[default]\n[profile a]\n[ profile b ] ; note\n[sso-session s]\n[c]\n';
    expect([...profilesIn(config, 'config')]).toEqual(['default', 'a', 'b']);
    expect([...profilesIn('[x]\nkey = [y]\n', 'credentials')]).toEqual(['x']);
  });
});
