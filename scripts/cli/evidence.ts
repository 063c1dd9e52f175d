import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { blockCaseIdPattern } from '../../functions/core/case.js';
import { awsErrorCode } from '../../functions/core/errors.js';
import { caseFolder, sha256 } from '../../functions/core/evidence.js';
import {
  type Manifest,
  manifestSchema,
  type SignatureFile,
  signatureFileSchema,
} from '../../functions/core/manifest.js';
import { CliError, exitCodes, UnknownCaseError } from './errors.js';
import { safe } from './output.js';

/** The case has evidence but no `manifest.sig`: its workflow has not sealed it (yet). */
export class NotSealedError extends CliError {}

/** A manifest or a signature file is a few kilobytes; refuse to hold anything much larger in memory. */
const maxDocumentBytes = 64 * 1024 * 1024;

export const manifestName = 'manifest.json';
export const signatureName = 'manifest.sig';

/** One object of a case as the investigator sees it: what the manifest says, and how S3 holds it. */
export interface EvidenceEntry {
  /** The path inside the case folder: `triage.json`, `memory/image.lime`. */
  name: string;
  key: string;
  versionId: string;
  bytes: number;
  /** The manifest's whole-object SHA-256 (for manifest.sig, the hash of the bytes read). */
  sha256: string;
  contentType?: string;
  lock: LockState;
}

export interface LockState {
  mode?: string;
  retainUntil?: string;
  legalHold?: string;
  /** Under a retention that has not expired, or under a legal hold. */
  locked: boolean;
  /** Set when S3 does not hold this version at all. */
  missing?: boolean;
}

export interface SealedCase {
  caseId: string;
  bucket: string;
  manifest: Manifest;
  manifestBytes: Buffer;
  manifestVersionId: string;
  /** The version S3 returns for `manifest.json` without a version id: the signed one, unless rewritten. */
  latestManifestVersionId?: string;
  signature: SignatureFile;
  signatureBytes: Buffer;
  signatureVersionId: string;
}

/** The part of a key after `cases/<caseId>/`, checked to be a plain relative path inside the case. */
export function nameInCase(caseId: string, key: string): string {
  const folder = caseFolder(caseId);
  if (!key.startsWith(folder)) throw new CliError(`The manifest lists ${key}, which is outside ${folder}.`);
  const name = key.slice(folder.length);
  if (!/^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/.test(name)) {
    throw new CliError(`The manifest lists an artifact with an unsafe name: ${JSON.stringify(name)}.`);
  }
  return name;
}

export async function readObject(
  s3: S3Client,
  bucket: string,
  key: string,
  versionId?: string,
): Promise<{ body: Buffer; versionId: string; lastModified?: Date }> {
  const out = await s3.send(
    new GetObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }),
  );
  if ((out.ContentLength ?? 0) > maxDocumentBytes) {
    await out.Body?.transformToByteArray().catch(() => undefined);
    throw new CliError(`${key} is larger than any manifest should be (${out.ContentLength} bytes).`);
  }
  const body = Buffer.from((await out.Body?.transformToByteArray()) ?? new Uint8Array());
  return {
    body,
    versionId: out.VersionId ?? versionId ?? 'null',
    ...(out.LastModified ? { lastModified: out.LastModified } : {}),
  };
}

export function isMissing(error: unknown): boolean {
  const code = awsErrorCode(error);
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchVersion' || status === 404;
}

/** What a read of `key` without a version id meets now: a version, a delete marker, or nothing. */
export type CurrentVersion =
  | { state: 'present'; versionId: string; bytes?: number; lastModified?: Date }
  | { state: 'delete-marker'; versionId?: string }
  | { state: 'absent' };

/**
 * The version S3 serves for `key` when no version id is given. Under Object Lock nobody can remove a
 * locked version, but anyone allowed `s3:PutObject` or `s3:DeleteObject` can put a new version or a
 * delete marker on top of it: a reader who does not ask for the sealed version then gets something else.
 */
