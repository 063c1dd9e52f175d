import { generateKeyPairSync, sign } from 'node:crypto';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { TimelineEvent } from '../../../functions/core/cases.js';
import { EvidenceIntegrityError, SigningError } from '../../../functions/core/errors.js';
import { type Artifact, sha256 } from '../../../functions/core/evidence.js';
import { signatureFileSchema, verifyManifestSignature } from '../../../functions/core/manifest.js';
import { archiveEvidence } from '../../../functions/forensics/archive-evidence/archive-evidence.js';
import { MemoryTimeline, sampleCase } from '../../support/core-fakes.js';

const s3 = mockClient(S3Client);
const kms = mockClient(KMSClient);
const eventBridge = mockClient(EventBridgeClient);
const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicDer = keys.publicKey.export({ format: 'der', type: 'spki' });

const artifact = (name: string, body: string): Artifact => ({
  key: `cases/${sampleCase.caseId}/${name}`,
  versionId: `v-${name}`,
  bytes: Buffer.byteLength(body),
  sha256: sha256(body).hex,
  contentType: 'application/json',
});
const trigger = artifact('trigger.json', '{"a":1}');
const triage = artifact('triage.json', '{"b":2}');

function setup(events: TimelineEvent[]) {
  const written = new Map<string, string>();
  const put = vi.fn(
    async (_r: unknown, name: string, body: Uint8Array | string, _options?: { legalHold?: boolean }) => {
      written.set(name, String(body));
      return artifact(name, String(body));
    },
  );
  // S3 as the archive step finds it: every object stored so far, locked, at its recorded size.
  s3.on(HeadObjectCommand).callsFake((input: { Key: string }) => {
    const known = [trigger, triage].find((x) => x.key === input.Key);
    const name = input.Key.split('/').pop() ?? '';
    return {
      ContentLength: known?.bytes ?? Buffer.byteLength(written.get(name) ?? ''),
      ObjectLockMode: 'COMPLIANCE',
    };
  });
  const deps = {
    s3: new S3Client({}),
    kms: new KMSClient({}),
    bucket: 'evidence',
    signingKeyId: 'arn:aws:kms:us-east-1:123456789012:key/sign',
    cases: { timeline: async () => events },
    evidence: { put },
    recorder: new MemoryTimeline().recorder(sampleCase.caseId, 'archive-evidence'),
    now: () => new Date('2026-11-27T21:00:00Z'),
    events: new EventBridgeClient({}),
  };
  return { deps, written, put };
}

const events: TimelineEvent[] = [
  { at: '1', step: 'intake-finding', action: 's3:PutObject', status: 'ok', artifact: trigger },
  { at: '2', step: 'triage-instance', action: 's3:PutObject', status: 'ok', artifact: triage },
  { at: '3', step: 'triage-instance', action: 's3:PutObject', status: 'ok', artifact: triage },
  {
    at: '4',
    step: 'isolate-instance',
    action: 'ec2:ModifyNetworkInterfaceAttribute',
    status: 'ok',
    target: 'eni-1',
  },
];

const state = {
  case: sampleCase,
  triage: {},
  containment: {
    protect: { status: 'succeeded', result: {} },
    isolate: { status: 'succeeded', result: {} },
    revoke: { status: 'succeeded', result: {} },
  },
  response: {
    loadBalancers: { status: 'succeeded', result: {} },
    disk: { status: 'succeeded', snapshots: { snapshots: [{ snapshotId: 'snap-1' }] } },
  },
  memory: { status: 'verified' },
};

beforeEach(() => {
  s3.reset();
  kms.reset();
  kms.on(SignCommand).callsFake((input: { Message: Uint8Array }) => ({
    Signature: sign('sha256', Buffer.from(input.Message), keys.privateKey),
  }));
  kms.on(GetPublicKeyCommand).resolves({ PublicKey: publicDer });
  eventBridge.reset();
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
});

