import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetPublicKeyCommand, type KMSClient, VerifyCommand } from '@aws-sdk/client-kms';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { awsErrorCode } from '../../functions/core/errors.js';
import { caseFolder, sha256 } from '../../functions/core/evidence.js';
import {
  type Manifest,
  manifestSchema,
  parseSigningStatement,
  type SignatureFile,
  signatureFileSchema,
  signatureShape,
  signatureValid,
  signingAlgorithm,
  signingStatement,
} from '../../functions/core/manifest.js';
import {
  addendaFolder,
  addendumName,
  addendumPublicKey,
  addendumSignatureValid,
  parseAddendum,
} from './addenda.js';
import { hashFile, isDownloadLeftover, pathInside } from './download.js';
import { CliError, exitCodes, explain } from './errors.js';
import {
  currentVersion,
  isMissing,
  lockState,
  manifestName,
  mapLimit,
  nameInCase,
  type ParsedDocument,
  readDocument,
  readObject,
  readSignatureObject,
  signatureName,
} from './evidence.js';
import { type GetRecord, readGetRecord, sameStamp, stampFile } from './get-record.js';
import { safe } from './output.js';

export type VerdictStatus = 'pass' | 'fail' | 'unchecked';

export interface Verdict {
  check: string;
  status: VerdictStatus;
  detail: string;
  /** On a failure: the file it is about (`triage.json`, `manifest.sig`). */
  subject?: string;
  /** On a failure: what is wrong with that file, in a few words (`content changed`). */
  problem?: string;
}

export interface ArtifactVerdict {
  name: string;
  key: string;
  versionId: string;
  hash: Verdict;
  /** In the bucket: whether a read without a version id still gets the sealed version. */
  version?: Verdict;
  lock: Verdict;
  /**
   * In a folder: `file` when the file was read and hashed now, `get record` when the record `evidence
   * get` left vouches for it (the file unchanged since get hashed it) and it was not read again.
   */
  hashSource?: 'file' | 'get record';
  ok: boolean;
}

/** A file in the folder (or an object in the case's folder in the bucket) that the manifest does not list. */
export interface UnlistedFile {
  name: string;
  bytes: number;
  /** In a folder: the file's SHA-256, so that what was found is on record. */
  sha256?: string;
  verdict: Verdict;
}

export interface VerifyReport {
  caseId: string;
  source: 'bucket' | 'folder';
  signature: Verdict[];
  manifest: Verdict[];
  artifacts: ArtifactVerdict[];
  unlisted: UnlistedFile[];
  /** Every failure, one entry per file: `triage.json: content changed`. Empty when `ok`. */
  problems: string[];
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
  /** The stack's addendum key: the key an addendum's signature must verify under. */
  addendumKeyArn?: string;
  /** A copy of the signing key's public key the investigator keeps (SubjectPublicKeyInfo, DER). */
  publicKeyDer?: Uint8Array;
  /** Verify a downloaded folder instead of the bucket's objects. */
  dir?: string;
  /**
   * With `dir`: where `evidence get` keeps its records (get-record.ts). A file the record vouches for
   * (same inode, size, modification and change time as when get hashed it) is not read again.
   */
  getRecords?: string;
  /** With `dir`: read and hash every file, whatever the record says. */
  rehash?: boolean;
  now: Date;
  concurrency?: number;
}

const pass = (check: string, detail: string): Verdict => ({ check, status: 'pass', detail });
const fail = (check: string, detail: string, subject: string, problem: string): Verdict => ({
  check,
  status: 'fail',
  detail,
  subject,
  problem,
});
const unchecked = (check: string, detail: string): Verdict => ({ check, status: 'unchecked', detail });
/** A failure another check already found, seen from this check: same file, same problem, reported once. */
const echo = (check: string, detail: string, cause: Verdict): Verdict =>
  fail(check, detail, cause.subject ?? signatureName, cause.problem ?? 'did not check out');

const notSigned = 'not signed by the signing key';

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

/** What the verifier starts from: the manifest, its signature file, and where each was read. */
interface Loaded {
  manifestBytes: Buffer;
  /** Absent: the folder holds no `manifest.sig`. */
  signature?: ParsedDocument<SignatureFile>;
  signatureVersionId?: string;
  /** In the bucket: the version of `manifest.json` read (the signed one when the signature names it). */
  manifestVersionId?: string;
  manifestLastModified?: Date;
  verdicts: Verdict[];
}

