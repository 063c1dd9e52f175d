import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { signatureFileSchema, verifyManifestSignature } from '../../functions/core/manifest.js';
import { humanReport } from '../../scripts/demo.js';
import { type LocalCase, runLocalCase } from '../../scripts/local/case.js';
import { resetMoto } from '../../scripts/local/moto.js';
import { readRealEvent, realEventFiles } from '../support/fixtures.js';
import { validate } from '../support/json-schema.js';

const endpoint = inject('motoEndpoint');
const base = {
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  maxAttempts: 1,
};
const s3 = new S3Client({ ...base, forcePathStyle: true });
const kms = new KMSClient(base);

async function body(bucket: string, key: string, versionId: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
  return Buffer.from(
    await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
}

const files = realEventFiles();
const eventSchema = JSON.parse(
  readFileSync(new URL('../../docs/events.schema.json', import.meta.url), 'utf8'),
);
const runs = new Map<string, LocalCase>();

beforeAll(async () => {
  await resetMoto(endpoint);
  // One emulated account for every fixture: each run seeds its own instance, as cases in one account would.
  for (const file of files) runs.set(file, await runLocalCase(readRealEvent(file), { endpoint }));
}, 240_000);

describe.each(files.filter((f) => f.includes('REJECT')))('%s', (file) => {
  it('is rejected with a named reason and leaves no evidence', () => {
    const { report } = runs.get(file) as LocalCase;
    expect(report.outcome).toBe('rejected');
    expect(report.reason).toMatch(/^[A-Z_]+: /);
    expect(report.evidence).toEqual([]);
    expect(report.steps.map((s) => s.name)).toEqual(['Intake Finding']);
  });
});

describe.each(files.filter((f) => !f.includes('REJECT')))('%s', (file) => {
  it('completes with a manifest, a signature and a memory image among the evidence', () => {
    const { report } = runs.get(file) as LocalCase;
    expect(report.outcome, report.reason).toBe('completed');
    const keys = report.evidence.map((e) => e.key.split('/').slice(2).join('/'));
    expect(keys).toEqual(
      expect.arrayContaining(['trigger.json', 'triage.json', 'manifest.json', 'manifest.sig']),
    );
    expect(keys.some((k) => k.startsWith('memory/'))).toBe(true);
  });

  it('puts opened, contained, sealed and completed on the default bus, each detail as docs/events.schema.json says', () => {
    const { report, events } = runs.get(file) as LocalCase;
    // A standard queue keeps no order: the set of transitions, each once.
    expect(events.map((e) => e.detailType).sort()).toEqual([
      'Cordon Case Completed',
      'Cordon Case Contained',
      'Cordon Case Opened',
      'Cordon Evidence Sealed',
    ]);
    for (const e of events) {
      expect(e.source).toBe('cordon');
      expect(validate(eventSchema, e.detail), e.detailType).toEqual([]);
      expect(e.detail.caseId).toBe(report.caseId);
    }
  });

  it('prints the events it emitted, in the order of the transitions', () => {
    const text = humanReport(runs.get(file) as LocalCase);
    const at = text.indexOf(
      'Events on the default event bus (source cordon; detail: docs/events.schema.json)',
    );
    expect(at).toBeGreaterThan(0);
    expect(text.slice(at + 1, at + 5).map((l) => l.trim().split(/ +/).slice(1).join(' '))).toEqual([
      'Cordon Case Opened',
      'Cordon Case Contained',
      'Cordon Evidence Sealed',
      'Cordon Case Completed outcome completed',
    ]);
  });

  it('stores every artifact locked, with the SHA-256 the case reports', async () => {
    const { report } = runs.get(file) as LocalCase;
    for (const e of report.evidence) {
      const bytes = await body(report.bucket, e.key, e.versionId);
      expect(createHash('sha256').update(bytes).digest('hex'), e.key).toBe(e.sha256);
      expect(bytes.length).toBe(e.bytes);
      const head = await s3.send(
        new HeadObjectCommand({ Bucket: report.bucket, Key: e.key, VersionId: e.versionId }),
      );
      expect(head.ObjectLockMode ?? head.ObjectLockLegalHoldStatus, e.key).toBeTruthy();
    }
  });
});

describe('evidence of a completed case', () => {
  const completed = () => {
    const run = [...runs.values()].find((r) => r.report.outcome === 'completed');
    if (!run) throw new Error('no completed case to inspect');
    return run.report;
  };
  const artifact = (name: string) => {
    const found = completed().evidence.find((e) => e.key.endsWith(`/${name}`));
    if (!found) throw new Error(`no ${name}`);
    return found;
  };

  it('refuses to delete a locked version', async () => {
    const report = completed();
    const trigger = artifact('trigger.json');
    await expect(
      s3.send(
        new DeleteObjectCommand({ Bucket: report.bucket, Key: trigger.key, VersionId: trigger.versionId }),
      ),
    ).rejects.toThrow();
    expect((await body(report.bucket, trigger.key, trigger.versionId)).length).toBe(trigger.bytes);
  });

  it('has a manifest whose signature verifies with the KMS public key, and fails on one changed byte', async () => {
    const report = completed();
    const manifest = artifact('manifest.json');
    const sig = artifact('manifest.sig');
    const manifestBytes = await body(report.bucket, manifest.key, manifest.versionId);
    const signature = signatureFileSchema.parse(
      JSON.parse((await body(report.bucket, sig.key, sig.versionId)).toString()),
    );
    const { PublicKey } = await kms.send(new GetPublicKeyCommand({ KeyId: signature.keyId }));
    expect(verifyManifestSignature(manifestBytes, signature, PublicKey as Uint8Array)).toEqual({ ok: true });
    const changed = Buffer.from(manifestBytes);
    changed[changed.length - 3] = (changed[changed.length - 3] ?? 0) ^ 0x01;
    expect(verifyManifestSignature(changed, signature, PublicKey as Uint8Array).ok).toBe(false);
  });

  it('lists in the manifest every artifact the case reports, with the same hashes', async () => {
    const report = completed();
    const manifest = artifact('manifest.json');
    const parsed = JSON.parse((await body(report.bucket, manifest.key, manifest.versionId)).toString()) as {
      artifacts: { key: string; sha256: string }[];
    };
    const reported = report.evidence.filter((e) => !/manifest\.(json|sig)$/.test(e.key));
    expect(parsed.artifacts.map((a) => [a.key, a.sha256]).sort()).toEqual(
      reported.map((e) => [e.key, e.sha256]).sort(),
    );
  });
});