export async function currentVersion(s3: S3Client, bucket: string, key: string): Promise<CurrentVersion> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return {
      state: 'present',
      versionId: head.VersionId ?? 'null',
      ...(head.ContentLength === undefined ? {} : { bytes: head.ContentLength }),
      ...(head.LastModified ? { lastModified: head.LastModified } : {}),
    };
  } catch (error) {
    if (!isMissing(error)) throw error;
    // S3 answers a HEAD on a key whose current version is a delete marker with 404 and these headers.
    const headers = (error as { $response?: { headers?: Record<string, string | undefined> } }).$response
      ?.headers;
    if (headers?.['x-amz-delete-marker'] === 'true') {
      const versionId = headers['x-amz-version-id'];
      return { state: 'delete-marker', ...(versionId ? { versionId } : {}) };
    }
    return { state: 'absent' };
  }
}

/** A manifest or signature file read without throwing: the verifier reports a damaged one as a finding. */
export type ParsedDocument<T> =
  | { ok: true; value: T }
  | { ok: false; fault: 'not-json' | 'shape'; reason: string };

export function readDocument<T>(
  bytes: Buffer,
  schema: { safeParse: (v: unknown) => { success: true; data: T } | { success: false } },
  what: string,
): ParsedDocument<T> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { ok: false, fault: 'not-json', reason: `${what} is not JSON.` };
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    return { ok: false, fault: 'shape', reason: `${what} does not have the shape of a Cordon ${what}.` };
  }
  return { ok: true, value: parsed.data };
}

function parseDocument<T>(
  bytes: Buffer,
  schema: { safeParse: (v: unknown) => { success: true; data: T } | { success: false } },
  what: string,
): T {
  const parsed = readDocument(bytes, schema, what);
  if (!parsed.ok) throw new CliError(parsed.reason);
  return parsed.value;
}

export function parseSignatureFile(bytes: Buffer): SignatureFile {
  return parseDocument(bytes, signatureFileSchema, signatureName);
}
export function parseManifest(bytes: Buffer): Manifest {
  return parseDocument(bytes, manifestSchema, manifestName);
}

/**
 * Reads the sealed case: `manifest.sig` (its latest version), then the manifest version the signature
 * names, not whatever version of `manifest.json` is newest. The newest version's id is noted, so that a
 * manifest written after sealing is reported rather than silently ignored.
 */
export async function readSealedCase(s3: S3Client, bucket: string, caseId: string): Promise<SealedCase> {
  const folder = caseFolder(caseId);
  const sig = await readSignatureObject(s3, bucket, caseId);
  const signature = parseSignatureFile(sig.body);
  const manifestKey = `${folder}${manifestName}`;
  if (signature.manifest.key !== manifestKey) {
    throw new CliError(`${signatureName} names ${signature.manifest.key}, not ${manifestKey}.`, undefined, 1);
  }
  const manifest = await readObject(s3, bucket, manifestKey, signature.manifest.versionId);
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: manifestKey }));
  return {
    caseId,
    bucket,
    manifest: parseManifest(manifest.body),
    manifestBytes: manifest.body,
    manifestVersionId: manifest.versionId,
    ...(head.VersionId ? { latestManifestVersionId: head.VersionId } : {}),
    signature,
    signatureBytes: sig.body,
    signatureVersionId: sig.versionId,
  };
}

/**
 * The case's `manifest.sig` as S3 serves it now (its latest version). Missing, it says why: no such
 * case, a case not sealed yet, or a signature someone deleted after sealing (a delete marker).
 */
export async function readSignatureObject(
  s3: S3Client,
  bucket: string,
  caseId: string,
): Promise<{ body: Buffer; versionId: string }> {
  const folder = caseFolder(caseId);
  const key = `${folder}${signatureName}`;
  try {
    return await readObject(s3, bucket, key);
  } catch (error) {
    if (!isMissing(error)) throw error;
    const current = await currentVersion(s3, bucket, key).catch(() => ({ state: 'absent' }) as const);
    if (current.state === 'delete-marker') {
      throw new CliError(
        `Case ${caseId}'s ${signatureName} was deleted after sealing: a delete marker${current.versionId ? ` (version ${safe(current.versionId)})` : ''} hides it.`,
        'S3 still holds the signed version under Object Lock: list the versions of the key (s3:ListBucketVersions) and find out who deleted it.',
        exitCodes.failed,
      );
    }
    const any = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: folder, MaxKeys: 1 }));
    if (!any.KeyCount) {
      throw new UnknownCaseError(
        `There is no evidence for case ${caseId} in s3://${bucket}.`,
        blockCaseIdPattern.test(caseId)
          ? `An IP-range block keeps no evidence in the bucket: cordon status ${caseId} shows what it did.`
          : 'Check the case id (cordon cases) and --stage / --region.',
      );
    }
    throw new NotSealedError(
      `Case ${caseId} has evidence but no ${signatureName}: it has not been sealed (the workflow is still running or stopped before Archive).`,
      '`cordon evidence ls` lists what is there; `cordon status` shows why the case stopped.',
      exitCodes.failed,
    );
  }
}