async function loadFolder(dir: string): Promise<Loaded> {
  let manifestBytes: Buffer;
  try {
    manifestBytes = await readFile(pathInside(dir, manifestName));
  } catch {
    throw new CliError(
      `${dir} has no ${manifestName}.`,
      'Download the case first: cordon evidence get CASE --out DIR',
      exitCodes.failed,
    );
  }
  const signatureBytes = await readFile(pathInside(dir, signatureName)).catch(() => undefined);
  return {
    manifestBytes,
    ...(signatureBytes
      ? { signature: readDocument(signatureBytes, signatureFileSchema, signatureName) }
      : {}),
    verdicts: [],
  };
}

/**
 * Reads `manifest.sig` as S3 serves it now, then the version of `manifest.json` it names (the latest
 * one when the signature names none of this case's), and what a read without a version id gets.
 */
async function loadBucket(caseId: string, s3: S3Client, bucket: string): Promise<Loaded> {
  const manifestKey = `${caseFolder(caseId)}${manifestName}`;
  const sig = await readSignatureObject(s3, bucket, caseId);
  const signature = readDocument(sig.body, signatureFileSchema, signatureName);
  const signed =
    signature.ok && signature.value.manifest.key === manifestKey
      ? signature.value.manifest.versionId
      : undefined;
  let manifest: Awaited<ReturnType<typeof readObject>>;
  try {
    manifest = await readObject(s3, bucket, manifestKey, signed);
  } catch (error) {
    if (!isMissing(error)) throw error;
    throw new CliError(
      signed
        ? `S3 no longer holds version ${safe(signed)} of ${manifestName}, the one ${signatureName} signs.`
        : `Case ${caseId} has a ${signatureName} but no ${manifestName}.`,
      undefined,
      exitCodes.failed,
    );
  }
  const verdicts: Verdict[] = [];
  if (!signed) {
    verdicts.push(
      unchecked(
        'manifest version',
        `${signatureName} names no version of this case's ${manifestName}; its current version ${safe(manifest.versionId)} was read`,
      ),
    );
  } else {
    try {
      const current = await currentVersion(s3, bucket, manifestKey);
      const v = safe(manifest.versionId);
      verdicts.push(
        current.state === 'present' && current.versionId === manifest.versionId
          ? pass('manifest version', `the signed version ${v} is the current one`)
          : current.state === 'present'
            ? fail(
                'manifest version',
                `manifest.json was written again after sealing: version ${safe(current.versionId)} is not the signed ${v}`,
                manifestName,
                'written again after sealing',
              )
            : fail(
                'manifest version',
                `manifest.json was deleted after sealing: ${current.state === 'delete-marker' ? 'a delete marker hides it' : 'S3 serves no version of it'} from reads without a version id; the signed version ${v} is intact`,
                manifestName,
                'deleted after sealing',
              ),
      );
    } catch (error) {
      verdicts.push(unchecked('manifest version', `cannot read the current version: ${reasonOf(error)}`));
    }
  }
  return {
    manifestBytes: manifest.body,
    signature,
    signatureVersionId: sig.versionId,
    manifestVersionId: manifest.versionId,
    ...(manifest.lastModified ? { manifestLastModified: manifest.lastModified } : {}),
    verdicts,
  };
}

/**
 * The signature checks. The statement that must have been signed is rebuilt from what is here (this
 * case's id and this manifest's SHA-256), never taken from the file: a genuine signature over another
 * case's or another manifest's statement then fails, and says so.
 */
