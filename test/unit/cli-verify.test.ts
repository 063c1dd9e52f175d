import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { cp, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetPublicKeyCommand, KMSClient, VerifyCommand } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { signatureShape, signingStatement } from '../../functions/core/manifest.js';
import { stampFile, writeGetRecord } from '../../scripts/cli/get-record.js';
import { type VerifyReport, verifyCase } from '../../scripts/cli/verify.js';
import { type StoredObject, sealedCase, serveObjects } from '../support/cli-mocks.js';

const s3 = mockClient(S3Client);
const kms = mockClient(KMSClient);
const caseId = '20261127T201003Z-i-0123456789abcdef0-3fa9';
const bucket = 'cordon-evidence-dev';
const keyArn = 'arn:aws:kms:us-east-1:111122223333:key/sign-1';
const now = new Date('2026-11-27T21:00:00Z');
const locked = {
  ObjectLockMode: 'COMPLIANCE' as const,
  ObjectLockRetainUntilDate: new Date('2027-11-27T21:00:00Z'),
  ObjectLockLegalHoldStatus: 'OFF' as const,
};
const deps = () => ({ s3: new S3Client({}), kms: new KMSClient({}), bucket, signingKeyArn: keyArn, now });

/** `touch -r`: gives `path` the times of `reference`, to the nanosecond, as a tamperer would. */
function touchLike(reference: string, path: string) {
  const run = spawnSync('touch', ['-r', reference, path]);
  if (run.status !== 0) throw new Error(`touch -r failed: ${run.stderr}`);
}

beforeEach(() => {
  s3.reset();
  kms.reset();
});

describe('verifyCase against the bucket', () => {
  it('passes a case whose signature, hashes and locks all check out', async () => {
    const sealed = sealedCase({ caseId, bucket, keyId: keyArn, artifacts: { 'triage.json': '{"a":1}' } });
    serveObjects(s3, sealed.objects, locked);
    kms.on(GetPublicKeyCommand).resolves({ PublicKey: sealed.publicKeyDer });
    kms.on(VerifyCommand).resolves({ SignatureValid: true });

    const report = await verifyCase(caseId, deps());

    expect(report.ok).toBe(true);
    expect(kms).toHaveReceivedCommandWith(VerifyCommand, {
      KeyId: keyArn,
      Message: Buffer.from(sealed.statement),
      MessageType: 'RAW',
      SigningAlgorithm: 'ECDSA_SHA_256',
    });
  });

  it('never trusts the public key the signature file carries', async () => {
    // Someone rewrote the evidence and re-signed it with a key of their own, embedding its public key.
    const forger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const genuine = sealedCase({ caseId, bucket, keyId: keyArn, artifacts: { 'triage.json': '{"a":1}' } });
    const forged = sealedCase({
      caseId,
      bucket,
      keyId: keyArn,
      artifacts: { 'triage.json': '{"a":2}' },
      signer: forger.privateKey,
      embeddedPublicKey: forger.publicKey,
    });
    serveObjects(s3, forged.objects, locked);
    kms.on(GetPublicKeyCommand).resolves({ PublicKey: genuine.publicKeyDer });
    kms.on(VerifyCommand).resolves({ SignatureValid: false });

    const report = await verifyCase(caseId, deps());

    expect(report.ok).toBe(false);
    expect(report.signature).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ check: 'signature (offline)', status: 'fail' }),
        expect.objectContaining({ check: 'signature (KMS)', status: 'fail' }),
      ]),
    );
  });

  it('still verifies offline when KMS cannot be reached, and says KMS was not checked', async () => {
    const sealed = sealedCase({ caseId, bucket, keyId: keyArn, artifacts: { 'triage.json': '{"a":1}' } });
    serveObjects(s3, sealed.objects, locked);
    kms.on(GetPublicKeyCommand).resolves({ PublicKey: sealed.publicKeyDer });
    kms.on(VerifyCommand).rejects(Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' }));

    const report = await verifyCase(caseId, deps());

    expect(report.ok).toBe(true);
    expect(report.signature).toContainEqual(
      expect.objectContaining({
        check: 'signature (KMS)',
        status: 'unchecked',
        detail: expect.stringContaining('Cannot reach AWS'),
      }),
    );
  });

  it('fails a case signed under another key than the stack names', async () => {
    const sealed = sealedCase({
      caseId,
      bucket,
      keyId: 'arn:aws:kms:us-east-1:999999999999:key/other',
      artifacts: { 'a.json': '{}' },
    });
    serveObjects(s3, sealed.objects, locked);
    kms.on(GetPublicKeyCommand).resolves({ PublicKey: sealed.publicKeyDer });
    kms.on(VerifyCommand).resolves({ SignatureValid: true });

    const report = await verifyCase(caseId, deps());

    expect(report.ok).toBe(false);
    expect(report.signature).toContainEqual(
      expect.objectContaining({ check: 'signing key', status: 'fail' }),
    );
  });

  it('fails an artifact that is no longer under Object Lock, naming it', async () => {
    const sealed = sealedCase({ caseId, bucket, keyId: keyArn, artifacts: { 'triage.json': '{"a":1}' } });
    serveObjects(s3, sealed.objects, {
      ObjectLockMode: 'GOVERNANCE',
      ObjectLockRetainUntilDate: new Date('2026-11-01T00:00:00Z'),
    });
    kms.on(GetPublicKeyCommand).resolves({ PublicKey: sealed.publicKeyDer });
    kms.on(VerifyCommand).resolves({ SignatureValid: true });

    const report = await verifyCase(caseId, deps());

    expect(report.ok).toBe(false);
    expect(report.artifacts.find((a) => a.name === 'triage.json')).toMatchObject({
      ok: false,
      lock: { status: 'fail', detail: expect.stringContaining('not locked: GOVERNANCE until 2026-11-01') },
    });
  });

  it('fails when there is no public key at all rather than calling the signature good', async () => {
    const sealed = sealedCase({ caseId, bucket, keyId: keyArn, artifacts: { 'a.json': '{}' } });
    serveObjects(s3, sealed.objects, locked);

    const report = await verifyCase(caseId, { s3: new S3Client({}), bucket, now });

    expect(report.ok).toBe(false);
    expect(report.signature).toContainEqual(
      expect.objectContaining({
        check: 'signature (offline)',
        status: 'fail',
        detail: expect.stringContaining('no public key'),
      }),
    );
  });
});

