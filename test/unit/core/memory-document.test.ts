import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { EC2Client } from '@aws-sdk/client-ec2';
import {
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand as PutObject,
  type PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { DescribeDocumentCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { captureMemory } from '../../../functions/forensics/capture-memory/capture-memory.js';
import {
  type CommandDocument,
  memoryDocuments,
  resolveParameters,
  standInToolSha256,
} from '../../../scripts/local/emulated-ssm-agent.js';
import { MemoryTimeline, sampleCase } from '../../support/core-fakes.js';
import { evidenceConfig, fixedClock, repoRoot, triageFor } from '../../support/evidence-fixtures.js';

const ssm = mockClient(SSMClient);
const s3 = mockClient(S3Client);
const sts = mockClient(STSClient);
const documents = memoryDocuments();
const platforms = Object.entries(documents) as [string, CommandDocument][];
const rawTemplate = parse(readFileSync(resolve(repoRoot, 'resources/memory-capture.yml'), 'utf8'), {
  logLevel: 'error',
}) as { Resources: Record<string, { Properties: { Content: CommandDocument } }> };

const link = Buffer.from(
  'https://cordon-tools.s3.us-east-1.amazonaws.com/tools/avml?X-Amz-Expires=900&a=b',
).toString('base64');
/** A value each parameter accepts, so that refusing a changed one means something. */
const valid: Record<string, string> = {
  CaseId: sampleCase.caseId,
  ToolUrl: link,
  ToolSha256: 'a'.repeat(64),
  SessionUrl: link,
  Compress: 'true',
  PartSizeMiB: '64',
  ExecutionTimeout: '3600',
};
/** What a shell (or PowerShell) would read as more than a value. */
const metacharacters = [
  ';',
  '|',
  '&',
  '$',
  '`',
  "'",
  '"',
  '\\',
  '(',
  ')',
  '<',
  '>',
  ' ',
  '\t',
  '\n',
  '*',
  '?',
  '[',
  ']',
  '{',
  '}',
  '#',
  '!',
  '~',
  '%',
  ',',
];

describe('the memory capture documents', () => {
  beforeEach(() => {
    ssm.reset();
    s3.reset();
    sts.reset();
  });

  it.each(platforms)('declare schema 2.2 (%s)', (_, document) => {
    expect(document.schemaVersion).toBe('2.2');
  });

  it.each(platforms)('constrain every parameter with an allowedPattern (%s)', (_, document) => {
    for (const [name, parameter] of Object.entries(document.parameters)) {
      expect(parameter.allowedPattern, name).toMatch(/^\^.*\$$/);
    }
  });

  it.each(platforms)('accept a well-formed value for every parameter (%s)', (_, document) => {
    for (const [name, parameter] of Object.entries(document.parameters)) {
      expect(new RegExp(parameter.allowedPattern as string).test(valid[name] as string), name).toBe(true);
    }
  });

  it.each(platforms)(
    'refuse shell metacharacters in every parameter, wherever they appear (%s)',
    (_, document) => {
      for (const [name, parameter] of Object.entries(document.parameters)) {
        const pattern = new RegExp(parameter.allowedPattern as string);
        const value = valid[name] as string;
        for (const c of metacharacters) {
          for (const tampered of [
            `${c}${value}`,
            `${value}${c}`,
            `${value.slice(0, 2)}${c}${value.slice(2)}`,
          ]) {
            expect(pattern.test(tampered), `${name} accepted ${JSON.stringify(tampered)}`).toBe(false);
          }
        }
      }
    },
  );

  it.each(platforms)('use every parameter they declare, and no other (%s)', (_, document) => {
    const script = JSON.stringify(document.mainSteps);
    const used = new Set([...script.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]));
    expect([...used].sort()).toEqual(Object.keys(document.parameters).sort());
  });

  it.each([
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the Serverless Framework's own variable syntax
    ['MemoryCaptureLinuxDocument', '${file(capture/linux/capture-memory.sh)}'],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the Serverless Framework's own variable syntax
    ['MemoryCaptureWindowsDocument', '${file(capture/windows/capture-memory.ps1)}'],
  ])('run the capture script kept in the repository (%s)', (logicalId, inclusion) => {
    const runCommand = rawTemplate.Resources[logicalId]?.Properties.Content.mainSteps[0]?.inputs.runCommand;
    expect(runCommand?.at(-1)).toBe(inclusion);
  });

  it.each(['capture/linux/capture-memory.sh', 'capture/windows/capture-memory.ps1'])(
    'can inline %s: it holds neither a framework variable nor an SSM parameter reference',
    (file) => {
      const text = readFileSync(resolve(repoRoot, file), 'utf8');
      expect(text).not.toContain('${');
      expect(text).not.toContain('{{');
    },
  );

  it('accept every parameter Capture Memory sends', async () => {
    // Prepare
    ssm.on(DescribeDocumentCommand).resolves({ Document: { DocumentVersion: '1', Status: 'Active' } });
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: '5c1f3a2e-8d9b-4c7a-9e6f-0a1b2c3d4e5f' } });
    s3.on(HeadObjectCommand).resolves({ VersionId: 'v1' });
    s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    s3.on(PutObject).resolves({});
    sts.on(AssumeRoleCommand).resolves({
      Credentials: {
        AccessKeyId: 'ASIAEXAMPLE',
        SecretAccessKey: 'secret',
        SessionToken: 'token',
        Expiration: new Date(),
      },
    });
    const presign = async (command: PutObjectCommand | { input: unknown }) => {
      const input = command.input as { Bucket: string; Key: string };
      return `https://${input.Bucket}.s3.us-east-1.amazonaws.com/${input.Key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc`;
    };

    // Act
    await captureMemory(
      { case: sampleCase, triage: triageFor() },
      {
        ssm: new SSMClient({ region: 'us-east-1' }),
        ec2: new EC2Client({ region: 'us-east-1' }),
        s3: new S3Client({ region: 'us-east-1' }),
        sts: new STSClient({ region: 'us-east-1' }),
        presign,
        recorder: new MemoryTimeline().recorder(sampleCase.caseId, 'capture-memory'),
        config: evidenceConfig,
        now: fixedClock().now,
      },
    );
    const sent = ssm.commandCalls(SendCommandCommand)[0]?.args[0].input.Parameters ?? {};

    // Assess
    expect(() => resolveParameters(documents.linux, sent)).not.toThrow();
  });
});

describe('the pinned tool hashes', () => {
  const params = (
    parse(readFileSync(resolve(repoRoot, 'serverless.yml'), 'utf8'), { logLevel: 'error' }) as {
      params: Record<string, Record<string, unknown>>;
    }
  ).params;

  it('have no default, so that every production stage must pin the binaries it uploads', () => {
    expect(params.default).not.toHaveProperty('avmlSha256');
    expect(params.default).not.toHaveProperty('winpmemSha256');
  });

  it('pin, for the dev stage, the SHA-256 of the stand-in tool the demo uploads', () => {
    expect(params.dev?.avmlSha256).toBe(standInToolSha256());
  });
});