async function signatureVerdicts(
  caseId: string,
  deps: VerifyDeps,
  manifestBytes: Buffer,
  doc: ParsedDocument<SignatureFile> | undefined,
): Promise<Verdict[]> {
  if (!doc) {
    return [fail('signature file', `missing from ${deps.dir ?? 'the folder'}`, signatureName, 'missing')];
  }
  if (!doc.ok) {
    return [
      doc.fault === 'not-json'
        ? fail(
            'signature file',
            'manifest.sig is not JSON: cut short, or not a signature file',
            signatureName,
            'unreadable (not JSON)',
          )
        : fail(
            'signature file',
            'manifest.sig is JSON but not a Cordon signature file',
            signatureName,
            'not a Cordon signature file',
          ),
    ];
  }
  const sig = doc.value;
  const verdicts: Verdict[] = [];
  const digest = sha256(manifestBytes).hex;
  const expected = signingStatement(caseId, digest);
  const claimed = parseSigningStatement(sig.message);

  const statement = !claimed
    ? fail(
        'signed statement',
        'the statement manifest.sig carries is not a Cordon statement: the signature file was edited',
        signatureName,
        'statement edited',
      )
    : claimed.caseId !== caseId
      ? fail(
          'signed statement',
          `manifest.sig is case ${safe(claimed.caseId)}'s signature: its statement names that case's manifest, not case ${caseId}'s`,
          signatureName,
          `another case's signature (${safe(claimed.caseId)})`,
        )
      : claimed.manifestSha256 !== digest
        ? fail(
            'signed statement',
            `manifest.json has SHA-256 ${digest}; the signature names ${claimed.manifestSha256}: the manifest was changed after it was signed`,
            manifestName,
            'changed after signing',
          )
        : pass('signed statement', `names manifest.json by its SHA-256 ${digest}, and case ${caseId}`);
  verdicts.push(statement);
  const manifestKey = `${caseFolder(caseId)}${manifestName}`;
  if (
    claimed?.caseId === caseId &&
    (sig.manifest.key !== manifestKey || sig.manifest.sha256 !== claimed.manifestSha256)
  ) {
    // These copies are not signed; differing from the signed statement, they were edited.
    verdicts.push(
      fail(
        'signature file',
        `its manifest field (${safe(sig.manifest.key)}, SHA-256 ${sig.manifest.sha256}) disagrees with its signed statement: the file was edited`,
        signatureName,
        'edited',
      ),
    );
  }

  // What a failed check means: the statement's own failure when the signature does not cover this
  // manifest at all, otherwise that the signing key did not make it.
  const mismatch = statement.status === 'fail' ? statement : fail('signature', '', signatureName, notSigned);
  const shape = signatureShape(sig.signature);
  let publicKey = deps.publicKeyDer;
  let keySource = 'the public key file';
  let offline: Verdict | undefined;
  if (!publicKey && deps.kms && deps.signingKeyArn) {
    try {
      const out = await deps.kms.send(new GetPublicKeyCommand({ KeyId: deps.signingKeyArn }));
      publicKey = out.PublicKey;
      keySource = `KMS's public key of ${deps.signingKeyArn}`;
    } catch (error) {
      offline = fail(
        'signature (offline)',
        `cannot get the public key from KMS: ${reasonOf(error)}`,
        signatureName,
        'signature not checked',
      );
    }
  }
  if (!shape.ok) {
    offline = fail(
      'signature (offline)',
      `manifest.sig holds no usable signature: ${shape.reason}`,
      signatureName,
      shape.fault === 'truncated' ? 'signature cut short' : 'signature is not an ECDSA signature',
    );
  } else if (publicKey) {
    try {
      if (signatureValid(expected, shape.der, publicKey)) {
        offline = pass('signature (offline)', `valid under ${keySource}`);
      } else if (statement.status === 'fail' && signatureValid(sig.message, shape.der, publicKey)) {
        offline = echo(
          'signature (offline)',
          `made with the signing key (${keySource}), but over another statement: it does not cover this case's manifest.json as it is`,
          statement,
        );
      } else {
        offline = fail(
          'signature (offline)',
          `the signature is not valid for this key (${keySource}): the signing key did not make it`,
          signatureName,
          notSigned,
        );
      }
    } catch (error) {
      offline = fail(
        'signature (offline)',
        `cannot check with ${keySource}: ${safe((error as Error).message)}`,
        signatureName,
        'signature not checked',
      );
    }
  } else {
    offline ??= fail(
      'signature (offline)',
      'no public key: pass --public-key FILE, or run where KMS is reachable',
      signatureName,
      'signature not checked',
    );
  }
  verdicts.push(offline);

  if (!deps.kms || !deps.signingKeyArn) {
    verdicts.push(unchecked('signature (KMS)', 'offline: KMS was not asked'));
  } else if (!shape.ok) {
    verdicts.push(unchecked('signature (KMS)', 'not asked: manifest.sig holds no usable signature'));
  } else {
    const arn = deps.signingKeyArn;
    const invalid = () =>
      echo('signature (KMS)', `KMS Verify with ${arn}: not valid for this manifest's statement`, mismatch);
    try {
      const out = await deps.kms.send(
        new VerifyCommand({
          KeyId: arn,
          Message: Buffer.from(expected),
          MessageType: 'RAW',
          Signature: shape.der,
          SigningAlgorithm: signingAlgorithm,
        }),
      );
      verdicts.push(
        out.SignatureValid ? pass('signature (KMS)', `KMS Verify with ${arn}: valid`) : invalid(),
      );
    } catch (error) {
      verdicts.push(
        awsErrorCode(error) === 'KMSInvalidSignatureException'
          ? invalid()
          : unchecked('signature (KMS)', `KMS not reachable: ${reasonOf(error)}`),
      );
    }
  }
  if (deps.signingKeyArn && sig.keyId !== deps.signingKeyArn) {
    verdicts.push(
      fail(
        'signing key',
        `manifest.sig names the key ${safe(sig.keyId)}, not the stack's ${deps.signingKeyArn}`,
        signatureName,
        'names another signing key',
      ),
    );
  }
  return verdicts;
}

