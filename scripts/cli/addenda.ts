/**
 * Addenda: what an investigator adds to a sealed case without changing it. Each is one new object
 * under `cases/<caseId>/addenda/`, written once (`If-None-Match: *`, so never over another), locked
 * by the bucket's default retention, and signed with the stack's addendum key (not the manifest
 * signing key: a role that could sign with that one could sign a forged manifest). The first complete
 * raw image of a case's snapshot is recorded this way; later images of it are checked against it.
 */
import { GetPublicKeyCommand, type KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { awsErrorCode } from '../../functions/core/errors.js';
import { caseFolder, sha256 } from '../../functions/core/evidence.js';
import { signatureShape, signatureValid, signingAlgorithm } from '../../functions/core/manifest.js';
import { snapshotIdSchema, volumeIdSchema } from '../../functions/core/snapshots.js';
import { CliError, exitCodes } from './errors.js';
import { isMissing, readObject } from './evidence.js';
import { safe } from './output.js';

export const addendumSchemaVersion = 'cordon.addendum/1';
export const addendaFolder = 'addenda/';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

/** What a disk-image addendum says: which snapshot, read where, into an image of what size and hash. */
export const diskImageAddendumSchema = z.strictObject({
  schema: z.literal(addendumSchemaVersion),
  kind: z.literal('disk-image'),
  caseId: z.string().max(128),
  /** The snapshot read: the case's own, or its copy in the forensic account. */
  snapshotId: snapshotIdSchema,
  volumeId: volumeIdSchema,
  accountId: z.string().regex(/^\d{12}$/),
  region: z.string().regex(/^[a-z]{2}(?:-[a-z]+)+-\d$/),
  volumeBytes: z.number().int().positive(),
  blockSize: z.number().int().positive(),
  /** Blocks EBS listed; every other block of the image is zeros. */
  blocks: z.number().int().min(0),
  sha256: sha256Hex,
  recordedAt: z.iso.datetime(),
  /** The STS identity that downloaded the image and recorded it. */
  recordedBy: z.string().max(2048),
  /** The sealed manifest this addendum stands beside, by its SHA-256: it is not changed. */
  manifestSha256: sha256Hex,
});
export type DiskImageAddendum = z.infer<typeof diskImageAddendumSchema>;

export const addendumFileSchema = z.strictObject({
  addendum: diskImageAddendumSchema,
  signature: z.strictObject({
    keyId: z.string(),
    signingAlgorithm: z.literal(signingAlgorithm),
    messageType: z.literal('RAW'),
    value: z.string(),
  }),
});
export type AddendumFile = z.infer<typeof addendumFileSchema>;

/** The addendum's place in the case folder. */
export const addendumName = (snapshotId: string) => `${addendaFolder}disk-image-${snapshotId}.json`;

/**
 * The statement that is signed, rebuilt from every field of the addendum in a fixed order: a field
 * changed afterwards no longer matches the signature. Well under KMS's 4 KB for a RAW message.
 */
export function addendumStatement(a: DiskImageAddendum): string {
  const fields: (keyof DiskImageAddendum)[] = [
    'kind',
    'caseId',
    'snapshotId',
    'volumeId',
    'accountId',
    'region',
    'volumeBytes',
    'blockSize',
    'blocks',
    'sha256',
    'recordedAt',
    'recordedBy',
    'manifestSha256',
  ];
  return `${addendumSchemaVersion}\n${fields.map((f) => `${f} ${String(a[f])}`).join('\n')}\n`;
}

/** A recorded addendum as S3 holds it. */
export interface StoredAddendum {
  key: string;
  versionId: string;
  file: AddendumFile;
  bytes: Buffer;
}

export function parseAddendum(bytes: Buffer): AddendumFile | undefined {
  try {
    const parsed = addendumFileSchema.safeParse(JSON.parse(bytes.toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The addendum recorded for a snapshot of the case, if any; a damaged one is an error, not "none". */
export async function readAddendum(
  s3: S3Client,
  bucket: string,
  caseId: string,
  snapshotId: string,
): Promise<StoredAddendum | undefined> {
  const key = `${caseFolder(caseId)}${addendumName(snapshotId)}`;
  let object: Awaited<ReturnType<typeof readObject>>;
  try {
    object = await readObject(s3, bucket, key);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
  const file = parseAddendum(object.body);
  if (!file || file.addendum.caseId !== caseId || file.addendum.snapshotId !== snapshotId) {
    throw new CliError(
      `${key} is not a Cordon addendum for ${snapshotId} of case ${caseId}.`,
      'cordon evidence verify CASE reports what is wrong with it.',
      exitCodes.failed,
    );
  }
  return { key, versionId: object.versionId, file, bytes: object.body };
}

/** Whether the addendum's signature is valid under the addendum key's public key (DER, from KMS). */
export function addendumSignatureValid(file: AddendumFile, publicKeyDer: Uint8Array): boolean {
  const shape = signatureShape(file.signature.value);
  if (!shape.ok) return false;
  try {
    return signatureValid(addendumStatement(file.addendum), shape.der, publicKeyDer);
  } catch {
    return false;
  }
}

export async function addendumPublicKey(kms: KMSClient, keyArn: string): Promise<Uint8Array> {
  const out = await kms.send(new GetPublicKeyCommand({ KeyId: keyArn }));
  if (!out.PublicKey) throw new CliError(`KMS returned no public key for ${keyArn}.`);
  return out.PublicKey;
}

/**
 * Signs the addendum with the addendum key and stores it as a new object beside the sealed manifest,
 * once: S3 refuses the write if the key exists (`If-None-Match: *`), and the bucket's default
 * retention locks it. When another run recorded it first, that one is returned: the first stands.
 */
export async function recordAddendum(
  deps: { s3: S3Client; kms: KMSClient; bucket: string; keyArn: string },
  addendum: DiskImageAddendum,
): Promise<{ stored: StoredAddendum; created: boolean }> {
  const statement = addendumStatement(diskImageAddendumSchema.parse(addendum));
  const signed = await deps.kms.send(
    new SignCommand({
      KeyId: deps.keyArn,
      Message: Buffer.from(statement),
      MessageType: 'RAW',
      SigningAlgorithm: signingAlgorithm,
    }),
  );
  if (!signed.Signature) throw new CliError(`KMS returned no signature from ${deps.keyArn}.`);
  const file: AddendumFile = {
    addendum,
    signature: {
      keyId: deps.keyArn,
      signingAlgorithm,
      messageType: 'RAW',
      value: Buffer.from(signed.Signature).toString('base64'),
    },
  };
  const body = Buffer.from(`${JSON.stringify(file, null, 2)}\n`);
  const key = `${caseFolder(addendum.caseId)}${addendumName(addendum.snapshotId)}`;
  const hash = sha256(body);
  try {
    const out = await deps.s3.send(
      new PutObjectCommand({
        Bucket: deps.bucket,
        Key: key,
        Body: body,
        ContentType: 'application/json',
        ChecksumAlgorithm: 'SHA256',
        ChecksumSHA256: hash.base64,
        IfNoneMatch: '*',
        Metadata: { 'sha256-hex': hash.hex },
      }),
    );
    return { stored: { key, versionId: out.VersionId ?? 'null', file, bytes: body }, created: true };
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (awsErrorCode(error) !== 'PreconditionFailed' && status !== 412) throw error;
    const first = await readAddendum(deps.s3, deps.bucket, addendum.caseId, addendum.snapshotId);
    if (!first) throw error;
    return { stored: first, created: false };
  }
}

/** One line naming an addendum's image for people: `snap-… (vol-…) 8.0 GiB sha256 …`. */
export function describeAddendum(a: DiskImageAddendum): string {
  return `${a.snapshotId} (${a.volumeId}) recorded ${safe(a.recordedAt)} by ${safe(a.recordedBy, 200)}: SHA-256 ${a.sha256}`;
}
