import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type DownloadTarget, downloadArtifact } from '../../scripts/cli/download.js';
import { runCli } from '../../scripts/cli/main.js';
import type { VerifyReport } from '../../scripts/cli/verify.js';
import { resetMoto } from '../../scripts/local/moto.js';
import { repoRoot } from '../../scripts/local/runner.js';
import { capturedIo, cordon, demoCase, emulator } from '../support/cli-fixtures.js';

const endpoint = inject('motoEndpoint');
const s3 = new S3Client({ ...emulator(endpoint), forcePathStyle: true });

let demo: Awaited<ReturnType<typeof demoCase>>;
let work: string;
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const nameOf = (key: string) => key.split('/').slice(2).join('/');

beforeAll(async () => {
  await resetMoto(endpoint);
  demo = await demoCase(endpoint);
  work = await mkdtemp(join(tmpdir(), 'cordon-cli-'));
}, 120_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function downloaded(name: string): Promise<string> {
  const dir = join(work, name);
  const { code, stderr } = await cordon(endpoint, ['evidence', 'get', demo.caseId, '--out', dir]);
  expect(code, stderr).toBe(0);
  return dir;
}

describe('cordon evidence ls', () => {
  it('lists every artifact of the case with the size, hash, lock and version the case recorded', async () => {
    const { code, stdout } = await cordon(endpoint, ['evidence', 'ls', demo.caseId, '--json']);

    expect(code).toBe(0);
    const listed = JSON.parse(stdout) as {
      sealed: boolean;
      artifacts: {
        key: string;
        bytes: number;
        sha256: string;
        versionId: string;
        lock: { mode?: string; retainUntil?: string; locked: boolean };
      }[];
    };
    expect(listed.sealed).toBe(true);
    const expected = demo.report.evidence.map(({ key, bytes, sha256, versionId }) => ({
      key,
      bytes,
      sha256,
      versionId,
    }));
    expect(
      listed.artifacts.map(({ key, bytes, sha256, versionId }) => ({ key, bytes, sha256, versionId })),
    ).toEqual(expect.arrayContaining(expected));
    expect(listed.artifacts).toHaveLength(expected.length);
    for (const a of listed.artifacts) {
      expect(a.lock.locked).toBe(true);
      expect(a.lock.mode).toBe('GOVERNANCE');
      expect(Date.parse(a.lock.retainUntil ?? '')).toBeGreaterThan(Date.now());
    }
  });

  it('prints a table with one row per artifact for people', async () => {
    const { code, stdout } = await cordon(endpoint, ['evidence', 'ls', demo.caseId]);

    expect(code).toBe(0);
    for (const e of demo.report.evidence) expect(stdout).toContain(`${nameOf(e.key)} `);
    expect(stdout).toMatch(/NAME\s+BYTES\s+SHA256\s+LOCK\s+RETAIN UNTIL\s+HOLD\s+VERSION/);
  });
});

describe('a case that was never sealed', () => {
  const unsealed = '20261127T000000Z-i-0123456789abcdef0-beef';
  beforeAll(async () => {
    const body = '{"detail":{}}\n';
    await s3.send(
      new PutObjectCommand({
        Bucket: demo.report.bucket,
        Key: `cases/${unsealed}/trigger.json`,
        Body: body,
        Metadata: { 'sha256-hex': sha(Buffer.from(body)) },
      }),
    );
  });

  it('is listed from its folder, marked as not sealed', async () => {
    const { code, stdout } = await cordon(endpoint, ['evidence', 'ls', unsealed, '--json']);

    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      sealed: false,
      artifacts: [
        { name: 'trigger.json', sha256: sha(Buffer.from('{"detail":{}}\n')), lock: { locked: true } },
      ],
    });
  });

  it('cannot be verified, and says why', async () => {
    const { code, stderr } = await cordon(endpoint, ['evidence', 'verify', unsealed]);

    expect(code).toBe(1);
    expect(stderr).toContain(`Case ${unsealed} has evidence but no manifest.sig: it has not been sealed`);
  });
});