describe('archiveEvidence', () => {
  it('says the evidence is sealed on the default bus, after the signature is stored', async () => {
    const { deps, written } = setup(events);
    await archiveEvidence(state, deps);
    expect(written.has('manifest.sig')).toBe(true);
    const entry = eventBridge.commandCalls(PutEventsCommand)[0]?.args[0].input.Entries?.[0];
    expect(entry).toMatchObject({ Source: 'cordon', DetailType: 'Cordon Evidence Sealed' });
    expect(JSON.parse(entry?.Detail ?? '{}')).toMatchObject({
      transition: 'sealed',
      caseId: sampleCase.caseId,
    });
  });

  it('seals all the same when the event is refused', async () => {
    eventBridge.on(PutEventsCommand).rejects(new Error('network down'));
    const { deps } = setup(events);
    const result = await archiveEvidence(state, deps);
    expect(result.manifest.key).toBe(`cases/${sampleCase.caseId}/manifest.json`);
  });

  it('lists every stored artifact once, with the timeline, in the manifest', async () => {
    const { deps, written } = setup(events);
    const result = await archiveEvidence(state, deps);
    const manifest = JSON.parse(written.get('manifest.json') ?? '{}');
    expect(manifest.artifacts.map((a: Artifact) => a.key)).toEqual([
      trigger.key,
      triage.key,
      `cases/${sampleCase.caseId}/timeline.jsonl`,
    ]);
    expect(manifest).toMatchObject({
      caseId: sampleCase.caseId,
      outcome: 'completed',
      executionArn: sampleCase.executionArn,
    });
    expect(manifest.snapshots).toEqual({ snapshots: [{ snapshotId: 'snap-1' }] });
    expect(written.get('timeline.jsonl')?.trim().split('\n')).toHaveLength(4);
    expect(result.outcome).toBe('completed');
  });

  it('seals a case whose triage failed after containment as partial, saying which step failed and why', async () => {
    const { deps, written } = setup(events);
    const result = await archiveEvidence(
      {
        case: sampleCase,
        containment: state.containment,
        error: { Error: 'InstanceNotFoundError', Cause: 'i-1 does not exist' },
      },
      deps,
    );
    const manifest = JSON.parse(written.get('manifest.json') ?? '{}');
    expect(result.outcome).toBe('partial');
    expect(manifest).toMatchObject({
      outcome: 'partial',
      steps: [
        { name: 'protect', status: 'succeeded' },
        { name: 'isolate', status: 'succeeded' },
        { name: 'revoke', status: 'succeeded' },
        { name: 'triage', status: 'failed', reason: 'InstanceNotFoundError: i-1 does not exist' },
      ],
      snapshots: null,
      memory: null,
    });
  });

  it('leaves its own earlier attempt out of the timeline, so that a retry writes the same bytes', async () => {
    const retried: TimelineEvent[] = [
      ...events,
      {
        at: '5',
        step: 'archive-evidence',
        action: 'kms:Sign',
        status: 'failed',
        detail: 'AwsThrottlingError',
      },
    ];
    const first = setup(events);
    await archiveEvidence(state, first.deps);
    const second = setup(retried);
    await archiveEvidence(state, second.deps);
    expect(second.written.get('timeline.jsonl')).toBe(first.written.get('timeline.jsonl'));
  });

  it('signs the manifest so that it verifies offline with the public key', async () => {
    const { deps, written } = setup([]);
    await archiveEvidence(state, deps);
    const manifest = Buffer.from(written.get('manifest.json') ?? '');
    const signature = signatureFileSchema.parse(JSON.parse(written.get('manifest.sig') ?? '{}'));
    expect(verifyManifestSignature(manifest, signature, publicDer)).toEqual({ ok: true });
    expect(kms).toHaveReceivedCommandWith(SignCommand, {
      MessageType: 'RAW',
      SigningAlgorithm: 'ECDSA_SHA_256',
    });
  });

  it('puts the manifest and its signature under legal hold', async () => {
    const { deps, put } = setup([]);
    await archiveEvidence(state, deps);
    const held = put.mock.calls.filter((c) => (c[3] as { legalHold?: boolean }).legalHold).map((c) => c[1]);
    expect(held).toEqual(['manifest.json', 'manifest.sig']);
  });

  it('refuses to seal a case whose artifact is no longer locked', async () => {
    const { deps, put } = setup(events);
    s3.on(HeadObjectCommand).resolves({ ContentLength: 7 });
    await expect(archiveEvidence(state, deps)).rejects.toBeInstanceOf(EvidenceIntegrityError);
    expect(put.mock.calls.map((c) => c[1])).toEqual(['timeline.jsonl']);
  });

  it('refuses to seal a case whose artifact changed size in the bucket', async () => {
    const { deps } = setup(events);
    s3.on(HeadObjectCommand).resolves({ ContentLength: 999, ObjectLockMode: 'COMPLIANCE' });
    await expect(archiveEvidence(state, deps)).rejects.toThrow(/S3 holds 999 bytes/);
  });

  it('fails with SigningError, leaving no signature, when KMS will not sign', async () => {
    const { deps, put } = setup([]);
    kms.on(SignCommand).rejects(Object.assign(new Error('disabled'), { name: 'DisabledException' }));
    await expect(archiveEvidence(state, deps)).rejects.toBeInstanceOf(SigningError);
    expect(put.mock.calls.map((c) => c[1])).not.toContain('manifest.sig');
  });
});

describe('verifyManifestSignature', () => {
  it('rejects a manifest with one byte changed', async () => {
    const { deps, written } = setup([]);
    await archiveEvidence(state, deps);
    const tampered = Buffer.from(written.get('manifest.json') ?? '');
    tampered[10] = (tampered[10] ?? 0) ^ 1;
    const signature = signatureFileSchema.parse(JSON.parse(written.get('manifest.sig') ?? '{}'));
    expect(verifyManifestSignature(tampered, signature, publicDer)).toMatchObject({ ok: false });
  });

  it('rejects a signature made with another key', async () => {
    const { deps, written } = setup([]);
    await archiveEvidence(state, deps);
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      format: 'der',
      type: 'spki',
    });
    const signature = signatureFileSchema.parse(JSON.parse(written.get('manifest.sig') ?? '{}'));
    expect(
      verifyManifestSignature(Buffer.from(written.get('manifest.json') ?? ''), signature, other),
    ).toEqual({
      ok: false,
      reason: 'the signature is not valid for this key',
    });
  });
});
