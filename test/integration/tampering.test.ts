/**
 * The tampering reliability suite: one case sealed by the real workflow on the emulator, then one
 * tamper per row, each on a fresh copy of it (a copy of the downloaded folder, a folder `cordon
 * evidence get` wrote for that row alone, or a fresh sealed copy of the case in the bucket), and
 * `cordon evidence verify` must exit 1 with a message that names the file and is that tamper's own.
 */

import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { cp, mkdtemp, open, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Recorder, type TimelineEvent } from '../../functions/core/cases.js';
import { EvidenceStore, type LockSettings } from '../../functions/core/evidence.js';
import { type Manifest, type SignatureFile, signingStatement } from '../../functions/core/manifest.js';
import { sealCase } from '../../functions/core/seal.js';
import { resetMoto } from '../../scripts/local/moto.js';
import type { LocalStack } from '../../scripts/local/stack.js';
import { cordon, demoFinding, emulator, publishStack } from '../support/cli-fixtures.js';
import { readRealEvent } from '../support/fixtures.js';

const endpoint = inject('motoEndpoint');
const s3 = new S3Client({ ...emulator(endpoint), forcePathStyle: true });
const kms = new KMSClient(emulator(endpoint));
const sha = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');
const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

let caseId: string;
let stack: LocalStack;
let manifest: Manifest;
let work: string;
/** The case as `cordon evidence get` left it; every folder tamper works on a copy. */
let pristine: string;

beforeAll(async () => {
  await resetMoto(endpoint);
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  const { runLocalCase } = await import('../../scripts/local/case.js');
  // One ENI, one volume and a small memory image: the same workflow, as little waiting as it allows.
  const run = await runLocalCase(readRealEvent(demoFinding), {
    endpoint,
    enis: 1,
    volumes: 1,
    imageBytes: 256 * 1024,
  });
  if (!run.report.caseId || run.report.outcome !== 'completed')
    throw new Error(`the case did not complete: ${run.report.outcome} ${run.report.reason}`);
  await publishStack(endpoint, run.stack);
  caseId = run.report.caseId;
  stack = run.stack;
  const sealed = run.report.evidence.find((e) => e.key.endsWith('/manifest.json'));
  manifest = JSON.parse(await objectText(sealed?.key ?? '', sealed?.versionId)) as Manifest;
  work = await mkdtemp(join(tmpdir(), 'cordon-tamper-'));
  pristine = join(work, 'pristine');
  const got = await cordon(endpoint, ['evidence', 'get', caseId, '--out', pristine]);
  if (got.code !== 0) throw new Error(`cordon evidence get failed: ${got.stderr}`);
  // Every bucket tamper gets a sealed copy of its own, made here all at once.
  const otherKey = await kms.send(
    new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
  );
  const made = await Promise.all([
    sealedCopy(),
    ...tampers.map((tamper) =>
      tamper.where === 'bucket'
        ? sealedCopy(tamper.sealWith === 'another key' ? otherKey.KeyMetadata?.Arn : undefined)
        : '',
    ),
  ]);
  cleanCopy = made[0] as string;
  copies = made.slice(1);
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function objectText(key: string, versionId?: string): Promise<string> {
  const out = await s3.send(
    new GetObjectCommand({ Bucket: stack.bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }),
  );
  return (await out.Body?.transformToString()) ?? '';
}

async function objectBytes(key: string, versionId: string): Promise<Uint8Array> {
  const out = await s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: key, VersionId: versionId }));
  return (await out.Body?.transformToByteArray()) ?? new Uint8Array();
}

let copyCount = 0;
/** A sealed copy nobody tampers with: another case, sealed by the stack's key. */
let cleanCopy: string;
/** The sealed copy each bucket tamper works on, by its row. */
let copies: string[];
/**
 * A fresh sealed copy of the case in the bucket, under a case id of its own: every artifact stored
 * again through the evidence store (locked on arrival), then sealed by the same `sealCase` Archive
 * runs, signed by `signingKeyId` (the stack's key unless another is given). Bucket tampers need one
 * each, since locked versions cannot be put back.
 */
