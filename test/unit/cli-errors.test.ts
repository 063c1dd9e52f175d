import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Aws } from '../../scripts/cli/aws.js';
import { explain, iamActionFor } from '../../scripts/cli/errors.js';
import { cordonOnAws, mockDeployedStack } from '../support/cli-mocks.js';

const ddb = mockClient(DynamoDBDocumentClient);
let stack: ReturnType<typeof mockDeployedStack>;

beforeEach(() => {
  ddb.reset();
  stack = mockDeployedStack();
});

describe('explain', () => {
  it('tells a person without credentials how to sign in', () => {
    const error = Object.assign(new Error('Could not load credentials from any providers'), {
      name: 'CredentialsProviderError',
    });

    expect(explain(error)).toMatchObject({
      message: 'No AWS credentials were found.',
      hint: expect.stringContaining('aws sso login'),
      exitCode: 3,
    });
  });

  it('names the permission an operation needs, the versioned form for a named version', () => {
    expect(
      iamActionFor({ service: 'S3Client', command: 'HeadObjectCommand', input: { VersionId: 'v1' } }),
    ).toBe('s3:GetObjectVersion');
    expect(iamActionFor({ service: 'S3Client', command: 'ListObjectsV2Command', input: {} })).toBe(
      's3:ListBucket',
    );
    expect(iamActionFor({ service: 'DynamoDBClient', command: 'ScanCommand', input: {} })).toBe(
      'dynamodb:Scan',
    );
    expect(iamActionFor({ service: 'SFNClient', command: 'GetExecutionHistoryCommand', input: {} })).toBe(
      'states:GetExecutionHistory',
    );
  });

  it('prefers the action AWS names in its own message', () => {
    const error = Object.assign(
      new Error(
        'User: arn:aws:sts::1:assumed-role/x/y is not authorized to perform: dynamodb:Scan on resource: arn:aws:dynamodb:us-east-1:1:table/t because no identity-based policy allows it',
      ),
      { name: 'AccessDeniedException' },
    );

    expect(explain(error).message).toBe('Access denied: your identity may not call dynamodb:Scan.');
  });
});

describe('an S3 refusal from the service itself', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    // S3 answers a HEAD it refuses with a bare 403: no code, no message, no action named.
    server = createServer((_req, res) => {
      res.writeHead(403, { 'x-amz-request-id': 'REQ1' });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it('is explained with the permission the call needed and the object it was for', async () => {
    const s3 = await new Aws({ endpoint: url }).s3();

    const error = await s3
      .send(new HeadObjectCommand({ Bucket: 'evidence', Key: 'cases/c/triage.json', VersionId: 'v1' }))
      .catch((e: unknown) => e);

    expect(explain(error)).toMatchObject({
      message:
        'Access denied: your identity may not call s3:GetObjectVersion on s3://evidence/cases/c/triage.json.',
      exitCode: 3,
    });
  });
});

describe('runCli', () => {
  const unknown = '20250101T000000Z-i-0123456789abcdef0-0000';

  it('names an unknown case, exits 3 and prints no stack trace', async () => {
    ddb.on(GetCommand).resolves({});

    const { code, stdout, stderr } = await cordonOnAws(['status', unknown]);

    expect(code).toBe(3);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      `cordon: There is no case ${unknown} in the table cordon-cases-dev.\n  List the cases with \`cordon cases\`; check --stage and --region.\n`,
    );
  });

  it('prints the stack trace with --debug', async () => {
    ddb.on(GetCommand).resolves({});

    const { stderr } = await cordonOnAws(['status', unknown, '--debug']);

    expect(stderr).toMatch(/UnknownCaseError: There is no case/);
    expect(stderr).toMatch(/\n\s+at /);
  });

  it('says there is no stack in that region, and how to deploy one', async () => {
    stack.cfn.reset();
    mockClient(CloudFormationClient)
      .on(DescribeStacksCommand)
      .rejects(
        Object.assign(new Error('Stack with id cordon-dev does not exist'), { name: 'ValidationError' }),
      );

    const { code, stderr } = await cordonOnAws(['evidence', 'ls', unknown]);

    expect(code).toBe(3);
    expect(stderr).toContain('cordon: No Cordon stack cordon-dev in us-east-1.');
    expect(stderr).toContain('npx osls deploy --stage dev --region us-east-1');
  });

  it('refuses a malformed case id before any AWS call', async () => {
    const { code, stderr } = await cordonOnAws(['status', 'cases/../../etc']);

    expect(code).toBe(2);
    expect(stderr).toContain('cordon: "cases/../../etc" is not a Cordon case id');
    expect(stack.cfn).toHaveReceivedCommandTimes(DescribeStacksCommand, 0);
    expect(ddb).toHaveReceivedCommandTimes(GetCommand, 0);
  });

  it('names an option the command does not take', async () => {
    const { code, stderr } = await cordonOnAws(['cases', '--bogus']);

    expect(code).toBe(2);
    expect(stderr).toContain("Unknown option '--bogus'");
    expect(stderr).toContain('Run cordon cases --help.');
  });

  it('prints help for every command without touching AWS', async () => {
    for (const command of [
      ['start'],
      ['status'],
      ['cases'],
      ['evidence', 'ls'],
      ['evidence', 'get'],
      ['evidence', 'verify'],
      ['release'],
      ['doctor'],
    ]) {
      const { code, stdout } = await cordonOnAws([...command, '--help']);

      expect(code, command.join(' ')).toBe(0);
      expect(stdout).toMatch(new RegExp(`^usage: cordon ${command.join(' ')}`));
      expect(stdout).toContain('--endpoint URL');
    }
    expect(stack.cfn).toHaveReceivedCommandTimes(DescribeStacksCommand, 0);
  });
});
