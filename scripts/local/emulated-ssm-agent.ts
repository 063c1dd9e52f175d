/**
 * THE EMULATED SSM AGENT. moto accepts SendCommand and reports every invocation as Success, but runs
 * nothing; on AWS the SSM agent on the instance would run Cordon's capture document. For local runs and
 * the demo this module plays that agent: it reads the most recent command moto received for the
 * instance (ListCommands returns its parameters), checks the parameters against the document's
 * allowedPattern as SSM would, renders the document's runCommand exactly as the agent does (parameters
 * substituted, the repository's capture script inlined as the deployment inlines it), and runs it under
 * bash on this machine. The acquisition tool it downloads is whatever the tools bucket holds; for local
 * runs that is the STAND-IN (capture/stand-in/avml), which writes a synthetic image instead of reading
 * memory, and whose SHA-256 is the dev stage's pinned hash. Nothing here is used on AWS.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ListCommandsCommand, SSMClient } from '@aws-sdk/client-ssm';
import { parse } from 'yaml';

const repoRoot = resolve(import.meta.dirname, '..', '..');
const prefix = '[emulated SSM agent]';

/** The stand-in acquisition tool: a script that writes a deterministic synthetic image. */
export const standInToolPath = resolve(repoRoot, 'capture/stand-in/avml');

export function standInToolSha256(): string {
  return createHash('sha256').update(readFileSync(standInToolPath)).digest('hex');
}

interface DocumentParameter {
  type: string;
  default?: string;
  allowedPattern?: string;
}
export interface CommandDocument {
  schemaVersion: string;
  parameters: Record<string, DocumentParameter>;
  mainSteps: { action: string; name: string; inputs: { runCommand: string[]; timeoutSeconds?: string } }[];
}

/**
 * Cordon's capture documents as resources/memory-capture.yml defines them, with each
 * `${file(...)}` replaced by the file's content, as the Serverless Framework does when it packages.
 */
export function memoryDocuments(): { linux: CommandDocument; windows: CommandDocument } {
  const template = parse(readFileSync(resolve(repoRoot, 'resources/memory-capture.yml'), 'utf8'), {
    logLevel: 'error',
  }) as { Resources: Record<string, { Properties: { Content: CommandDocument } }> };
  const inline = (content: CommandDocument): CommandDocument => ({
    ...content,
    mainSteps: content.mainSteps.map((step) => ({
      ...step,
      inputs: {
        ...step.inputs,
        runCommand: step.inputs.runCommand.map((line) => {
          const file = /^\$\{file\(([^)]+)\)\}$/.exec(line)?.[1];
          return file ? readFileSync(resolve(repoRoot, file), 'utf8') : line;
        }),
      },
    })),
  });
  const linux = template.Resources.MemoryCaptureLinuxDocument?.Properties.Content;
  const windows = template.Resources.MemoryCaptureWindowsDocument?.Properties.Content;
  if (!linux || !windows) throw new Error('resources/memory-capture.yml lacks a capture document');
  return { linux: inline(linux), windows: inline(windows) };
}

/** Checks parameters as SSM does (declared, required unless defaulted, matching allowedPattern). */
export function resolveParameters(
  document: CommandDocument,
  given: Record<string, string[]>,
): Record<string, string> {
  const values: Record<string, string> = {};
  for (const name of Object.keys(given)) {
    if (!document.parameters[name]) throw new Error(`parameter ${name} is not declared by the document`);
  }
  for (const [name, spec] of Object.entries(document.parameters)) {
    const value = given[name]?.[0] ?? spec.default;
    if (value === undefined) throw new Error(`parameter ${name} is required`);
    if (spec.allowedPattern && !new RegExp(spec.allowedPattern).test(value)) {
      throw new Error(`parameter ${name} does not match its allowedPattern`);
    }
    values[name] = value;
  }
  return values;
}

/** The script the agent writes for the document's first step: its runCommand lines, parameters substituted. */
export function renderRunCommand(document: CommandDocument, values: Record<string, string>): string {
  const step = document.mainSteps[0];
  if (!step) throw new Error('the document has no step');
  return step.inputs.runCommand.join('\n').replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`the script names an unknown parameter ${name}`);
    return value;
  });
}

const defaultCredentials = { accessKeyId: 'test', secretAccessKey: 'test' };