describe("verifyCase and signatures that are genuine, but not this case's", () => {
  it("fails another case's signature even where KMS calls it valid for the statement it carries", async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const otherCase = '20261127T201003Z-i-0123456789abcdef0-beef';
    const signer = { signer: key.privateKey, embeddedPublicKey: key.publicKey };
    const mine = sealedCase({ caseId, bucket, keyId: keyArn, artifacts: { 'a.json': '{}' }, ...signer });
    const theirs = sealedCase({
      caseId: otherCase,
      bucket,
      keyId: keyArn,
      artifacts: { 'a.json': '{}' },
      ...signer,
    });
    mine.objects.set(
      `cases/${caseId}/manifest.sig`,
      theirs.objects.get(`cases/${otherCase}/manifest.sig`) as StoredObject,
    );
    serveObjects(s3, mine.objects, locked);
    kms
      .on(GetPublicKeyCommand)
      .resolves({ PublicKey: key.publicKey.export({ format: 'der', type: 'spki' }) });
    // KMS as AWS answers: valid exactly for the statement that was signed.
    kms.on(VerifyCommand).callsFake((input: { Message: Uint8Array }) => ({
      SignatureValid: Buffer.from(input.Message).toString() === theirs.statement,
    }));
    const manifest = mine.objects.get(`cases/${caseId}/manifest.json`)?.body as Buffer;

    const report = await verifyCase(caseId, deps());

    expect(report.ok).toBe(false);
    expect(kms).toHaveReceivedCommandWith(VerifyCommand, {
      Message: Buffer.from(signingStatement(caseId, createHash('sha256').update(manifest).digest('hex'))),
    });
    expect(report.signature).toContainEqual(
      expect.objectContaining({ check: 'signature (KMS)', status: 'fail' }),
    );
    expect(report.problems).toEqual([`manifest.sig: another case's signature (${otherCase})`]);
  });
});

