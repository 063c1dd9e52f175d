import { createPublicKey, verify } from 'node:crypto';
import { z } from 'zod';
import { sha256 } from './evidence.js';

export const manifestSchemaVersion = 'cordon.manifest/1';
export const signingAlgorithm = 'ECDSA_SHA_256';

/**
 * The statement that is signed. KMS signs at most 4 KB of raw message and a manifest can be larger,
 * so the signature covers this short statement, which names the manifest by its SHA-256. Signing the
 * raw statement (rather than a digest) also means every verifier hashes exactly once.
 */
export function signingStatement(caseId: string, manifestSha256: string): string {
  return `${manifestSchemaVersion}\ncase ${caseId}\nmanifest.json sha256 ${manifestSha256}\n`;
}

export const signatureFileSchema = z.object({
  schema: z.literal(manifestSchemaVersion),
  keyId: z.string(),
  signingAlgorithm: z.literal(signingAlgorithm),
  messageType: z.literal('RAW'),
  message: z.string(),
  manifest: z.object({ key: z.string(), versionId: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  signature: z.string(),
  publicKey: z.string().nullable(),
});
export type SignatureFile = z.infer<typeof signatureFileSchema>;

export const manifestArtifactSchema = z.object({
  key: z.string(),
  versionId: z.string(),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  contentType: z.string(),
});

export const manifestSchema = z.looseObject({
  schema: z.literal(manifestSchemaVersion),
  caseId: z.string(),
  instanceId: z.string(),
  outcome: z.string(),
  bucket: z.string(),
  artifacts: z.array(manifestArtifactSchema),
});
export type Manifest = z.infer<typeof manifestSchema>;

export type SignatureVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Checks, offline, that `manifestBytes` is the manifest the signature file speaks of and that the
 * signature over the statement is valid under `publicKeyDer` (SubjectPublicKeyInfo, as KMS
 * GetPublicKey returns it). The public key must come from KMS or a trusted copy, never from the file.
 */
export function verifyManifestSignature(
  manifestBytes: Uint8Array,
  signatureFile: SignatureFile,
  publicKeyDer: Uint8Array,
): SignatureVerdict {
  const digest = sha256(manifestBytes).hex;
  if (digest !== signatureFile.manifest.sha256) {
    return {
      ok: false,
      reason: `manifest.json has SHA-256 ${digest}, the signature names ${signatureFile.manifest.sha256}`,
    };
  }
  let manifest: { caseId?: unknown };
  try {
    manifest = JSON.parse(Buffer.from(manifestBytes).toString('utf8')) as { caseId?: unknown };
  } catch {
    return { ok: false, reason: 'manifest.json is not valid JSON' };
  }
  const expected = signingStatement(String(manifest.caseId), digest);
  if (signatureFile.message !== expected) {
    return { ok: false, reason: 'the signed statement does not describe this manifest' };
  }
  const key = createPublicKey({ key: Buffer.from(publicKeyDer), format: 'der', type: 'spki' });
  const valid = verify('sha256', Buffer.from(expected), key, Buffer.from(signatureFile.signature, 'base64'));
  return valid ? { ok: true } : { ok: false, reason: 'the signature is not valid for this key' };
}
