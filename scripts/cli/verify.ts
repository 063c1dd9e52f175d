import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { GetPublicKeyCommand, type KMSClient, VerifyCommand } from '@aws-sdk/client-kms';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { awsErrorCode } from '../../functions/shared/errors.js';
import { caseFolder, sha256 } from '../../functions/shared/evidence.js';
import {
  type Manifest,
  type SignatureFile,
  signingAlgorithm,
  signingStatement,
  verifyManifestSignature,
} from '../../functions/shared/manifest.js';
import { hashFile, pathInside } from './download.js';
import { CliError, explain } from './errors.js';
import {
  lockState,
  manifestName,
  mapLimit,
  nameInCase,
  parseManifest,
  parseSignatureFile,
  readSealedCase,
  signatureName,
} from './evidence.js';
import { safe } from './output.js';

export type VerdictStatus = 'pass' | 'fail' | 'unchecked';

export interface Verdict {
  check: string;
  status: VerdictStatus;
  detail: string;
}

export interface ArtifactVerdict {
  name: string;
  key: string;
  versionId: string;
  hash: Verdict;
  lock: Verdict;
  ok: boolean;
}

export interface VerifyReport {
  caseId: string;
  source: 'bucket' | 'folder';
  signature: Verdict[];
  manifest: Verdict[];
  artifacts: ArtifactVerdict[];
  ok: boolean;
}

export interface VerifyDeps {
  /** Absent: fully offline (a folder and a public key file); locks are then not checked. */
  s3?: S3Client;
  /** Absent: no KMS check, and the public key must come from `publicKeyDer`. */
  kms?: KMSClient;
  /** The stack's evidence bucket and signing key: the trusted names, never the files' own claims. */
  bucket?: string;
  signingKeyArn?: string;
  /** A copy of the signing key's public key the investigator keeps (SubjectPublicKeyInfo, DER). */
  publicKeyDer?: Uint8Array;
  /** Verify a downloaded folder instead of the bucket's objects. */
  dir?: string;
  now: Date;
  concurrency?: number;
}

const pass = (check: string, detail: string): Verdict => ({ check, status: 'pass', detail });
const fail = (check: string, detail: string): Verdict => ({ check, status: 'fail', detail });
const unchecked = (check: string, detail: string): Verdict => ({ check, status: 'unchecked', detail });

function reasonOf(error: unknown): string {
  return explain(error).message;
}

async function hashObject(
  s3: S3Client,
  bucket: string,
  key: string,
  versionId: string,
): Promise<{ sha256: string; bytes: number }> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of out.Body as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** A public key as the investigator keeps it: PEM (`-----BEGIN PUBLIC KEY-----`) or DER. */
export function publicKeyFromFile(bytes: Buffer): Uint8Array {
  const text = bytes.toString('utf8');
  const pem = /-----BEGIN PUBLIC KEY-----([\s\S]+?)-----END PUBLIC KEY-----/.exec(text);
  return pem?.[1] ? Buffer.from(pem[1].replace(/\s+/g, ''), 'base64') : bytes;
}

