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

/** What the statement in a signature file claims: the case and the manifest's SHA-256. */
export function parseSigningStatement(
  statement: string,
): { caseId: string; manifestSha256: string } | undefined {
  const lines = /^([^\n]+)\ncase ([^\n]+)\nmanifest\.json sha256 ([0-9a-f]{64})\n$/.exec(statement);
  if (!lines || lines[1] !== manifestSchemaVersion) return undefined;
  return { caseId: lines[2] as string, manifestSha256: lines[3] as string };
}

export type SignatureShape =
  | { ok: true; der: Buffer }
  | { ok: false; fault: 'truncated' | 'garbage'; reason: string };

/**
 * Whether a signature file's `signature` is an ECDSA signature at all: base64 of the DER
 * `SEQUENCE { INTEGER r, INTEGER s }` KMS returns for ECDSA_SHA_256. A signature that fails this is
 * damaged (cut short, or not a signature), which says something else than a well-formed signature
 * that does not verify.
 */
export function signatureShape(base64: string): SignatureShape {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.length === 0) {
    return { ok: false, fault: 'garbage', reason: 'the signature is not base64' };
  }
  const der = Buffer.from(base64, 'base64');
  const declared = der[1];
  if (der[0] !== 0x30 || declared === undefined || declared >= 0x80) {
    return {
      ok: false,
      fault: 'garbage',
      reason: `${der.byteLength} bytes that are not a DER ECDSA signature`,
    };
  }
  if (der.byteLength < 2 + declared) {
    return {
      ok: false,
      fault: 'truncated',
      reason: `${der.byteLength} bytes where its DER header announces ${2 + declared}`,
    };
  }
  let at = 2;
  for (const _integer of ['r', 's']) {
    const length = der[at + 1];
    if (der[at] !== 0x02 || length === undefined || length < 1 || length > 33) break;
    at += 2 + length;
  }
  if (at !== 2 + declared || der.byteLength !== at) {
    return {
      ok: false,
      fault: 'garbage',
      reason: `${der.byteLength} bytes that are not a DER ECDSA signature`,
    };
  }
  return { ok: true, der };
}

/** Whether `signature` (DER) over the raw `statement` is valid under `publicKeyDer` (SubjectPublicKeyInfo). */
export function signatureValid(statement: string, signature: Uint8Array, publicKeyDer: Uint8Array): boolean {
  const key = createPublicKey({ key: Buffer.from(publicKeyDer), format: 'der', type: 'spki' });
  return verify('sha256', Buffer.from(statement), key, signature);
}