describe('cordon evidence get', () => {
  it('leaves files whose SHA-256 match the manifest, and nothing half-done', async () => {
    const dir = await downloaded('get');

    for (const e of demo.report.evidence) {
      expect(sha(await readFile(join(dir, nameOf(e.key)))), e.key).toBe(e.sha256);
    }
    const leftovers = (await readdir(dir, { recursive: true })).filter((f) => String(f).includes('.part'));
    expect(leftovers).toEqual([]);
  });

  it('resumes an interrupted download from the parts on disk and ends with the right file', async () => {
    const dir = join(work, 'resume');
    const triage = demo.report.evidence.find((e) => e.key.endsWith('/triage.json'));
    if (!triage) throw new Error('the demo case has no triage.json');
    const target: DownloadTarget = { ...triage, name: 'triage.json' };
    const partSize = 4096;
    const parts = Math.ceil(target.bytes / partSize);
    expect(parts).toBeGreaterThan(3);
    const interruption = new Error('connection lost');
    let stored = 0;

    await expect(
      downloadArtifact(s3, demo.report.bucket, target, dir, {
        partSize,
        partConcurrency: 1,
        onPart: () => {
          stored += 1;
          if (stored === 2) throw interruption;
        },
      }),
    ).rejects.toBe(interruption);
    const progress = JSON.parse(await readFile(join(dir, 'triage.json.part.json'), 'utf8')) as {
      done: number[];
    };
    expect(progress.done).toEqual([0, 1]);

    const ranges: string[] = [];
    const counting = new S3Client({ ...emulator(endpoint), forcePathStyle: true });
    counting.middlewareStack.add(
      (next) => async (args) => {
        const range = (args.input as { Range?: string }).Range;
        if (range) ranges.push(range);
        return next(args);
      },
      { step: 'initialize', name: 'countRanges' },
    );
    const outcome = await downloadArtifact(counting, demo.report.bucket, target, dir, {
      partSize,
      partConcurrency: 2,
    });

    expect(outcome.status).toBe('resumed');
    expect(ranges).toHaveLength(parts - 2);
    expect(ranges).not.toContain(`bytes=0-${partSize - 1}`);
    expect(sha(await readFile(join(dir, 'triage.json')))).toBe(triage.sha256);
    expect((await readdir(dir)).sort()).toEqual(['triage.json']);
  });

  it('finishes a case download interrupted half-way when run again', async () => {
    const dir = join(work, 'resume-case');
    const first = demo.report.evidence.find((e) => e.key.endsWith('/triage.json'));
    if (!first) throw new Error('the demo case has no triage.json');
    await expect(
      downloadArtifact(s3, demo.report.bucket, { ...first, name: 'triage.json' }, dir, {
        partSize: 8 * 1024 * 1024,
        onPart: () => {
          throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');

    const { code, stdout } = await cordon(endpoint, ['evidence', 'get', demo.caseId, '--out', dir, '--json']);

    expect(code).toBe(0);
    const files = (JSON.parse(stdout) as { files: { name: string; status: string }[] }).files;
    // Its one part was on disk: the run only hashed it and gave it its name.
    expect(files.find((f) => f.name === 'triage.json')?.status).toBe('resumed');
    for (const e of demo.report.evidence)
      expect(sha(await readFile(join(dir, nameOf(e.key))))).toBe(e.sha256);
  });

  it('shows on a terminal what it downloads and, as it goes, the bytes, the rate and the time left', async () => {
    const dir = join(work, 'on-a-terminal');
    const io = Object.assign(capturedIo(), { errIsTty: true });

    const code = await runCli(
      ['evidence', 'get', demo.caseId, '--out', dir, '--json', '--endpoint', endpoint],
      {
        io,
      },
    );

    expect(code).toBe(0);
    expect(io.stderr).toMatch(
      new RegExp(`^Downloading ${demo.report.evidence.length} files \\([\\d.]+ [KM]iB\\) into ${dir}\n`),
    );
    expect(io.stderr).toMatch(
      /\r\S+ \[[#-]+\] +\d+% [\d.]+ (B|KiB|MiB) of [\d.]+ (KiB|MiB) {2}(…|[\d.]+ (B|KiB|MiB))\/s {2}(ETA [\d:-]+|done)/,
    );
    expect(io.stderr.endsWith('\n')).toBe(true);
    // stdout holds the one JSON document, untouched by the progress line.
    expect(JSON.parse(io.stdout)).toMatchObject({ caseId: demo.caseId, ok: true });
  });

  it('lets only one of two downloads into one folder write there, and leaves nothing half-done', async () => {
    const dir = join(work, 'two-at-once');

    const runs = await Promise.all([
      cordon(endpoint, ['evidence', 'get', demo.caseId, '--out', dir]),
      cordon(endpoint, ['evidence', 'get', demo.caseId, '--out', dir]),
    ]);

    for (const run of runs) {
      expect(run.stderr).not.toContain('ENOENT');
      if (run.code !== 0) {
        expect(run.code).toBe(3);
        expect(run.stderr).toMatch(/Another cordon evidence get \(process \d+\) is writing into /);
      }
    }
    expect(runs.some((r) => r.code === 0)).toBe(true);
    const leftovers = (await readdir(dir)).filter((f) => f.includes('.part') || f.startsWith('.cordon'));
    expect(leftovers).toEqual([]);
    const verified = await cordon(endpoint, ['evidence', 'verify', demo.caseId, '--dir', dir]);
    expect(verified.code, verified.stdout).toBe(0);
  });

  it('reports files already in the folder as left alone, not as failing the manifest', async () => {
    const dir = join(work, 'not-empty');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'triage.json'), "an analyst's working copy\n");

    const { code, stdout } = await cordon(endpoint, ['evidence', 'get', demo.caseId, '--out', dir]);

    expect(code).toBe(1);
    expect(stdout).toMatch(/^triage\.json\s+\d+\s+\w+\s+LEFT AS IT WAS: other content was already there$/m);
    expect(stdout).toContain(
      `1 file(s) were already in ${dir} with other content and were left as they are (nothing was downloaded over them): triage.json.`,
    );
    expect(stdout).not.toContain('did not match the manifest');
    expect(await readFile(join(dir, 'triage.json'), 'utf8')).toBe("an analyst's working copy\n");
  });

  it('names a file an interrupted download left, when verify meets it in the folder', async () => {
    const dir = join(work, 'leftover');
    await cp(await downloaded('leftover-source'), dir, { recursive: true });
    await writeFile(join(dir, 'triage.json.part.json'), '{}');

    const { code, stdout } = await cordon(endpoint, ['evidence', 'verify', demo.caseId, '--dir', dir]);

    expect(code).toBe(1);
    expect(stdout).toMatch(/FAILED: triage\.json\.part\.json: left by an unfinished download\.$/m);
  });

  it('refuses to call a file complete when its bytes do not hash to what the manifest says', async () => {
    const dir = join(work, 'mismatch');
    const triage = demo.report.evidence.find((e) => e.key.endsWith('/triage.json'));
    if (!triage) throw new Error('the demo case has no triage.json');

    const outcome = await downloadArtifact(
      s3,
      demo.report.bucket,
      { ...triage, name: 'triage.json', sha256: '0'.repeat(64) },
      dir,
      { partSize: 4096 },
    );

    expect(outcome.status).toBe('failed');
    expect(outcome.reason).toContain(`differs from the manifest's ${'0'.repeat(64)}`);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('cordon evidence verify', () => {
  it('passes on the evidence in the bucket', async () => {
    const { code, stdout } = await cordon(endpoint, ['evidence', 'verify', demo.caseId]);

    expect(code, stdout).toBe(0);
    expect(stdout).toContain('VERIFIED');
    expect(stdout).toMatch(/PASS\s+signature \(offline\)/);
    expect(stdout).toMatch(/PASS\s+signature \(KMS\)/);
  });

  it('passes on a downloaded folder', async () => {
    const dir = await downloaded('verify-folder');

    const { code, stdout } = await cordon(endpoint, [
      'evidence',
      'verify',
      demo.caseId,
      '--dir',
      dir,
      '--json',
    ]);

    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { ok: boolean; source: string; artifacts: { ok: boolean }[] };
    expect(report).toMatchObject({ ok: true, source: 'folder' });
    expect(report.artifacts.every((a) => a.ok)).toBe(true);
  });

  it('does not read again, right after get, the files get hashed, and says which', async () => {
    const dir = await downloaded('after-get');

    const { code, stdout } = await cordon(endpoint, [
      'evidence',
      'verify',
      demo.caseId,
      '--dir',
      dir,
      '--json',
    ]);

    expect(code, stdout).toBe(0);
    const report = JSON.parse(stdout) as VerifyReport;
    const artifacts = report.artifacts.filter((a) => !a.name.startsWith('manifest.'));
    expect(artifacts.length).toBeGreaterThan(0);
    for (const a of artifacts) {
      expect(a, a.name).toMatchObject({
        ok: true,
        hashSource: 'get record',
        hash: { status: 'pass', detail: expect.stringContaining('not read again (--rehash reads it)') },
      });
    }
  });

  it('reads every file again with --rehash', async () => {
    const dir = await downloaded('rehash');

    const { code, stdout } = await cordon(endpoint, [
      'evidence',
      'verify',
      demo.caseId,
      '--dir',
      dir,
      '--rehash',
      '--json',
    ]);

    expect(code, stdout).toBe(0);
    const report = JSON.parse(stdout) as VerifyReport;
    for (const a of report.artifacts.filter((x) => !x.name.startsWith('manifest.'))) {
      expect(a.hashSource, a.name).toBe('file');
    }
  });

  it('refuses --rehash without --dir', async () => {
    const { code, stderr } = await cordon(endpoint, ['evidence', 'verify', demo.caseId, '--rehash']);

    expect(code).toBe(2);
    expect(stderr).toContain('--rehash needs --dir');
  });

  it('still fails a file changed in the folder get wrote, its size and times put back', async () => {
    const dir = await downloaded('changed-after-get');
    const file = join(dir, 'triage.json');
    const times = join(work, 'changed-after-get.times');
    await writeFile(times, '');
    expect(spawnSync('touch', ['-r', file, times]).status).toBe(0);
    const bytes = await readFile(file);
    bytes[100] = (bytes[100] ?? 0) ^ 0x01;

    await writeFile(file, bytes);
    expect(spawnSync('touch', ['-r', times, file]).status).toBe(0);
    const { code, stdout } = await cordon(endpoint, ['evidence', 'verify', demo.caseId, '--dir', dir]);

    expect(code).toBe(1);
    expect(stdout).toMatch(/FAILED: triage\.json: content changed\./);
  });

  it('fails naming the artifact after one byte of a downloaded file is changed', async () => {
    const dir = join(work, 'one-byte');
    await cp(await downloaded('one-byte-source'), dir, { recursive: true });
    const file = join(dir, 'triage.json');
    const bytes = await readFile(file);
    bytes[100] = (bytes[100] ?? 0) ^ 0x01;
    await writeFile(file, bytes);

    const { code, stdout } = await cordon(endpoint, ['evidence', 'verify', demo.caseId, '--dir', dir]);

    expect(code).toBe(1);
    expect(stdout).toMatch(/FAIL\s+triage\.json/);
    expect(stdout).toMatch(/FAILED: triage\.json: content changed\./);
    expect(stdout).toMatch(/PASS\s+trigger\.json/);
  });

  it('fails on a downloaded manifest that was edited', async () => {
    const dir = join(work, 'edited-manifest');
    await cp(await downloaded('edited-manifest-source'), dir, { recursive: true });
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { outcome: string };
    manifest.outcome = manifest.outcome === 'completed' ? 'partial' : 'completed';
    await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);

    const { code, stdout } = await cordon(endpoint, ['evidence', 'verify', demo.caseId, '--dir', dir]);

    expect(code).toBe(1);
    expect(stdout).toMatch(/FAIL\s+signed statement\s+manifest\.json has SHA-256 \w+; the signature names/);
    expect(stdout).toMatch(/FAIL\s+signature \(offline\)/);
  });

  it('checks a folder with a kept public key and no AWS call at all', async () => {
    const dir = await downloaded('offline');
    const kms = new KMSClient(emulator(endpoint));
    const der = (await kms.send(new GetPublicKeyCommand({ KeyId: demo.stack.signingKeyId })))
      .PublicKey as Uint8Array;
    const pem = `-----BEGIN PUBLIC KEY-----\n${Buffer.from(der).toString('base64')}\n-----END PUBLIC KEY-----\n`;
    await writeFile(join(work, 'signing.pem'), pem);

    // An endpoint where nothing listens: any AWS call would fail the command.
    const { code, stdout } = await cordon('http://127.0.0.1:9', [
      'evidence',
      'verify',
      demo.caseId,
      '--dir',
      dir,
      '--public-key',
      join(work, 'signing.pem'),
      '--offline',
    ]);

    expect(code, stdout).toBe(0);
    expect(stdout).toMatch(/PASS\s+signature \(offline\)\s+valid under the public key file/);
    expect(stdout).toMatch(/NOT CHECKED\s+lock/);
  });

  it('runs as `npx cordon` from a shell, and verify exits 0', () => {
    const verify = spawnSync(
      'npx',
      ['--no-install', 'cordon', 'evidence', 'verify', demo.caseId, '--endpoint', endpoint],
      {
        cwd: repoRoot,
        encoding: 'utf8',
      },
    );

    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stdout).toContain('VERIFIED');
    expect(verify.stderr).toBe('');
  });

  // Last: it writes to the bucket.
  it('fails when manifest.json was written again in the bucket after sealing', async () => {
    const key = `cases/${demo.caseId}/manifest.json`;
    const manifest = demo.report.evidence.find((e) => e.key === key);
    if (!manifest) throw new Error('the demo case has no manifest');
    const original = await s3.send(
      new GetObjectCommand({ Bucket: demo.report.bucket, Key: key, VersionId: manifest.versionId }),
    );
    const text = (await original.Body?.transformToString()) ?? '';
    await s3.send(
      new PutObjectCommand({
        Bucket: demo.report.bucket,
        Key: key,
        Body: text.replace('"partial"', '"completed"'),
      }),
    );

    const { code, stdout } = await cordon(endpoint, ['evidence', 'verify', demo.caseId]);

    expect(code).toBe(1);
    expect(stdout).toMatch(/FAIL\s+manifest version\s+manifest\.json was written again after sealing/);
  });
});
