/**
 * Injection, part 2: SSM SendCommand and the capture scripts it runs. SSM pastes parameter values into
 * the script's text, so Capture Memory must send validated values only, and the scripts check every
 * value again (and every line of the upload session they download) before using it, never evaluating
 * one. The payloads are in test/support/injection.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EC2Client } from '@aws-sdk/client-ec2';
import {
  CreateMultipartUploadCommand,
  type GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { DescribeDocumentCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { caseIdPattern, caseSchema } from '../../functions/core/case.js';
import { captureMemory } from '../../functions/forensics/capture-memory/capture-memory.js';
import { MemoryTimeline, sampleCase } from '../support/core-fakes.js';
import {
  captureScriptPath,
  evidenceConfig,
  fixedClock,
  repoRoot,
  runBash,
  triageFor,
} from '../support/evidence-fixtures.js';
import { hostile, hostileText, invisible, metacharacters, payloads } from '../support/injection.js';

const ssm = mockClient(SSMClient);
const s3 = mockClient(S3Client);
const sts = mockClient(STSClient);
const scratch = mkdtempSync(join(tmpdir(), 'cordon-injection-'));
let counter = 0;
/** A file path that does not exist yet: a payload that ran would create it. */
const marker = () => join(scratch, `ran-${++counter}`);

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
  rmSync(fakeBin, { recursive: true, force: true });
}, 60_000);

/** Deterministic links shaped like the SDK's presigned ones. */
async function presign(command: GetObjectCommand | PutObjectCommand, expiresIn: number): Promise<string> {
  const input = command.input as { Bucket: string; Key: string };
  return `https://${input.Bucket}.s3.us-east-1.amazonaws.com/${input.Key}?X-Amz-Expires=${expiresIn}&X-Amz-Signature=abc`;
}

function answerCapture(): void {
  ssm.on(DescribeDocumentCommand).resolves({ Document: { DocumentVersion: '3', Status: 'Active' } });
  ssm.on(SendCommandCommand).resolves({ Command: { CommandId: '5c1f3a2e-8d9b-4c7a-9e6f-0a1b2c3d4e5f' } });
  s3.on(HeadObjectCommand).resolves({ VersionId: 'v1' });
  s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'Ab.c_d-e~f+g/h=' });
  s3.on(PutObjectCommand).resolves({});
  sts.on(AssumeRoleCommand).resolves({
    Credentials: {
      AccessKeyId: 'ASIAEXAMPLEEXAMPLE01',
      SecretAccessKey: 'EXAMPLE/secret+EXAMPLEsecretEXAMPLEsecre',
      SessionToken: 'EXAMPLEtokenEXAMPLEtokenEXAMPLEtoken==',
      Expiration: new Date('2026-11-27T21:30:00Z'),
    },
  });
}

function captureDeps() {
  return {
    ssm: new SSMClient({ region: 'us-east-1' }),
    ec2: new EC2Client({ region: 'us-east-1' }),
    s3: new S3Client({ region: 'us-east-1' }),
    sts: new STSClient({ region: 'us-east-1' }),
    presign,
    recorder: new MemoryTimeline().recorder(sampleCase.caseId, 'capture-memory'),
    config: evidenceConfig,
    now: fixedClock().now,
  };
}

const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
/** What each parameter may hold; none of these admits a metacharacter. */
const parameterShapes: Record<string, RegExp> = {
  CaseId: caseIdPattern,
  ToolUrl: /^[A-Za-z0-9+/]{16,8188}={0,2}$/,
  ToolSha256: /^[0-9a-f]{64}$/,
  SessionUrl: /^[A-Za-z0-9+/]{16,8188}={0,2}$/,
  PartSizeMiB: /^[1-9][0-9]{0,3}$/,
  ExecutionTimeout: /^[1-9][0-9]{1,4}$/,
  Compress: /^(true|false)$/,
};