describe('verifyCase on a folder that cordon evidence get wrote', () => {
  const triage = '{"observed":"the instance as Triage saw it"}\n';
  let work: string;
  let dir: string;
  let records: string;
  let sealed: ReturnType<typeof sealedCase>;
  const folderDeps = (extra: { rehash?: boolean; dir?: string } = {}) => ({
    dir,
    getRecords: records,
    publicKeyDer: sealed.publicKeyDer,
    now,
    ...extra,
  });
  /** What get records once the file is complete: the manifest's hash, and the file's stamp now. */
  const recordGet = async () => {
    const a = sealed.artifacts[0] as (typeof sealed.artifacts)[number];
    const stamp = await stampFile(join(dir, 'triage.json'));
    await writeGetRecord(
      records,
      dir,
      caseId,
      { 'triage.json': { sha256: a.sha256, bytes: a.bytes, stamp } },
      now,
    );
  };
  const triageVerdict = (report: VerifyReport) => report.artifacts.find((a) => a.name === 'triage.json');

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'cordon-verify-'));
    dir = join(work, 'case');
    records = join(work, 'state');
    sealed = sealedCase({ caseId, bucket, keyId: keyArn, artifacts: { 'triage.json': triage } });
    await mkdir(dir);
    for (const [key, o] of sealed.objects)
      await writeFile(join(dir, key.split('/').slice(2).join('/')), o.body);
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('does not read again a file unchanged since get hashed it, and says so', async () => {
    await recordGet();
    const read = vi.spyOn(await import('../../scripts/cli/download.js'), 'hashFile');

    const report = await verifyCase(caseId, folderDeps());

    expect(report.ok).toBe(true);
    expect(triageVerdict(report)).toMatchObject({
      hashSource: 'get record',
      hash: {
        status: 'pass',
        detail: expect.stringContaining('hashed by cordon evidence get at 2026-11-27T21:00:00.000Z'),
      },
    });
    expect(read).not.toHaveBeenCalled();
  });

  it('takes the record at its word for an unchanged file: only --rehash reads the bytes', async () => {
    // Bytes changed before get recorded the file's stamp: what the record cannot see (while get runs).
    await writeFile(join(dir, 'triage.json'), triage.toUpperCase());
    await recordGet();

    const trusting = await verifyCase(caseId, folderDeps());
    const rehashed = await verifyCase(caseId, folderDeps({ rehash: true }));

    expect(trusting.ok).toBe(true);
    expect(rehashed.ok).toBe(false);
    expect(rehashed.problems).toEqual(['triage.json: content changed']);
    expect(triageVerdict(rehashed)?.hashSource).toBe('file');
  });

  it('reads a file written after get, even with its size and modification time put back', async () => {
    await recordGet();
    const times = join(work, 'times');
    await writeFile(times, '');
    touchLike(join(dir, 'triage.json'), times);
    await new Promise((r) => setTimeout(r, 20));

    await writeFile(join(dir, 'triage.json'), triage.toUpperCase());
    touchLike(times, join(dir, 'triage.json'));
    const report = await verifyCase(caseId, folderDeps());

    expect(report.ok).toBe(false);
    expect(report.problems).toEqual(['triage.json: content changed']);
    expect(triageVerdict(report)?.hashSource).toBe('file');
  });

  it('reads a file replaced after get by another with the same bytes, and passes it', async () => {
    await recordGet();

    await writeFile(join(dir, 'copy'), triage);
    await rename(join(dir, 'copy'), join(dir, 'triage.json'));
    const report = await verifyCase(caseId, folderDeps());

    expect(report.ok).toBe(true);
    expect(triageVerdict(report)?.hashSource).toBe('file');
  });

  it('reads every file of a copy of the folder: the record is of the folder get wrote', async () => {
    await recordGet();
    const copy = join(work, 'copy');

    await cp(dir, copy, { recursive: true });
    const report = await verifyCase(caseId, folderDeps({ dir: copy }));

    expect(report.ok).toBe(true);
    expect(triageVerdict(report)?.hashSource).toBe('file');
  });
});

describe('signatureShape', () => {
  const der = sign(
    'sha256',
    Buffer.from('statement'),
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  );

  it('accepts a DER ECDSA signature', () => {
    expect(signatureShape(der.toString('base64'))).toMatchObject({ ok: true });
  });

  it('calls a signature whose base64 was cut short truncated', () => {
    expect(signatureShape(der.toString('base64').slice(0, 40))).toMatchObject({
      ok: false,
      fault: 'truncated',
    });
  });

  it('calls bytes that are no DER signature, or no base64, garbage', () => {
    expect(signatureShape(Buffer.alloc(71, 0xa5).toString('base64'))).toMatchObject({
      ok: false,
      fault: 'garbage',
    });
    expect(signatureShape('not a signature!')).toMatchObject({ ok: false, fault: 'garbage' });
    expect(signatureShape(Buffer.concat([der, Buffer.from([0])]).toString('base64'))).toMatchObject({
      ok: false,
      fault: 'garbage',
    });
  });
});
