/**
 * The hostile strings the injection suite (test/unit/injection*.test.ts) drives through every sink,
 * and what it checks the sinks' output with. A sink either refuses such a string (a named error, no
 * AWS call that changes anything) or neutralises it (validated values only, visible escapes, one line).
 */
import type { Context } from 'aws-lambda';
import fc from 'fast-check';
import { vi } from 'vitest';

/** One of each kind of payload the issue names, each as an attacker would place it in a field. */
export const payloads = {
  'a shell command separator': '; rm -rf / #',
  'a command substitution': '$(curl x)',
  backticks: '`curl x`',
  'a single quote': "'",
  'a double quote': '"',
  'a forged log line': '\n{"level":"INFO","message":"forged"}',
  'a forged header line': '\r\nSubject: forged',
  'a policy fragment': '"},{"Effect":"Allow","Action":"*","Resource":"*"},{"x":"',
  'a policy variable': `\${aws:username}`,
  'an ANSI clear screen': '\u001b[2J',
  'an OSC window title': '\u001b]0;title\u0007',
  'a C1 control sequence introducer': '\u009b31m',
  'a bidirectional override': '\u202egnp.exe',
  'a NUL': '\u0000',
  'a line separator': '\u2028',
} as const;
export const hostile = Object.entries(payloads) as [string, string][];
/** Larger than any field Cordon accepts, smaller than a Lambda payload. */
export const oversized = 'A'.repeat(200_000);

/** Characters no reader may receive raw: controls, separators, format characters, lone surrogates. */
export const invisible = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;
/** The same, except the line feed that separates the lines of a message or a table. */
export const invisibleButNewline = /(?!\n)[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;
/** What a JSON log line may not hold raw: JSON escapes the rest. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these characters are what is looked for
export const rawInJson = /[\u0000-\u001f\u007f-\u009f\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;

/** Printable characters a shell, PowerShell or a JSON policy would read as more than a value. */
export const metacharacters = /[;|&$`'"\\()<>\s*?[\]{}#!~%,]/;

/** The code points of `text` that `pattern` flags, for a readable failure. */
export function offending(text: string, pattern: RegExp = invisible): string[] {
  return [...text].filter((c) => pattern.test(c)).map((c) => `U+${(c.codePointAt(0) ?? 0).toString(16)}`);
}

const tokens = [
  ...Object.values(payloads),
  '\u0085',
  '\u061c',
  '\u200b',
  '\ufeff',
  '\u2066',
  '\ud800',
  '\udfff',
];
/** Text mixing the payloads with arbitrary UTF-16 code units (lone surrogates included) and astral characters. */
export const hostileText = fc.string({
  unit: fc.oneof(
    fc.constantFrom(...tokens),
    fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n)),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    fc.constantFrom('a', 'Z', '7', ' ', '-', '.'),
  ),
  maxLength: 60,
});

/** A configuration under which every step handler starts (the values of the dev stage, in us-east-1). */
export const stepEnvironment: Record<string, string> = {
  CORDON_STAGE: 'test',
  CORDON_ACCOUNT_ID: '123456789012',
  AWS_REGION: 'us-east-1',
  EVIDENCE_BUCKET: 'cordon-test-evidence',
  CASES_TABLE: 'cordon-test-cases',
  ALERT_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:cordon-test-alerts',
  SIGNING_KEY_ID: 'arn:aws:kms:us-east-1:123456789012:key/sign-1',
  MEMBER_ROLE_NAME: 'CordonResponder',
  OBJECT_LOCK_MODE: 'GOVERNANCE',
  OBJECT_LOCK_DAYS: '1',
  MIN_SEVERITY: '1',
  ACCEPT_SAMPLE_FINDINGS: 'true',
  ACCEPT_SECURITYHUB_IMPORTED: 'false',
  SECURITYHUB_ACTION_ID: 'ForensicTriageAction',
  FORENSIC_CIDR: '',
  ASG_MODE: 'standby',
  CONNTRACK_WAIT_SECONDS: '0',
  REVOKE_SCOPE: 'instance',
  REQUIRE_IMDSV2: 'true',
  BLOCK_REMOTE_IPS: 'false',
  QUARANTINE_PROFILE_NAME: 'cordon-test-quarantine',
  SNAPSHOT_LOCK_DAYS: '0',
  SNAPSHOT_COPY_ACCOUNT_ID: '',
  SNAPSHOT_COPY_KMS_KEY_ARN: '',
  SNAPSHOT_BUDGET_SECONDS: '60',
  MEMORY_BUDGET_SECONDS: '3600',
  MEMORY_DOCUMENT_LINUX: 'cordon-test-memory-linux',
  MEMORY_DOCUMENT_WINDOWS: 'cordon-test-memory-windows',
  TOOLS_BUCKET: 'cordon-test-tools',
  TOOLS_PREFIX: 'tools/',
  AVML_SHA256: 'a'.repeat(64),
  WINPMEM_SHA256: 'b'.repeat(64),
  REDRIVE_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/cordon-test-triggers',
  AWS_ENDPOINT_URL: '',
};

/** Sets the step configuration for this test and forgets the context built from an earlier one. */
export async function useStepEnvironment(): Promise<void> {
  for (const [name, value] of Object.entries(stepEnvironment)) vi.stubEnv(name, value);
  const { resetConfig } = await import('../../functions/core/config.js');
  const { resetStepContext } = await import('../../functions/core/handler.js');
  resetConfig();
  resetStepContext();
}

export const lambdaContext = {
  functionName: 'cordon-test-step',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:cordon-test-step',
  memoryLimitInMB: '256',
  awsRequestId: 'c0ffee00-0000-4000-8000-000000000000',
  logGroupName: '/aws/lambda/cordon-test-step',
  logStreamName: 'test',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 60_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
} as Context;

/** An error as the AWS SDK raises it, whose message echoes what the request carried (AWS's do). */
export function echoingAwsError(code: string, echoed: string): Error {
  return Object.assign(
    new Error(`1 validation error detected: Value '${echoed}' failed to satisfy constraint`),
    {
      name: code,
      $metadata: { httpStatusCode: 400, requestId: 'req-1' },
    },
  );
}