async function signatureVerdicts(
  deps: VerifyDeps,
  manifestBytes: Buffer,
  manifest: Manifest,
  sig: SignatureFile,
): Promise<Verdict[]> {
  const verdicts: Verdict[] = [];
  const digest = sha256(manifestBytes).hex;
  if (digest !== sig.manifest.sha256) {
    verdicts.push(
      fail(
        'signed statement',
        `manifest.json has SHA-256 ${digest}; the signature names ${sig.manifest.sha256}`,
      ),
    );
  } else if (sig.message !== signingStatement(manifest.caseId, digest)) {
    verdicts.push(fail('signed statement', 'the signed statement does not describe this manifest'));
  } else {
    verdicts.push(pass('signed statement', `names manifest.json by its SHA-256 ${digest}`));
  }

  let publicKey = deps.publicKeyDer;
  let keySource = 'the public key file';
  if (!publicKey && deps.kms && deps.signingKeyArn) {
    try {
      const out = await deps.kms.send(new GetPublicKeyCommand({ KeyId: deps.signingKeyArn }));
      publicKey = out.PublicKey;
      keySource = `KMS's public key of ${deps.signingKeyArn}`;
    } catch (error) {
      verdicts.push(fail('signature (offline)', `cannot get the public key from KMS: ${reasonOf(error)}`));
    }
  }
  if (publicKey) {
    try {
      const verdict = verifyManifestSignature(manifestBytes, sig, publicKey);
      verdicts.push(
        verdict.ok
          ? pass('signature (offline)', `valid under ${keySource}`)
          : fail('signature (offline)', `${verdict.reason} (${keySource})`),
      );
    } catch (error) {
      verdicts.push(
        fail('signature (offline)', `cannot check with ${keySource}: ${safe((error as Error).message)}`),
      );
    }
  } else if (!verdicts.some((v) => v.check === 'signature (offline)')) {
    verdicts.push(
      fail('signature (offline)', 'no public key: pass --public-key FILE, or run where KMS is reachable'),
    );
  }

  if (deps.kms && deps.signingKeyArn) {
    try {
      const out = await deps.kms.send(
        new VerifyCommand({
          KeyId: deps.signingKeyArn,
          Message: Buffer.from(sig.message),
          MessageType: 'RAW',
          Signature: Buffer.from(sig.signature, 'base64'),
          SigningAlgorithm: signingAlgorithm,
        }),
      );
      verdicts.push(
        out.SignatureValid
          ? pass('signature (KMS)', `KMS Verify with ${deps.signingKeyArn}: valid`)
          : fail('signature (KMS)', `KMS Verify with ${deps.signingKeyArn}: not valid`),
      );
    } catch (error) {
      if (awsErrorCode(error) === 'KMSInvalidSignatureException') {
        verdicts.push(fail('signature (KMS)', `KMS Verify with ${deps.signingKeyArn}: not valid`));
      } else {
        verdicts.push(unchecked('signature (KMS)', `KMS not reachable: ${reasonOf(error)}`));
      }
    }
  } else {
    verdicts.push(unchecked('signature (KMS)', 'offline: KMS was not asked'));
  }
  if (deps.signingKeyArn && sig.keyId !== deps.signingKeyArn) {
    verdicts.push(
      fail(
        'signing key',
        `manifest.sig names the key ${safe(sig.keyId)}, not the stack's ${deps.signingKeyArn}`,
      ),
    );
  }
  return verdicts;
}

async function lockVerdict(deps: VerifyDeps, key: string, versionId: string | undefined): Promise<Verdict> {
  if (!deps.s3 || !deps.bucket) return unchecked('lock', 'offline: the bucket was not asked');
  try {
    const lock = await lockState(deps.s3, deps.bucket, key, versionId, deps.now);
    if (lock.missing) return fail('lock', `S3 no longer holds version ${versionId ?? '(latest)'}`);
    const what = [
      lock.mode ? `${lock.mode} until ${lock.retainUntil ?? '?'}` : 'no retention',
      `legal hold ${lock.legalHold ?? 'OFF'}`,
    ].join(', ');
    return lock.locked
      ? pass('lock', what)
      : fail(
          'lock',
          `not locked: ${what} (S3 shows an object's lock only to callers allowed s3:GetObjectRetention and s3:GetObjectLegalHold)`,
        );
  } catch (error) {
    return fail('lock', `cannot read the lock: ${reasonOf(error)}`);
  }
}

/**
 * Checks a case's evidence end to end: the manifest's signature (offline with the public key, and with
 * KMS where reachable), that the signature speaks of this case's manifest, every artifact's SHA-256
 * and size (in the bucket, by the manifest's version ids, or in a downloaded folder), and that each
 * object is still locked. Every check gives a verdict; `ok` is false if any failed.
 */