async function sealedCopy(signingKeyId = stack.signingKeyId): Promise<string> {
  copyCount += 1;
  const copyId = `${caseId.slice(0, -4)}${(0xc000 + copyCount).toString(16)}`;
  const lock: LockSettings = {
    mode: (stack.env.OBJECT_LOCK_MODE ?? 'GOVERNANCE') as LockSettings['mode'],
    days: Number(stack.env.OBJECT_LOCK_DAYS ?? 1),
  };
  const store = new EvidenceStore(s3, stack.bucket, lock);
  const events: TimelineEvent[] = [];
  const cases = {
    recordMany: async (_caseId: string, batch: readonly Omit<TimelineEvent, 'at'>[]) => {
      for (const event of batch) events.push({ at: new Date().toISOString(), ...event });
    },
  };
  const copying = new Recorder(cases, copyId, 'copy-evidence');
  await Promise.all(
    manifest.artifacts
      .filter((a) => !a.key.endsWith('/timeline.jsonl'))
      .map(async (a) => {
        const name = a.key.slice(`cases/${caseId}/`.length);
        await store.put(copying, name, await objectBytes(a.key, a.versionId), { contentType: a.contentType });
      }),
  );
  await sealCase(
    copyId,
    { instanceId: manifest.instanceId, outcome: manifest.outcome },
    {
      s3,
      kms,
      bucket: stack.bucket,
      signingKeyId,
      cases: { timeline: async () => events },
      evidence: store,
      recorder: new Recorder(cases, copyId, 'archive-evidence'),
      now: () => new Date(),
    },
  );
  return copyId;
}

/** A fresh download of the case, by `cordon evidence get`. */
async function downloaded(name: string): Promise<string> {
  const dir = join(work, name);
  const got = await cordon(endpoint, ['evidence', 'get', caseId, '--out', dir]);
  if (got.code !== 0) throw new Error(`cordon evidence get failed: ${got.stderr}`);
  return dir;
}

/** `touch -r`: gives `path` the times of `reference`, to the nanosecond. */
function touchLike(reference: string, path: string) {
  const run = spawnSync('touch', ['-r', reference, path]);
  if (run.status !== 0) throw new Error(`touch -r failed: ${run.stderr}`);
}

/** A fresh copy of the downloaded folder. */
async function folderCopy(name: string): Promise<string> {
  const dir = join(work, name);
  await cp(pristine, dir, { recursive: true });
  return dir;
}

async function editJson<T>(path: string, edit: (value: T) => void): Promise<void> {
  const value = JSON.parse(await readFile(path, 'utf8')) as T;
  edit(value);
  await writeFile(path, json(value));
}

async function flipByte(path: string, at = 100): Promise<void> {
  const bytes = await readFile(path);
  bytes[at] = (bytes[at] ?? 0) ^ 0x01;
  await writeFile(path, bytes);
}

interface Tamper {
  name: string;
  where: 'folder' | 'bucket';
  /**
   * Folder tampers: in the folder `cordon evidence get` wrote (a get of its own), not in a copy, so that
   * the record get left of what it hashed is there to be fooled.
   */
  inPlace?: boolean;
  /** Bucket tampers: seal the copy with a KMS key other than the stack's. */
  sealWith?: 'another key';
  /** Applies the tamper to a fresh copy: a folder, or (bucket tampers) a sealed copy in the bucket. */
  apply: (target: { dir: string; copyId: string }) => Promise<void>;
  /** The file the message must name. */
  names: string;
  /** The whole verdict line (`FAILED: …`), or the error line for a case that cannot be read at all. */
  message: RegExp;
}