async function lockVerdict(
  deps: VerifyDeps,
  name: string,
  key: string,
  versionId: string | undefined,
): Promise<Verdict> {
  if (!deps.s3 || !deps.bucket) return unchecked('lock', 'offline: the bucket was not asked');
  try {
    const lock = await lockState(deps.s3, deps.bucket, key, versionId, deps.now);
    if (lock.missing) {
      // In a folder the version comes from the folder's manifest: one S3 never held is not "gone".
      return deps.dir
        ? fail(
            'lock',
            `S3 holds no version ${safe(versionId ?? '(latest)')} of it`,
            name,
            'no such version in the bucket',
          )
        : fail(
            'lock',
            `S3 no longer holds version ${safe(versionId ?? '(latest)')}`,
            name,
            'sealed version gone',
          );
    }
    const what = [
      lock.mode ? `${lock.mode} until ${lock.retainUntil ?? '?'}` : 'no retention',
      `legal hold ${lock.legalHold ?? 'OFF'}`,
    ].join(', ');
    return lock.locked
      ? pass('lock', what)
      : fail(
          'lock',
          `not locked: ${what} (S3 shows an object's lock only to callers allowed s3:GetObjectRetention and s3:GetObjectLegalHold)`,
          name,
          'not locked',
        );
  } catch (error) {
    return fail('lock', `cannot read the lock: ${reasonOf(error)}`, name, 'lock not readable');
  }
}

/** The hash verdict: the bytes found against the manifest's SHA-256 and size. */
function hashVerdict(
  name: string,
  a: Manifest['artifacts'][number],
  found: { sha256: string; bytes: number },
) {
  if (found.sha256 === a.sha256 && found.bytes === a.bytes)
    return pass('sha256', `${a.sha256} (${a.bytes} bytes)`);
  if (found.bytes < a.bytes) {
    return fail(
      'sha256',
      `${found.bytes} bytes where the manifest says ${a.bytes}: it ends early; SHA-256 ${found.sha256}`,
      name,
      `truncated (${found.bytes} of ${a.bytes} bytes)`,
    );
  }
  if (found.bytes > a.bytes) {
    return fail(
      'sha256',
      `${found.bytes} bytes where the manifest says ${a.bytes}; SHA-256 ${found.sha256}`,
      name,
      `longer than sealed (${found.bytes} bytes, not ${a.bytes})`,
    );
  }
  return fail(
    'sha256',
    `SHA-256 ${found.sha256} differs from the manifest's ${a.sha256}`,
    name,
    'content changed',
  );
}

/**
 * In the bucket: what a read of the key without a version id gets. Anything but the sealed version
 * means someone wrote to (or deleted) the evidence after sealing, even where Object Lock kept the
 * sealed bytes: the console, `aws s3 cp` and every tool that does not ask for the version see the rest.
 */