describe('Capture Memory sends SSM validated values only', { timeout: 60_000 }, () => {
  beforeEach(() => {
    ssm.reset();
    s3.reset();
    sts.reset();
    answerCapture();
  });

  it('whatever the case id and the free text around it, every parameter has its shape and no payload reaches the command', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.stringMatching(caseIdPattern),
        hostileText,
        hostileText,
        async (caseId, raw, reason) => {
          ssm.resetHistory();
          s3.resetHistory();
          // Free text keeps its printable payloads (control characters are refused at the edge: injection.test.ts).
          const text = `HOSTILE<${raw.replace(new RegExp(invisible.source, 'gu'), '')}>`;
          const trigger = { ...sampleCase.trigger, reason: text, findingType: text, requestedBy: text };
          const c = { ...sampleCase, caseId, trigger };
          expect(caseSchema.safeParse(c).success).toBe(true);
          const triage = triageFor({ plan: { reason: `HOSTILE<${reason}>` } });

          await captureMemory({ case: c, triage }, captureDeps());

          const input = ssm.commandCalls(SendCommandCommand)[0]?.args[0].input;
          const parameters = input?.Parameters ?? {};
          expect(Object.keys(parameters).sort()).toEqual(Object.keys(parameterShapes).sort());
          for (const [name, values] of Object.entries(parameters)) {
            expect(values).toHaveLength(1);
            expect(values[0], name).toMatch(parameterShapes[name] as RegExp);
            expect(metacharacters.test(values[0] as string), name).toBe(false);
          }
          expect(parameters.CaseId).toEqual([caseId]);
          for (const link of [parameters.ToolUrl?.[0], parameters.SessionUrl?.[0]]) {
            expect(decode(link as string)).toMatch(
              /^https:\/\/[a-z0-9.-]+\/[A-Za-z0-9._~/%-]+\?[A-Za-z0-9._~%=&-]+$/,
            );
          }
          expect(input?.Comment).toBe(`Cordon case ${caseId}: memory capture`);
          const sent = JSON.stringify([input, s3.commandCalls(PutObjectCommand)[0]?.args[0].input.Body]);
          expect(sent).not.toContain('HOSTILE');
        },
      ),
      { numRuns: 60 },
    );
  });

  it('writes an upload session that the capture script accepts field by field', async () => {
    await captureMemory({ case: sampleCase, triage: triageFor() }, captureDeps());
    const body = String(s3.commandCalls(PutObjectCommand)[0]?.args[0].input.Body);

    const [run] = await readSessions([body]);

    expect(run?.code, run?.stderr).toBe(0);
    expect(run?.stdout).toBe('Ab.c_d-e~f%2Bg%2Fh%3D');
  });
});

// ---------------------------------------------------------------------------------------------------
// The Linux capture script, run by bash as the SSM agent runs it
// ---------------------------------------------------------------------------------------------------

/** A `curl` that only records that it ran, ahead of the real one on PATH: nothing may reach the network. */
const fakeBin = mkdtempSync(join(tmpdir(), 'cordon-fake-bin-'));
writeFileSync(join(fakeBin, 'curl'), '#!/bin/sh\ntouch "$CURL_MARKER"\nexit 7\n', { mode: 0o755 });

/**
 * Runs `body` once per case, each in its own subshell of ONE bash process that sourced the capture
 * script (forks are slow; a bash per case would take seconds). Each case's variables are read from
 * files, so that any byte but NUL reaches the script exactly as given; `session` becomes the case's
 * `session.env`. Returns each case's exit code and output, and whether it ran `curl`.
 */