const t = 'triage\\.json';
const tampers: Tamper[] = [
  // A changed byte
  {
    name: 'one byte of a downloaded artifact flipped',
    where: 'folder',
    apply: ({ dir }) => flipByte(join(dir, 'triage.json')),
    names: 'triage.json',
    message: new RegExp(`^FAILED: ${t}: content changed\\.$`),
  },
  {
    name: 'one byte of the memory image flipped in the folder get wrote, its size and times put back',
    where: 'folder',
    inPlace: true,
    apply: async ({ dir }) => {
      const image = join(dir, 'memory', 'image.lime');
      const times = join(dir, '..', `${basename(dir)}.times`);
      await writeFile(times, '');
      touchLike(image, times);
      const file = await open(image, 'r+');
      const byte = Buffer.alloc(1);
      await file.read(byte, 0, 1, 1000);
      byte[0] = (byte[0] ?? 0) ^ 0x01;
      await file.write(byte, 0, 1, 1000);
      await file.close();
      touchLike(times, image);
    },
    names: 'memory/image.lime',
    message: /^FAILED: memory\/image\.lime: content changed\.$/,
  },
  {
    name: 'a new version of an artifact, one byte changed, written over the sealed one',
    where: 'bucket',
    apply: async ({ copyId }) => {
      const key = `cases/${copyId}/triage.json`;
      const bytes = Buffer.from(await objectText(key));
      bytes[100] = (bytes[100] ?? 0) ^ 0x01;
      await s3.send(
        new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: bytes, ChecksumAlgorithm: 'SHA256' }),
      );
    },
    names: 'triage.json',
    message: new RegExp(`^FAILED: ${t}: overwritten after sealing\\.$`),
  },
  // A replaced version
  {
    name: 'the sealed version of an artifact deleted (governance bypassed) and another put in its place',
    where: 'bucket',
    apply: async ({ copyId }) => {
      const key = `cases/${copyId}/triage.json`;
      const head = await s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: key }));
      const body = Buffer.from((await head.Body?.transformToByteArray()) ?? []);
      await s3.send(
        new DeleteObjectCommand({
          Bucket: stack.bucket,
          Key: key,
          VersionId: head.VersionId,
          BypassGovernanceRetention: true,
        }),
      );
      await s3.send(
        new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: body, ChecksumAlgorithm: 'SHA256' }),
      );
    },
    names: 'triage.json',
    message: new RegExp(`^FAILED: ${t}: sealed version gone, replaced by a newer version\\.$`),
  },
  // An edited manifest
  {
    name: "the manifest's SHA-256 of an artifact changed",
    where: 'folder',
    apply: ({ dir }) =>
      editJson<Manifest>(join(dir, 'manifest.json'), (m) => {
        const entry = m.artifacts.find((a) => a.key.endsWith('/triage.json'));
        if (entry) entry.sha256 = sha('forged');
      }),
    names: 'manifest.json',
    message: new RegExp(`^FAILED: manifest\\.json: changed after signing; ${t}: content changed\\.$`),
  },
  {
    name: "an artifact's entry removed from the manifest",
    where: 'folder',
    apply: ({ dir }) =>
      editJson<Manifest>(join(dir, 'manifest.json'), (m) => {
        m.artifacts = m.artifacts.filter((a) => !a.key.endsWith('/triage.json'));
      }),
    names: 'manifest.json',
    message: new RegExp(`^FAILED: manifest\\.json: changed after signing; ${t}: not in the manifest\\.$`),
  },
  {
    name: 'an artifact entry added to the manifest',
    where: 'folder',
    apply: ({ dir }) =>
      editJson<Manifest>(join(dir, 'manifest.json'), (m) => {
        m.artifacts.push({
          key: `cases/${caseId}/planted.json`,
          versionId: 'planted-version',
          bytes: 2,
          sha256: sha('{}'),
          contentType: 'application/json',
        });
      }),
    names: 'planted.json',
    message:
      /^FAILED: manifest\.json: changed after signing; planted\.json: missing, no such version in the bucket\.$/,
  },
  {
    name: "the manifest's case id changed",
    where: 'folder',
    apply: ({ dir }) =>
      editJson<Manifest>(join(dir, 'manifest.json'), (m) => {
        m.caseId = `${caseId.slice(0, -4)}beef`;
      }),
    names: 'manifest.json',
    message: /^FAILED: manifest\.json: changed after signing, another case's manifest \(\S+beef\)\.$/,
  },
  {
    name: 'manifest.json cut short',
    where: 'folder',
    apply: async ({ dir }) => truncate(join(dir, 'manifest.json'), 200),
    names: 'manifest.json',
    message: /^FAILED: manifest\.json: changed after signing, unreadable \(not JSON\)\.$/,
  },
  {
    name: 'a new version of manifest.json written after sealing',
    where: 'bucket',
    apply: async ({ copyId }) => {
      const key = `cases/${copyId}/manifest.json`;
      const text = (await objectText(key)).replace('"completed"', '"partial"');
      await s3.send(
        new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: text, ChecksumAlgorithm: 'SHA256' }),
      );
    },
    names: 'manifest.json',
    message: /^FAILED: manifest\.json: written again after sealing\.$/,
  },
  {
    name: 'manifest.json deleted in the bucket (a delete marker over the signed version)',
    where: 'bucket',
    apply: async ({ copyId }) => {
      await s3.send(new DeleteObjectCommand({ Bucket: stack.bucket, Key: `cases/${copyId}/manifest.json` }));
    },
    names: 'manifest.json',
    message: /^FAILED: manifest\.json: deleted after sealing\.$/,
  },
  // A wrong signature
  {
    name: "another case's manifest.sig",
    where: 'folder',
    apply: async ({ dir }) => {
      await writeFile(join(dir, 'manifest.sig'), await objectText(`cases/${cleanCopy}/manifest.sig`));
    },
    names: 'manifest.sig',
    message: /^FAILED: manifest\.sig: another case's signature \(\S+\)\.$/,
  },
  {
    name: 'the evidence changed and re-signed with a key of the forger, whose public key the file embeds',
    where: 'folder',
    apply: async ({ dir }) => {
      await flipByte(join(dir, 'triage.json'));
      const triage = sha(await readFile(join(dir, 'triage.json')));
      await editJson<Manifest>(join(dir, 'manifest.json'), (m) => {
        const entry = m.artifacts.find((a) => a.key.endsWith('/triage.json'));
        if (entry) entry.sha256 = triage;
      });
      const digest = sha(await readFile(join(dir, 'manifest.json')));
      const statement = signingStatement(caseId, digest);
      const forger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      await editJson<SignatureFile>(join(dir, 'manifest.sig'), (s) => {
        s.message = statement;
        s.manifest.sha256 = digest;
        s.signature = sign('sha256', Buffer.from(statement), forger.privateKey).toString('base64');
        s.publicKey = forger.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
      });
    },
    names: 'manifest.sig',
    message: /^FAILED: manifest\.sig: not signed by the signing key\.$/,
  },
  {
    name: 'a copy of the case sealed with another KMS key',
    where: 'bucket',
    sealWith: 'another key',
    apply: async () => undefined,
    names: 'manifest.sig',
    message: /^FAILED: manifest\.sig: not signed by the signing key, names another signing key\.$/,
  },
  {
    name: 'a signature value cut short',
    where: 'folder',
    apply: ({ dir }) =>
      editJson<SignatureFile>(join(dir, 'manifest.sig'), (s) => {
        s.signature = s.signature.slice(0, 40);
      }),
    names: 'manifest.sig',
    message: /^FAILED: manifest\.sig: signature cut short\.$/,
  },
  {
    name: 'a garbage signature value',
    where: 'folder',
    apply: ({ dir }) =>
      editJson<SignatureFile>(join(dir, 'manifest.sig'), (s) => {
        s.signature = Buffer.alloc(71, 0xa5).toString('base64');
      }),
    names: 'manifest.sig',
    message: /^FAILED: manifest\.sig: signature is not an ECDSA signature\.$/,
  },
  {
    name: 'manifest.sig cut short',
    where: 'folder',
    apply: async ({ dir }) => truncate(join(dir, 'manifest.sig'), 300),
    names: 'manifest.sig',
    message: /^FAILED: manifest\.sig: unreadable \(not JSON\)\.$/,
  },
  // A missing artifact
  {
    name: 'an artifact deleted from the folder',
    where: 'folder',
    apply: ({ dir }) => unlink(join(dir, 'triage.json')),
    names: 'triage.json',
    message: new RegExp(`^FAILED: ${t}: missing\\.$`),
  },
  {
    name: 'manifest.sig deleted from the folder',
    where: 'folder',
    apply: ({ dir }) => unlink(join(dir, 'manifest.sig')),
    names: 'manifest.sig',
    message: /^FAILED: manifest\.sig: missing\.$/,
  },
  {
    name: 'an artifact deleted in the bucket (a delete marker over the sealed version)',
    where: 'bucket',
    apply: async ({ copyId }) => {
      await s3.send(new DeleteObjectCommand({ Bucket: stack.bucket, Key: `cases/${copyId}/triage.json` }));
    },
    names: 'triage.json',
    message: new RegExp(`^FAILED: ${t}: deleted after sealing\\.$`),
  },
  {
    name: 'the sealed version of an artifact deleted (governance bypassed), nothing in its place',
    where: 'bucket',
    apply: async ({ copyId }) => {
      const key = `cases/${copyId}/triage.json`;
      const head = await s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: key }));
      await head.Body?.transformToByteArray();
      await s3.send(
        new DeleteObjectCommand({
          Bucket: stack.bucket,
          Key: key,
          VersionId: head.VersionId,
          BypassGovernanceRetention: true,
        }),
      );
    },
    names: 'triage.json',
    message: new RegExp(`^FAILED: ${t}: sealed version gone\\.$`),
  },
  {
    name: 'manifest.sig deleted in the bucket (a delete marker over the signed version)',
    where: 'bucket',
    apply: async ({ copyId }) => {
      await s3.send(new DeleteObjectCommand({ Bucket: stack.bucket, Key: `cases/${copyId}/manifest.sig` }));
    },
    names: 'manifest.sig',
    message:
      /^cordon: Case \S+'s manifest\.sig was deleted after sealing: a delete marker \(version \S+\) hides it\.$/,
  },
  // A truncated file, an unlisted file, a lock taken off
  {
    name: 'an artifact cut short',
    where: 'folder',
    apply: async ({ dir }) => truncate(join(dir, 'triage.json'), 1000),
    names: 'triage.json',
    message: new RegExp(`^FAILED: ${t}: truncated \\(1000 of \\d+ bytes\\)\\.$`),
  },
  {
    name: 'a file the manifest does not list, added to the folder',
    where: 'folder',
    apply: ({ dir }) => writeFile(join(dir, 'memory', 'notes.txt'), 'the attacker was here\n'),
    names: 'memory/notes.txt',
    message: /^FAILED: memory\/notes\.txt: not in the manifest\.$/,
  },
  {
    name: 'an object the manifest does not list, written into the case folder after sealing',
    where: 'bucket',
    apply: async ({ copyId }) => {
      await s3.send(
        new PutObjectCommand({
          Bucket: stack.bucket,
          Key: `cases/${copyId}/notes.txt`,
          Body: 'the attacker was here\n',
          ChecksumAlgorithm: 'SHA256',
        }),
      );
    },
    names: 'notes.txt',
    message: /^FAILED: notes\.txt: not in the manifest, written after sealing\.$/,
  },
  {
    name: "an artifact's retention shortened to the past (governance bypassed)",
    where: 'bucket',
    apply: async ({ copyId }) => {
      const key = `cases/${copyId}/triage.json`;
      const head = await s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: key }));
      await head.Body?.transformToByteArray();
      await s3.send(
        new PutObjectRetentionCommand({
          Bucket: stack.bucket,
          Key: key,
          VersionId: head.VersionId,
          BypassGovernanceRetention: true,
          Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() - 60_000) },
        }),
      );
    },
    names: 'triage.json',
    message: new RegExp(`^FAILED: ${t}: not locked\\.$`),
  },
];