async function versionVerdict(
  deps: VerifyDeps,
  name: string,
  key: string,
  sealed: string,
  sealedGone: boolean,
): Promise<Verdict> {
  let current: Awaited<ReturnType<typeof currentVersion>>;
  try {
    current = await currentVersion(deps.s3 as S3Client, deps.bucket as string, key);
  } catch (error) {
    return unchecked('version', `cannot read the current version: ${reasonOf(error)}`);
  }
  const v = safe(sealed);
  const intact = sealedGone ? `the sealed version ${v} is gone` : `the sealed version ${v} is intact`;
  if (current.state === 'present') {
    if (current.versionId === sealed) return pass('version', `the sealed version ${v} is the current one`);
    const newer = `version ${safe(current.versionId)} (${current.bytes ?? '?'} bytes, ${current.lastModified?.toISOString() ?? 'at an unknown time'})`;
    return sealedGone
      ? fail(
          'version',
          `${newer} has taken the sealed version's place; ${intact}`,
          name,
          'replaced by a newer version',
        )
      : fail(
          'version',
          `written again after sealing: ${newer} is what a read without a version id gets; ${intact}`,
          name,
          'overwritten after sealing',
        );
  }
  if (current.state === 'delete-marker') {
    return fail(
      'version',
      `deleted after sealing: a delete marker${current.versionId ? ` (version ${safe(current.versionId)})` : ''} hides it from reads without a version id; ${intact}`,
      name,
      'deleted after sealing',
    );
  }
  return sealedGone
    ? fail('version', `no version of ${name} is left in the bucket`, name, 'sealed version gone')
    : unchecked('version', 'S3 serves no current version, yet the sealed one is there');
}

async function checkArtifact(
  caseId: string,
  deps: VerifyDeps,
  a: Manifest['artifacts'][number],
  record: GetRecord | undefined,
): Promise<ArtifactVerdict> {
  let name: string;
  try {
    name = nameInCase(caseId, a.key);
  } catch (error) {
    const v = fail('name', safe((error as Error).message), safe(a.key), 'unsafe name');
    return { name: safe(a.key), key: a.key, versionId: a.versionId, hash: v, lock: v, ok: false };
  }
  let hash: Verdict;
  let hashSource: ArtifactVerdict['hashSource'];
  let sealedGone = false;
  if (deps.dir) {
    try {
      const path = pathInside(deps.dir, name);
      if (record && (await vouchedFor(record, name, a, path))) {
        hashSource = 'get record';
        hash = pass(
          'sha256',
          `${a.sha256} (${a.bytes} bytes): hashed by cordon evidence get at ${record.writtenAt}, and the file is unchanged since (same inode, size, modification and change time); not read again (--rehash reads it)`,
        );
      } else {
        hashSource = 'file';
        hash = hashVerdict(name, a, await hashFile(path));
      }
    } catch (error) {
      hash =
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? fail('sha256', `missing from ${deps.dir}`, name, 'missing')
          : fail('sha256', `cannot read it: ${safe((error as Error).message)}`, name, 'unreadable');
    }
  } else {
    try {
      hash = hashVerdict(
        name,
        a,
        await hashObject(deps.s3 as S3Client, deps.bucket as string, a.key, a.versionId),
      );
    } catch (error) {
      sealedGone = isMissing(error);
      hash = sealedGone
        ? fail(
            'sha256',
            `S3 no longer holds the sealed version ${safe(a.versionId)}`,
            name,
            'sealed version gone',
          )
        : fail('sha256', `cannot read version ${a.versionId}: ${reasonOf(error)}`, name, 'unreadable');
    }
  }
  const version = deps.dir ? undefined : await versionVerdict(deps, name, a.key, a.versionId, sealedGone);
  const lock = await lockVerdict(deps, name, a.key, a.versionId);
  return {
    name,
    key: a.key,
    versionId: a.versionId,
    hash,
    ...(version ? { version } : {}),
    lock,
    ...(hashSource ? { hashSource } : {}),
    ok: hash.status === 'pass' && version?.status !== 'fail' && lock.status !== 'fail',
  };
}

/**
 * Whether the record `evidence get` left vouches for the file at `path` being the manifest's bytes: it
 * names this file with the manifest's SHA-256 and size, and the file's stamp is still the one recorded.
 */
async function vouchedFor(
  record: GetRecord,
  name: string,
  a: Manifest['artifacts'][number],
  path: string,
): Promise<boolean> {
  const entry = record.files[name];
  if (!entry || entry.sha256 !== a.sha256 || entry.bytes !== a.bytes) return false;
  const now = await stampFile(path).catch(() => undefined);
  return now !== undefined && sameStamp(entry.stamp, now);
}

/** Every file under `dir`, as paths relative to it with `/` separators. */
async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(join(dir, prefix), { withFileTypes: true });
  const files: string[] = [];
  for (const e of entries.sort((x, y) => x.name.localeCompare(y.name))) {
    const path = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) files.push(...(await filesUnder(dir, path)));
    else files.push(path);
  }
  return files;
}

