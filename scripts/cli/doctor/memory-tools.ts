import { createHash } from 'node:crypto';
import type { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { awsErrorCode } from '../../../functions/core/errors.js';
import { functionEnvironment } from '../stack.js';
import { allow, type Check, guarded, why } from './check.js';

/** What the stack pins for the memory tools (the capture function's environment). */
export interface PinnedTools {
  prefix: string;
  avmlSha256: string;
  winpmemSha256: string;
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
        fix: allow('cloudformation:GetTemplate on the stack'),
      },
    ];
  }
  const tools = [
    {
      name: 'AVML (Linux)',
      file: 'avml',
      sha: pinned.avmlSha256,
      param: 'avmlSha256',
      platform: 'Linux',
      optional: false,
    },
    {
      name: 'WinPmem (Windows)',
      file: 'winpmem.exe',
      sha: pinned.winpmemSha256,
      param: 'winpmemSha256',
      platform: 'Windows',
      optional: true,
    },
  ];
  const checks: Check[] = [];
  for (const tool of tools) {
    const key = `${pinned.prefix}${tool.file}`;
    const base = { check: `Memory tool ${tool.name}`, scope: `s3://${bucket}/${key}` };
    if (!tool.sha) {
      // An empty WinPmem pin is how a stage says it has no Windows instances (README: "or empty to skip
      // Windows"): a choice, not a gap. AVML has no such choice: it is required at deploy.
      checks.push(
        tool.optional
          ? {
              ...base,
              status: 'pass',
              detail: `none pinned, on purpose: memory capture is skipped on ${tool.platform} instances`,
              fix: '',
            }
          : {
              ...base,
              status: 'fail',
              detail: `no SHA-256 is pinned: memory capture is skipped on ${tool.platform} instances`,
              fix: `Set ${tool.param} in serverless.yml params to the tool's SHA-256 and deploy.`,
            },
      );
      continue;
    }
    checks.push(
      await guarded(base, allow('s3:GetObject on the tools bucket'), async () => {
        const found = await hashToolObject(s3, bucket, key);
        return found === undefined
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
              };
      }),
    );
  }
  return checks;
}

/** What the stack pins for the memory tools, from the capture function's environment in its template. */
export async function pinnedToolsFromTemplate(
  cfn: CloudFormationClient,
  stackName: string,
  functionName: string,
): Promise<PinnedTools | { error: string }> {
  try {
    const vars = await functionEnvironment(cfn, stackName, functionName);
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