/**
 * Puts the stand-in tool where Capture Memory expects the real one (`<prefix>avml` in the tools
 * bucket), as an operator uploads AVML on AWS. The local stack calls this for the dev stage.
 */
export async function installStandInTools(options: {
  endpoint: string;
  region: string;
  bucket: string;
  prefix?: string;
}): Promise<{ key: string; sha256: string }> {
  const s3 = new S3Client({
    endpoint: options.endpoint,
    region: options.region,
    forcePathStyle: true,
    credentials: defaultCredentials,
  });
  const key = `${options.prefix ?? 'tools/'}avml`;
  await s3.send(
    new PutObjectCommand({
      Bucket: options.bucket,
      Key: key,
      Body: readFileSync(standInToolPath),
      ContentType: 'application/octet-stream',
      ChecksumAlgorithm: 'SHA256',
    }),
  );
  return { key, sha256: standInToolSha256() };
}

function pipeLines(stream: NodeJS.ReadableStream | null, log: (line: string) => void, label: string) {
  let rest = '';
  stream?.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString('utf8')).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) log(`${prefix} ${label}: ${line}`);
  });
  stream?.on('end', () => {
    if (rest.trim()) log(`${prefix} ${label}: ${rest}`);
  });
}

/**
 * Plays the instance's SSM agent for the most recent command sent to `instanceId`: renders Cordon's
 * Linux capture document with the command's own parameters and runs it under bash here, with the
 * stand-in tool writing an image of `imageBytes` (default 12 MiB). Returns the command it ran, or
 * `ran: false` when the latest command is not a Linux memory capture.
 */
export async function runEmulatedSsmAgent(opts: {
  endpoint: string;
  region: string;
  instanceId: string;
  /**
   * The command to play (Capture Memory's `commandId`). Without it, the latest command for the
   * instance; but moto addresses every command to every instance of the region (a SendCommand without
   * Targets matches all instances), so with several cases at once only the id finds the right one.
   */
  commandId?: string;
  imageBytes?: number;
  log?: (line: string) => void;
}): Promise<{ commandId: string; ran: boolean; exitCode?: number }> {
  const log = opts.log ?? (() => undefined);
  const ssm = new SSMClient({
    endpoint: opts.endpoint,
    region: opts.region,
    credentials: defaultCredentials,
  });
  const listed = await ssm.send(
    new ListCommandsCommand(opts.commandId ? { CommandId: opts.commandId } : { InstanceId: opts.instanceId }),
  );
  const latest = [...(listed.Commands ?? [])].sort(
    (a, b) => new Date(b.RequestedDateTime ?? 0).getTime() - new Date(a.RequestedDateTime ?? 0).getTime(),
  )[0];
  if (!latest?.CommandId) {
    log(`${prefix} no command was sent to ${opts.instanceId}`);
    return { commandId: '', ran: false };
  }
  const commandId = latest.CommandId;
  if (!/linux/i.test(latest.DocumentName ?? '')) {
    log(
      `${prefix} command ${commandId} runs ${latest.DocumentName}: only the Linux capture document is emulated`,
    );
    return { commandId, ran: false };
  }
  const document = memoryDocuments().linux;
  const values = resolveParameters(document, latest.Parameters ?? {});
  const script = renderRunCommand(document, values);

  const dir = mkdtempSync(join(tmpdir(), 'cordon-emulated-ssm-agent-'));
  const file = join(dir, '_script.sh');
  writeFileSync(file, script, { mode: 0o700 });
  const imageBytes = opts.imageBytes ?? 12 * 1024 * 1024;
  log(
    `${prefix} running command ${commandId} (${latest.DocumentName}) for ${opts.instanceId} with the stand-in tool`,
  );
  try {
    const child = spawn('bash', [file], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dir,
        // The emulator speaks plain HTTP on the loopback interface; the script refuses it otherwise.
        CORDON_ALLOW_LOOPBACK_HTTP: '1',
        CORDON_STAND_IN_BYTES: String(imageBytes),
      },
    });
    pipeLines(child.stdout, log, 'stdout');
    pipeLines(child.stderr, log, 'host');
    const exitCode = await new Promise<number>((done, fail) => {
      child.once('error', fail);
      child.once('close', (code) => done(code ?? 1));
    });
    log(`${prefix} command ${commandId} exited ${exitCode}`);
    return { commandId, ran: true, exitCode };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