/** What each tamper printed, for the check that no two tampers share a message. */
const messages = new Map<string, string>();

async function verifyAfter(tamper: Tamper, index: number) {
  if (tamper.where === 'folder') {
    const dir = tamper.inPlace ? await downloaded(`t${index}`) : await folderCopy(`t${index}`);
    await tamper.apply({ dir, copyId: '' });
    return cordon(endpoint, ['evidence', 'verify', caseId, '--dir', dir]);
  }
  const copyId = copies[index] as string;
  await tamper.apply({ dir: '', copyId });
  return cordon(endpoint, ['evidence', 'verify', copyId]);
}

describe('cordon evidence verify on untouched evidence', () => {
  it('passes the folder get wrote without reading its files again, and says so', async () => {
    const { code, stdout } = await cordon(endpoint, ['evidence', 'verify', caseId, '--dir', pristine]);

    expect(code, stdout).toBe(0);
    expect(stdout).toMatch(/^VERIFIED: .* and are locked\.$/m);
    expect(stdout).toMatch(
      /^\d+ file\(s\) were not read again: cordon evidence get hashed them and they are unchanged since \(--rehash reads them\)\.$/m,
    );
  });

  it('passes the downloaded folder', async () => {
    const { code, stdout } = await cordon(endpoint, [
      'evidence',
      'verify',
      caseId,
      '--dir',
      await folderCopy('clean'),
    ]);

    expect(code, stdout).toBe(0);
    expect(stdout).toMatch(
      /^VERIFIED: the signature is valid and all \d+ objects match the manifest and are locked\.$/m,
    );
    expect(stdout).not.toMatch(/FAIL/);
  });

  it('passes a sealed copy in the bucket, the ground every bucket tamper starts from', async () => {
    const { code, stdout } = await cordon(endpoint, ['evidence', 'verify', cleanCopy]);

    expect(code, stdout).toBe(0);
    expect(stdout).toMatch(/^VERIFIED: .* and are locked\.$/m);
    expect(stdout).toMatch(/PASS\s+version\s+the sealed version \S+ is the current one/);
  });
});