export async function verifyCase(caseId: string, deps: VerifyDeps): Promise<VerifyReport> {
  const folder = caseFolder(caseId);
  let manifestBytes: Buffer;
  let sig: SignatureFile;
  let manifest: Manifest;
  const manifestVerdicts: Verdict[] = [];
  let signatureVersionId: string | undefined;

  if (deps.dir) {
    const read = async (name: string) => {
      try {
        return await readFile(pathInside(deps.dir as string, name));
      } catch {
        throw new CliError(
          `${deps.dir} has no ${name}.`,
          'Download the case first: cordon evidence get CASE --out DIR',
          1,
        );
      }
    };
    manifestBytes = await read(manifestName);
    sig = parseSignatureFile(await read(signatureName));
    manifest = parseManifest(manifestBytes);
  } else {
    if (!deps.s3 || !deps.bucket)
      throw new CliError('Verifying the bucket needs AWS access; pass --dir to verify a folder offline.');
    const sealed = await readSealedCase(deps.s3, deps.bucket, caseId);
    manifestBytes = sealed.manifestBytes;
    sig = sealed.signature;
    manifest = sealed.manifest;
    signatureVersionId = sealed.signatureVersionId;
    manifestVerdicts.push(
      sealed.latestManifestVersionId && sealed.latestManifestVersionId !== sealed.manifestVersionId
        ? fail(
            'manifest version',
            `manifest.json was written again after sealing: version ${safe(sealed.latestManifestVersionId)} is not the signed ${safe(sealed.manifestVersionId)}`,
          )
        : pass(
            'manifest version',
            `the signed version ${safe(sealed.manifestVersionId)} is the only current one`,
          ),
    );
  }

  manifestVerdicts.push(
    manifest.caseId === caseId
      ? pass('case', `the manifest is case ${caseId}'s`)
      : fail('case', `the manifest is case ${safe(manifest.caseId)}'s, not ${caseId}'s`),
  );
  if (sig.manifest.key !== `${folder}${manifestName}`) {
    manifestVerdicts.push(fail('manifest key', `manifest.sig names ${safe(sig.manifest.key)}`));
  }
  if (deps.bucket) {
    manifestVerdicts.push(
      manifest.bucket === deps.bucket
        ? pass('bucket', `the manifest's bucket is the stack's, ${deps.bucket}`)
        : fail(
            'bucket',
            `the manifest names the bucket ${safe(manifest.bucket)}, not the stack's ${deps.bucket}`,
          ),
    );
  }

  const signature = await signatureVerdicts(deps, manifestBytes, manifest, sig);

  const artifacts = await mapLimit(
    manifest.artifacts,
    deps.concurrency ?? 4,
    async (a): Promise<ArtifactVerdict> => {
      let name: string;
      try {
        name = nameInCase(caseId, a.key);
      } catch (error) {
        const v = fail('name', safe((error as Error).message));
        return { name: safe(a.key), key: a.key, versionId: a.versionId, hash: v, lock: v, ok: false };
      }
      let hash: Verdict = fail('sha256', 'not checked');
      try {
        let found: { sha256: string; bytes: number } | undefined;
        if (deps.dir) {
          const path = pathInside(deps.dir, name);
          found = await hashFile(path).catch(() => undefined);
          if (!found) hash = fail('sha256', `missing from ${deps.dir}`);
        } else {
          found = await hashObject(deps.s3 as S3Client, deps.bucket as string, a.key, a.versionId);
        }
        if (found) {
          hash =
            found.sha256 === a.sha256 && found.bytes === a.bytes
              ? pass('sha256', `${a.sha256} (${a.bytes} bytes)`)
              : found.bytes !== a.bytes
                ? fail(
                    'sha256',
                    `${found.bytes} bytes where the manifest says ${a.bytes}; SHA-256 ${found.sha256}`,
                  )
                : fail('sha256', `SHA-256 ${found.sha256} differs from the manifest's ${a.sha256}`);
        }
      } catch (error) {
        hash = fail('sha256', `cannot read version ${a.versionId}: ${reasonOf(error)}`);
      }
      const lock = await lockVerdict(deps, a.key, a.versionId);
      return {
        name,
        key: a.key,
        versionId: a.versionId,
        hash,
        lock,
        ok: hash.status === 'pass' && lock.status !== 'fail',
      };
    },
  );

  // The manifest and its signature are evidence too: they must be locked like the rest.
  for (const [name, versionId] of [
    [manifestName, sig.manifest.versionId],
    [signatureName, signatureVersionId],
  ] as const) {
    const lock = await lockVerdict(deps, `${folder}${name}`, versionId);
    const statement = signature.find((v) => v.check === 'signed statement') as Verdict;
    const hash =
      name === manifestName
        ? { ...statement, check: 'sha256' }
        : unchecked('sha256', 'the signature file carries no hash of itself; its signature is checked above');
    artifacts.push({
      name,
      key: `${folder}${name}`,
      versionId: versionId ?? '(latest)',
      hash,
      lock,
      ok: hash.status !== 'fail' && lock.status !== 'fail',
    });
  }

  const signatureChecked = signature.some((v) => v.check.startsWith('signature') && v.status === 'pass');
  const ok =
    signatureChecked &&
    [...signature, ...manifestVerdicts].every((v) => v.status !== 'fail') &&
    artifacts.every((a) => a.ok);
  return {
    caseId,
    source: deps.dir ? 'folder' : 'bucket',
    signature,
    manifest: manifestVerdicts,
    artifacts,
    ok,
  };
}