async function inBash(
  body: string,
  cases: { env: Record<string, string>; session?: string }[],
): Promise<{ code: number; stdout: string; stderr: string; ranCurl: boolean }[]> {
  const batch = mkdtempSync(join(scratch, 'batch-'));
  cases.forEach((c, i) => {
    const dir = join(batch, `case-${String(i).padStart(4, '0')}`);
    mkdirSync(join(dir, 'env'), { recursive: true });
    mkdirSync(join(dir, 'work'));
    for (const [name, value] of Object.entries(c.env)) writeFileSync(join(dir, 'env', name), value);
    if (c.session !== undefined) writeFileSync(join(dir, 'session.env'), c.session);
  });
  const driver = [
    'source "$1"',
    'set +e',
    'for dir in "$2"/case-*; do',
    '  (',
    '    for file in "$dir"/env/*; do',
    '      IFS= read -r -d \'\' value <"$file"',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own parameter expansion
    '      export "${file##*/}=$value"',
    '    done',
    '    export CURL_MARKER="$dir/curl-ran" CORDON_WORK_DIR="$dir/work"',
    '    set -euo pipefail',
    `    ${body}`,
    '  ) >"$dir/stdout" 2>"$dir/stderr"',
    '  echo "$?" >"$dir/rc"',
    'done',
  ].join('\n');
  const run = await runBash(['-c', driver, 'cordon-injection', captureScriptPath, batch], {
    CORDON_CAPTURE_LIBRARY: '1',
    PATH: `${fakeBin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
  });
  expect(run.code, run.stderr).toBe(0);
  return cases.map((_, i) => {
    const dir = join(batch, `case-${String(i).padStart(4, '0')}`);
    return {
      code: Number(readFileSync(join(dir, 'rc'), 'utf8')),
      stdout: readFileSync(join(dir, 'stdout'), 'utf8'),
      stderr: readFileSync(join(dir, 'stderr'), 'utf8'),
      ranCurl: existsSync(join(dir, 'curl-ran')),
    };
  });
}

const link = (url: string) => Buffer.from(url).toString('base64');
const validEnvironment = {
  CORDON_CASE_ID: sampleCase.caseId,
  CORDON_TOOL_URL_B64: link(
    'https://cordon-tools.s3.us-east-1.amazonaws.com/tools/avml?X-Amz-Expires=900&a=b',
  ),
  CORDON_TOOL_SHA256: 'a'.repeat(64),
  CORDON_SESSION_URL_B64: link(
    `https://cordon-tools.s3.us-east-1.amazonaws.com/sessions/${sampleCase.caseId}/memory-upload.env?a=b`,
  ),
  CORDON_COMPRESS: 'false',
  CORDON_PART_SIZE_MIB: '8',
};
type Variable = keyof typeof validEnvironment;

/** The kinds of payload a shell would act on (every check forks a process: the full list takes long on a busy machine). */
const shellPayloads = [
  'a shell command separator',
  'a command substitution',
  'backticks',
  'a single quote',
  'a double quote',
  'a forged log line',
  'a forged header line',
  'an ANSI clear screen',
];

const sessionPayloads = [
  payloads['a shell command separator'],
  payloads['a forged log line'],
  payloads['a forged header line'],
  payloads['an ANSI clear screen'],
];
/** Payloads that would create `file` if anything evaluated them. */
const evaluating = (file: string) => [
  `$(touch ${file})`,
  `\`touch ${file}\``,
  `;touch ${file}`,
  `'$(touch ${file})'`,
];
/** The shell payloads after `valid` (no NUL: no environment variable, nor SSM parameter, can hold one). */
const tampered = (valid: string, file: string) => [
  ...hostile.filter(([name]) => shellPayloads.includes(name)).map(([, p]) => `${valid}${p}`),
  ...evaluating(file).map((p) => `${valid}${p}`),
];

// bash forks a process for nearly every check: generous limits, for a machine busy with other work.
describe('the Linux capture script refuses parameters it was not meant to be given', {
  timeout: 60_000,
}, () => {
  it('gets as far as the tool download with valid parameters (the control)', async () => {
    const [run] = await inBash('main', [{ env: validEnvironment }]);

    expect(run?.stderr).toContain('error: the tool download failed');
    expect(run?.ranCurl).toBe(true);
  });

  const refusals: [Variable, string][] = [
    ['CORDON_CASE_ID', 'bad case id'],
    ['CORDON_TOOL_SHA256', 'bad tool hash'],
    ['CORDON_COMPRESS', 'bad compression flag'],
    ['CORDON_PART_SIZE_MIB', 'bad part size'],
    ['CORDON_TOOL_URL_B64', 'a link parameter is not base64'],
    ['CORDON_SESSION_URL_B64', 'a link parameter is not base64'],
  ];
  it.each(refusals)('stops before any download when %s carries a payload (%s)', async (variable, message) => {
    const file = marker();
    // The session link goes through the same decoding as the tool link, which gets every payload.
    const all = tampered(validEnvironment[variable], file);
    const values = variable === 'CORDON_SESSION_URL_B64' ? all.filter((_, i) => i % 4 === 0) : all;

    const runs = await inBash(
      'main',
      values.map((value) => ({ env: { ...validEnvironment, [variable]: value } })),
    );

    runs.forEach((run, i) => {
      const what = JSON.stringify(values[i]);
      expect(run.code, what).toBe(1);
      expect(run.stderr, what).toContain(`error: ${message}`);
      expect(run.ranCurl, what).toBe(false);
    });
    expect(existsSync(file)).toBe(false);
  });

  it.each([
    ['CORDON_TOOL_URL_B64', 'https://cordon-tools.s3.amazonaws.com/tools/avml?a=b'],
    ['CORDON_SESSION_URL_B64', 'https://cordon-tools.s3.amazonaws.com/sessions/x?a=b'],
  ] as const)(
    'stops before any download when %s decodes to a link with a payload in it',
    async (variable, url) => {
      const file = marker();
      const all = [
        ...tampered(url, file),
        url.replace('https://', 'file://'),
        url.replace('https://', 'http://'),
        `${url} -o /etc/passwd`,
      ];
      // The session link goes through the same checks as the tool link, which gets every payload.
      const links = variable === 'CORDON_SESSION_URL_B64' ? all.filter((_, i) => i % 4 === 0) : all;

      const runs = await inBash(
        'main',
        links.map((value) => ({ env: { ...validEnvironment, [variable]: link(value) } })),
      );

      runs.forEach((run, i) => {
        const what = JSON.stringify(links[i]);
        expect(run.stderr, what).toContain('error: a link parameter is not an allowed URL');
        expect(run.ranCurl, what).toBe(false);
      });
      expect(existsSync(file)).toBe(false);
    },
  );
});

/** A session as Capture Memory writes it (the test above checks that they agree). */
const validSession: Record<string, string> = {
  version: '1',
  case_id: sampleCase.caseId,
  region: 'us-east-1',
  endpoint: 'https://cordon-evidence.s3.us-east-1.amazonaws.com',
  image_path: `/cases/${sampleCase.caseId}/memory/image.lime`,
  report_path: `/cases/${sampleCase.caseId}/memory/capture-report.json`,
  upload_id: 'Ab.c_d-e~f+g/h=',
  part_size_mib: '8',
  max_parts: '1096',
  access_key_id: 'ASIAEXAMPLEEXAMPLE01',
  secret_access_key: 'EXAMPLE/secret+EXAMPLEsecretEXAMPLEsecre',
  session_token: 'EXAMPLEtokenEXAMPLEtokenEXAMPLEtoken==',
  expires_at: '2026-11-27T21:30:00.000Z',
};
/** The session's lines, the changed one first (the script stops at the first bad line). */
const sessionText = (fields: Record<string, string>, first?: string) =>
  `${Object.entries(fields)
    .sort(([a], [b]) => Number(b === first) - Number(a === first))
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
const sessionEnv = { CORDON_CASE_ID: sampleCase.caseId, CORDON_PART_SIZE_MIB: '8' };
/** The script's own `read_session` on each text; prints the upload id as it will go on the wire. */
const readSessions = (texts: string[]) =>
  inBash(
    `work="$dir"; read_session; printf '%s' "$s_upload_query_id"`,
    texts.map((session) => ({ env: sessionEnv, session })),
  );

describe('the Linux capture script reads its upload session without evaluating it', {
  timeout: 60_000,
}, () => {
  it('accepts the session Capture Memory writes (the control)', async () => {
    const [run] = await readSessions([sessionText(validSession)]);

    expect(run?.code, run?.stderr).toBe(0);
    expect(run?.stdout).toBe('Ab.c_d-e~f%2Bg%2Fh%3D');
  });

  it.each(Object.keys(validSession))('refuses a session whose %s carries a payload', async (field) => {
    const file = marker();
    // Thirteen fields: the payloads that matter to a line-oriented reader, and the evaluating ones.
    const values = [
      ...sessionPayloads.map((p) => `${validSession[field]}${p}`),
      ...evaluating(file).map((p) => `${validSession[field]}${p}`),
    ];

    const runs = await readSessions(
      values.map((value) => sessionText({ ...validSession, [field]: value }, field)),
    );

    runs.forEach((run, i) => {
      const what = `${field}=${JSON.stringify(values[i])}`;
      expect(run.code, what).toBe(1);
      expect(run.stderr, what).toMatch(/error: (bad|unknown|the session|the upload session)/);
    });
    expect(existsSync(file)).toBe(false);
  });

  it('drops a NUL byte as bash reads the line, then checks what is left', async () => {
    const file = marker();
    const withNul = 'Ab.c_d-e~f\u0000+g/h=';

    const [kept, refused] = await readSessions([
      sessionText({ ...validSession, upload_id: withNul }, 'upload_id'),
      sessionText({ ...validSession, upload_id: `Ab\u0000$(touch ${file})` }, 'upload_id'),
    ]);

    expect(kept?.code, kept?.stderr).toBe(0);
    expect(kept?.stdout).toBe('Ab.c_d-e~f%2Bg%2Fh%3D');
    expect(refused?.stderr).toContain('error: bad upload id');
    expect(existsSync(file)).toBe(false);
  });

  it('refuses a line it does not know, whatever it would do in a shell', async () => {
    const file = marker();
    const lines = [`PATH=${scratch}`, `$(touch ${file})=1`, `source=${file}`, `x; touch ${file}`];

    const runs = await readSessions(lines.map((line) => `${line}\n${sessionText(validSession)}`));

    for (const run of runs) expect(run.stderr).toContain('error: unknown session field');
    expect(existsSync(file)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------------
// The Windows capture script (no PowerShell here: its patterns are checked as .NET would read them)
// ---------------------------------------------------------------------------------------------------

const powershell = readFileSync(resolve(repoRoot, 'capture/windows/capture-memory.ps1'), 'utf8');
/** Every pattern the script matches a value against, as written: `-cnotmatch '^…'`, `$Name = '^…'`, the session's. */
const windowsPatterns = [...powershell.matchAll(/'(\^[^']*)'/g)].map((m) => m[1] as string);

describe('the Windows capture script', () => {
  it('anchors every pattern at the very end of the value, where .NET `$` would allow a final newline', () => {
    expect(windowsPatterns.length).toBeGreaterThanOrEqual(19);
    for (const pattern of windowsPatterns) expect(pattern, pattern).toMatch(/\\z$/);
  });

  it.each([
    ['the tool hash', /\{64\}/, 'a'.repeat(64)],
    ['the case id', /Z-i-/, sampleCase.caseId],
    ['a link parameter', /\+\/\]\{16,8188\}/, validEnvironment.CORDON_TOOL_URL_B64],
    ['a decoded link', /^\^https:.*\[\?\]/, 'https://cordon-tools.s3.amazonaws.com/tools/winpmem.exe?a=b'],
    ['an object path', /^\^\/\[/, validSession.image_path as string],
    ['the upload id', /\._~\+\/=-\]/, validSession.upload_id as string],
  ])('refuses the payloads, and a final newline, after a valid %s', (_what, which, value) => {
    const written = windowsPatterns.find((p) => which.test(p));
    if (!written) throw new Error(`no pattern like ${which}`);
    // In JavaScript, `$` without the m flag is exactly .NET's `\z`.
    const pattern = new RegExp(written.replace(/\\z$/, '$'));

    expect(pattern.test(value), `${written} accepts ${value}`).toBe(true);
    for (const [name, p] of [...hostile, ['a final newline', '\n'] as const]) {
      expect(pattern.test(`${value}${p}`), `${written} accepted ${name}`).toBe(false);
    }
  });
});