/** How S3 holds one version now: its retention and legal hold, read with HeadObject. */
export async function lockState(
  s3: S3Client,
  bucket: string,
  key: string,
  versionId: string | undefined,
  now: Date,
): Promise<LockState & { bytes?: number }> {
  try {
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }),
    );
    const until = head.ObjectLockRetainUntilDate;
    const retained = Boolean(head.ObjectLockMode) && until !== undefined && until.getTime() > now.getTime();
    return {
      ...(head.ObjectLockMode ? { mode: head.ObjectLockMode } : {}),
      ...(until ? { retainUntil: until.toISOString() } : {}),
      legalHold: head.ObjectLockLegalHoldStatus ?? 'OFF',
      locked: retained || head.ObjectLockLegalHoldStatus === 'ON',
      ...(head.ContentLength === undefined ? {} : { bytes: head.ContentLength }),
    };
  } catch (error) {
    if (!isMissing(error)) throw error;
    return { locked: false, missing: true };
  }
}

/** Runs `work` over `items` with at most `limit` at a time; the first failure stops new work. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const index = next++;
      try {
        results[index] = await work(items[index] as T, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.error;
  return results;
}

/**
 * Every object of a sealed case: the manifest's artifacts, then the manifest and its signature, each
 * with the lock S3 holds it under now.
 */
export async function listEvidence(s3: S3Client, sealed: SealedCase, now: Date): Promise<EvidenceEntry[]> {
  const folder = caseFolder(sealed.caseId);
  const items = [
    ...sealed.manifest.artifacts.map((a) => ({
      name: nameInCase(sealed.caseId, a.key),
      key: a.key,
      versionId: a.versionId,
      bytes: a.bytes,
      sha256: a.sha256,
      contentType: a.contentType,
    })),
    {
      name: manifestName,
      key: `${folder}${manifestName}`,
      versionId: sealed.manifestVersionId,
      bytes: sealed.manifestBytes.byteLength,
      sha256: sealed.signature.manifest.sha256,
      contentType: 'application/json',
    },
    {
      name: signatureName,
      key: `${folder}${signatureName}`,
      versionId: sealed.signatureVersionId,
      bytes: sealed.signatureBytes.byteLength,
      sha256: sha256(sealed.signatureBytes).hex,
      contentType: 'application/json',
    },
  ];
  return mapLimit(items, 8, async (item) => {
    const { bytes: _b, ...lock } = await lockState(s3, sealed.bucket, item.key, item.versionId, now);
    return { ...item, lock };
  });
}

/** What an unsealed case folder holds: each key's latest version, with the hash its writer recorded. */
export async function listUnsealed(
  s3: S3Client,
  bucket: string,
  caseId: string,
  now: Date,
): Promise<EvidenceEntry[]> {
  const folder = caseFolder(caseId);
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: folder, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return mapLimit(keys, 8, async (key) => {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    const until = head.ObjectLockRetainUntilDate;
    const retained = Boolean(head.ObjectLockMode) && until !== undefined && until.getTime() > now.getTime();
    return {
      name: key.slice(folder.length),
      key,
      versionId: head.VersionId ?? 'null',
      bytes: head.ContentLength ?? 0,
      sha256: head.Metadata?.['sha256-hex'] ?? '',
      ...(head.ContentType ? { contentType: head.ContentType } : {}),
      lock: {
        ...(head.ObjectLockMode ? { mode: head.ObjectLockMode } : {}),
        ...(until ? { retainUntil: until.toISOString() } : {}),
        legalHold: head.ObjectLockLegalHoldStatus ?? 'OFF',
        locked: retained || head.ObjectLockLegalHoldStatus === 'ON',
      },
    };
  });
}