describe.each(tampers.map((tamper, index) => ({ ...tamper, index })))('$name ($where)', (tamper) => {
  it('fails verification with its own message, naming the file', async () => {
    const { code, stdout, stderr } = await verifyAfter(tamper, tamper.index);

    const message = /^FAILED: .*$/m.exec(stdout)?.[0] ?? stderr.split('\n')[0] ?? '';
    messages.set(tamper.name, message);
    expect(code, `${stdout}\n${stderr}`).toBe(1);
    expect(message).toMatch(tamper.message);
    expect(message).toContain(tamper.names);
    expect(`${stdout}${stderr}`).not.toMatch(/VERIFIED/);
    if (stdout) expect(stdout).toMatch(new RegExp(`^  FAIL +${tamper.names.replace(/[./]/g, '\\$&')}$`, 'm'));
  });
});

describe('the messages', () => {
  it("differ from tamper to tamper: no message matches another tamper's expectation", () => {
    expect(messages.size).toBe(tampers.length);
    for (const tamper of tampers) {
      for (const [other, message] of messages) {
        if (other !== tamper.name) expect(message, `${tamper.name} vs ${other}`).not.toMatch(tamper.message);
      }
    }
    expect(new Set(messages.values()).size).toBe(messages.size);
  });

  it('come with the JSON report too, one problem per file', async () => {
    const dir = await folderCopy('json');
    await flipByte(join(dir, 'triage.json'));
    await writeFile(join(dir, 'notes.txt'), 'unlisted\n');

    const { code, stdout } = await cordon(endpoint, ['evidence', 'verify', caseId, '--dir', dir, '--json']);

    expect(code).toBe(1);
    expect(JSON.parse(stdout)).toMatchObject({
      ok: false,
      source: 'folder',
      problems: ['triage.json: content changed', 'notes.txt: not in the manifest'],
      unlisted: [{ name: 'notes.txt', bytes: 9, sha256: sha('unlisted\n'), verdict: { status: 'fail' } }],
    });
  });
});
