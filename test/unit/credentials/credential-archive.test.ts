import { generateKeyPairSync, sign } from 'node:crypto';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { TimelineEvent } from '../../../functions/core/cases.js';
import { EvidenceIntegrityError } from '../../../functions/core/errors.js';
import { type Artifact, sha256 } from '../../../functions/core/evidence.js';
import { signatureFileSchema, verifyManifestSignature } from '../../../functions/core/manifest.js';
import { credentialArchive } from '../../../functions/credentials/credential-archive/credential-archive.js';
import { MemoryCases, userCredentialCase } from '../../support/playbooks-fixtures.js';

const s3Mock = mockClient(S3Client);
const kmsMock = mockClient(KMSClient);
const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicDer = keys.publicKey.export({ format: 'der', type: 'spki' });
const c = userCredentialCase;

const artifact = (name: string, body: string): Artifact => ({
  key: `cases/${c.caseId}/${name}`,
  versionId: `v-${name}`,
  bytes: Buffer.byteLength(body),
  sha256: sha256(body).hex,
  contentType: 'application/json',
});
const trigger = artifact('trigger.json', '{"finding":1}');
const events: TimelineEvent[] = [
  { at: '1', step: 'credential-intake', action: 's3:PutObject', status: 'ok', artifact: trigger },
  {
    at: '2',
    step: 'deactivate-access-key',
    action: 'iam:UpdateAccessKey (Inactive)',
    status: 'ok',
    requestId: 'r1',
  },
];

function setup() {
  const written = new Map<string, string>();
  const put = vi.fn(async (_r: unknown, name: string, body: Uint8Array | string) => {
    written.set(name, String(body));
    return artifact(name, String(body));
  });
  s3Mock.on(HeadObjectCommand).callsFake((input: { Key: string }) => {
    const name = input.Key.split('/').pop() ?? '';
    const bytes = input.Key === trigger.key ? trigger.bytes : Buffer.byteLength(written.get(name) ?? '');
    return { ContentLength: bytes, ObjectLockMode: 'GOVERNANCE' };
  });
  const cases = new MemoryCases();
  const deps = {
    s3: new S3Client({}),
    kms: new KMSClient({}),
    bucket: 'evidence',
    signingKeyId: 'arn:aws:kms:us-east-1:123456789012:key/sign',
    cases: { timeline: async () => events },
    evidence: { put },
    recorder: cases.recorder(c.caseId, 'credential-archive'),
    now: () => new Date('2026-11-27T21:00:00Z'),
  };
  return { deps, written, put };
}

const contained = {
  case: c,
  deactivate: { status: 'succeeded', detail: 'ok' },
  quarantine: { status: 'succeeded', detail: 'ok' },
  revoke: { status: 'succeeded', detail: 'ok' },
  activity: { status: 'succeeded', detail: '3 events' },
};

beforeEach(() => {
  s3Mock.reset();
  kmsMock.reset();
  kmsMock.on(SignCommand).callsFake((input: { Message: Uint8Array }) => ({
    Signature: sign('sha256', Buffer.from(input.Message), keys.privateKey),
    $metadata: { requestId: 'req-sign' },
  }));
  kmsMock.on(GetPublicKeyCommand).resolves({ PublicKey: publicDer });
});

describe('credentialArchive', () => {
  it('seals the case with a manifest that names the principal, the outcome and every artifact', async () => {
    const { deps, written } = setup();
    const result = await credentialArchive(contained, deps);
    expect(result.outcome).toBe('completed');
    const manifest = JSON.parse(written.get('manifest.json') ?? '{}');
    expect(manifest).toMatchObject({
      schema: 'cordon.manifest/1',
      caseId: c.caseId,
      kind: 'credential',
      instanceId: '',
      principal: c.principal,
      outcome: 'completed',
      bucket: 'evidence',
    });
    expect(manifest.artifacts.map((a: Artifact) => a.key)).toEqual([
      trigger.key,
      `cases/${c.caseId}/timeline.jsonl`,
    ]);
  });

  it('signs the manifest so that it verifies offline with the public key', async () => {
    const { deps, written } = setup();
    await credentialArchive(contained, deps);
    const manifest = Buffer.from(written.get('manifest.json') ?? '');
    const signature = signatureFileSchema.parse(JSON.parse(written.get('manifest.sig') ?? '{}'));
    expect(verifyManifestSignature(manifest, signature, publicDer)).toEqual({ ok: true });
    expect(kmsMock).toHaveReceivedCommandWith(SignCommand, {
      MessageType: 'RAW',
      SigningAlgorithm: 'ECDSA_SHA_256',
    });
  });

  it('puts manifest and signature under a legal hold', async () => {
    const { deps, put } = setup();
    await credentialArchive(contained, deps);
    const holds = put.mock.calls.filter(
      (call) => (call as unknown[])[3] && ((call as unknown[])[3] as { legalHold?: boolean }).legalHold,
    );
    expect(holds.map((call) => call[1])).toEqual(['manifest.json', 'manifest.sig']);
  });

  it('refuses to seal evidence S3 no longer holds as recorded', async () => {
    const { deps } = setup();
    s3Mock
      .on(HeadObjectCommand, { Key: trigger.key })
      .resolves({ ContentLength: 1, ObjectLockMode: 'GOVERNANCE' });
    await expect(credentialArchive(contained, deps)).rejects.toBeInstanceOf(EvidenceIntegrityError);
    expect(kmsMock).toHaveReceivedCommandTimes(SignCommand, 0);
  });

  it('seals a case whose containment failed with the outcome failed', async () => {
    const { deps, written } = setup();
    const result = await credentialArchive(
      { ...contained, quarantine: { Error: 'AwsAccessDeniedError', Cause: 'denied' } },
      deps,
    );
    expect(result.outcome).toBe('failed');
    expect(JSON.parse(written.get('manifest.json') ?? '{}').steps).toContainEqual({
      name: 'quarantine principal',
      status: 'failed',
      reason: 'AwsAccessDeniedError: denied',
    });
  });
});