/**
 * Files the manifest does not list. In a folder every one is a failure: `verify --dir` says the folder
 * is the sealed evidence, and nothing vouches for a file the signed manifest does not name (an
 * analyst's notes belong beside the folder, not in it). In the bucket an object written after sealing
 * fails likewise; one stored before sealing but left out of the manifest (a step that failed half-way
 * leaves those) is shown and not counted, because the signature never covered it.
 */
async function unlistedFiles(
  caseId: string,
  deps: VerifyDeps,
  listed: Set<string>,
  sealedAt: Date | undefined,
): Promise<UnlistedFile[]> {
  const found: UnlistedFile[] = [];
  if (deps.dir) {
    const dir = deps.dir;
    for (const name of await filesUnder(dir)) {
      if (listed.has(name)) continue;
      const file = await hashFile(join(dir, name)).catch(() => undefined);
      if (isDownloadLeftover(name, listed)) {
        // Not evidence and not tampering: `evidence get` was interrupted, or is still running.
        found.push({
          name: safe(name),
          bytes: file?.bytes ?? 0,
          verdict: fail(
            'listed',
            'left by an unfinished cordon evidence get: run it again to finish the download (or delete this file)',
            safe(name),
            'left by an unfinished download',
          ),
        });
        continue;
      }
      found.push({
        name: safe(name),
        bytes: file?.bytes ?? 0,
        ...(file ? { sha256: file.sha256 } : {}),
        verdict: fail(
          'listed',
          `not in the manifest: nothing vouches for it${file ? ` (${file.bytes} bytes, SHA-256 ${file.sha256})` : ''}`,
          safe(name),
          'not in the manifest',
        ),
      });
    }
    return found;
  }
  const folder = caseFolder(caseId);
  let token: string | undefined;
  do {
    const page = await (deps.s3 as S3Client).send(
      new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: folder, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) {
      const name = o.Key?.slice(folder.length);
      // Addenda are written after sealing on purpose, and checked on their own (addendumVerdicts).
      if (!name || listed.has(name) || name.startsWith(addendaFolder)) continue;
      const at = o.LastModified?.toISOString() ?? 'at an unknown time';
      // S3 times have whole seconds: written in the second of sealing or later counts as after.
      const after = !sealedAt || !o.LastModified || o.LastModified.getTime() >= sealedAt.getTime();
      found.push({
        name: safe(name),
        bytes: o.Size ?? 0,
        verdict: after
          ? fail(
              'listed',
              `not in the manifest, and written ${at}, after sealing: nothing vouches for it`,
              safe(name),
              'not in the manifest, written after sealing',
            )
          : unchecked(
              'listed',
              `not in the manifest: stored ${at}, before sealing, and not covered by the signature`,
            ),
      });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return found;
}

/**
 * In the bucket: each addendum investigators recorded after sealing (`addenda/`), checked as evidence
 * of its own: a Cordon addendum of this case, for the snapshot its name says, beside this manifest
 * (its SHA-256), signed by the stack's addendum key, and locked.
 */
async function addendumVerdicts(
  caseId: string,
  deps: VerifyDeps,
  manifestSha256: string,
): Promise<ArtifactVerdict[]> {
  if (deps.dir || !deps.s3 || !deps.bucket) return [];
  const s3 = deps.s3;
  const bucket = deps.bucket;
  const prefix = `${caseFolder(caseId)}${addendaFolder}`;
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  if (keys.length === 0) return [];
  let publicKey: Uint8Array | undefined;
  let keyProblem: string | undefined;
  if (!deps.addendumKeyArn || !deps.kms) keyProblem = 'the stack names no addendum key to check it with';
  else {
    try {
      publicKey = await addendumPublicKey(deps.kms, deps.addendumKeyArn);
    } catch (error) {
      keyProblem = `cannot get the addendum key's public key: ${reasonOf(error)}`;
    }
  }
  return mapLimit(keys, 4, async (key) => {
    const name = safe(key.slice(caseFolder(caseId).length));
    const object = await readObject(s3, bucket, key);
    const file = parseAddendum(object.body);
    const a = file?.addendum;
    const hash = !file
      ? fail('signature', 'not a Cordon addendum: unreadable, or not of that shape', name, 'not an addendum')
      : a?.caseId !== caseId || `${caseFolder(caseId)}${addendumName(a.snapshotId)}` !== key
        ? fail(
            'signature',
            `an addendum of ${safe(a?.caseId)}'s ${safe(a?.snapshotId)}, not of this case and name`,
            name,
            'misplaced addendum',
          )
        : a.manifestSha256 !== manifestSha256
          ? fail(
              'signature',
              `stands beside manifest ${a.manifestSha256}, not this one (${manifestSha256})`,
              name,
              "another manifest's addendum",
            )
          : !publicKey
            ? fail('signature', keyProblem ?? 'no addendum key', name, 'signature not checked')
            : file.signature.keyId !== deps.addendumKeyArn || !addendumSignatureValid(file, publicKey)
              ? fail(
                  'signature',
                  `not signed by the stack's addendum key ${deps.addendumKeyArn}`,
                  name,
                  'not signed by the addendum key',
                )
              : pass(
                  'signature',
                  `image of ${a.snapshotId}: SHA-256 ${a.sha256} (${a.volumeBytes} bytes), recorded by ${safe(a.recordedBy, 200)} at ${a.recordedAt}`,
                );
    const lock = await lockVerdict(deps, name, key, object.versionId);
    return {
      name,
      key,
      versionId: object.versionId,
      hash,
      lock,
      ok: hash.status === 'pass' && lock.status !== 'fail',
    };
  });
}

/** One line per file that failed a check, each problem once: `triage.json: truncated (…)`. */
function problemsOf(verdicts: Verdict[]): string[] {
  const bySubject = new Map<string, string[]>();
  for (const v of verdicts) {
    if (v.status !== 'fail') continue;
    const subject = v.subject ?? 'evidence';
    const problems = bySubject.get(subject) ?? [];
    const problem = v.problem ?? `${v.check} failed`;
    if (!problems.includes(problem)) problems.push(problem);
    bySubject.set(subject, problems);
  }
  return [...bySubject].map(([subject, problems]) => `${subject}: ${problems.join(', ')}`);
}

/**
 * Checks a case's evidence end to end: the manifest's signature (offline with the public key, and with
 * KMS where reachable), that the signature speaks of this case's manifest, every artifact's SHA-256
 * and size (in the bucket, by the manifest's version ids, or in a downloaded folder), that each object
 * is still locked and, in the bucket, still the current version of its key, and that nothing unlisted
 * sits among the evidence. Every check gives a verdict and every failure a short problem naming its
 * file; `ok` is false if any failed.
 */
export async function verifyCase(caseId: string, deps: VerifyDeps): Promise<VerifyReport> {
  const folder = caseFolder(caseId);
  if (!deps.dir && (!deps.s3 || !deps.bucket))
    throw new CliError('Verifying the bucket needs AWS access; pass --dir to verify a folder offline.');
  const loaded = deps.dir
    ? await loadFolder(deps.dir)
    : await loadBucket(caseId, deps.s3 as S3Client, deps.bucket as string);
  const sig = loaded.signature?.ok ? loaded.signature.value : undefined;
  const manifestKey = `${folder}${manifestName}`;

  const manifestVerdicts = [...loaded.verdicts];
  const parsed = readDocument(loaded.manifestBytes, manifestSchema, manifestName);
  const manifest = parsed.ok ? parsed.value : undefined;
  if (!parsed.ok) {
    manifestVerdicts.push(
      parsed.fault === 'not-json'
        ? fail(
            'manifest',
            'manifest.json is not JSON: cut short, or not a manifest',
            manifestName,
            'unreadable (not JSON)',
          )
        : fail(
            'manifest',
            'manifest.json is JSON but not a Cordon manifest',
            manifestName,
            'not a Cordon manifest',
          ),
    );
  } else {
    const m = parsed.value;
    manifestVerdicts.push(
      m.caseId === caseId
        ? pass('case', `the manifest is case ${caseId}'s`)
        : fail(
            'case',
            `the manifest is case ${safe(m.caseId)}'s, not ${caseId}'s`,
            manifestName,
            `another case's manifest (${safe(m.caseId)})`,
          ),
    );
    if (deps.bucket) {
      manifestVerdicts.push(
        m.bucket === deps.bucket
          ? pass('bucket', `the manifest's bucket is the stack's, ${deps.bucket}`)
          : fail(
              'bucket',
              `the manifest names the bucket ${safe(m.bucket)}, not the stack's ${deps.bucket}`,
              manifestName,
              `another bucket's manifest (${safe(m.bucket)})`,
            ),
      );
    }
  }

  const signature = await signatureVerdicts(caseId, deps, loaded.manifestBytes, loaded.signature);

  const record =
    deps.dir && deps.getRecords && !deps.rehash
      ? await readGetRecord(deps.getRecords, deps.dir, caseId)
      : undefined;
  const artifacts = await mapLimit(manifest?.artifacts ?? [], deps.concurrency ?? 4, (a) =>
    checkArtifact(caseId, deps, a, record),
  );

  // The manifest and its signature are evidence too: vouched for by the signature, and locked.
  const statement = signature.find((v) => v.check === 'signed statement');
  const sigProblem = signature.find((v) => v.status === 'fail') as Verdict | undefined;
  const digest = sha256(loaded.manifestBytes).hex;
  const manifestHash =
    statement?.status === 'pass'
      ? pass('sha256', `${digest}, as the signed statement names it`)
      : echo(
          'sha256',
          `SHA-256 ${digest}: no signed statement of case ${caseId} names it`,
          statement ?? sigProblem ?? fail('sha256', '', signatureName, 'missing'),
        );
  const manifestVersion =
    loaded.manifestVersionId ??
    (sig && sig.manifest.key === manifestKey ? sig.manifest.versionId : undefined);
  const manifestLock = manifestVersion
    ? await lockVerdict(deps, manifestName, manifestKey, manifestVersion)
    : unchecked('lock', `${signatureName} names no version of this case's ${manifestName}`);
  const current = loaded.verdicts.find((v) => v.check === 'manifest version');
  const manifestCurrent = current ? { ...current, check: 'version' } : undefined;
  artifacts.push({
    name: manifestName,
    key: manifestKey,
    versionId: manifestVersion ?? '(unknown)',
    hash: manifestHash,
    ...(manifestCurrent ? { version: manifestCurrent } : {}),
    lock: manifestLock,
    ok:
      manifestHash.status === 'pass' && manifestCurrent?.status !== 'fail' && manifestLock.status !== 'fail',
  });
  const offline = signature.find((v) => v.check === 'signature (offline)');
  const sigHash =
    offline?.status === 'pass'
      ? pass('signature', 'its signature is valid (above)')
      : echo(
          'signature',
          'its signature did not check out (above)',
          offline ?? sigProblem ?? fail('signature', '', signatureName, 'missing'),
        );
  const sigLock = loaded.signature
    ? await lockVerdict(deps, signatureName, `${folder}${signatureName}`, loaded.signatureVersionId)
    : unchecked('lock', `not checked: ${signatureName} is missing here`);
  artifacts.push({
    name: signatureName,
    key: `${folder}${signatureName}`,
    versionId: loaded.signatureVersionId ?? '(latest)',
    hash: sigHash,
    lock: sigLock,
    ok: sigHash.status === 'pass' && sigLock.status !== 'fail',
  });

  if (manifest) {
    try {
      artifacts.push(...(await addendumVerdicts(caseId, deps, digest)));
    } catch (error) {
      manifestVerdicts.push(unchecked('addenda', `cannot read the case's addenda: ${reasonOf(error)}`));
    }
  }

  let unlisted: UnlistedFile[] = [];
  if (manifest) {
    const listed = new Set([manifestName, signatureName]);
    for (const a of artifacts) listed.add(a.name);
    try {
      unlisted = await unlistedFiles(caseId, deps, listed, loaded.manifestLastModified);
    } catch (error) {
      manifestVerdicts.push(
        unchecked(
          'unlisted',
          `cannot list ${deps.dir ? deps.dir : 'the case folder'} for files the manifest does not name: ${reasonOf(error)}`,
        ),
      );
    }
  }

  const all = [
    ...signature,
    ...manifestVerdicts,
    ...artifacts.flatMap((a) => [a.hash, ...(a.version ? [a.version] : []), a.lock]),
    ...unlisted.map((u) => u.verdict),
  ];
  const signatureChecked = signature.some((v) => v.check.startsWith('signature (') && v.status === 'pass');
  const ok = signatureChecked && all.every((v) => v.status !== 'fail');
  const problems = ok ? [] : problemsOf(all);
  if (!ok && problems.length === 0) problems.push(`${signatureName}: signature not checked`);
  return {
    caseId,
    source: deps.dir ? 'folder' : 'bucket',
    signature,
    manifest: manifestVerdicts,
    artifacts,
    unlisted,
    problems,
    ok,
  };
}
